/**
 * CDEL: deletes a key of the coherent cache through the Raft log.
 *
 * Format:
 *   CDEL key [FENCE name token]
 *
 * Reply:
 *   Integer: 1 if the key existed, 0 otherwise; once durable and every other node holding
 *   the key has dropped its line or that node's lease has run out.
 *   With FENCE (Concord): `-FENCED ...` when `token` is older than lock `name`'s latest fencing
 *   token (commands/locks/fence.ts); nothing was deleted, so no node's line changes.
 */
import assert from 'node:assert';
import { error, integer, type Reply } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import type { Result } from '../state-machine.js';
import { cacheOf } from './common.js';
import { CommandError, SYNTAX_ERROR } from '../args.js';
import { FENCE_ARGUMENT, fenceArguments, type Fence } from '../locks/fence.js';

function reply(result: Result): Reply {
  if (result.type === 'error') return error(result.message);
  assert.ok(result.type === 'tree' && Array.isArray(result.value), `unexpected CDEL result ${result.type}`);
  return integer(result.value[2] === 1 ? 1 : 0);
}

export const cdel: CommandSpec = {
  name: 'cdel',
  arity: -2,
  flags: ['may_replicate'],
  aclCategories: ['@write', '@keyspace', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RM', 'delete'],
  docs: {
    summary: 'Deletes a key of the coherent cache; completes once no node can serve the old value.',
    since: '0.1.0',
    group: 'cache',
    complexity: 'O(1) plus one message per other holder of the key',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }, FENCE_ARGUMENT],
    format: 'CDEL key [FENCE name token]',
    reply:
      "Integer: 1 if the key existed, 0 otherwise, once no other node can serve the old value. With FENCE: -FENCED, and nothing deleted, when the token is older than the lock's latest.",
  },
  handler: {
    kind: 'local',
    run(_ctx, args, dispatch) {
      const key = args.required();
      let fence: Fence | null = null;
      if (args.hasMore()) {
        if (args.keyword() !== 'FENCE') throw new CommandError(SYNTAX_ERROR);
        fence = fenceArguments(args);
        args.end();
      }
      return cacheOf(dispatch).del(key, fence).then(reply);
    },
  },
};
