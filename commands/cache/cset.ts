/**
 * CSET: writes a key of the coherent cache through the Raft log.
 *
 * Format:
 *   CSET key value [PX milliseconds] [INVALIDATE | UPDATE] [FENCE name token]
 *
 * Reply:
 *   Simple string OK once the write is durable AND every other node holding the key has
 *   dropped its line (INVALIDATE, the default) or taken the new value (UPDATE), or that node's
 *   lease has run out. The writer's node then holds the key in M. Without INVALIDATE/UPDATE
 *   the key's policy applies (CPOLICY), else the cluster-wide one. A value with PX is always
 *   invalidated, never pushed. Errors: `-ERR syntax error`, `-ERR invalid expire time in
 *   'cset' command`.
 *   With FENCE (Concord): `-FENCED ...` when `token` is older than lock `name`'s latest fencing
 *   token (commands/locks/fence.ts); nothing was written, so no node's line changes.
 */
import { CommandError, SYNTAX_ERROR } from '../args.js';
import { OK, error, type Reply } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import type { Result } from '../state-machine.js';
import { expireArgumentMs } from '../keys/set.js';
import type { CacheWritePolicy } from './operations.js';
import { cacheOf } from './common.js';
import { FENCE_ARGUMENT, fenceArguments, type Fence } from '../locks/fence.js';

const INVALID_EXPIRE = "ERR invalid expire time in 'cset' command";

function reply(result: Result): Reply {
  return result.type === 'error' ? error(result.message) : OK;
}

export const cset: CommandSpec = {
  name: 'cset',
  arity: -3,
  flags: ['may_replicate', 'denyoom'],
  aclCategories: ['@write', '@string', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  docs: {
    summary: 'Writes a key of the coherent cache; completes once no node can serve the old value.',
    since: '0.1.0',
    group: 'cache',
    complexity: 'O(1) plus one message per other holder of the key',
    arguments: [
      { name: 'key', type: 'key', keySpecIndex: 0 },
      { name: 'value', type: 'string' },
      { name: 'milliseconds', type: 'integer', token: 'PX', optional: true },
      {
        name: 'policy',
        type: 'oneof',
        optional: true,
        arguments: [
          { name: 'invalidate', type: 'pure-token', token: 'INVALIDATE' },
          { name: 'update', type: 'pure-token', token: 'UPDATE' },
        ],
      },
      FENCE_ARGUMENT,
    ],
    format: 'CSET key value [PX milliseconds] [INVALIDATE | UPDATE] [FENCE name token]',
    reply:
      "OK once durable and every other holder has invalidated (or updated) its line or its lease ran out. With FENCE: -FENCED, and nothing written, when the token is older than the lock's latest.",
  },
  handler: {
    kind: 'local',
    run(_ctx, args, dispatch) {
      const key = args.required();
      const value = args.required();
      let ttlMs = 0;
      let policy: CacheWritePolicy = 'default';
      let fence: Fence | null = null;
      while (args.hasMore()) {
        const word = args.keyword();
        if (word === 'PX' && ttlMs === 0 && args.hasMore()) {
          ttlMs = expireArgumentMs(args.required(), 1, true, INVALID_EXPIRE);
        } else if ((word === 'INVALIDATE' || word === 'UPDATE') && policy === 'default') {
          policy = word === 'UPDATE' ? 'update' : 'invalidate';
        } else if (word === 'FENCE' && fence === null) {
          fence = fenceArguments(args);
        } else {
          throw new CommandError(SYNTAX_ERROR);
        }
      }
      return cacheOf(dispatch).set(key, value, ttlMs, policy, fence).then(reply);
    },
  },
};
