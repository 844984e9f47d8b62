/**
 * RAFT.NODE: membership changes (RedisRaft's RAFT.NODE). A cluster is founded by the
 * `--bootstrap` flag (or starts as a single node), never by a command; after that, members are
 * added and removed here, on the leader, one change at a time.
 *
 * Format:
 *   RAFT.NODE ADD node-id address
 *   RAFT.NODE REMOVE node-id
 *   RAFT.NODE HELP
 *
 *   address is `host:port` (the node's RESP address; its peer port is port + 10000) or
 *   `host:port@peerport`.
 *
 * Reply:
 *   ADD: OK once the node is in the configuration as a learner (it is promoted to voter by the
 *   leader once caught up; watch raft_voters in RAFT.INFO). Start the new node with
 *   `--join` and an empty data dir. REMOVE: OK once the removal is applied; the removed node
 *   is told so (if it missed its removal) and then refuses every read and write with `-ERR
 *   this node was removed from the cluster (by config index N)`. Errors:
 *   `-ERR invalid node id`, `-ERR invalid address ...`, `-ERR node 'x' already a member`,
 *   (a removed id may be added again: the replacement starts with an empty data dir),
 *   `-ERR unknown node 'x'`; on a follower `-TRYAGAIN not the leader, try <id>`; while another
 *   membership change is in flight the change is refused with a -TRYAGAIN (retry later);
 *   `-TRYAGAIN outcome unknown ...` when leadership was lost before the change applied.
 */
import { fail, type ArgCursor } from '../args.js';
import { containerHandler, helpReply } from '../help.js';
import { OK, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { requireCluster } from './topology.js';

/** Member ids: 1-64 bytes of letters, digits, '-', '_', '.' (they appear in logs and INFO). */
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** `host:port` or `host:port@peerport`; host may be a name, IPv4 or a bracket-less IPv6. */
const ADDRESS = /^(.+):(\d{1,5})(?:@(\d{1,5}))?$/;

export function parseNodeId(args: ArgCursor): string {
  const id = args.requiredString();
  if (!NODE_ID.test(id)) fail(`ERR invalid node id '${id.slice(0, 64)}' (1-64 of A-Z a-z 0-9 . _ -)`);
  return id;
}

/** Checks a member address's syntax and port ranges; returns it unchanged. */
export function checkAddress(address: string): string {
  const m = ADDRESS.exec(address);
  const ports = m === null ? [] : [m[2], m[3]].filter((p) => p !== undefined).map(Number);
  if (m === null || /\s/.test(address) || ports.some((p) => p < 1 || p > 65535)) {
    fail(`ERR invalid address '${address.slice(0, 128)}' (expected host:port or host:port@peerport)`);
  }
  return address;
}

const raftNodeAdd: CommandSpec = {
  name: 'raft.node|add',
  arity: 4,
  flags: ['admin', 'noscript'],
  aclCategories: ['@admin', '@slow', '@dangerous'],
  keys: NO_KEYS,
  docs: {
    summary: 'Adds a node to the cluster as a learner; the leader promotes it once caught up.',
    since: '0.1.0',
    group: 'server',
    complexity: 'O(1) plus one replicated configuration change',
    arguments: [
      { name: 'node-id', type: 'string' },
      { name: 'address', type: 'string' },
    ],
    format: 'RAFT.NODE ADD node-id address',
    reply:
      'address is `host:port` (peer port = port + 10000) or `host:port@peerport`. OK once the node is a learner (promoted to voter when caught up). Leader only (`-TRYAGAIN not the leader, try <id>`); `-ERR node ... already a member`; `-ERR invalid address ...`; a removed id may be added again (its replacement must start with an empty data dir). Start the new node with `--join` and an empty data dir.',
  },
  handler: {
    kind: 'local',
    async run(ctx, args): Promise<Reply> {
      const cluster = requireCluster(ctx);
      const id = parseNodeId(args);
      const address = checkAddress(args.requiredString());
      args.end();
      if (cluster.members().some((m) => m.id === id)) fail(`ERR node '${id}' already a member`);
      await cluster.addNode(id, address);
      return OK;
    },
  },
};

const raftNodeRemove: CommandSpec = {
  name: 'raft.node|remove',
  arity: 3,
  flags: ['admin', 'noscript'],
  aclCategories: ['@admin', '@slow', '@dangerous'],
  keys: NO_KEYS,
  docs: {
    summary: 'Removes a node (voter or learner) from the cluster.',
    since: '0.1.0',
    group: 'server',
    complexity: 'O(1) plus one replicated configuration change',
    arguments: [{ name: 'node-id', type: 'string' }],
    format: 'RAFT.NODE REMOVE node-id',
    reply:
      "OK once the removal is applied. Leader only (`-TRYAGAIN not the leader, try <id>`); `-ERR unknown node 'x'`. Removing the leader makes it step down after the change. The removed node stops its Raft node (told by a member if it missed its removal) and refuses every read and write with `-ERR this node was removed from the cluster (by config index N)`.",
  },
  handler: {
    kind: 'local',
    async run(ctx, args): Promise<Reply> {
      const cluster = requireCluster(ctx);
      const id = parseNodeId(args);
      args.end();
      if (!cluster.members().some((m) => m.id === id)) fail(`ERR unknown node '${id}'`);
      await cluster.removeNode(id);
      return OK;
    },
  },
};

const HELP_LINES = [
  'ADD <node-id> <host:port[@peerport]>',
  '    Add a node as a learner; it is promoted to voter once caught up. Leader only.',
  'REMOVE <node-id>',
  '    Remove a node from the cluster. Leader only.',
];

const raftNodeHelp: CommandSpec = {
  name: 'raft.node|help',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'Returns helpful text about the different subcommands.',
    since: '0.1.0',
    group: 'server',
    complexity: 'O(1)',
    format: 'RAFT.NODE HELP',
    reply: 'Array of simple strings: the subcommands and what they do.',
  },
  handler: {
    kind: 'local',
    run(): Reply {
      return helpReply('raft.node', HELP_LINES);
    },
  },
};

export const raftNode: CommandSpec = {
  name: 'raft.node',
  arity: -2,
  flags: [],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'A container for Raft membership changes.',
    since: '0.1.0',
    group: 'server',
    complexity: 'Depends on subcommand.',
    format: 'RAFT.NODE <ADD node-id address | REMOVE node-id | HELP>',
    reply: 'See the subcommands.',
  },
  handler: containerHandler('raft.node'),
  subcommands: [raftNodeAdd, raftNodeRemove, raftNodeHelp],
};
