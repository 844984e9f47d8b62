/**
 * Raft wire types: entries, messages, hard state, snapshots, and the Ready batch the pure core
 * hands to its driver. Names follow the Raft paper (§5) and etcd-io/raft `raftpb`.
 *
 * This module owns only data shapes. It must never import I/O, timers or commands: the core,
 * the simulation, the durable storage and the TCP transport all share these types.
 */

/** A node's id within a cluster. Strings so operators can use host names ("n1"). */
export type NodeId = string;

export enum EntryType {
  /** Application data proposed by a client. */
  Normal = 0,
  /** A membership change: `data` is an encoded ConfChange (see ConfChange below). */
  ConfChange = 1,
  /** Appended by a new leader at the start of its term (thesis §6.4: commit a no-op). */
  Empty = 2,
}

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque to Raft. Empty for EntryType.Empty. */
  readonly data: Uint8Array;
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  RemoveNode = 2,
}

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
  /**
   * Opaque to Raft: what the application records with the change (Concord: the member's
   * `host:port@peerPort`, so every node learns every member's addresses from the log).
   */
  readonly context?: string;
}

/** The membership in force at a log position. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** State that must be durable before any message depending on it is sent (Figure 2). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque application state at metadata.index. */
  readonly data: Uint8Array;
}

export enum MessageType {
  /** Local: an election timeout fired or a campaign was requested. */
  PreVote = 'PreVote',
  PreVoteResp = 'PreVoteResp',
  Vote = 'Vote',
  VoteResp = 'VoteResp',
  App = 'App',
  AppResp = 'AppResp',
  Heartbeat = 'Heartbeat',
  HeartbeatResp = 'HeartbeatResp',
  Snap = 'Snap',
  /** Follower -> leader: a follower's ReadIndex request relayed to the leader. */
  ReadIndex = 'ReadIndex',
  ReadIndexResp = 'ReadIndexResp',
  /** Leadership transfer (thesis §3.10): the leader tells the target to campaign at once. */
  TimeoutNow = 'TimeoutNow',
  /** Follower -> leader: a proposal forwarded by a follower. */
  Prop = 'Prop',
}

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** App: term of the entry before `entries`; Vote/PreVote: candidate's last log term. */
  readonly logTerm: number;
  /** App: index of the entry before `entries`; Vote/PreVote: candidate's last log index; AppResp: the index acknowledged or rejected. */
  readonly index: number;
  readonly entries: readonly Entry[];
  /** Leader's commit index (App, Heartbeat). */
  readonly commit: number;
  readonly reject: boolean;
  /** AppResp with reject: the follower's hint for fast backtracking (thesis §5.3 optimisation). */
  readonly rejectHint: number;
  /** AppResp with reject: term of the follower's entry at rejectHint (0 if none). */
  readonly hintTerm: number;
  /** Snap: the snapshot to install. */
  readonly snapshot: Snapshot | null;
  /** ReadIndex / Heartbeat round-trip: opaque request context. */
  readonly context: Uint8Array | null;
}

/** A linearizable read that is ready: once applied index >= index, serve request `context`. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

export enum Role {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
  /** Not a voter in the current configuration (learner, or removed). */
  Learner = 'learner',
}

export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

