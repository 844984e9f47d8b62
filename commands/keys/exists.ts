/**
 * EXISTS: how many of the given keys exist.
 *
 * Format:
 *   EXISTS key [key ...]
 *
 * Reply:
 *   Integer: the number of keys that exist; a key named several times is counted each time.
 */
import { integer } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const exists: CommandSpec = {
  name: 'exists',
  arity: -2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@keyspace', '@read', '@fast'],
  keys: { first: 1, last: -1, step: 1 },
  keySpecFlags: ['RO'],
  tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
  docs: {
    summary: 'Determines whether one or more keys exist.',
    since: '1.0.0',
    group: 'generic',
    complexity: 'O(N) where N is the number of keys to check.',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0, multiple: true }],
    format: 'EXISTS key [key ...]',
    reply: 'Integer: the number of keys that exist; a key named several times is counted each time.',
  },
  handler: readHandler<Buffer[]>({
    parse: (args) => args.rest(),
    query: (sm, keys, nowMs) => integer(sm.keys.exists(keys, nowMs)),
  }),
};
