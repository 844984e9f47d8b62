/**
 * SELECT: chooses the database. Concord has only database 0.
 *
 * Format:
 *   SELECT index
 *
 * Reply:
 *   Simple string OK for 0. `-ERR DB index is out of range` for any other integer,
 *   `-ERR value is not an integer or out of range` for a non-integer.
 */
import { OK, error } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';

export const select: CommandSpec = {
  name: 'select',
  arity: 2,
  flags: ['loading', 'stale', 'fast'],
  aclCategories: ['@keyspace', '@fast'],
  keys: NO_KEYS,
  docs: {
    summary: 'Changes the selected database.',
    since: '1.0.0',
    group: 'connection',
    complexity: 'O(1)',
    arguments: [{ name: 'index', type: 'integer' }],
    format: 'SELECT index',
    reply: 'Simple string OK for database 0; an error for any other index.',
  },
  handler: {
    kind: 'local',
    run(ctx, args) {
      const index = args.int64();
      if (index !== 0n) return error('ERR DB index is out of range');
      ctx.session.db = 0;
      return OK;
    },
  },
};
