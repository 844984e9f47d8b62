/**
 * CLUSTER MYID: this node's Redis Cluster node id.
 *
 * Format:
 *   CLUSTER MYID
 *
 * Reply:
 *   Bulk string: 40 hex characters, the SHA-1 of this node's member id (`--node-id`), the id
 *   CLUSTER NODES, SLOTS and SHARDS show for it on every node.
 */
import { bulk, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { clusterNodeId, requireCluster } from './topology.js';

export const clusterMyid: CommandSpec = {
  name: 'cluster|myid',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'Returns the ID of a node (SHA-1 of its member id).',
    since: '3.0.0',
    group: 'server',
    complexity: 'O(1)',
    format: 'CLUSTER MYID',
    reply: "Bulk string: 40 hex characters, the SHA-1 of this node's member id (`--node-id`).",
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      return bulk(clusterNodeId(requireCluster(ctx).myId()));
    },
  },
};
