/**
 * The Raft node driver: runs one RaftCore against real time, a WritableStorage, a peer
 * transport and the application (modeled on etcd-io/raft `node.go` + raftexample's
 * `raft.go`; the Ready contract is in messages.ts).
 *
 * Owns: the tick timer, the Ready loop (pipelined: each Ready is begun at once — persist
 * staged, a leader's early messages written out, its sync started, entries already durable
 * applied — and finished in order once it and every earlier Ready are durable — send the rest,
 * install snapshot, apply, serve reads, advance; up to maxReadiesInFlight begun while the
 * oldest syncs, and the storage coalesces their syncs: group commit), the proposals waiting for their
 * (index, term) to apply, the ReadIndex waiters (batched: one core.readIndex per loop turn),
 * leader-stamped entry time, bootstrap of a fresh cluster's membership into the log, and
 * background snapshots (capture at an applied index, serialize off the loop, then
 * createSnapshot + compact between two Ready turns).
 *
 * Must never: send a message other than a leader's App/Heartbeat/Snap (`Ready.earlyMessages`,
 * thesis §10.2.1) before the Ready that produced it is durable (Raft Figure 2: persist before
 * responding), apply an entry this node has not itself made durable, resolve a proposal whose
 * (index, term) did not apply (a different entry at that index is LeadershipLostError: outcome unknown), resolve a
 * read before applied >= its confirmed read index (thesis §6.4), keep unbounded queues, or know
 * anything about commands (payloads are opaque bytes behind the 8-byte time header).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { systemClock } from './clock.js';
import type { CancelTimer, Clock } from './clock.js';
import { RaftCore } from './core.js';
import type { RaftStatus } from './core.js';
import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalTimeoutError,
  ReadTimeoutError,
} from './errors.js';
import { ConfChangeType, EntryType, Role, decodeConfChange, encodeConfChange } from './messages.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot } from './messages.js';
import type { WritableStorage } from './storage.js';
import type { Transport } from './transport.js';

// ------------------------------------------------------------------ entry data: time header

/** Bytes of the leader-stamped time header in front of every Normal entry's payload. */
export const ENTRY_TIME_HEADER_BYTES = 8;

/**
 * The data of a Normal entry: the leader's wall-clock ms as an unsigned 64-bit big-endian
 * integer (two u32 halves; at most 2^53 - 1), then the application payload. Copies the payload.
 */
export function encodeEntryData(timeMs: number, payload: Uint8Array): Uint8Array {
  // Hot path (one call per proposal): the message is built only on failure, a pooled
  // allocation and byte writes, no DataView.
  if (!(Number.isSafeInteger(timeMs) && timeMs >= 0))
    assert.fail(`raft node: entry time must be a non-negative safe integer, got ${timeMs}`);
  const out = Buffer.allocUnsafe(ENTRY_TIME_HEADER_BYTES + payload.byteLength);
  const hi = Math.floor(timeMs / 0x1_0000_0000);
  const lo = timeMs >>> 0;
  // Uint8Array stores keep the low 8 bits.
  out[0] = hi >>> 24;
  out[1] = hi >>> 16;
  out[2] = hi >>> 8;
  out[3] = hi;
  out[4] = lo >>> 24;
  out[5] = lo >>> 16;
  out[6] = lo >>> 8;
  out[7] = lo;
  out.set(payload, ENTRY_TIME_HEADER_BYTES);
  return out;
}

/** Splits a Normal entry's data into its stamped time and payload (a view, not a copy). */
export function decodeEntryData(data: Uint8Array): { timeMs: number; payload: Uint8Array } {
  // Hot path (every applied entry): byte reads, no DataView, no message built unless failing.
  if (data.byteLength < ENTRY_TIME_HEADER_BYTES)
    assert.fail(`raft node: normal entry of ${data.byteLength} bytes has no time header`);
  const hi = ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
  const lo = ((data[4]! << 24) | (data[5]! << 16) | (data[6]! << 8) | data[7]!) >>> 0;
  return { timeMs: hi * 0x1_0000_0000 + lo, payload: data.subarray(ENTRY_TIME_HEADER_BYTES) };
}

// ------------------------------------------------------------------ interfaces

/**
 * What the driver needs from the peer transport (transport.ts `Transport`: the TCP transport
 * and the in-process LocalTransport). `send` never blocks or throws: a message that cannot be
 * queued is dropped (Raft tolerates loss) and the peer reported unreachable later.
 */
export type PeerTransport = Pick<Transport, 'send' | 'onMessage' | 'onUnreachable'> &
  Partial<Pick<Transport, 'flush'>>;

/** A committed entry as the application sees it (every index, in order, exactly once per run). */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Leader-stamped wall-clock ms for Normal entries; 0 for Empty and ConfChange entries. */
  readonly timeMs: number;
  /** Normal: the proposed payload; ConfChange: the encoded ConfChange; Empty: no bytes. */
  readonly payload: Uint8Array;
}

/**
 * The replicated application. Called only from the Ready loop, never concurrently with itself.
 */
