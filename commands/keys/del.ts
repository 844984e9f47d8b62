/**
 * DEL: removes keys.
 *
 * Format:
 *   DEL key [key ...]
 *
 * Reply:
 *   Integer: the number of keys that existed and were removed.
 */
import { integerReply } from '../results.js';
import { writeHandler, type CommandSpec } from '../spec.js';

export const del: CommandSpec = {
  name: 'del',
  arity: -2,
  flags: ['write'],
  aclCategories: ['@keyspace', '@write', '@slow'],
  keys: { first: 1, last: -1, step: 1 },
  keySpecFlags: ['RM', 'delete'],
  tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
  docs: {
    summary: 'Deletes one or more keys.',
    since: '1.0.0',
    group: 'generic',
    complexity: 'O(N) where N is the number of keys that will be removed.',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0, multiple: true }],
    format: 'DEL key [key ...]',
    reply: 'Integer: the number of keys that existed and were removed.',
  },
  handler: writeHandler({
    parse: (args) => ({ type: 'keys.del', keys: args.rest() }),
    reply: integerReply,
  }),
};
