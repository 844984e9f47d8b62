/**
 * MGET: the values of several keys, in order.
 *
 * Format:
 *   MGET key [key ...]
 *
 * Reply:
 *   Array with one element per key: the value as a bulk string, or nil for a key that does
 *   not exist.
 */
import { NIL, array, bulk } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const mget: CommandSpec = {
  name: 'mget',
  arity: -2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@read', '@string', '@fast'],
  keys: { first: 1, last: -1, step: 1 },
  tips: ['request_policy:multi_shard'],
  docs: {
    summary: 'Atomically returns the string values of one or more keys.',
    since: '1.0.0',
    group: 'string',
    complexity: 'O(N) where N is the number of keys to retrieve.',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0, multiple: true }],
    format: 'MGET key [key ...]',
    reply:
      'Array with one element per key: the value as a bulk string, or nil for a key that does not exist.',
  },
  handler: readHandler<Buffer[]>({
    parse: (args) => args.rest(),
    query: (sm, keys, nowMs) =>
      array(
        keys.map((key) => {
          const value = sm.keys.get(key, nowMs);
          return value === null ? NIL : bulk(value);
        }),
      ),
  }),
};
