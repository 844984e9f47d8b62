/**
 * The -MOVED redirect for cluster-mode clients.
 *
 * Any Concord node serves any client: a follower forwards writes to the leader and serves
 * linearizable reads after a ReadIndex barrier. Cluster clients (ioredis `Cluster`, node-redis
 * `createCluster`, `redis-cli -c`) instead route each key to the master that CLUSTER SLOTS
 * names (our leader) and expect a node that does not own a slot to answer
 * `-MOVED <slot> <host:port>`, which makes them reconnect to that node and, for ioredis and
 * node-redis, refresh their slot table — the way they follow the leader after a failover.
 *
 * A MOVED reply would break plain clients connected to a follower, so it is opt-in, per
 * server: the `cluster-redirect` parameter (`yes`|`no`, default no; CONFIG SET-able). When it
 * is yes, a command with keys that reaches a follower while a leader with a known address
 * exists is answered `-MOVED <slot of the first key> <leader host:port>` instead of being
 * forwarded. Not redirected: commands without keys (PING, INFO, CLUSTER ...), any command on
 * the leader, any command while no leader is known (the executor waits for one, then fails
 * with -CLUSTERDOWN, as Redis Cluster does), and read commands on a connection that sent
 * READONLY (Redis's replica-read opt-in: the follower serves them itself, still linearizable).
 * A per-server switch rather than a per-connection one because `redis-cli -c` sends nothing
 * that would identify it as a cluster client; a node meant for plain clients keeps the
 * default.
 *
 * The dispatcher calls `movedReply` before running a read or write command. This module owns
 * the decision and the per-connection READONLY flag; it must never forward or run a command.
 */
import type { ClientSession, CommandContext } from '../context.js';
import { error, type Reply } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import { keySlot } from './slot.js';

/** The configuration parameter that turns redirects on (`yes`) or off (`no`). */
export const CLUSTER_REDIRECT_PARAMETER = 'cluster-redirect';

/** Connections that sent READONLY (until READWRITE or RESET); weak, so closed ones vanish. */
const readonlySessions = new WeakSet<ClientSession>();

export function setReadonly(session: ClientSession, on: boolean): void {
  if (on) readonlySessions.add(session);
  else readonlySessions.delete(session);
}

export function isReadonly(session: ClientSession): boolean {
  return readonlySessions.has(session);
}

function redirectEnabled(ctx: CommandContext): boolean {
  for (const [name, value] of ctx.server.config.get(CLUSTER_REDIRECT_PARAMETER)) {
    if (name === CLUSTER_REDIRECT_PARAMETER) return value === 'yes';
  }
  return false;
}

/**
 * The `-MOVED` reply for this request, or null to run it here. `spec` is the (sub)command
 * found for `argv`; its key positions index into argv as COMMAND INFO gives them.
 * Cheap on the leader and for keyless commands (no configuration lookup).
 */
export function movedReply(ctx: CommandContext, spec: CommandSpec, argv: readonly Buffer[]): Reply | null {
  const cluster = ctx.server.cluster;
  if (cluster === undefined || spec.keys.first <= 0) return null;
  const key = argv[spec.keys.first];
  if (key === undefined) return null;
  const leader = cluster.leaderId();
  if (leader === null || leader === cluster.myId()) return null;
  if (spec.handler.kind === 'read' && isReadonly(ctx.session)) return null;
  if (!redirectEnabled(ctx)) return null;
  const address = cluster.leaderAddress();
  if (address === null) return null;
  return error(`MOVED ${keySlot(key)} ${address.host}:${address.port}`);
}
