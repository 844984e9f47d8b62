/**
 * CLUSTER: the Redis Cluster introspection commands cluster clients use, describing Concord's
 * single Raft group as one shard owning all 16,384 slots (see topology.ts). Each subcommand
 * lives in its own file; this one is the container and CLUSTER HELP. Slot migration and the
 * gossip commands (MEET, ADDSLOTS, FAILOVER ...) do not exist: membership is changed with
 * RAFT.NODE and leadership with RAFT.TRANSFER-LEADER.
 *
 * Format:
 *   CLUSTER INFO
 *   CLUSTER MYID
 *   CLUSTER NODES
 *   CLUSTER SLOTS
 *   CLUSTER SHARDS
 *   CLUSTER KEYSLOT key
 *   CLUSTER HELP
 *
 * Reply:
 *   See each subcommand. Without a cluster (a server built without a Raft node) every
 *   subcommand but KEYSLOT and HELP answers `-ERR This instance has cluster support disabled`.
 */
import { containerHandler, helpReply } from '../help.js';
import type { Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { clusterInfo } from './info.js';
import { clusterKeyslot } from './keyslot.js';
import { clusterMyid } from './myid.js';
import { clusterNodes } from './nodes.js';
import { clusterShards } from './shards.js';
import { clusterSlots } from './slots.js';

const HELP_LINES = [
  'INFO',
  '    Return information about the cluster.',
  'KEYSLOT <key>',
  '    Return the hash slot for <key>.',
  'MYID',
  '    Return the node id (SHA-1 of the member id).',
  'NODES',
  '    Return cluster configuration seen by node. Output format:',
  '    <id> <ip:port@peerport> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...',
  'SLOTS',
  '    Return information about slots range mappings. Each range is made of:',
  '    start, end, master and replicas IP addresses, ports and ids',
  'SHARDS',
  '    Return information about slot range mappings and the nodes associated with them.',
  'Membership and leadership: see RAFT.NODE, RAFT.TRANSFER-LEADER, RAFT.INFO.',
];

const clusterHelp: CommandSpec = {
  name: 'cluster|help',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'Returns helpful text about the different subcommands.',
    since: '5.0.0',
    group: 'server',
    complexity: 'O(1)',
    format: 'CLUSTER HELP',
    reply: 'Array of simple strings: the subcommands and what they do.',
  },
  handler: {
    kind: 'local',
    run(): Reply {
      return helpReply('cluster', HELP_LINES);
    },
  },
};

export const cluster: CommandSpec = {
  name: 'cluster',
  arity: -2,
  flags: [],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary:
      "A container for Redis Cluster commands. Concord's Raft group is one shard owning all 16384 slots, its leader the master, the other members its replicas; node ids are the SHA-1 of the member ids. A follower answers keyed commands with `-MOVED <slot> <leader host:port>` only when `cluster-redirect` is yes (CONFIG SET cluster-redirect yes): cluster clients (ioredis Cluster, node-redis createCluster, redis-cli -c) then follow the leader after a failover; the default (no) forwards to the leader so plain clients work against any node.",
    since: '3.0.0',
    group: 'server',
    complexity: 'Depends on subcommand.',
    format: 'CLUSTER <INFO | MYID | NODES | SLOTS | SHARDS | KEYSLOT key | HELP>',
    reply: 'See the subcommands.',
  },
  handler: containerHandler('cluster'),
  subcommands: [
    clusterInfo,
    clusterMyid,
    clusterNodes,
    clusterSlots,
    clusterShards,
    clusterKeyslot,
    clusterHelp,
  ],
};
