/**
 * A simulated Raft cluster: 3 to 7 RaftCores in one process over SimNetwork and SimClock, each
 * with a driver that follows the Ready contract in raft/messages.ts (persist, send, apply,
 * serve reads, advance) and a tiny deterministic state machine (a hash chain of the applied
 * entries plus a write counter) that is snapshotted and compacted every few entries, so
 * InstallSnapshot (paper §7) runs too.
 *
 * A node's MemoryStorage is its disk: the driver writes it only while persisting a Ready. A
 * leader's early messages (App/Heartbeat/Snap, thesis §10.2.1) and committed entries already
 * durable go out when the Ready is handed out; its persist may come steps later (a slow disk).
 * A crash throws away the core, the state machine, the node's in-flight messages and any Ready
 * the node had not yet persisted (the driver may lag a step behind, like a slow disk); a
 * restart builds a new RaftCore over a copy of the disk and restores the state machine from
 * the disk's snapshot. Membership changes follow the thesis §4.1 one-at-a-time scheme: the
 * driver calls applyConfChange when it applies the entry; a node removed from the config is
 * shut down (decommissioned, as an operator would) once every live member of the new
 * configuration has applied its removal; until then it may still answer votes.
 *
 * Every observation goes to the InvariantChecker as it happens. This module must never use
 * Math.random, Date or timers: all choices come from the Prng forks it is given.
 */
import { RaftCore, NotLeaderError, ProposalDroppedError } from '../core.js';
import type { BugFlags } from '../core.js';
import { ConfChangeType, EntryType, Role, decodeConfChange } from '../messages.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot } from '../messages.js';
import { MemoryStorage } from '../storage.js';
import { SimClock } from './clock.js';
import { InvariantChecker, chainHash, entryKey, hashString } from './invariants.js';
import type { InvariantName } from './invariants.js';
import { SimNetwork } from './network.js';
import type { NetworkOptions } from './network.js';
import { Prng } from './prng.js';
import { Trace } from './trace.js';

export interface ClusterOptions {
  /** Voters at bootstrap (3..5); the cluster may grow to maxNodes by adding learners. */
  initialVoters: number;
  maxNodes: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  maxUncommittedBytes: number;
  /** Take a snapshot every this many applied entries; keep this many entries after it. */
  snapshotEvery: number;
  compactKeep: number;
  /** Probability that a node with a Ready leaves it for a later step (slow disk). */
  readyDeferRate: number;
  /**
   * Readys a node may have handed out and not yet persisted (RaftConfig.maxReadiesInFlight,
   * the pipelined driver of raft/node.ts). Default 1.
   */
  readiesInFlight?: number;
  /** Probability that a node misses a tick (clock drift, a paused process). Default 0. */
  tickSkipRate?: number;
  /** Keep a hash of every delivered message (determinism checks); off by default: it costs. */
  digest?: boolean;
  /** Bound on proposals awaiting their apply, per node, and on reads awaiting apply. */
  maxPendingPerNode: number;
  network: NetworkOptions;
  bugs?: BugFlags;
  /** Checks switched off (only LeaderCompleteness), to show another check catches a fault. */
  disabledChecks?: readonly InvariantName[];
}

/** The application's state machine: a hash of the applied prefix and a count of writes. */
interface StateMachine {
  index: number;
  hash: number;
  writes: number;
}

interface PendingProposal {
  readonly term: number;
  readonly id: string;
}

export class SimNode {
  core: RaftCore | null = null;
  /** What is on disk. Only the driver's persist step writes it. */
  storage: MemoryStorage;
  machine: StateMachine = { index: 0, hash: 0, writes: 0 };
  confState: ConfState;
  /** Proposals made at this node, by log index, until the node applies that index. */
  readonly proposals = new Map<number, PendingProposal>();
  /** Reads whose ReadState arrived but whose index is not applied yet. */
  waitingReads: { context: string; index: number }[] = [];
  /** Shut down for good (removed from the configuration). */
  decommissioned = false;
  /** The last term in which this node passed the leader log check. */
  leaderCheckedTerm = -1;
  crashes = 0;
  /**
   * Readys handed out whose early messages (a leader's App/Heartbeat/Snap, thesis §10.2.1)
   * and already-durable committed entries went out, still being persisted (a slow disk),
   * oldest first (several when pipelined); a crash loses them.
   */
  syncing: { rd: Ready; applied: number }[] = [];