/**
 * Everything the driver must do, in this order (etcd `Ready` contract, Raft Figure 2):
 * 0. the first `earlyMessages` of `messages` may be sent at once, before or while step 1 runs
 *    (thesis §10.2.1: the leader writes its log in parallel with replicating it). They are a
 *    leader's App, Heartbeat and Snap, which promise nothing about this node's disk; the core
 *    counts the leader itself toward commit only for entries acknowledged by `advance()`.
 *    A driver that ignores this sends them after step 1 with the rest: also correct.
 * 1. persist `hardState` (if set), `snapshot` (if set) and `entries` — durably (fsync) —
 * 2. then send `messages` (the rest: votes, acknowledgements promise what step 1 made durable),
 * 3. then install `snapshot` (if set) into the state machine, then apply `committedEntries`
 *    in order (for a ConfChange entry: `RaftCore.applyConfChange(decodeConfChange(data))`);
 *    with no snapshot, those below the first of `entries` (durable here since an earlier
 *    Ready) may be applied before step 1 completes,
 * 4. then serve `readStates` once applied >= their index,
 * 5. then call `advance()`.
 * Pipelined (RaftConfig.maxReadiesInFlight > 1): the driver may take the next Ready while
 * earlier ones are still in step 1, and do its step 0 and start its persist at once. Steps 2-5
 * of each Ready then run in the order handed out, each only after its own persist AND every
 * earlier Ready's have completed (a later Ready's acknowledgement may cover entries an earlier
 * one is still writing: a follower re-acknowledging a resent App). Early application before
 * step 1 is allowed only when no earlier Ready is outstanding.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  /** How many of the first `messages` may be sent before the persist step (see step 0). */
  readonly earlyMessages: number;
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** Fills in the optional fields of a message so call sites name only what matters. */
export function message(fields: Pick<Message, 'type' | 'from' | 'to' | 'term'> & Partial<Message>): Message {
  return {
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    hintTerm: 0,
    snapshot: null,
    context: null,
    ...fields,
  };
}

/**
 * Bytes an entry counts for in size limits (maxSizePerMsg, maxUncommittedBytes, storage
 * `entries(lo, hi, maxBytes)`): its payload plus a fixed estimate of the framing (term, index,
 * type), as etcd counts `Entry.Size()`.
 */
export const ENTRY_OVERHEAD_BYTES = 24;
export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

const CONF_CHANGE_TYPES: ReadonlyMap<number, ConfChangeType> = new Map(
  [ConfChangeType.AddVoter, ConfChangeType.AddLearner, ConfChangeType.RemoveNode].map((t) => [t, t]),
);

/** Set on the type byte of a ConfChange that carries a context (format 2). */
const CONF_CHANGE_CONTEXT_FLAG = 0x80;

/**
 * The payload of an EntryType.ConfChange entry. The core writes it in `proposeConfChange`; the
 * application decodes it when it applies the entry and hands the result to
 * `RaftCore.applyConfChange`. Two formats, both decoded forever (old logs must replay):
 * - without context: one byte of ConfChangeType, then the node id in UTF-8;
 * - with context: ConfChangeType | 0x80, the id's byte length (u16 BE), the id, then the
 *   context in UTF-8.
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = utf8Encoder.encode(cc.node);
  if (cc.context === undefined) {
    const out = new Uint8Array(1 + id.byteLength);
    out[0] = cc.type;
    out.set(id, 1);
    return out;
  }
  if (id.byteLength > 0xffff) throw new Error('raft: conf change node id too long');
  const context = utf8Encoder.encode(cc.context);
  const out = new Uint8Array(3 + id.byteLength + context.byteLength);
  out[0] = cc.type | CONF_CHANGE_CONTEXT_FLAG;
  out[1] = id.byteLength >>> 8;
  out[2] = id.byteLength & 0xff;
  out.set(id, 3);
  out.set(context, 3 + id.byteLength);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const first = data[0] ?? 0xff;
  const withContext = (first & CONF_CHANGE_CONTEXT_FLAG) !== 0;
  const type = CONF_CHANGE_TYPES.get(first & ~CONF_CHANGE_CONTEXT_FLAG);
  if (type === undefined) throw new Error(`raft: bad conf change type ${String(data[0])}`);
  if (!withContext) return { type, node: utf8Decoder.decode(data.subarray(1)) };
  if (data.byteLength < 3) throw new Error('raft: truncated conf change');
  const idBytes = (data[1]! << 8) | data[2]!;
  if (3 + idBytes > data.byteLength) throw new Error('raft: truncated conf change');
  return {
    type,
    node: utf8Decoder.decode(data.subarray(3, 3 + idBytes)),
    context: utf8Decoder.decode(data.subarray(3 + idBytes)),
  };
}

/** The snapshot every fresh log starts from: index 0, term 0, with the given membership. */
export function emptySnapshot(confState: ConfState = { voters: [], learners: [] }): Snapshot {
  return { metadata: { index: 0, term: 0, confState }, data: new Uint8Array(0) };
}
