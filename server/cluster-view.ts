/**
 * ClusterView: what the admin commands (CLUSTER NODES/SLOTS/INFO, RAFT.*, INFO raft) may see
 * of and ask of the replicated cluster this node belongs to. server/node.ts implements it over
 * the RaftNode, the peer transport and the membership recorded in the log; the commands reach
 * it through `ServerContext.cluster` (commands/context.ts) and never touch Raft directly.
 *
 * Owns only the contract (types). Must never expose the RaftNode, the core or the storage, or
 * let a command change membership except through the async admin actions below.
 */
import type { NodeId } from '../raft/messages.js';
import type { ExecutorStatus } from './raft-executor.js';

/** A member's addresses as the log records them: `host:port@peerPort` (CLUSTER NODES style). */
export interface MemberAddress {
  readonly host: string;
  /** The member's RESP (client) port. */
  readonly port: number;
  /** The member's Raft peer port (default port + 10000, like the Redis Cluster bus port). */
  readonly peerPort: number;
}

export interface MemberInfo extends MemberAddress {
  readonly id: NodeId;
  readonly voter: boolean;
  /** Whether this member is the current leader (as this node knows it). */
  readonly leader: boolean;
  /** Whether this member is the node answering. */
  readonly self: boolean;
  /**
   * The leader's view of this member's log: highest index known replicated there, and how far
   * it is behind the leader's last index. Null on a follower (only the leader tracks progress)
   * and for members the leader does not track.
   */
  readonly matchIndex: number | null;
  readonly lag: number | null;
  /** This node has a live, authenticated peer connection to it (always true for self). */
  readonly reachable: boolean;
}

export type RaftRole = 'leader' | 'follower' | 'candidate' | 'pre-candidate';

export interface FsyncStats {
  /** Storage syncs since start (one per group-committed batch). */
  readonly count: number;
  /** Latency of recent syncs in ms (over a bounded window), null before the first. */
  readonly lastMs: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
}

export interface PeerProgress {
  readonly id: NodeId;
  readonly matchIndex: number | null;
  readonly lag: number | null;
  readonly reachable: boolean;
}

export interface RaftInfo {
  readonly id: NodeId;
  readonly role: RaftRole;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly pendingProposals: number;
  readonly pendingReads: number;
  readonly fsync: FsyncStats;
  /** The command executor's queues (server/raft-executor.ts): where a stuck command waits. */
  readonly executor: ExecutorStatus;
  /** Every other member; matchIndex/lag are null unless this node is the leader. */
  readonly peers: readonly PeerProgress[];
}

/**
 * The cluster as seen from one node. Queries are synchronous and never block; admin actions
 * are async and reject with operating errors (raft/errors.ts NotLeaderError when this node is
 * not the leader, ProposalDroppedError, LeadershipLostError, ProposalTimeoutError), which
 * server/errors.ts turns into replies, or with ClusterAdminError (a client mistake: unknown
 * member, bad address) whose message is a complete Redis error text ("ERR ...").
 */
export interface ClusterView {
  myId(): NodeId;
  /** The leader this node knows of, or null while there is none. */
  leaderId(): NodeId | null;
  /** The leader's addresses, or null while there is no leader or its address is unknown. */
  leaderAddress(): MemberAddress | null;
  /** Every member (voters and learners) in id order, this node included. */
  members(): readonly MemberInfo[];
  raftInfo(): RaftInfo;
  /**
   * Adds `id` at `address` (`host:port` or `host:port@peerPort`) as a learner; it is promoted
   * to voter once caught up. Resolves when the learner entry is applied on the leader (the
   * promotion happens later). Leader only.
   */
  addNode(id: NodeId, address: string): Promise<void>;
  /** Removes `id` (voter or learner). Resolves once the removal is applied. Leader only. */
  removeNode(id: NodeId): Promise<void>;
  /** Hands leadership to `id`; resolves once `id` is leader, rejects after a bounded wait. */
  transferLeader(id: NodeId): Promise<void>;
  /** Takes a snapshot now; resolves with its index once it is durable. */
  snapshotNow(): Promise<number>;
}

/** An admin request the client got wrong; `message` is the whole Redis error text. */
export class ClusterAdminError extends Error {
  override readonly name = 'ClusterAdminError';
}
