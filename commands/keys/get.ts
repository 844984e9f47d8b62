/**
 * GET: the value of a key.
 *
 * Format:
 *   GET key
 *
 * Reply:
 *   Bulk string: the value; nil when the key does not exist (or has expired).
 */
import { NIL, bulk } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const get: CommandSpec = {
  name: 'get',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@read', '@string', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  docs: {
    summary: 'Returns the string value of a key.',
    since: '1.0.0',
    group: 'string',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'GET key',
    reply: 'Bulk string: the value; nil when the key does not exist (or has expired).',
  },
  handler: readHandler<Buffer>({
    parse: (args) => args.required(),
    query(sm, key, nowMs) {
      const value = sm.keys.get(key, nowMs);
      return value === null ? NIL : bulk(value);
    },
  }),
};