  constructor(
    readonly id: NodeId,
    storage: MemoryStorage,
    readonly random: Prng,
  ) {
    this.storage = storage;
    this.confState = storage.initialState().confState;
  }

  get live(): boolean {
    return this.core !== null;
  }
}

export interface ClusterStats {
  proposals: number;
  proposalsAcked: number;
  proposalsLost: number;
  reads: number;
  crashes: number;
  restarts: number;
  confChanges: number;
  transfers: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Cluster {
  readonly clock = new SimClock();
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly trace: Trace;
  readonly stats: ClusterStats = {
    proposals: 0,
    proposalsAcked: 0,
    proposalsLost: 0,
    reads: 0,
    crashes: 0,
    restarts: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
  };
  /** Counters for unique proposal ids (p1, p2...) and read contexts (r1, r2...). */
  private nextProposal = 1;
  private nextRead = 1;
  private readonly prng: Prng;
  private readonly nodePrngs: Prng;
  /** Node ids ever created, in order; never reused (as etcd requires). */
  private readonly pool: NodeId[];
  private liveList: SimNode[] = [];
  /** FNV-1a chain over every delivered message, when options.digest is set. */
  messageDigest = 0x811c9dc5;
  /** The bootstrap membership, held in every node's index-0 snapshot. */
  private readonly bootstrapVoters: NodeId[];

  constructor(
    prng: Prng,
    readonly options: ClusterOptions,
    trace?: Trace,
  ) {
    this.checker = new InvariantChecker({
      maxPendingReads: 1024,
      ...(options.disabledChecks === undefined ? {} : { disabled: options.disabledChecks }),
    });
    this.prng = prng.fork();
    this.nodePrngs = prng.fork();
    this.network = new SimNetwork(prng.fork(), options.network);
    this.trace = trace ?? new Trace(64);
    this.pool = Array.from({ length: options.maxNodes }, (_, i) => `n${i + 1}`);
    const voters = this.pool.slice(0, options.initialVoters);
    this.bootstrapVoters = voters;
    for (const id of voters) {
      const node = new SimNode(id, new MemoryStorage({ voters }), this.nodePrngs.fork());
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------

  private start(node: SimNode): void {
    const snap = node.storage.snapshot();
    node.machine = decodeMachine(snap);
    node.confState = node.storage.initialState().confState;
    node.core = new RaftCore({
      id: node.id,
      storage: node.storage,
      electionTicks: this.options.electionTicks,
      heartbeatTicks: this.options.heartbeatTicks,
      maxInflightMsgs: this.options.maxInflightMsgs,
      maxSizePerMsg: this.options.maxSizePerMsg,
      maxUncommittedBytes: this.options.maxUncommittedBytes,
      maxReadiesInFlight: this.options.readiesInFlight ?? 1,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      random: node.random.asFunction(),
      applied: snap.metadata.index,
      ...(this.options.bugs === undefined ? {} : { bugs: this.options.bugs }),
    });
    this.checker.observeRestart(node.id, node.core.status().commit, node.machine.index, node.machine.hash);
    this.refreshLive();
  }

  private refreshLive(): void {
    this.liveList = [...this.nodes.values()].filter((n) => n.live);
  }

  get liveNodes(): readonly SimNode[] {
    return this.liveList;
  }

  /** Kills a node: everything not on its disk is lost, with its in-flight messages. */
  crash(id: NodeId): void {
    const node = this.nodes.get(id);
    if (node?.core == null) return;
    node.core = null;
    node.syncing = [];
    node.crashes++;
    node.storage = copyStorage(node.storage);
    node.proposals.clear();
    node.waitingReads = [];
    node.leaderCheckedTerm = -1;
    this.network.dropNode(id);
    this.checker.dropReads((n) => n === id);
    this.checker.observeRole(id, 0, false);
    this.stats.crashes++;
    this.trace.add(this.clock.now, `crash ${id}`);
    this.refreshLive();
  }

  restart(id: NodeId): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.live || node.decommissioned) return;
    this.stats.restarts++;
    this.trace.add(this.clock.now, `restart ${id}`);
    this.start(node);
  }

  /** Removed nodes awaiting shutdown: the removal's index and the members that must apply it. */
  private readonly removals = new Map<NodeId, { index: number; members: readonly NodeId[] }>();

  /** Shuts down removed nodes once every live member of the new configuration applied the removal. */
  private decommissionRemoved(): void {
    if (this.removals.size === 0) return;
    for (const [id, removal] of this.removals) {
      const done = removal.members.every((m) => {
        const member = this.nodes.get(m);
        return member === undefined || !member.live || member.machine.index >= removal.index;
      });
      if (done) {
        this.removals.delete(id);
        this.decommission(id);
      }
    }
  }

  private decommission(id: NodeId): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.decommissioned) return;
    this.crash(id);
    node.decommissioned = true;
    this.trace.add(this.clock.now, `decommission ${id}`);
  }

  // ---- time and messages -----------------------------------------------------------------

  tick(): void {
    const now = this.clock.advance();
    this.network.advanceTo(now);
    const skip = this.options.tickSkipRate ?? 0;
    for (const node of this.liveList) {
      if (skip > 0 && this.prng.chance(skip)) continue;
      (node.core as RaftCore).tick();
    }
    this.trace.add(now, 'tick');
  }

  /**
   * Delivers one due message (random among those due); false if none was due. A message
   * `accept` refuses is dropped instead (targeted schedules use it as a selective link).
   */
  deliverOne(accept?: (m: Message) => boolean): boolean {
    const m = this.network.takeDue();
    if (m === undefined) return false;
    if (accept !== undefined && !accept(m)) {
      this.trace.add(this.clock.now, `drop ${describeMessage(m)}`);
      return true;
    }
    const node = this.nodes.get(m.to);
    if (node?.core == null) return true;
    this.trace.addMessage(this.clock.now, m);
    if (this.options.digest === true) this.messageDigest = hashString(describeMessage(m), this.messageDigest);
    node.core.step(m);
    return true;
  }

  /** Handles pending Readys; each node may defer with probability readyDeferRate. */
  processReadies(deferRate = this.options.readyDeferRate): void {
    const pipelined = (this.options.readiesInFlight ?? 1) > 1;
    for (const node of this.liveList) {
      for (let round = 0; round < 3; round++) {
        const core = node.core;
        if (core === null) break;
        if (node.syncing.length > 0) {
          // Pipelined: a new Ready may be begun while earlier ones are still being persisted.
          if (pipelined && core.hasReady() && this.prng.chance(0.5)) {
            this.handleReady(node, core, core.ready(), deferRate);
            continue;
          }
          if (deferRate > 0 && this.prng.chance(deferRate)) break;
          this.finishReady(node, core);
          continue;
        }
        if (!core.hasReady()) break;
        if (deferRate > 0 && this.prng.chance(deferRate)) break;
        this.handleReady(node, core, core.ready(), deferRate);
      }
    }
    this.decommissionRemoved();
  }

  /**
   * Hands out `id`'s Ready and sends its early messages, leaving the persist pending (a slow
   * disk) until a later processReadies. For targeted schedules; false if it had none.
   */
  handOutReady(id: NodeId): boolean {
    const node = this.nodes.get(id);
    const core = node?.core;
    // hasReady() is false while the core has as many Readys outstanding as it allows.
    if (node === undefined || core == null || !core.hasReady()) return false;
    this.handleReady(node, core, core.ready(), 1);
    return true;
  }

  /** Handles the pending Readys of `ids` only (others keep theirs), persisting at once. */
  processReadiesOf(ids: readonly NodeId[]): void {
    for (const id of ids) {
      const node = this.nodes.get(id);
      for (let round = 0; round < 3; round++) {
        const core = node?.core;
        if (node === undefined || core == null) break;
        if (node.syncing.length > 0) this.finishReady(node, core);
        else if (core.hasReady()) this.handleReady(node, core, core.ready(), 0);
        else break;
      }
    }
  }

  /**
   * Delivers due messages until none is left (bounded), handling every Ready at once and
   * observing after each delivery. For targeted schedules and the heal phase.
   */
  settle(accept?: (m: Message) => boolean, maxDeliveries = 10_000): void {
    this.processReadies(0);
    this.observe();
    for (let i = 0; i < maxDeliveries && this.deliverOne(accept); i++) {
      this.processReadies(0);
      this.observe();
    }
  }

  /** After every step: roles and in-memory commit indexes of every live node. */
  observe(): void {
    for (const node of this.liveList) {
      const st = (node.core as RaftCore).status();
      this.checker.observeRole(node.id, st.term, st.role === Role.Leader);
      this.checker.observeCommitIndex(node.id, st.commit);
    }
  }

  /**
   * One node's Ready, in contract order: send the early messages and apply what was durable
   * before it, then (now, or with probability deferRate at a later step: the disk is slow)
   * persist, send, apply, serve reads, advance.
   */
  private handleReady(node: SimNode, core: RaftCore, rd: Ready, deferRate: number): void {
    for (let i = 0; i < rd.earlyMessages; i++) this.network.send(rd.messages[i]!);
    let applied = 0;
    // Early application only with no earlier Ready outstanding (its entries apply first).
    if (rd.snapshot === null && node.syncing.length === 0) {
      const firstNew = rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
      while (applied < rd.committedEntries.length && rd.committedEntries[applied]!.index < firstNew) {
        this.apply(node, core, rd.committedEntries[applied]!);
        applied++;
      }
    }
    node.syncing.push({ rd, applied });
    if (deferRate >= 1 || (deferRate > 0 && rd.entries.length > 0 && this.prng.chance(deferRate))) return;
    // The disk completes in order: this Ready and every earlier one.
    while (node.syncing.length > 0 && node.core === core) this.finishReady(node, core);
  }

  /** Persists and finishes the oldest Ready handed out (steps 1-5 of the Ready contract). */
  private finishReady(node: SimNode, core: RaftCore): void {
    const syncing = node.syncing.shift();
    if (syncing === undefined) return;
    const { rd, applied } = syncing;
    const storage = node.storage;
    // 1. Persist: snapshot, entries, hard state.
    if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      storage.append(rd.entries);
      this.checker.observeAppend(node.id, rd.entries, storage);
    }
    if (rd.hardState !== null) {
      storage.setHardState(rd.hardState);
      this.checker.observePersistedCommit(node.id, rd.hardState.commit, rd.hardState.term, storage);
    }
    const st = core.status();
    if (st.role === Role.Leader && node.leaderCheckedTerm !== st.term) {
      this.checker.observeRole(node.id, st.term, true);
      this.checker.observeLeaderLog(node.id, st.term, storage);
      node.leaderCheckedTerm = st.term;
    }
    // 2. Send.
    for (let i = rd.earlyMessages; i < rd.messages.length; i++) this.network.send(rd.messages[i]!);
    // 3. Apply: snapshot, then committed entries.
    if (rd.snapshot !== null) this.installSnapshot(node, rd.snapshot);
    for (let i = applied; i < rd.committedEntries.length; i++)
      this.apply(node, core, rd.committedEntries[i]!);
    // 4. Serve reads whose index is applied; keep the rest until it is.
    for (const rs of rd.readStates) {
      const context = decoder.decode(rs.context);
      if (node.machine.index >= rs.index) this.serveRead(node, context);
      else if (node.waitingReads.length < this.options.maxPendingPerNode) {
        node.waitingReads.push({ context, index: rs.index });
      }
    }
    this.serveWaitingReads(node);
    // 5. Advance.
    core.advance();
    this.maybeSnapshot(node);
  }

  private installSnapshot(node: SimNode, snap: Snapshot): void {
    node.machine = decodeMachine(snap);
    node.confState = snap.metadata.confState;
    this.checker.observeSnapshotInstall(node.id, node.machine.index, node.machine.hash);
    for (const index of node.proposals.keys()) if (index <= snap.metadata.index) node.proposals.delete(index);
    this.stats.snapshotsInstalled++;
    this.trace.add(
      this.clock.now,
      `${node.id} installs snapshot ${snap.metadata.index}/${snap.metadata.term}`,
    );
  }

  private apply(node: SimNode, core: RaftCore, e: Entry): void {
    const hash = this.checker.observeApply(node.id, e);
    const m = node.machine;
    m.index = e.index;
    m.hash = chainHash(m.hash, entryKey(e));
    if (m.hash !== hash) throw new Error(`sim: state machine hash of ${node.id} diverged from the checker's`);
    switch (e.type) {
      case EntryType.Normal:
        m.writes++;
        break;
      case EntryType.Empty:
        break;
      case EntryType.ConfChange: {
        const cc = decodeConfChange(e.data);
        node.confState = core.applyConfChange(cc);
        this.onConfChangeApplied(cc, e.index, node.confState);
        break;
      }
      default: {
        const unreachable: never = e.type;
        throw new Error(`sim: unknown entry type ${String(unreachable)}`);
      }
    }
    const pending = node.proposals.get(e.index);
    if (pending !== undefined) {
      node.proposals.delete(e.index);
      if (pending.term === e.term && e.type === EntryType.Normal && decoder.decode(e.data) === pending.id) {
        this.stats.proposalsAcked++;
        this.checker.observeWriteAcked(e.index);
      } else {
        this.stats.proposalsLost++;
      }
    }
  }

  private onConfChangeApplied(cc: ConfChange, index: number, confState: ConfState): void {
    switch (cc.type) {
      case ConfChangeType.AddLearner:
      case ConfChangeType.AddVoter:
        if (!this.nodes.has(cc.node)) {
          // A joining node starts from the same index-0 state as the founders: the bootstrap
          // membership lives in the index-0 snapshot, which a leader never sends, so a node
          // started empty would replay the log's conf changes from an empty configuration.
          const storage = new MemoryStorage({ voters: this.bootstrapVoters });
          const node = new SimNode(cc.node, storage, this.nodePrngs.fork());
          this.nodes.set(cc.node, node);
          this.trace.add(this.clock.now, `create ${cc.node}`);
          this.start(node);
        }
        break;
      case ConfChangeType.RemoveNode:
        if (!this.removals.has(cc.node) && !(this.nodes.get(cc.node)?.decommissioned ?? true)) {
          this.removals.set(cc.node, { index, members: [...confState.voters, ...confState.learners] });
        }
        break;
      default: {
        const unreachable: never = cc.type;
        throw new Error(`sim: unknown conf change ${String(unreachable)}`);
      }
    }
  }

  private serveRead(node: SimNode, context: string): void {
    this.checker.observeReadServed(context, node.id, node.machine.index);
  }

  private serveWaitingReads(node: SimNode): void {
    if (node.waitingReads.length === 0) return;
    const still: { context: string; index: number }[] = [];
    for (const r of node.waitingReads) {
      if (node.machine.index >= r.index) this.serveRead(node, r.context);
      else still.push(r);
    }
    node.waitingReads = still;
  }

  private maybeSnapshot(node: SimNode): void {
    const storage = node.storage;
    const snapIndex = storage.snapshot().metadata.index;
    const applied = node.machine.index;
    if (applied - snapIndex < this.options.snapshotEvery) return;
    storage.createSnapshot(applied, node.confState, encodeMachine(node.machine));
    storage.compact(Math.max(snapIndex, applied - this.options.compactKeep));
    this.stats.snapshotsTaken++;
  }

  // ---- clients and operators ---------------------------------------------------------------

  /** The live node that believes it leads in the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.liveList) {
      const st = (node.core as RaftCore).status();
      if (st.role === Role.Leader && st.term > bestTerm) {
        best = node;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /**
   * A client write sent to `node` (redirected once to the leader it names). Returns the
   * (index, term) if a leader accepted it, undefined if it was refused.
   */
  propose(node: SimNode): { index: number; term: number } | undefined {
    let target = node;
    let core = target.core;
    if (core === null) return undefined;
    const st = core.status();
    if (st.role !== Role.Leader) {
      const hinted = st.leader === null ? undefined : this.nodes.get(st.leader);
      if (hinted?.core == null) return undefined;
      target = hinted;
      core = hinted.core;
    }
    if (target.proposals.size >= this.options.maxPendingPerNode) return undefined;
    const id = `p${this.nextProposal++}`;
    try {
      const at = core.propose(encoder.encode(id));
      target.proposals.set(at.index, { term: at.term, id });
      this.stats.proposals++;
      this.trace.add(this.clock.now, `propose ${id} at ${target.id} -> ${at.index}/${at.term}`);
      return at;
    } catch (err) {
      if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) return undefined;
      throw err;
    }
  }

  /** A client read at `node` through ReadIndex (thesis §6.4). */
  read(node: SimNode): void {
    if (node.core === null) return;
    const context = `r${this.nextRead++}`;
    this.checker.observeReadIssued(context, node.id, this.clock.now);
    this.stats.reads++;
    this.trace.add(this.clock.now, `read ${context} at ${node.id}`);
    node.core.readIndex(encoder.encode(context));
  }

  /** Forgets reads older than `ageTicks` (the client timed out). */
  expireReads(ageTicks: number): void {
    const cutoff = this.clock.now - ageTicks;
    this.checker.dropReads((_, issuedAt) => issuedAt < cutoff);
  }

  /** Proposes a membership change at the leader; true if accepted. */
  proposeConfChange(leader: SimNode, cc: ConfChange): boolean {
    if (leader.core === null) return false;
    try {
      leader.core.proposeConfChange(cc);
      this.stats.confChanges++;
      this.trace.add(this.clock.now, `conf change ${ConfChangeType[cc.type]} ${cc.node} at ${leader.id}`);
      return true;
    } catch (err) {
      if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) return false;
      throw err;
    }
  }

  transferLeadership(leader: SimNode, to: NodeId): void {
    if (leader.core === null) return;
    this.stats.transfers++;
    this.trace.add(this.clock.now, `transfer ${leader.id} -> ${to}`);
    leader.core.transferLeadership(to);
  }

  /** An id never used yet, if the cluster may still grow. */
  unusedId(): NodeId | undefined {
    return this.pool.find((id) => !this.nodes.has(id));
  }

  /** Pending proposals at live nodes (awaiting their apply). */
  pendingProposals(): number {
    let n = 0;
    for (const node of this.liveList) n += node.proposals.size;
    return n;
  }

  /** One line per node (role, term, commit, applied, last index, membership): for failure reports. */
  describe(): string {
    const parts: string[] = [];
    for (const node of this.nodes.values()) {
      if (node.core === null) {
        parts.push(`${node.id}:${node.decommissioned ? 'removed' : 'down'}`);
        continue;
      }
      const st = node.core.status();
      parts.push(
        `${node.id}:${st.role}/t${st.term}/c${st.commit}/a${node.machine.index}/l${st.lastIndex}` +
          `/v[${st.confState.voters.join(',')}]/L[${st.confState.learners.join(',')}]`,
      );
    }
    return parts.join(' ');
  }
}

