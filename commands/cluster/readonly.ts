/**
 * READONLY / READWRITE: a cluster client's opt-in (and opt-out) to reads served by a replica.
 * On Concord a follower serves reads linearizably anyway (ReadIndex); the flag matters only
 * with `cluster-redirect yes`, where it stops read commands on this connection from being
 * redirected to the leader with -MOVED (see redirect.ts). Writes are still redirected.
 *
 * Format:
 *   READONLY
 *   READWRITE
 *
 * Reply:
 *   Simple string OK, or `-ERR This instance has cluster support disabled` without a cluster.
 */
import { OK, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { setReadonly } from './redirect.js';
import { requireCluster } from './topology.js';

export const readonly: CommandSpec = {
  name: 'readonly',
  arity: 1,
  flags: ['loading', 'stale', 'fast'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Enables read-only queries for a connection to a Redis Cluster replica node.',
    since: '3.0.0',
    group: 'connection',
    complexity: 'O(1)',
    format: 'READONLY',
    reply:
      'OK. With `cluster-redirect yes`, read commands on this connection are then served by a follower instead of redirected.',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      requireCluster(ctx);
      setReadonly(ctx.session, true);
      return OK;
    },
  },
};

export const readwrite: CommandSpec = {
  name: 'readwrite',
  arity: 1,
  flags: ['loading', 'stale', 'fast'],
  aclCategories: ['@fast', '@connection'],
  keys: NO_KEYS,
  docs: {
    summary: 'Enables read-write queries for a connection to a Redis Cluster replica node.',
    since: '3.0.0',
    group: 'connection',
    complexity: 'O(1)',
    format: 'READWRITE',
    reply: 'OK: undoes READONLY for this connection.',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      requireCluster(ctx);
      setReadonly(ctx.session, false);
      return OK;
    },
  },
};
