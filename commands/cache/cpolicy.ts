/**
 * CPOLICY: how a write reaches the other holders of a key: INVALIDATE (they drop their line,
 * the default) or UPDATE (they receive the new value and stay S). Replicated.
 *
 * Format:
 *   CPOLICY <INVALIDATE | UPDATE | DEFAULT> [key]
 *
 * Reply:
 *   Simple string OK. Without a key the cluster-wide policy changes; with a key that key's own
 *   policy (DEFAULT forgets it). Errors: `-ERR syntax error`, `-ERR the cluster-wide policy
 *   must be INVALIDATE or UPDATE`, `-ERR too many per-key cache policies ...`.
 */
import { CommandError, SYNTAX_ERROR } from '../args.js';
import { OK, error, type Reply } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import type { Result } from '../state-machine.js';
import type { CacheWritePolicy } from './operations.js';
import { cacheOf } from './common.js';

function reply(result: Result): Reply {
  return result.type === 'error' ? error(result.message) : OK;
}

export const cpolicy: CommandSpec = {
  name: 'cpolicy',
  arity: -2,
  flags: ['may_replicate'],
  aclCategories: ['@write', '@slow'],
  keys: { first: 2, last: 2, step: 1 },
  docs: {
    summary: 'Sets the write propagation policy (invalidate or update) of a key or of the cluster.',
    since: '0.1.0',
    group: 'cache',
    complexity: 'O(1)',
    arguments: [
      {
        name: 'policy',
        type: 'oneof',
        arguments: [
          { name: 'invalidate', type: 'pure-token', token: 'INVALIDATE' },
          { name: 'update', type: 'pure-token', token: 'UPDATE' },
          { name: 'default', type: 'pure-token', token: 'DEFAULT' },
        ],
      },
      { name: 'key', type: 'key', keySpecIndex: 0, optional: true },
    ],
    format: 'CPOLICY <INVALIDATE | UPDATE | DEFAULT> [key]',
    reply: 'OK. Without a key: the cluster-wide policy; with a key: its own (DEFAULT forgets it).',
  },
  handler: {
    kind: 'local',
    run(_ctx, args, dispatch) {
      const word = args.keyword();
      let policy: CacheWritePolicy;
      if (word === 'INVALIDATE') policy = 'invalidate';
      else if (word === 'UPDATE') policy = 'update';
      else if (word === 'DEFAULT') policy = 'default';
      else throw new CommandError(SYNTAX_ERROR);
      const key = args.optional() ?? null;
      args.end();
      return cacheOf(dispatch).setPolicy(key, policy).then(reply);
    },
  },
};