export function describeMessage(m: Message): string {
  return (
    `${m.type} ${m.from}->${m.to} t${m.term} i${m.index}/lt${m.logTerm} c${m.commit}` +
    (m.entries.length > 0 ? ` e[${m.entries[0]?.index}..${m.entries[m.entries.length - 1]?.index}]` : '') +
    (m.reject ? ` reject(hint ${m.rejectHint}/${m.hintTerm})` : '') +
    (m.snapshot !== null ? ` snap ${m.snapshot.metadata.index}/${m.snapshot.metadata.term}` : '')
  );
}

function encodeMachine(m: StateMachine): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, m.hash);
  view.setUint32(4, m.writes);
  return out;
}

function decodeMachine(snap: Snapshot): StateMachine {
  const index = snap.metadata.index;
  if (index === 0 || snap.data.byteLength < 8) return { index, hash: 0, writes: 0 };
  const view = new DataView(snap.data.buffer, snap.data.byteOffset, snap.data.byteLength);
  return { index, hash: view.getUint32(0), writes: view.getUint32(4) };
}

/** A fresh MemoryStorage holding exactly what `from` persisted: snapshot, entries, hard state. */
export function copyStorage(from: MemoryStorage): MemoryStorage {
  const snap = from.snapshot();
  const to = new MemoryStorage(snap.metadata.confState);
  if (snap.metadata.index > 0) to.applySnapshot(snap);
  const first = Math.max(from.firstIndex(), snap.metadata.index + 1);
  const last = from.lastIndex();
  if (last >= first) to.append(from.entries(first, last + 1));
  to.setHardState(from.getHardState());
  return to;
}
