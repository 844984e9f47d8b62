/**
 * The pure Raft core: one server's consensus state machine, driven by its caller (modeled on
 * etcd-io/raft `raft.go` + `rawnode.go`; Ongaro's thesis and the Raft paper, cited by section).
 *
 * Inputs: `tick()` (logical clock), `step(message)`, `propose`, `proposeConfChange`,
 * `readIndex`, `transferLeadership`, `campaign`, `applyConfChange`. Outputs: `ready()` hands out
 * entries and hard state to persist, messages to send, committed entries to apply, a snapshot
 * to install and read states to serve, acknowledged by `advance()` (contract on `Ready` in
 * messages.ts).
 *
 * Implements: leader election with randomized timeouts (§3.4 / paper §5.2), PreVote (thesis
 * §9.6), CheckQuorum and the leader lease on votes (thesis §6.2, §4.2.3), log replication
 * with pipelining, batching and fast backtracking (§3.5, §10.2.1), the commit rule for
 * current-term entries only (paper §5.4.2, Figure 8), the no-op entry of a new leader (§6.4),
 * ReadIndex reads (§6.4), snapshots (§5.1, Figure 5.2 InstallSnapshot), single-server
 * membership changes with learners (§4.1-§4.2, §4.2.1, and the 2015 fix: a leader changes
 * membership only after committing an entry of its term) and leadership transfer (§3.10).
 *
 * Owns: term, vote, role, the log's unstable suffix and commit index, peer progress. Must
 * never: do I/O, read a clock, use timers or Math.random (the injected `random` is the only
 * randomness), or import commands. Same inputs and same `random` sequence => same outputs.
 */
import assert from 'node:assert/strict';
import { LostEntriesError, NotLeaderError, ProposalDroppedError } from './errors.js';
import { NO_TERM, RaftLog } from './log.js';
import {
  ConfChangeType,
  ENTRY_OVERHEAD_BYTES,
  EntryType,
  MessageType,
  Role,
  encodeConfChange,
  entrySize,
  message,
} from './messages.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Ready,
  Snapshot,
  SoftState,
} from './messages.js';
import { ProgressState, ProgressTracker } from './progress.js';
import type { Progress } from './progress.js';
import { quorumSize, VoteResult } from './quorum.js';
import { ReadOnly } from './read-only.js';
import type { ReadRequest } from './read-only.js';
import type { Storage } from './storage.js';

export { LostEntriesError, NotLeaderError, ProposalDroppedError };

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Election timeout randomized in [electionTicks, 2*electionTicks) (§3.4). */
  electionTicks: number;
  /** Heartbeat interval in ticks, < electionTicks. */
  heartbeatTicks: number;
  /** Bound on unacknowledged App messages per follower in replicate state. */
  maxInflightMsgs: number;
  /** Bytes of entries per App message (batching; at least one entry per message). */
  maxSizePerMsg: number;
  /** Bound on bytes of proposals not yet committed (default 64 MiB; propose throws
   *  ProposalDroppedError when over; a single proposal is always accepted on an empty pipeline). */
  maxUncommittedBytes?: number;
  /** Bound on bytes of committed entries handed out in one Ready (default 64 MiB). */
  maxCommittedBytesPerReady?: number;
  /** Bound on pending ReadIndex requests at the leader (default 4096); more are dropped. */
  maxPendingReads?: number;
  /**
   * Readys that may be handed out before the oldest is acknowledged (default 1: ready() then
   * advance(), strictly alternating). Above 1 the driver may persist a new Ready while earlier
   * ones are still syncing (a pipeline); advance() acknowledges the oldest. A Ready carrying a
   * snapshot is only handed out alone (none before it outstanding, none after it until it is
   * acknowledged).
   */
  maxReadiesInFlight?: number;
  /** Thesis §9.6: ask for pre-votes before incrementing the term. */
  preVote: boolean;
  /** Thesis §6.2: a leader steps down without a majority's contact for an election timeout;
   *  followers in contact with a leader ignore (pre)votes (the lease, §4.2.3). */
  checkQuorum: boolean;
  /** Injected seeded PRNG in [0,1): the ONLY source of randomness. */
  random: () => number;
  /** Index already applied by the application on restart (<= the stored commit index). */
  applied?: number;
  /** Deliberate faults to prove the simulation catches them; tests only. */
  bugs?: BugFlags;
}

/** Deliberate faults, each breaking exactly one safety property. Tests only. */
export interface BugFlags {
  /** Leader counts replicas of previous-term entries toward commit (Fig. 8). */
  commitOldTermEntries?: boolean;
  /** Grant votes to candidates with out-of-date logs (§5.4.1). */
  voteWithoutLogCheck?: boolean;
  /** May vote twice in one term (Election Safety). */
  forgetVote?: boolean;
  /** Follower appends without matching prevLogIndex/prevLogTerm (Log Matching). */
  skipPrevLogCheck?: boolean;
  /**
   * Follower sends its AppResp as an early message, before the driver persisted the entries it
   * acknowledges (Raft Figure 2: persist before responding): a commit can rest on an ack of an
   * entry the follower then loses in a crash (State Machine Safety).
   */
  followerAcksBeforePersist?: boolean;
  /** Leader answers ReadIndex without a heartbeat round (stale reads). */
  readIndexWithoutQuorumCheck?: boolean;
  /** Follower takes the leader's commit even when lower than its own (commit monotonicity). */
  commitRegression?: boolean;
  /**
   * Leader counts its own entries toward commit when it appends them, not when the driver has
   * persisted them, while its App goes out before its own sync (thesis §10.2.1): a commit can
   * rest on fewer durable copies than a quorum (Leader Completeness / State Machine Safety).
   */
  leaderCountsSelfBeforePersist?: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  commit: number;
  applied: number;
  role: Role;
  leader: NodeId | null;
  confState: ConfState;
  lastIndex: number;
}

