/**
 * The cluster as Redis Cluster clients expect to see it, derived from a ClusterView: one shard
 * owning all 16,384 slots, whose master is the Raft leader and whose replicas are every other
 * member (followers and learners). CLUSTER SLOTS/SHARDS/NODES/INFO/MYID and INFO cluster share
 * it, so they always agree.
 *
 * Node ids: Redis Cluster node ids are 40 hex characters. Concord derives them
 * deterministically as the SHA-1 of the member id (`n1` -> sha1("n1")), so every node shows
 * the same id for a member, across restarts, without storing anything.
 *
 * Without a known leader (an election is running, or this node is cut off) the answering node
 * names itself master of the slots, and CLUSTER INFO says cluster_state:fail. Not an empty
 * table: on an empty CLUSTER SLOTS ioredis resets its pool to no nodes, disconnecting every
 * connection ("does not hold any slot"), and starts over from its seed nodes. Not the last
 * known leader:
 * that is most likely the node that just died. The answering node is certainly alive and
 * serves any command (it waits a bounded time for a leader and forwards, or with
 * cluster-redirect answers -MOVED once one is known), so clients keep working and move to the
 * leader at their next slot refresh.
 *
 * Owns only this mapping; must never change membership or reach Raft except through the view.
 */
import { createHash } from 'node:crypto';
import { fail } from '../args.js';
import type { CommandContext } from '../context.js';
import type { ClusterView, MemberInfo } from '../../server/cluster-view.js';

/** Redis's reply when a cluster command reaches a server without cluster support. */
export const CLUSTER_DISABLED = 'ERR This instance has cluster support disabled';

const idCache = new Map<string, string>();
const ID_CACHE_LIMIT = 1024;

/** The 40-hex Redis Cluster node id of member `id`: SHA-1 of the id's UTF-8 bytes. */
export function clusterNodeId(id: string): string {
  let hex = idCache.get(id);
  if (hex === undefined) {
    hex = createHash('sha1').update(id, 'utf8').digest('hex');
    if (idCache.size >= ID_CACHE_LIMIT) idCache.clear();
    idCache.set(id, hex);
  }
  return hex;
}

/** The cluster view, or the client error Redis gives when cluster support is off. */
export function requireCluster(ctx: CommandContext): ClusterView {
  const cluster = ctx.server.cluster;
  if (cluster === undefined) fail(CLUSTER_DISABLED);
  return cluster;
}

export interface Topology {
  /** Whether a leader with a known address exists (cluster_state:ok). */
  readonly leaderKnown: boolean;
  /**
   * The slots' owner: the leader; while there is none, this node; null only if this node has
   * no address in the membership yet.
   */
  readonly master: MemberInfo | null;
  /** Every other member, in id order. */
  readonly replicas: readonly MemberInfo[];
  /** Every member, in id order. */
  readonly members: readonly MemberInfo[];
}

export function topology(cluster: ClusterView): Topology {
  const members = cluster.members();
  const leaderId = cluster.leaderId();
  // A leader whose address this node does not know yet (membership not applied) counts as none.
  const leader =
    leaderId !== null && cluster.leaderAddress() !== null
      ? members.find((m) => m.id === leaderId)
      : undefined;
  const master = leader ?? members.find((m) => m.self && m.port > 0) ?? null;
  const replicas = master === null ? members : members.filter((m) => m !== master);
  return { leaderKnown: leader !== undefined, master, replicas, members };
}

/** `host:port@peerPort`, as CLUSTER NODES and RAFT.INFO show an address. */
export function formatAddress(m: { host: string; port: number; peerPort: number }): string {
  return `${m.host}:${m.port}@${m.peerPort}`;
}