export interface RaftApplication<R> {
  /**
   * Applies one committed entry; deterministic (time only from `entry.timeMs`). Called for
   * every index (Empty and ConfChange entries too, so the application's applied index has no
   * gaps). Its result resolves the proposal that made the entry. Throwing is a broken
   * invariant: the node fails (onFatal).
   */
  apply(entry: AppliedEntry): R;
  /**
   * Captures the state as of the last applied entry AT THE TIME OF THE CALL (synchronously, and
   * quickly: see `readChunks`), and may serialize it later, while entries keep being applied.
   */
  snapshot(): Promise<Uint8Array>;
  /**
   * Replaces the whole state with a snapshot's (InstallSnapshot from the leader, or a restart).
   * May return a promise, to parse a large state in slices with the event loop free between
   * them (the driver applies nothing meanwhile); the state must change only when it settles.
   */
  restore(snapshot: Snapshot): void | Promise<void>;
  /**
   * Optional: the greatest entry time the application has applied (restored snapshots
   * included). Read after a restore, so a node whose log was compacted away still never stamps
   * a new entry below time already applied.
   */
  appliedTimeMs?(): number;
}

export interface RaftNodeConfig<R> {
  id: NodeId;
  storage: WritableStorage;
  transport: PeerTransport;
  application: RaftApplication<R>;
  /** Milliseconds per Raft tick (e.g. 100). */
  tickMs: number;
  /** Election timeout in ticks (randomized in [electionTicks, 2*electionTicks)), e.g. 10. */
  electionTicks: number;
  /** Heartbeat interval in ticks (< electionTicks), e.g. 1. */
  heartbeatTicks: number;
  /**
   * A fresh cluster's voters. Used only when the storage is empty (never written): the
   * membership is written into the log as AddVoter ConfChange entries at indexes 1..n, term 1,
   * committed (as etcd RawNode.Bootstrap), so a node that joins later with empty storage replays
   * it. Every founding node must be given the same set (it is sorted). Omit on a joining node.
   */
  bootstrap?: readonly NodeId[];
  /** Contexts recorded with the bootstrap AddVoter entries, by node (ConfChange.context). */
  bootstrapContexts?: ReadonlyMap<NodeId, string>;
  /**
   * Index the application has already applied (it restored it itself). When omitted, the driver
   * restores the storage's snapshot into the application (if any) and starts from its index.
   */
  applied?: number;
  /** Proposals not yet applied, at most (default 10,000); over it, ProposalDroppedError. */
  maxPendingProposals?: number;
  /** A proposal rejects with ProposalTimeoutError after this (default 20 election timeouts). */
  proposalTimeoutMs?: number;
  /** Waiting readIndex() calls, at most (default 10,000); over it, ProposalDroppedError. */
  maxPendingReads?: number;
  /** A readIndex() rejects with ReadTimeoutError after this (default 2 election timeouts). */
  readTimeoutMs?: number;
  /**
   * Readys persisted at once (default 4): a Ready arriving while earlier ones sync is written
   * and its leader App sent at once, not after the turn in flight (see the Ready loop).
   * 1 runs one Ready at a time.
   */
  maxReadiesInFlight?: number;
  /**
   * Take a snapshot once this many entries (default 10,000; 0 disables) AND at least as many
   * bytes as the last snapshot held have been applied since it: the rule of Redis's AOF
   * rewrite (grow by 100% before rewriting), so serializing a large state costs at most about
   * one byte per byte of log, however large the state, while a small state still snapshots
   * every `snapshotEntries`.
   */
  snapshotEntries?: number;
  /** Entries kept in the log behind a snapshot for slow followers (default 1,000). */
  snapshotCatchUpEntries?: number;
  maxInflightMsgs?: number;
  maxSizePerMsg?: number;
  maxUncommittedBytes?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  clock?: Clock;
  /** The core's randomness (election timeouts); default Math.random. */
  random?: () => number;
  /**
   * Called with each storage sync's duration in ms, right after it (metrics: a histogram needs
   * every observation, which the last-256 `recentSyncMs` window cannot give). Must not throw.
   */
  onSyncMs?: (ms: number) => void;
  /**
   * The node failed (storage error, application threw): it has stopped and rejected everything
   * pending. Default: rethrow on the next tick, crashing the process (house style: fail-stop).
   */
  onFatal?: (error: unknown) => void;
}

export type NodeEvent =
  | { readonly type: 'leader-changed'; readonly leader: NodeId | null; readonly term: number }
  | { readonly type: 'role-changed'; readonly role: Role; readonly term: number }
  /** A ConfChange entry was applied here: the server updates the transport's peers from it. */
  | {
      readonly type: 'conf-changed';
      readonly change: ConfChange;
      readonly confState: ConfState;
      /** The log index of the ConfChange entry (the "config index" of the change). */
      readonly index: number;
    }
  | { readonly type: 'snapshot-taken'; readonly index: number; readonly bytes: number }
  | { readonly type: 'snapshot-installed'; readonly index: number }
  | { readonly type: 'snapshot-failed'; readonly index: number; readonly error: unknown };

export interface NodeStatus extends RaftStatus {
  pendingProposals: number;
  pendingReads: number;
  snapshotIndex: number;
  firstIndex: number;
  /** Greatest leader-stamped time this node has seen in its log. */
  lastStampMs: number;
  /** Ready turns run, and how many of them synced storage (group commit: fewer than proposals). */
  readyTurns: number;
  syncs: number;
  /** Durations of the most recent storage syncs in ms (oldest first, at most 256). */
  recentSyncMs: readonly number[];
  /** Proposals accepted by this node's core since start (entries and conf changes it appended as leader). */
  proposals: number;
  /** Elections this node started since start (became candidate; pre-vote rounds not counted). */
  elections: number;
}

// ------------------------------------------------------------------ internals

