/**
 * CGET: reads a key through this node's coherent near-cache.
 *
 * Format:
 *   CGET key
 *
 * Reply:
 *   Bulk string: the value; nil when the key does not exist (or has expired). Never older than
 *   a CSET or CDEL of the key that completed before the CGET began, on any node. A line held in
 *   M, E or S under a valid lease answers from memory; otherwise the leader is asked (a
 *   linearizable read) and the line is installed.
 */
import { NIL, bulk, type Reply } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import { cacheOf } from './common.js';

function reply(value: Buffer | null): Reply {
  return value === null ? NIL : bulk(value);
}

export const cget: CommandSpec = {
  name: 'cget',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@read', '@string', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  docs: {
    summary: "Returns a key's value from the node's coherent near-cache (never stale).",
    since: '0.1.0',
    group: 'cache',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'CGET key',
    reply:
      'Bulk string: the value; nil when the key does not exist. Never older than a CSET/CDEL that completed before the CGET began.',
  },
  handler: {
    kind: 'local',
    run(_ctx, args, dispatch) {
      const key = args.required();
      args.end();
      const value = cacheOf(dispatch).get(key);
      return value instanceof Promise ? value.then(reply) : reply(value);
    },
  },
};
