/**
 * DBSIZE: the number of keys.
 *
 * Format:
 *   DBSIZE
 *
 * Reply:
 *   Integer: the number of keys held, counting expired keys not yet reclaimed (as Redis does;
 *   reclamation is deterministic and happens as writes are applied).
 */
import { integer } from '../reply.js';
import { NO_KEYS, readHandler, type CommandSpec } from '../spec.js';

export const dbsize: CommandSpec = {
  name: 'dbsize',
  arity: 1,
  flags: ['readonly', 'fast'],
  aclCategories: ['@keyspace', '@read', '@fast'],
  keys: NO_KEYS,
  tips: ['request_policy:all_shards', 'response_policy:agg_sum'],
  docs: {
    summary: 'Returns the number of keys in the database.',
    since: '1.0.0',
    group: 'server',
    complexity: 'O(1)',
    format: 'DBSIZE',
    reply: 'Integer: the number of keys held, counting expired keys not yet reclaimed.',
  },
  handler: readHandler<null>({
    parse: () => null,
    query: (sm) => integer(sm.keys.size),
  }),
};