interface PendingProposal {
  readonly term: number;
  readonly deadline: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

interface ReadWaiter {
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** A ReadState received: its waiters resolve once applied >= index. */
interface ConfirmedRead {
  readonly index: number;
  readonly waiters: ReadWaiter[];
}

/** A Ready handed out whose steps after its persist have not run yet. */
interface Turn {
  readonly rd: Ready;
  /** Its storage sync (null: it had nothing to persist); settles after every earlier one. */
  readonly synced: Promise<void> | null;
  /** Committed entries already applied before the sync (a prefix of rd.committedEntries). */
  readonly early: number;
  /** Its messages wait until its entries are applied (see beginReady). */
  readonly sendAfterApply: boolean;
}

interface CapturedSnapshot {
  readonly index: number;
  readonly confState: ConfState;
  readonly data: Uint8Array;
}

const DEFAULT_MAX_PENDING = 10_000;
const DEFAULT_SNAPSHOT_ENTRIES = 10_000;
/** Counted per applied entry besides its data (index, term, type, framing), for the size rule. */
const ENTRY_OVERHEAD_BYTES = 24;
const DEFAULT_CATCH_UP_ENTRIES = 1_000;
/** How far back from the last index the start-up scan looks for the last stamped time. */
const STAMP_SCAN_ENTRIES = 10_000;

/**
 * Read contexts must be unique across the cluster and across restarts: the leader matches
 * heartbeat acknowledgements to pending reads by context (raft/read-only.ts), so two nodes (or
 * one node before and after a restart) that reused a context could have a late ack from an
 * earlier round confirm a newer read, and a deposed leader serve it stale. A context is this
 * node's id, a random nonce drawn at start, and a sequence number.
 */
function readContextPrefix(id: NodeId): Uint8Array {
  return Buffer.concat([Buffer.from(id, 'utf8'), randomBytes(8)]);
}

function readContext(prefix: Uint8Array, seq: number): Uint8Array {
  const out = new Uint8Array(prefix.byteLength + 8);
  out.set(prefix, 0);
  new DataView(out.buffer).setFloat64(prefix.byteLength, seq);
  return out;
}

/** The sequence number of one of this node's contexts, or -1 for anyone else's. */
function readSeqOf(prefix: Uint8Array, context: Uint8Array): number {
  if (context.byteLength !== prefix.byteLength + 8) return -1;
  for (let i = 0; i < prefix.byteLength; i++) if (context[i] !== prefix[i]) return -1;
  return new DataView(context.buffer, context.byteOffset + prefix.byteLength, 8).getFloat64(0);
}

/**
 * Reads a captured snapshot chunk by chunk, yielding to the event loop between chunks so a
 * large state never blocks it long enough to cost an election. `next(maxBytes)` returns the
 * next chunk or null at the end (commands/state-machine.ts `SnapshotReader`).
 */
export async function readChunks(
  next: (maxBytes: number) => Uint8Array | null,
  chunkBytes = 256 * 1024,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (let chunk = next(chunkBytes); chunk !== null; chunk = next(chunkBytes)) {
    chunks.push(chunk);
    total += chunk.byteLength;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export class RaftNode<R> {
  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly storage: WritableStorage;
  private readonly transport: PeerTransport;
  private readonly app: RaftApplication<R>;
  private readonly clock: Clock;
  private readonly tickMs: number;
  private readonly maxPendingProposals: number;
  private readonly proposalTimeoutMs: number;
  private readonly maxPendingReads: number;
  private readonly readTimeoutMs: number;
  private readonly snapshotEntries: number;
  private readonly catchUpEntries: number;
  private readonly onFatal: (error: unknown) => void;

  private cancelTick: CancelTimer | null = null;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private loop: Promise<void> | null = null;
  private scheduled = false;
  /** Readys whose persist may be in flight, oldest first (at most maxReadiesInFlight). */
  private readonly turns: Turn[] = [];
  /** The loop waits for the oldest turn's sync: new Readys may be begun meanwhile. */
  private awaitingSync = false;

  private role: Role = Role.Follower;
  private leader: NodeId | null = null;
  private term = 0;
  /** The vote in the last hard state handed out (a term or vote change must be synced). */
  private lastVote: NodeId | null = null;
  private applied: number;
  private lastStampMs = 0;
  /** Wall and monotonic time when this node first stamped in its current leader term. */
  private stampEpoch: { term: number; wallMs: number; mono: number } | null = null;

  /** By index; insertion order is index order within a leadership (all rejected on step-down). */
  private readonly pending = new Map<number, PendingProposal>();
  private queuedReads: ReadWaiter[] = [];
  private readonly inflightReads = new Map<number, ReadWaiter[]>();
  private confirmedReads: ConfirmedRead[] = [];
  private readWaiters = 0;
  private readSeq = 0;
  /** This node's read-context prefix (id + a nonce drawn at start): see readContextPrefix. */
  private readonly readPrefix: Uint8Array;

  private snapshotting = false;
  private captured: CapturedSnapshot | null = null;
  private lastSnapshotIndex: number;
  /** Size of the last snapshot taken or installed, and entry bytes applied since its capture. */
  private lastSnapshotBytes: number;
  private appliedBytesSinceSnapshot = 0;

  private readonly listeners = new Set<(e: NodeEvent) => void>();
  private readyTurns = 0;
  private syncs = 0;
  private readonly syncMs: number[] = [];
  private readonly onSyncMs: ((ms: number) => void) | undefined;
  private proposals = 0;
  private elections = 0;
  private forceSnapshot = false;

  private constructor(config: RaftNodeConfig<R>, applied: number) {
    this.id = config.id;
    this.readPrefix = readContextPrefix(config.id);
    this.storage = config.storage;
    this.transport = config.transport;
    this.app = config.application;
    this.clock = config.clock ?? systemClock;
    this.tickMs = config.tickMs;
    this.onSyncMs = config.onSyncMs;
    const electionMs = config.tickMs * config.electionTicks;
    this.maxPendingProposals = config.maxPendingProposals ?? DEFAULT_MAX_PENDING;
    this.proposalTimeoutMs = config.proposalTimeoutMs ?? 20 * electionMs;
    this.maxPendingReads = config.maxPendingReads ?? DEFAULT_MAX_PENDING;
    this.readTimeoutMs = config.readTimeoutMs ?? 2 * electionMs;
    this.snapshotEntries = config.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES;
    this.catchUpEntries = config.snapshotCatchUpEntries ?? DEFAULT_CATCH_UP_ENTRIES;
    this.onFatal =
      config.onFatal ??
      ((error: unknown) =>
        process.nextTick(() => {
          throw error;
        }));
    this.applied = applied;
    this.lastSnapshotIndex = this.storage.snapshot().metadata.index;
    this.lastSnapshotBytes = this.storage.snapshot().data.byteLength;
    this.core = new RaftCore({
      id: config.id,
      storage: config.storage,
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      maxInflightMsgs: config.maxInflightMsgs ?? 256,
      maxSizePerMsg: config.maxSizePerMsg ?? 1024 * 1024,
      ...(config.maxUncommittedBytes !== undefined
        ? { maxUncommittedBytes: config.maxUncommittedBytes }
        : {}),
      maxPendingReads: this.maxPendingReads,
      preVote: config.preVote ?? true,
      checkQuorum: config.checkQuorum ?? true,
      random: config.random ?? Math.random,
      applied,
      maxReadiesInFlight: config.maxReadiesInFlight ?? 4,
    });
    const st = this.core.status();
    this.term = st.term;
    this.lastVote = st.vote;
    this.role = st.role;
    this.leader = st.leader;
    this.lastStampMs = Math.max(this.scanLastStamp(), this.app.appliedTimeMs?.() ?? 0);
  }

  /**
   * Bootstraps a fresh storage if asked, restores the application from the stored snapshot
   * (unless `applied` is given), builds the core and starts ticking.
   */
  static async start<R>(config: RaftNodeConfig<R>): Promise<RaftNode<R>> {
    const storage = config.storage;
    if (config.bootstrap !== undefined && isFresh(storage)) {
      const voters = [...new Set(config.bootstrap)].sort();
      assert.ok(voters.length > 0, 'raft node: bootstrap needs at least one voter');
      storage.append(
        voters.map((node, i) => ({
          term: 1,
          index: i + 1,
          type: EntryType.ConfChange,
          data: encodeConfChange(withContext(node, config.bootstrapContexts?.get(node))),
        })),
      );
      storage.setHardState({ term: 1, vote: null, commit: voters.length });
      await storage.sync();
    }
    let applied = config.applied;
    assert.ok(
      applied === undefined || applied >= storage.snapshot().metadata.index,
      `raft node: applied ${String(applied)} is behind the stored snapshot ${storage.snapshot().metadata.index}: restore it first`,
    );
    if (applied === undefined) {
      const snap = storage.snapshot();
      if (snap.metadata.index > 0) await config.application.restore(snap);
      applied = snap.metadata.index;
    }
    const node = new RaftNode(config, applied);
    node.transport.onMessage((m) => node.receive(m));
    node.transport.onUnreachable((peer) => {
      if (!node.stopped) node.core.reportUnreachable(peer);
    });
    node.cancelTick = node.clock.every(node.tickMs, () => node.tick());
    node.schedule();
    return node;
  }

  // ---------------------------------------------------------------- public API

  /**
   * Proposes `payload` (leader only), stamped with the leader's time. Resolves with the
   * application's result once the entry at the (index, term) the core assigned is applied here.
   * Rejects with NotLeaderError (leader hint), ProposalDroppedError (too many in flight, or the
   * core refused: retry later), LeadershipLostError / ProposalTimeoutError / NodeStoppedError
   * (outcome unknown).
   */
  propose(payload: Uint8Array): Promise<R> {
    return this.track<R>(() => this.core.propose(encodeEntryData(this.stamp(), payload)));
  }

  /** Proposes a single-server membership change; resolves with the membership once applied here. */
  proposeConfChange(cc: ConfChange): Promise<ConfState> {
    return this.track<ConfState>(() => this.core.proposeConfChange(cc));
  }

  /**
   * A linearizable read barrier (thesis §6.4): resolves once this node has applied everything
   * committed when the read was confirmed by a quorum, so a read of local state after it is
   * linearizable. Works on followers (the leader confirms). Rejects with NotLeaderError when no
   * leader is known or leadership changed meanwhile, ReadTimeoutError, ProposalDroppedError
   * (too many waiting) or NodeStoppedError. All safe to retry.
   */
  readIndex(): Promise<void> {
    if (this.stopped) return Promise.reject(new NodeStoppedError('stopped'));
    if (this.leader === null) return Promise.reject(new NotLeaderError(null));
    if (this.readWaiters >= this.maxPendingReads) {
      return Promise.reject(new ProposalDroppedError('too many pending reads'));
    }
    return new Promise<void>((resolve, reject) => {
      this.readWaiters++;
      this.queuedReads.push({ deadline: this.clock.now() + this.readTimeoutMs, resolve, reject });
      this.schedule();
    });
  }

  /** Asks the core to hand leadership to `to` (thesis §3.10). Throws NotLeaderError. */
  transferLeadership(to: NodeId): void {
    this.core.transferLeadership(to);
    this.schedule();
  }

  /** Starts an election now (tests, operators). */
  campaign(): void {
    this.core.campaign();
    this.schedule();
  }

  status(): NodeStatus {
    return {
      ...this.core.status(),
      pendingProposals: this.pending.size,
      pendingReads: this.readWaiters,
      snapshotIndex: this.storage.snapshot().metadata.index,
      firstIndex: this.storage.firstIndex(),
      lastStampMs: this.lastStampMs,
      readyTurns: this.readyTurns,
      syncs: this.syncs,
      recentSyncMs: [...this.syncMs],
      proposals: this.proposals,
      elections: this.elections,
    };
  }

  /**
   * Takes a snapshot at the current applied index now (operators: RAFT.SNAPSHOT); resolves with
   * the index of a durable snapshot at or after it. Rejects with the snapshot's error, or
   * NodeStoppedError.
   */
  snapshotNow(): Promise<number> {
    if (this.stopped) return Promise.reject(new NodeStoppedError('stopped'));
    const target = this.applied;
    if (target <= this.lastSnapshotIndex) return Promise.resolve(this.lastSnapshotIndex);
    return new Promise<number>((resolve, reject) => {
      const off = this.onEvent((e) => {
        if (e.type === 'snapshot-taken' && e.index >= target) {
          off();
          resolve(e.index);
        } else if (e.type === 'snapshot-failed') {
          off();
          reject(e.error instanceof Error ? e.error : new Error(String(e.error)));
        }
      });
      this.forceSnapshot = true;
      this.maybeSnapshot();
    });
  }

  /** The leader's view of a peer's replication (match/next index); undefined if not tracked. */
  progressOf(id: NodeId): { match: number; next: number } | undefined {
    const pr = this.core.progressOf(id);
    return pr === undefined ? undefined : { match: pr.match, next: pr.next };
  }

  get isLeader(): boolean {
    return this.role === Role.Leader;
  }

  /**
   * Null unless this node KNOWS it cannot reach a majority (RaftCore.quorumStatus: CheckQuorum
   * made it step down, or its pre-votes went unanswered); then the ms since it last heard
   * from a leader (tick-granular), so callers can fail at once instead of waiting for one.
   */
  noQuorumForMs(): number | null {
    if (this.stopped) return null;
    const q = this.core.quorumStatus();
    return q.lost ? q.ticksSinceLeader * this.tickMs : null;
  }

  get leaderId(): NodeId | null {
    return this.leader;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /** The current term (as last persisted); cheap, for every log line. */
  get currentTerm(): number {
    return this.term;
  }

  /** The current role; cheap, for every log line. */
  get currentRole(): Role {
    return this.role;
  }

  /** Subscribes to leader/role/snapshot events; returns the unsubscribe function. */
  onEvent(listener: (e: NodeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Stops ticking and receiving, waits for the Ready turn in progress (it sends and applies
   * nothing after its sync), and rejects everything pending with NodeStoppedError. Does not
   * close the storage or the transport: their owner does.
   */
  stop(): Promise<void> {
    if (this.stopping !== null) return this.stopping;
    this.stopped = true;
    this.cancelTick?.();
    this.cancelTick = null;
    const loop = this.loop ?? Promise.resolve();
    this.stopping = loop.then(() => this.rejectAll(new NodeStoppedError('stopped')));
    return this.stopping;
  }

  // ---------------------------------------------------------------- inputs

  private receive(m: Message): void {
    if (this.stopped) return;
    try {
      this.core.step(m);
    } catch (error) {
      // LostEntriesError (a leader's heartbeat shows this node lost entries it acknowledged) or
      // a broken invariant in the core: fail-stop through onFatal rather than throwing into
      // the transport.
      this.fail(error);
      return;
    }
    this.schedule();
  }

  private tick(): void {
    if (this.stopped) return;
    try {
      this.core.tick();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.expire(this.clock.now());
    this.schedule();
  }

  /** Leader time for a new entry: never below any stamp this node has seen in its log. */
  private stamp(): number {
    const now = Math.floor(this.leaderNow());
    if (now > this.lastStampMs) this.lastStampMs = now;
    return this.lastStampMs;
  }

  /**
   * The time this node would stamp now (ms): the clock expiry is judged by. On a leader it is
   * the stamping clock (leaderNow), so reads and writes judge expiry alike; elsewhere the
   * wall clock. Never below a stamp this node has seen.
   */
  timeMs(): number {
    const now = Math.floor(this.role === Role.Leader ? this.leaderNow() : this.clock.now());
    return now > this.lastStampMs ? now : this.lastStampMs;
  }

  /**
   * The leader's time. With a monotonic clock: the wall clock is read once, when this node first
   * stamps in a term, and time then advances only by the monotonic clock. A step of the wall
   * clock during a term (NTP, an operator, a VM resume) therefore cannot expire lock or queue
   * leases early; a new term starts from the wall clock again, and the state machine renews
   * every lease at a new term (StateFamily.onTermStart), so a skewed new leader cannot either.
   * Lease safety still assumes clocks tick at about the same rate.
   */
  private leaderNow(): number {
    if (this.clock.monotonic === undefined) return this.clock.now();
    const mono = this.clock.monotonic();
    if (this.stampEpoch === null || this.stampEpoch.term !== this.term) {
      this.stampEpoch = { term: this.term, wallMs: Math.max(this.clock.now(), this.lastStampMs), mono };
    }
    return this.stampEpoch.wallMs + (mono - this.stampEpoch.mono);
  }

  private track<T>(propose: () => { index: number; term: number }): Promise<T> {
    if (this.stopped) return Promise.reject(new NodeStoppedError('stopped'));
    if (this.pending.size >= this.maxPendingProposals) {
      return Promise.reject(new ProposalDroppedError('too many proposals in flight'));
    }
    let at: { index: number; term: number };
    try {
      at = propose();
    } catch (error) {
      // NotLeaderError / ProposalDroppedError from the core: nothing was appended.
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const stale = this.pending.get(at.index);
    if (stale !== undefined) {
      // Our earlier entry at this index was overwritten (we lost and regained leadership).
      this.pending.delete(at.index);
      stale.reject(new LeadershipLostError(at.index, this.leader));
    }
    this.proposals++;
    this.schedule();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(at.index, {
        term: at.term,
        deadline: this.clock.now() + this.proposalTimeoutMs,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
    });
  }

  /** Rejects proposals and reads whose deadline has passed (checked every tick). */
  private expire(now: number): void {
    for (const [index, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(index);
      p.reject(new ProposalTimeoutError(this.proposalTimeoutMs));
    }
    const timedOut = (w: ReadWaiter): boolean => {
      if (w.deadline > now) return false;
      this.readWaiters--;
      w.reject(new ReadTimeoutError(this.readTimeoutMs));
      return true;
    };
    this.queuedReads = this.queuedReads.filter((w) => !timedOut(w));
    for (const [seq, waiters] of this.inflightReads) {
      const left = waiters.filter((w) => !timedOut(w));
      if (left.length === 0) this.inflightReads.delete(seq);
      else this.inflightReads.set(seq, left);
    }
    this.confirmedReads = this.confirmedReads
      .map((c) => ({ index: c.index, waiters: c.waiters.filter((w) => !timedOut(w)) }))
      .filter((c) => c.waiters.length > 0);
  }

  // ---------------------------------------------------------------- the Ready loop

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped) return;
      if (this.loop === null) {
        this.loop = this.run().finally(() => {
          this.loop = null;
        });
      } else if (this.awaitingSync) {
        // The loop waits for a sync: what arrived since (a proposal, a follower's App) is
        // persisted and its App sent now, not after that sync (pipelined Ready loop).
        try {
          this.beginReadies();
        } catch (error) {
          this.fail(error);
        }
      }
    });
  }

  /**
   * The Ready loop. Each Ready is begun at once (persist staged, its sync started, a leader's
   * App sent) and finished in order once its sync and every earlier one completed (send the
   * rest, install, apply, serve reads, advance). While the loop waits for a sync, Readys made
   * meanwhile are begun by schedule(): up to maxReadiesInFlight are in flight at once.
   */
  private async run(): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        if (this.captured !== null && this.turns.length === 0) await this.installCaptured();
        if (this.stopped) return;
        this.beginReadies();
        const turn = this.turns[0];
        if (turn === undefined) return;
        if (turn.synced !== null) {
          this.awaitingSync = true;
          try {
            await turn.synced;
          } finally {
            this.awaitingSync = false;
          }
          // Stopped during the sync: send and apply nothing more.
          if (this.stopped) return;
        }
        this.turns.shift();
        await this.finishReady(turn);
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** Begins every Ready the core may hand out now (none while a captured snapshot waits). */
  private beginReadies(): void {
    while (!this.stopped && this.captured === null) {
      this.issueReads();
      if (!this.core.hasReady()) return;
      this.beginReady(this.core.ready());
    }
  }

  /** A Ready's first steps (messages.ts `Ready`, 0 and 1): stage, start the sync, send early. */
  private beginReady(rd: Ready): void {
    this.readyTurns++;
    const first = this.turns.length === 0;
    // 1. Persist, then make durable once for the whole batch (group commit).
    const mustSync =
      rd.snapshot !== null ||
      rd.entries.length > 0 ||
      (rd.hardState !== null && (rd.hardState.term !== this.term || rd.hardState.vote !== this.lastVote));
    if (rd.snapshot !== null) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== null) {
      this.storage.setHardState(rd.hardState);
      // A node votes for itself in a new term only when it campaigns (§3.4): one election.
      if (rd.hardState.term > this.term && rd.hardState.vote === this.id) this.elections++;
      this.term = rd.hardState.term;
      this.lastVote = rd.hardState.vote;
    }
    // Before the sync: the core may win an election and stamp new entries meanwhile.
    this.noteStamps(rd.entries);
    // A Ready that only commits (no new entries) carries the leader's commit notices and
    // followers' acknowledgements of them: none is on the path of a client's reply, so they go
    // out after the apply that answers clients, and a turn later (the replies leave first).
    const sendAfterApply = rd.entries.length === 0 && rd.snapshot === null && rd.committedEntries.length > 0;
    // 0. A leader replicates while it writes its own log (thesis §10.2.1): its App, Heartbeat
    // and Snap promise nothing about this disk, and the core counts this node toward commit
    // only for entries acknowledged by advance(). New entries leave now, before the disk write
    // is even started, and not at the end of the event-loop turn: a follower's write is the
    // longer leg of a commit (the leader's own write has the network round trip as slack).
    if (!sendAfterApply) {
      for (let i = 0; i < rd.earlyMessages; i++) this.transport.send(rd.messages[i]!);
      if (rd.earlyMessages > 0 && rd.entries.length > 0) this.transport.flush?.();
    }
    let synced: Promise<void> | null = null;
    if (mustSync) {
      synced = this.timedSync();
      // Awaited in order by run(); a rejection before then must not count as unhandled.
      synced.catch(() => undefined);
    }
    // Committed entries durable here before this Ready (below its first new entry, no snapshot
    // to install first, no earlier Ready whose entries apply first) are applied while the new
    // ones sync.
    let early = 0;
    if (first && mustSync && rd.snapshot === null) {
      const firstNew = rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
      while (early < rd.committedEntries.length && rd.committedEntries[early]!.index < firstNew) {
        this.applyEntry(rd.committedEntries[early]!);
        early++;
      }
    }
    this.turns.push({ rd, synced, early, sendAfterApply });
  }

  /** A Ready's last steps (2-5), once it and every earlier Ready are durable. */
  private async finishReady(turn: Turn): Promise<void> {
    const { rd, early } = turn;
    // 2. Send: acknowledgements and votes leave now (a leader's commit waits for them).
    if (!turn.sendAfterApply && rd.earlyMessages < rd.messages.length) {
      for (let i = rd.earlyMessages; i < rd.messages.length; i++) this.transport.send(rd.messages[i]!);
      if (rd.entries.length > 0) this.transport.flush?.();
    }
    // 3. Install the snapshot, then apply committed entries in order.
    if (rd.snapshot !== null) {
      await this.app.restore(rd.snapshot);
      // Stopped during the restore: apply nothing more.
      if (this.stopped) return;
      this.lastStampMs = Math.max(this.lastStampMs, this.app.appliedTimeMs?.() ?? 0);
      this.applied = rd.snapshot.metadata.index;
      this.lastSnapshotIndex = rd.snapshot.metadata.index;
      this.lastSnapshotBytes = rd.snapshot.data.byteLength;
      this.appliedBytesSinceSnapshot = 0;
      this.rejectPendingUpTo(this.applied);
      this.emit({ type: 'snapshot-installed', index: this.applied });
    }
    for (let i = early; i < rd.committedEntries.length; i++) this.applyEntry(rd.committedEntries[i]!);
    if (turn.sendAfterApply && rd.messages.length > 0) {
      // Handed to the transport from an immediate set now, which runs before the replies'
      // (scheduled from the callbacks of the proposals just settled): the transport's own
      // flush then falls to the next loop turn, after the replies are written.
      const messages = rd.messages;
      setImmediate(() => {
        if (this.stopped) return;
        for (const m of messages) this.transport.send(m);
      });
    }
    // 4. Serve reads: those confirmed now, and those waiting for this apply.
    for (const rs of rd.readStates) {
      const seq = readSeqOf(this.readPrefix, rs.context);
      const waiters = this.inflightReads.get(seq);
      if (waiters === undefined) continue;
      this.inflightReads.delete(seq);
      this.confirmedReads.push({ index: rs.index, waiters });
    }
    this.serveReads();
    // Role and leader changes: after applying, so proposals that committed resolve first.
    if (rd.softState !== null) this.onSoftState(rd.softState.role, rd.softState.leader);
    // 5. Done.
    this.core.advance();
    this.maybeSnapshot();
  }

  private applyEntry(e: Entry): void {
    // Per applied entry: the message is built only on failure.
    if (e.index !== this.applied + 1)
      assert.fail(`raft node ${this.id}: applying ${e.index} after ${this.applied}`);
    let result: unknown;
    switch (e.type) {
      case EntryType.Normal: {
        const { timeMs, payload } = decodeEntryData(e.data);
        result = this.app.apply({ index: e.index, term: e.term, type: e.type, timeMs, payload });
        break;
      }
      case EntryType.ConfChange: {
        const change = decodeConfChange(e.data);
        const cs = this.core.applyConfChange(change);
        this.storage.setConfState(cs);
        this.app.apply({ index: e.index, term: e.term, type: e.type, timeMs: 0, payload: e.data });
        this.emit({ type: 'conf-changed', change, confState: cs, index: e.index });
        result = cs;
        break;
      }
      case EntryType.Empty:
        this.app.apply({ index: e.index, term: e.term, type: e.type, timeMs: 0, payload: e.data });
        break;
      default: {
        const never: never = e.type;
        throw new Error(`raft node: unknown entry type ${String(never)}`);
      }
    }
    this.applied = e.index;
    this.appliedBytesSinceSnapshot += e.data.byteLength + ENTRY_OVERHEAD_BYTES;
    const p = this.pending.get(e.index);
    if (p === undefined) return;
    this.pending.delete(e.index);
    if (p.term === e.term) p.resolve(result);
    else p.reject(new LeadershipLostError(e.index, this.leader));
  }

  /** A snapshot replaced the log up to `index`: proposals there can no longer be matched. */
  private rejectPendingUpTo(index: number): void {
    for (const [i, p] of this.pending) {
      if (i > index) continue;
      this.pending.delete(i);
      p.reject(new LeadershipLostError(i, this.leader));
    }
  }

  private onSoftState(role: Role, leader: NodeId | null): void {
    const wasLeader = this.role === Role.Leader;
    const roleChanged = role !== this.role;
    const leaderChanged = leader !== this.leader;
    this.role = role;
    this.leader = leader;
    if (wasLeader && role !== Role.Leader) {
      // Thesis §6.4 / etcd: a deposed leader cannot know whether its entries will commit.
      for (const [index, p] of this.pending) p.reject(new LeadershipLostError(index, leader));
      this.pending.clear();
    }
    if (leaderChanged) {
      // Read requests sent to (or confirmed by) a former leader will never be answered.
      for (const waiters of this.inflightReads.values()) {
        for (const w of waiters) {
          this.readWaiters--;
          w.reject(new NotLeaderError(leader));
        }
      }
      this.inflightReads.clear();
      this.emit({ type: 'leader-changed', leader, term: this.term });
    }
    if (roleChanged) this.emit({ type: 'role-changed', role, term: this.term });
  }

  /** All reads queued since the last turn travel in ONE core.readIndex call. */
  private issueReads(): void {
    if (this.queuedReads.length === 0) return;
    const batch = this.queuedReads;
    this.queuedReads = [];
    const seq = ++this.readSeq;
    this.inflightReads.set(seq, batch);
    this.core.readIndex(readContext(this.readPrefix, seq));
  }

  private serveReads(): void {
    if (this.confirmedReads.length === 0) return;
    const waiting: ConfirmedRead[] = [];
    for (const c of this.confirmedReads) {
      if (c.index > this.applied) {
        waiting.push(c);
        continue;
      }
      for (const w of c.waiters) {
        this.readWaiters--;
        w.resolve();
      }
    }
    this.confirmedReads = waiting;
  }

  /** Records the greatest leader-stamped time in entries this node now holds. */
  private noteStamps(entries: readonly Entry[]): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.type !== EntryType.Normal) continue;
      const t = decodeEntryData(e.data).timeMs;
      if (t > this.lastStampMs) this.lastStampMs = t;
      return;
    }
  }

  /** On start: the stamp of the last Normal entry in the stored log (stamps grow along the log). */
  private scanLastStamp(): number {
    const last = this.storage.lastIndex();
    const lo = Math.max(this.storage.firstIndex(), last - STAMP_SCAN_ENTRIES + 1);
    if (lo > last) return 0;
    const ents = this.storage.entries(lo, last + 1);
    for (let i = ents.length - 1; i >= 0; i--) {
      const e = ents[i]!;
      if (e.type === EntryType.Normal) return decodeEntryData(e.data).timeMs;
    }
    return 0;
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * When `snapshotEntries` entries and the last snapshot's size in bytes have been applied
   * since it (or when forced): capture now, serialize off the loop.
   */
  private maybeSnapshot(): void {
    if (this.snapshotting || this.stopped) return;
    const due =
      this.snapshotEntries > 0 &&
      this.applied - this.lastSnapshotIndex >= this.snapshotEntries &&
      this.appliedBytesSinceSnapshot >= this.lastSnapshotBytes;
    if (!due && !(this.forceSnapshot && this.applied > this.lastSnapshotIndex)) return;
    this.forceSnapshot = false;
    const bytesBeforeCapture = this.appliedBytesSinceSnapshot;
    this.appliedBytesSinceSnapshot = 0;
    const index = this.applied;
    const confState = this.core.status().confState;
    this.snapshotting = true;
    this.app
      .snapshot()
      .then(async (data) => {
        // The file is written here, off the Ready loop: the sync in installCaptured then
        // carries only a small record, not the whole snapshot ahead of the next group commit.
        await this.storage.prepareSnapshot?.(index, confState, data);
        return data;
      })
      .then(
        (data) => {
          this.captured = { index, confState, data };
          this.schedule();
        },
        (error: unknown) => {
          this.snapshotting = false;
          this.appliedBytesSinceSnapshot += bytesBeforeCapture;
          this.emit({ type: 'snapshot-failed', index, error });
        },
      );
  }

  /** Between two Ready turns: record the captured snapshot, compact, make it durable. */
  private async installCaptured(): Promise<void> {
    const c = this.captured!;
    this.captured = null;
    this.snapshotting = false;
    // A newer snapshot arrived from the leader meanwhile: this one is useless.
    if (c.index <= this.storage.snapshot().metadata.index) return;
    this.storage.createSnapshot(c.index, c.confState, c.data);
    const compactTo = c.index - this.catchUpEntries;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
    await this.timedSync();
    this.lastSnapshotIndex = c.index;
    this.lastSnapshotBytes = c.data.byteLength;
    this.emit({ type: 'snapshot-taken', index: c.index, bytes: c.data.byteLength });
    this.maybeSnapshot();
  }

  /** storage.sync(), counted and timed (the last 256 durations are kept for metrics). */
  private async timedSync(): Promise<void> {
    this.syncs++;
    const started = performance.now();
    await this.storage.sync();
    const ms = performance.now() - started;
    this.syncMs.push(ms);
    if (this.syncMs.length > 256) this.syncMs.shift();
    this.onSyncMs?.(ms);
  }

  // ---------------------------------------------------------------- failure

  private fail(error: unknown): void {
    if (!this.stopped) {
      this.stopped = true;
      this.cancelTick?.();
      this.cancelTick = null;
    }
    this.rejectAll(new NodeStoppedError(error instanceof Error ? error.message : String(error)));
    this.onFatal(error);
  }

  private rejectAll(error: NodeStoppedError): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    const reads = [...this.queuedReads, ...[...this.inflightReads.values()].flat()];
    for (const c of this.confirmedReads) reads.push(...c.waiters);
    for (const w of reads) w.reject(error);
    this.queuedReads = [];
    this.inflightReads.clear();
    this.confirmedReads = [];
    this.readWaiters = 0;
  }

  private emit(e: NodeEvent): void {
    for (const l of this.listeners) l(e);
  }
}

function withContext(node: NodeId, context: string | undefined): ConfChange {
  return context === undefined
    ? { type: ConfChangeType.AddVoter, node }
    : { type: ConfChangeType.AddVoter, node, context };
}

/** A storage nothing was ever written to: no entries, no snapshot, no term. */
function isFresh(storage: WritableStorage): boolean {
  const { hardState } = storage.initialState();
  return storage.lastIndex() === 0 && storage.snapshot().metadata.index === 0 && hardState.term === 0;
}