/** Context of a Vote sent because of TimeoutNow: it bypasses the leader lease (thesis §3.10). */
const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');
const EMPTY = new Uint8Array(0);

function isTransfer(context: Uint8Array | null): boolean {
  if (context === null || context.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < context.length; i++) if (context[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

/** What a ready() handed out, for its advance(). */
interface Outstanding {
  readonly hardState: HardState | null;
  readonly lastEntry: Entry | null;
  readonly snapshotIndex: number;
  readonly committed: readonly Entry[];
}

export class RaftCore {
  readonly id: NodeId;
  private readonly log: RaftLog;
  private readonly tracker: ProgressTracker;
  private readonly readOnly: ReadOnly;
  private readonly bugs: BugFlags;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly maxSizePerMsg: number;
  private readonly maxUncommittedBytes: number;
  private readonly maxCommittedBytesPerReady: number;
  private readonly maxPendingReads: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly random: () => number;

  private term = 0;
  private vote: NodeId | null = null;
  private leader: NodeId | null = null;
  private role: Role = Role.Follower;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private msgs: Message[] = [];
  /** A leader's App/Heartbeat/Snap: the driver may send them before persisting (§10.2.1). */
  private earlyMsgs: Message[] = [];
  private readStates: ReadState[] = [];
  /** Index of the last conf change appended by this leader (or its lastIndex at election). */
  private pendingConfIndex = 0;
  private leadTransferee: NodeId | null = null;
  private uncommittedBytes = 0;
  /** ReadIndex requests waiting for this leader's first commit in its term (§6.4). */
  private pendingReadRequests: ReadRequest[] = [];
  /** Proposals were appended since the last broadcast: send them at the next hasReady/ready. */
  private needBroadcast = false;
  private prevSoft: SoftState;
  /** The hard state in the last acknowledged Ready: durable. */
  private prevHard: HardState;
  /** The hard state in the last Ready handed out (maybe still being persisted). */
  private handedHard: HardState;
  /** Readys handed out and not yet acknowledged, oldest first. */
  private readonly outstanding: Outstanding[] = [];
  private readonly maxReadiesInFlight: number;
  /** A TimeoutNow arrived while a committed conf change was unapplied: campaign after applying. */
  private campaignAfterApply = false;
  /** Ticks since this node last heard from a leader of its term (or, leading, last had a quorum). */
  private ticksSinceLeader = 0;
  /** This node stepped down because CheckQuorum failed, and has heard from no quorum since. */
  private steppedDownNoQuorum = false;
  /** Ticks spent (pre-)campaigning without a quorum of voters answering (granted or not). */
  private unansweredCampaignTicks = 0;
  /** A quorum of voters answered the current (pre-)campaign round. */
  private roundAnswered = false;

  constructor(config: RaftConfig) {
    assert.ok(config.heartbeatTicks >= 1, 'raft: heartbeatTicks must be >= 1');
    assert.ok(config.electionTicks > config.heartbeatTicks, 'raft: electionTicks must exceed heartbeatTicks');
    assert.ok(config.maxInflightMsgs >= 1, 'raft: maxInflightMsgs must be >= 1');
    assert.ok(config.maxSizePerMsg >= 1, 'raft: maxSizePerMsg must be >= 1');
    this.id = config.id;
    this.bugs = config.bugs ?? {};
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.maxSizePerMsg = config.maxSizePerMsg;
    this.maxUncommittedBytes = config.maxUncommittedBytes ?? 64 * 1024 * 1024;
    this.maxCommittedBytesPerReady = config.maxCommittedBytesPerReady ?? 64 * 1024 * 1024;
    this.maxPendingReads = config.maxPendingReads ?? 4096;
    this.maxReadiesInFlight = config.maxReadiesInFlight ?? 1;
    assert.ok(this.maxReadiesInFlight >= 1, 'raft: maxReadiesInFlight must be >= 1');
    this.preVote = config.preVote;
    this.checkQuorum = config.checkQuorum;
    this.random = config.random;
    this.readOnly = new ReadOnly(this.maxPendingReads);

    this.log = new RaftLog(config.storage);
    const { hardState, confState } = config.storage.initialState();
    this.tracker = new ProgressTracker(config.maxInflightMsgs);
    this.tracker.setConfig(confState, this.log.lastIndex() + 1);
    if (hardState.commit > this.log.committed) {
      // The commit index is persisted after the entries it covers (the driver stages entries
      // first), so a stored commit beyond the stored log means the disk lost entries this node
      // had synced: an operating fault (wipe and re-add), not a bug to assert on.
      if (hardState.commit > this.log.lastIndex()) {
        throw new LostEntriesError(this.log.lastIndex() + 1, hardState.commit, { kind: 'stored-commit' });
      }
      this.log.commitTo(hardState.commit);
    }
    this.term = hardState.term;
    this.vote = hardState.vote;
    const applied = config.applied ?? 0;
    if (applied > this.log.applied) {
      assert.ok(
        applied <= this.log.committed,
        `raft: applied ${applied} beyond commit ${this.log.committed}`,
      );
      this.log.appliedTo(applied);
    }
    this.becomeFollower(this.term, null);
    this.prevSoft = { leader: this.leader, role: this.role };
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.handedHard = this.prevHard;
  }

  // ---------------------------------------------------------------- inputs

  /** One logical clock tick: election timeout on followers, heartbeats and CheckQuorum on leaders. */
  tick(): void {
    this.ticksSinceLeader++;
    if ((this.role === Role.PreCandidate || this.role === Role.Candidate) && !this.roundAnswered)
      this.unansweredCampaignTicks++;
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  /** Start an election now (with a pre-vote round if preVote is on). No-op for leaders and non-voters. */
  campaign(): void {
    this.hup(false);
  }

  /**
   * Appends `data` as a new entry (leader only) and returns where it will commit. The entry is
   * sent to followers at the next hasReady()/ready() (so proposals made together travel in one
   * App). Throws NotLeaderError with the leader hint, or ProposalDroppedError.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    this.checkCanPropose();
    const size = data.byteLength + ENTRY_OVERHEAD_BYTES;
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + size > this.maxUncommittedBytes) {
      throw new ProposalDroppedError('too many uncommitted bytes');
    }
    const index = this.log.lastIndex() + 1;
    this.log.appendOne({ term: this.term, index, type: EntryType.Normal, data });
    this.uncommittedBytes += size;
    this.appendedLocally(index);
    this.needBroadcast = true;
    return { index, term: this.term };
  }

  /**
   * Proposes a single-server membership change (thesis §4.1). Refused (ProposalDroppedError)
   * while another change is not yet applied, before this leader has committed an entry of its
   * term (the 2015 fix), or if it would remove the last voter. The change takes effect on each
   * node when the application applies the entry and calls `applyConfChange`.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalDroppedError('a configuration change is still pending');
    }
    if (this.log.term(this.log.committed) !== this.term) {
      throw new ProposalDroppedError('no entry of this term committed yet');
    }
    if (
      (cc.type === ConfChangeType.RemoveNode || cc.type === ConfChangeType.AddLearner) &&
      this.tracker.voters.length === 1 &&
      this.tracker.voters[0] === cc.node
    ) {
      throw new ProposalDroppedError('cannot remove the last voter');
    }
    const index = this.log.lastIndex() + 1;
    const data = encodeConfChange(cc);
    this.log.appendOne({ term: this.term, index, type: EntryType.ConfChange, data });
    this.uncommittedBytes += data.byteLength + ENTRY_OVERHEAD_BYTES;
    this.pendingConfIndex = index;
    this.appendedLocally(index);
    this.needBroadcast = true;
    return { index, term: this.term };
  }

  /**
   * The application applies a committed ConfChange entry: the membership changes now (as in
   * etcd). Returns the new ConfState, to store with the next snapshot. A leader removed or
   * demoted by it hands leadership to the most up-to-date voter and steps down.
   */
  applyConfChange(cc: ConfChange): ConfState {
    // Order-preserving: re-adding a member in the role it has changes nothing.
    let voters = [...this.tracker.voters];
    let learners = [...this.tracker.learners];
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        learners = learners.filter((id) => id !== cc.node);
        if (!voters.includes(cc.node)) voters.push(cc.node);
        break;
      case ConfChangeType.AddLearner:
        voters = voters.filter((id) => id !== cc.node);
        if (!learners.includes(cc.node)) learners.push(cc.node);
        break;
      case ConfChangeType.RemoveNode:
        voters = voters.filter((id) => id !== cc.node);
        learners = learners.filter((id) => id !== cc.node);
        break;
      default: {
        const never: never = cc.type;
        throw new Error(`raft: unknown conf change ${String(never)}`);
      }
    }
    const cs: ConfState = { voters, learners };
    this.tracker.setConfig(cs, this.log.lastIndex() + 1);
    if (this.role === Role.Leader) {
      if (!this.tracker.isVoter(this.id)) {
        this.stepDownRemoved();
      } else {
        if (this.leadTransferee !== null && !this.tracker.isVoter(this.leadTransferee))
          this.abortLeaderTransfer();
        if (this.maybeCommit()) this.onCommitAdvanced();
        this.bcastAppend();
      }
    } else if (!this.promotable()) {
      if (this.role !== Role.Learner) this.becomeFollower(this.term, this.leader);
    } else if (this.role === Role.Learner) {
      this.role = Role.Follower;
    }
    return this.tracker.confState();
  }

  /**
   * Requests a linearizable read (thesis §6.4). On the leader it is confirmed by a heartbeat
   * round; a follower forwards it to the leader. The answer is a ReadState in a later Ready
   * (serve it once applied >= its index). Dropped silently if there is no leader, if too many
   * reads are pending, or if leadership is lost meanwhile: the caller times out and retries.
   * `context` identifies the request and must be unique among pending reads.
   */
  readIndex(context: Uint8Array): void {
    if (this.role === Role.Leader) {
      this.handleReadRequest({ from: this.id, context });
    } else if (this.leader !== null) {
      this.send(message({ type: MessageType.ReadIndex, from: this.id, to: this.leader, term: 0, context }));
    }
  }

  /**
   * Thesis §3.10: stop accepting proposals, bring `to` up to date, then send it TimeoutNow so it
   * campaigns at once. Abandoned after one election timeout. Throws NotLeaderError on a
   * non-leader; ignored if `to` is this node or not a voter.
   */
  transferLeadership(to: NodeId): void {
    if (this.role !== Role.Leader) throw new NotLeaderError(this.leader);
    if (to === this.id) {
      if (this.leadTransferee !== null) this.abortLeaderTransfer();
      return;
    }
    if (!this.tracker.isVoter(to)) return;
    if (this.leadTransferee === to) return;
    this.abortLeaderTransfer();
    this.leadTransferee = to;
    this.electionElapsed = 0;
    const pr = this.tracker.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
  }

  /** The leader failed to reach `to` (optional transport hint): go back to probing it. */
  reportUnreachable(to: NodeId): void {
    if (this.role !== Role.Leader) return;
    const pr = this.tracker.progress.get(to);
    if (pr !== undefined && pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  /** A message from the network. Stale, unknown or misdirected messages are ignored safely. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term === 0) {
      // Prop and ReadIndex carry no term: they are requests, not Raft RPCs.
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransfer(m.context);
        const heardFromLeader = this.leader !== null && this.electionElapsed < this.electionTicks;
        // Thesis §4.2.3: a server that heard from a leader within the minimum election
        // timeout does not grant votes or update its term (protects against removed or
        // partitioned servers); with CheckQuorum this lease covers votes too (as etcd).
        // Thesis §9.6: a pre-vote is granted only if no leader was heard from within an
        // election timeout. A leadership transfer overrides both.
        if (!force && heardFromLeader && (this.checkQuorum || m.type === MessageType.PreVote)) {
          // A pre-vote is refused aloud, in our own term (changing nothing there, as for a
          // stale pre-vote below): the asker then knows a majority may still be reachable
          // and does not report itself cut off (quorumStatus). A real vote stays unanswered.
          if (m.type === MessageType.PreVote) {
            this.send(
              message({
                type: MessageType.PreVoteResp,
                from: this.id,
                to: m.from,
                term: this.term,
                reject: true,
              }),
            );
          }
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change the term on a pre-vote (thesis §9.6).
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The term in a granted pre-vote response is the one we will campaign in.
      } else if (
        m.type === MessageType.App ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader (e.g. after a partition healed, with PreVote keeping our term from
        // rising through elections it saw) learns our term and steps down.
        this.send(message({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term }));
      } else if (m.type === MessageType.PreVote) {
        this.send(
          message({
            type: MessageType.PreVoteResp,
            from: this.id,
            to: m.from,
            term: this.term,
            reject: true,
          }),
        );
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        return;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        return;
      case Role.Follower:
      case Role.Learner:
        this.stepFollower(m);
        return;
      default: {
        const never: never = this.role;
        throw new Error(`raft: unknown role ${String(never)}`);
      }
    }
  }

  // ---------------------------------------------------------------- outputs

  /**
   * Is there anything in a Ready that may be handed out now? False while maxReadiesInFlight
   * Readys are outstanding, and while one is outstanding when either it or the next carries a
   * snapshot (a snapshot replaces the log and the state: it never overlaps another Ready).
   */
  hasReady(): boolean {
    const n = this.outstanding.length;
    if (n >= this.maxReadiesInFlight) return false;
    if (n > 0 && (this.outstanding[n - 1]!.snapshotIndex > 0 || this.log.newSnapshot() !== null)) return false;
    this.flush();
    if (n > 0 && this.log.newSnapshot() !== null) return false;
    return (
      this.prevSoft.leader !== this.leader ||
      this.prevSoft.role !== this.role ||
      this.hardChanged() ||
      this.log.hasUnstable() ||
      this.log.newSnapshot() !== null ||
      this.msgs.length > 0 ||
      this.earlyMsgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasNextCommitted()
    );
  }

  /**
   * Everything the driver must do now (persist, send, apply, serve reads: see `Ready` in
   * messages.ts). Each Ready is acknowledged by one `advance()`, in the order handed out; call
   * only when hasReady() (at most maxReadiesInFlight outstanding).
   */
  ready(): Ready {
    assert.ok(
      this.outstanding.length < this.maxReadiesInFlight,
      'raft: ready() called again before advance()',
    );
    this.flush();
    let softState: SoftState | null = null;
    if (this.prevSoft.leader !== this.leader || this.prevSoft.role !== this.role) {
      softState = { leader: this.leader, role: this.role };
      this.prevSoft = softState;
    }
    const hardState = this.hardChanged()
      ? { term: this.term, vote: this.vote, commit: this.log.committed }
      : null;
    if (hardState !== null) this.handedHard = hardState;
    const entries = this.log.unstable();
    const snapshot = this.log.newSnapshot();
    assert.ok(snapshot === null || this.outstanding.length === 0, 'raft: a snapshot Ready must go alone');
    this.log.acceptUnstable();
    // Applied only after this Ready's persist (and every earlier one's): all of them are on
    // this node's disk by then, whatever the pipeline holds.
    const committedEntries = this.log.nextCommitted(this.maxCommittedBytesPerReady);
    if (committedEntries.length > 0) this.log.applying = committedEntries[committedEntries.length - 1]!.index;
    // Early only once this term and vote are durable (a campaign's hard state is in this Ready).
    const termDurable = this.prevHard.term === this.term && this.prevHard.vote === this.vote;
    const messages = this.earlyMsgs.length === 0 ? this.msgs : [...this.earlyMsgs, ...this.msgs];
    const earlyMessages = termDurable ? this.earlyMsgs.length : 0;
    this.msgs = [];
    this.earlyMsgs = [];
    const readStates = this.readStates;
    this.readStates = [];
    this.outstanding.push({
      hardState,
      lastEntry: entries.length > 0 ? entries[entries.length - 1]! : null,
      snapshotIndex: snapshot === null ? 0 : snapshot.metadata.index,
      committed: committedEntries,
    });
    return { softState, hardState, entries, snapshot, committedEntries, earlyMessages, messages, readStates };
  }

  /**
   * Acknowledges the oldest outstanding ready(): its entries and hard state are durable, and its
   * committed entries applied.
   */
  advance(): void {
    const o = this.outstanding.shift();
    assert.ok(o !== undefined, 'raft: advance() without ready()');
    if (o.hardState !== null) this.prevHard = o.hardState;
    if (o.lastEntry !== null) {
      this.log.stableTo(o.lastEntry.index, o.lastEntry.term);
      this.persistedLocally(o.lastEntry);
    }
    if (o.snapshotIndex > 0) {
      this.log.stableSnapTo(o.snapshotIndex);
      this.log.appliedSnapshot(o.snapshotIndex);
    }
    const n = o.committed.length;
    if (n > 0) {
      this.log.appliedTo(o.committed[n - 1]!.index);
      if (this.role === Role.Leader && this.uncommittedBytes > 0) {
        let size = 0;
        for (let i = 0; i < n; i++) size += entrySize(o.committed[i]!);
        this.uncommittedBytes = Math.max(0, this.uncommittedBytes - size);
      }
    }
    if (this.campaignAfterApply && !this.hasUnappliedConfChanges()) {
      this.campaignAfterApply = false;
      if (this.role === Role.Follower) this.hup(true);
    }
  }

  status(): RaftStatus {
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      role: this.role,
      leader: this.leader,
      confState: this.tracker.confState(),
      lastIndex: this.log.lastIndex(),
    };
  }

  /**
   * Whether this node KNOWS it cannot reach a majority (so a caller may fail at once instead of
   * waiting for a leader): it has no leader and either stepped down because CheckQuorum failed
   * (thesis §6.2: no majority heard from within an election timeout), or has (pre-)campaigned
   * for `campaignTicksToKnow` ticks without a quorum of voters answering at all (thesis §9.6: a
   * pre-vote nobody answers cannot win). A node in a normal election on the majority side hears
   * answers within a round trip, so it is not `lost`. `ticksSinceLeader`: ticks since it last
   * heard from a leader of its term (a leader: since CheckQuorum last confirmed a majority).
   */
  quorumStatus(): { lost: boolean; ticksSinceLeader: number } {
    const lost =
      this.role !== Role.Leader &&
      this.leader === null &&
      (this.steppedDownNoQuorum || this.unansweredCampaignTicks >= this.campaignTicksToKnow());
    return { lost, ticksSinceLeader: this.ticksSinceLeader };
  }

  /** Two heartbeat intervals (at least 2 ticks): far longer than a round trip to a live voter. */
  private campaignTicksToKnow(): number {
    return Math.max(2, 2 * this.heartbeatTicks);
  }

  /** Evidence that a majority is reachable: a leader spoke, or a quorum answered a campaign. */
  private quorumContact(leaderContact: boolean): void {
    if (leaderContact) this.ticksSinceLeader = 0;
    this.steppedDownNoQuorum = false;
    this.unansweredCampaignTicks = 0;
  }

  /** The leader's view of a peer's replication (tests, metrics); undefined if not tracked. */
  progressOf(
    id: NodeId,
  ): { match: number; next: number; state: ProgressState; inflight: number } | undefined {
    const pr = this.tracker.progress.get(id);
    if (pr === undefined) return undefined;
    return { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflights.count };
  }

  // ---------------------------------------------------------------- roles

  private promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  private selfProgress(): Progress | undefined {
    return this.tracker.progress.get(this.id);
  }

  /** Differs from the hard state last handed out (which may still be being persisted). */
  private hardChanged(): boolean {
    const h = this.handedHard;
    return h.term !== this.term || h.vote !== this.vote || h.commit !== this.log.committed;
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    // §3.4: randomized in [electionTicks, 2*electionTicks) so split votes are rare.
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
    this.leadTransferee = null;
    this.tracker.resetVotes();
    this.tracker.resetAll(this.log.lastIndex() + 1);
    // §10.2.1: this node counts toward commit only what it has persisted.
    const self = this.selfProgress();
    if (self !== undefined) {
      self.match =
        this.bugs.leaderCountsSelfBeforePersist === true ? this.log.lastIndex() : this.log.stableLastIndex();
    }
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.pendingReadRequests = [];
    this.needBroadcast = false;
    this.campaignAfterApply = false;
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.leader = leader;
    this.role = this.promotable() ? Role.Follower : Role.Learner;
  }

  private becomePreCandidate(): void {
    assert.notEqual(this.role, Role.Leader, 'raft: leader cannot become pre-candidate');
    // Thesis §9.6: no term change and no vote; only the votes are reset.
    this.tracker.resetVotes();
    this.roundAnswered = false;
    this.leader = null;
    this.role = Role.PreCandidate;
  }

  private becomeCandidate(): void {
    assert.notEqual(this.role, Role.Leader, 'raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
    this.roundAnswered = false;
  }

  private becomeLeader(): void {
    assert.ok(this.role === Role.Candidate, 'raft: only a candidate becomes leader');
    this.reset(this.term);
    this.leader = this.id;
    this.role = Role.Leader;
    this.quorumContact(true);
    const self = this.selfProgress()!;
    self.becomeReplicate();
    self.recentActive = true;
    // Conf changes in the log we inherited may not be applied yet: none until they are.
    this.pendingConfIndex = this.log.lastIndex();
    // Thesis §6.4 / paper §8: commit a no-op entry of our term at once.
    const index = this.log.lastIndex() + 1;
    this.log.appendOne({ term: this.term, index, type: EntryType.Empty, data: EMPTY });
    this.appendedLocally(index);
    if (this.maybeCommit()) this.onCommitAdvanced();
  }

  private hup(transfer: boolean): void {
    if (this.role === Role.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    if (this.preVote && !transfer) this.campaignPre();
    else this.campaignElection(transfer);
  }

  /** A committed but unapplied conf change may remove us or change the quorum: wait for it. */
  private hasUnappliedConfChanges(): boolean {
    let lo = this.log.applied + 1;
    const hi = this.log.committed + 1;
    while (lo < hi) {
      const ents = this.log.slice(lo, hi, 1024 * 1024);
      if (ents === null || ents.length === 0) return false;
      for (const e of ents) if (e.type === EntryType.ConfChange) return true;
      lo = ents[ents.length - 1]!.index + 1;
    }
    return false;
  }

  private campaignPre(): void {
    this.becomePreCandidate();
    if (this.tracker.recordVote(this.id, true) === VoteResult.Won) {
      this.campaignElection(false);
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.send(
        message({
          type: MessageType.PreVote,
          from: this.id,
          to: id,
          term: this.term + 1,
          index: lastIndex,
          logTerm: lastTerm,
        }),
      );
    }
  }

  private campaignElection(transfer: boolean): void {
    this.becomeCandidate();
    if (this.tracker.recordVote(this.id, true) === VoteResult.Won) {
      this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.send(
        message({
          type: MessageType.Vote,
          from: this.id,
          to: id,
          term: this.term,
          index: lastIndex,
          logTerm: lastTerm,
          context: transfer ? CAMPAIGN_TRANSFER : null,
        }),
      );
    }
  }

  // ---------------------------------------------------------------- ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const pr of this.tracker.progress.values()) {
      // A Snap lost on the way: after an election timeout, probe (and resend) again.
      if (pr.state === ProgressState.Snapshot && ++pr.snapshotTicks >= this.electionTicks) pr.becomeProbe();
    }
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.tracker.quorumActive(this.id)) {
        // Thesis §6.2: cannot reach a majority within an election timeout: step down so
        // clients look for the real leader (the minority side stops serving), and remember
        // why, so clients of this node are told at once (quorumStatus).
        this.becomeFollower(this.term, null);
        this.steppedDownNoQuorum = true;
        return;
      }
      this.ticksSinceLeader = 0;
      // Thesis §3.10: a transfer not done within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.abortLeaderTransfer();
    }
    // Without CheckQuorum a leader never learns it is cut off: it counts as in contact.
    if (!this.checkQuorum) this.ticksSinceLeader = 0;
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingContext());
    }
  }

  // ---------------------------------------------------------------- votes

  private handleVoteRequest(m: Message): void {
    const pre = m.type === MessageType.PreVote;
    const respType = pre ? MessageType.PreVoteResp : MessageType.VoteResp;
    // Figure 2 RequestVote rule 2: votedFor is null or candidateId (and, for a real vote, no
    // known leader this term); a pre-vote for a higher term is always a fair question.
    // Learners answer too (as in etcd): a learner may already be a voter in the candidate's
    // configuration (promotion committed but not yet applied here), and only the candidate's
    // configuration decides whether the answer counts; refusing could deadlock elections.
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leader === null) ||
      (pre && m.term > this.term) ||
      (!pre && this.bugs.forgetVote === true);
    const upToDate = this.bugs.voteWithoutLogCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      // A granted pre-vote answers in the term the candidate will use (thesis §9.6).
      this.send(message({ type: respType, from: this.id, to: m.from, term: m.term }));
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
    }
  }

  // ---------------------------------------------------------------- per role

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        this.appendForwarded(m.entries);
        return;
      case MessageType.ReadIndex:
        if (m.context !== null) this.handleReadRequest({ from: m.from, context: m.context });
        return;
      case MessageType.AppResp:
        this.handleAppResp(m);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResp(m);
        return;
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
      case MessageType.ReadIndexResp:
      case MessageType.TimeoutNow:
      case MessageType.Vote:
      case MessageType.VoteResp:
      case MessageType.PreVote:
      case MessageType.PreVoteResp:
        return;
      default: {
        const never: never = m.type;
        throw new Error(`raft: unknown message ${String(never)}`);
      }
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.quorumContact(true);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.quorumContact(true);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.quorumContact(true);
        this.handleSnapshot(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        if (m.type !== myResp) return;
        const result = this.tracker.recordVote(m.from, !m.reject);
        // A quorum answered (yes or no): a majority is reachable, this node is not cut off.
        let answered = 0;
        for (const id of this.tracker.votes.keys()) if (this.tracker.isVoter(id)) answered++;
        if (answered >= quorumSize(this.tracker.voters.length)) {
          this.roundAnswered = true;
          this.quorumContact(false);
        }
        if (result === VoteResult.Won) {
          if (this.role === Role.PreCandidate) {
            this.campaignElection(false);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      case MessageType.Prop:
      case MessageType.ReadIndex:
      case MessageType.ReadIndexResp:
      case MessageType.AppResp:
      case MessageType.HeartbeatResp:
      case MessageType.TimeoutNow:
      case MessageType.Vote:
      case MessageType.PreVote:
        return;
      default: {
        const never: never = m.type;
        throw new Error(`raft: unknown message ${String(never)}`);
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.quorumContact(true);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.quorumContact(true);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.quorumContact(true);
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // Thesis §3.10: campaign at once, without pre-vote (we know the leader is alive). If a
        // committed conf change is not applied yet (typically the one removing the old leader,
        // whose commit index arrived in the same batch), campaign right after applying it.
        if (!this.promotable()) return;
        if (this.hasUnappliedConfChanges()) this.campaignAfterApply = true;
        else this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        if (m.context !== null && this.readStates.length < this.maxPendingReads) {
          this.readStates.push({ index: m.index, context: m.context });
        }
        return;
      case MessageType.Prop:
      case MessageType.ReadIndex:
      case MessageType.AppResp:
      case MessageType.HeartbeatResp:
      case MessageType.Vote:
      case MessageType.VoteResp:
      case MessageType.PreVote:
      case MessageType.PreVoteResp:
        return;
      default: {
        const never: never = m.type;
        throw new Error(`raft: unknown message ${String(never)}`);
      }
    }
  }

  // ---------------------------------------------------------------- follower side of replication

  /** AppendEntries receiver (Figure 2), with the conflict hint for fast backtracking (§5.3). */
  private handleAppend(m: Message): void {
    const log = this.log;
    if (m.index < log.committed) {
      this.send(
        message({
          type: MessageType.AppResp,
          from: this.id,
          to: m.from,
          term: this.term,
          index: log.committed,
        }),
      );
      return;
    }
    let lastNew: number;
    if (this.bugs.skipPrevLogCheck === true && m.entries.length > 0 && m.index <= log.lastIndex()) {
      log.append(m.entries);
      lastNew = m.index + m.entries.length;
      log.commitTo(Math.min(m.commit, lastNew));
    } else {
      lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    }
    if (lastNew >= 0) {
      if (this.bugs.commitRegression === true && m.commit < log.committed)
        log.forceCommit(Math.min(m.commit, lastNew));
      this.send(
        message({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term, index: lastNew }),
      );
      return;
    }
    // Reject with a hint: the last index <= m.index whose term is <= m.logTerm. The leader
    // then skips every entry of a conflicting term in one round trip.
    const hintIndex = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
    const t = log.term(hintIndex);
    this.send(
      message({
        type: MessageType.AppResp,
        from: this.id,
        to: m.from,
        term: this.term,
        index: m.index,
        reject: true,
        rejectHint: hintIndex,
        hintTerm: t === NO_TERM ? 0 : t,
      }),
    );
  }

  /**
   * A heartbeat carries no entries, so the Figure 2 rule "commit = min(leaderCommit, index of
   * last new entry)" is kept by the leader: it sends min(match, commit) (bcastHeartbeat), never
   * more than this node acknowledged. A commit beyond our last index therefore means this node
   * lost entries it had acknowledged to this leader (a disk that dropped its synced tail, or a
   * data directory replaced under the same id). Clamping it would hide the loss and let the node
   * vote and serve on a log a quorum counted on: stop instead (etcd panics here with the same
   * diagnosis; we raise a typed error the server turns into an operator message and exit code).
   */
  private handleHeartbeat(m: Message): void {
    if (this.bugs.commitRegression === true) this.log.forceCommit(m.commit);
    else if (m.commit > this.log.lastIndex()) {
      throw new LostEntriesError(this.log.lastIndex() + 1, m.commit, {
        kind: 'leader',
        leader: m.from,
        term: m.term,
      });
    } else this.log.commitTo(m.commit);
    this.send(
      message({
        type: MessageType.HeartbeatResp,
        from: this.id,
        to: m.from,
        term: this.term,
        context: m.context,
      }),
    );
  }

  /** InstallSnapshot receiver (Figure 5.2 / etcd): install unless we already have it. */
  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === null) return;
    if (this.restore(s)) {
      this.send(
        message({
          type: MessageType.AppResp,
          from: this.id,
          to: m.from,
          term: this.term,
          index: this.log.lastIndex(),
        }),
      );
    } else {
      this.send(
        message({
          type: MessageType.AppResp,
          from: this.id,
          to: m.from,
          term: this.term,
          index: this.log.committed,
        }),
      );
    }
  }

  private restore(s: Snapshot): boolean {
    const { index, term } = s.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We hold the snapshot's last entry: the log after it is valid, only commit moves.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    this.tracker.setConfig(s.metadata.confState, this.log.lastIndex() + 1);
    this.role = this.promotable() ? Role.Follower : Role.Learner;
    return true;
  }

  // ---------------------------------------------------------------- leader side of replication

  private checkCanPropose(): void {
    if (this.role !== Role.Leader) throw new NotLeaderError(this.leader);
    if (!this.tracker.progress.has(this.id))
      throw new ProposalDroppedError('leader removed from the configuration');
    if (this.leadTransferee !== null) throw new ProposalDroppedError('leadership transfer in progress');
  }

  private appendForwarded(entries: readonly Entry[]): void {
    if (this.leadTransferee !== null || !this.tracker.progress.has(this.id)) return;
    for (const e of entries) {
      if (e.type === EntryType.ConfChange) continue; // conf changes go through proposeConfChange
      const size = e.data.byteLength + ENTRY_OVERHEAD_BYTES;
      if (this.uncommittedBytes > 0 && this.uncommittedBytes + size > this.maxUncommittedBytes) return;
      const index = this.log.lastIndex() + 1;
      this.log.appendOne({ term: this.term, index, type: e.type, data: e.data });
      this.uncommittedBytes += size;
      this.appendedLocally(index);
      this.needBroadcast = true;
    }
  }

  /** Sends proposals appended since the last call, and commits at once in a one-voter cluster. */
  private flush(): void {
    if (!this.needBroadcast) return;
    this.needBroadcast = false;
    if (this.role !== Role.Leader) return;
    if (this.maybeCommit()) this.onCommitAdvanced();
    this.bcastAppend();
  }

  /** Paper §5.4.2: advance commit to what a majority holds, if that entry is of our term. */
  private maybeCommit(): boolean {
    return this.log.maybeCommit(this.tracker.committed(), this.term, this.bugs.commitOldTermEntries === true);
  }

  /** The commit index advanced on the leader: reads waiting for a commit in this term may go. */
  private onCommitAdvanced(): void {
    if (this.pendingReadRequests.length === 0 || !this.committedInTerm()) return;
    const waiting = this.pendingReadRequests;
    this.pendingReadRequests = [];
    for (const req of waiting) this.startReadRound(req);
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private handleAppResp(m: Message): void {
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      // A follower's hint is never below what it already acknowledged to this leader (its log
      // up to match is ours, and our terms only grow): a lower hint is a stale, reordered
      // rejection. Ignoring it avoids falling back to probing on a reordering network.
      if (m.rejectHint < pr.match) return;
      let hint = m.rejectHint;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.hintTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) {
          const next = pr.next;
          pr.becomeProbe();
          pr.next = next;
        }
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
      default: {
        const never: never = pr.state;
        throw new Error(`raft: unknown progress state ${String(never)}`);
      }
    }
    if (this.maybeCommit()) {
      this.onCommitAdvanced();
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from, true);
    }
    // Keep the pipeline full: send as many batches as the inflight window allows.
    while (this.sendAppend(m.from, false));
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResp(m: Message): void {
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // If the window is full, one of those Apps was probably lost: free a slot so we probe again.
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.context === null || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === null) return;
    let voters = 0;
    for (const id of acks) if (this.tracker.isVoter(id)) voters++;
    if (voters < quorumSize(this.tracker.voters.length)) return;
    for (const done of this.readOnly.advance(m.context)) this.answerRead(done.request, done.index);
  }

  /**
   * Sends the next batch to `to` if its flow control allows (Replicate: window not full;
   * Probe: nothing sent this heartbeat interval). Falls back to a snapshot when the entries it
   * needs are compacted. Returns whether a message went out.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    if (to === this.id) return false;
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const ents = prevTerm === NO_TERM ? null : this.log.entriesFrom(pr.next, this.maxSizePerMsg);
    if (ents === null) return this.sendSnapshot(to, pr);
    const n = ents.length;
    if (n === 0 && !sendIfEmpty) return false;
    this.send(
      message({
        type: MessageType.App,
        from: this.id,
        to,
        term: this.term,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.log.committed,
      }),
    );
    if (pr.state === ProgressState.Replicate) {
      if (n > 0) {
        const last = ents[n - 1]!.index;
        pr.optimisticUpdate(last);
        pr.inflights.add(last);
      }
    } else {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.log.snapshot();
    if (snap.metadata.index === 0) return false;
    pr.becomeSnapshot(snap.metadata.index);
    this.send(message({ type: MessageType.Snap, from: this.id, to, term: this.term, snapshot: snap }));
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private bcastHeartbeat(context: Uint8Array | null): void {
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      this.send(
        message({
          type: MessageType.Heartbeat,
          from: this.id,
          to: id,
          term: this.term,
          // Never tell a follower to commit beyond what it is known to hold.
          commit: Math.min(pr.match, this.log.committed),
          context,
        }),
      );
    }
  }

  // ---------------------------------------------------------------- reads

  private handleReadRequest(req: ReadRequest): void {
    if (
      this.bugs.readIndexWithoutQuorumCheck === true ||
      (this.tracker.voters.length === 1 && this.tracker.voters[0] === this.id)
    ) {
      this.answerRead(req, this.log.committed);
      return;
    }
    if (!this.committedInTerm()) {
      // §6.4: the commit index is only known once an entry of this term is committed.
      if (this.pendingReadRequests.length < this.maxPendingReads) this.pendingReadRequests.push(req);
      return;
    }
    this.startReadRound(req);
  }

  private startReadRound(req: ReadRequest): void {
    if (!this.readOnly.add(this.log.committed, req)) return;
    this.readOnly.recvAck(this.id, req.context);
    this.bcastHeartbeat(req.context);
  }

  private answerRead(req: ReadRequest, index: number): void {
    if (req.from === this.id) {
      if (this.readStates.length < this.maxPendingReads)
        this.readStates.push({ index, context: req.context });
    } else {
      this.send(
        message({
          type: MessageType.ReadIndexResp,
          from: this.id,
          to: req.from,
          term: this.term,
          index,
          context: req.context,
        }),
      );
    }
  }

  // ---------------------------------------------------------------- leadership transfer, removal

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: MessageType.TimeoutNow, from: this.id, to, term: this.term }));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = null;
  }

  /**
   * Thesis §4.2.2: a leader that is no longer a voter steps down once the change is committed
   * (it is: we apply it). To avoid waiting an election timeout, the most up-to-date voter is
   * told to campaign at once (TimeoutNow) when it already holds the whole log.
   */
  private stepDownRemoved(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.tracker.voters) {
      const pr = this.tracker.progress.get(id);
      if (pr !== undefined && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.becomeFollower(this.term, null);
  }

  private send(m: Message): void {
    // Thesis §10.2.1: a leader's replication messages carry no promise about its own disk.
    const early =
      (this.role === Role.Leader &&
        m.term === this.term &&
        (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap)) ||
      (this.bugs.followerAcksBeforePersist === true && m.type === MessageType.AppResp && !m.reject);
    if (early) this.earlyMsgs.push(m);
    else this.msgs.push(m);
  }

  /** The leader appended `index`: it counts toward commit once persisted (see persistedLocally). */
  private appendedLocally(index: number): void {
    if (this.bugs.leaderCountsSelfBeforePersist === true) this.selfProgress()?.maybeUpdate(index);
  }

  /**
   * The driver persisted the log up to `last` (advance): a leader now counts itself for it
   * (thesis §10.2.1; etcd's local MsgAppResp). A commit that advances goes out at once.
   */
  private persistedLocally(last: Entry): void {
    if (this.role !== Role.Leader || last.term !== this.term) return;
    if (this.log.term(last.index) !== last.term) return;
    const self = this.selfProgress();
    if (self === undefined || !self.maybeUpdate(last.index)) return;
    if (this.maybeCommit()) {
      this.onCommitAdvanced();
      this.bcastAppend();
    }
  }
}
