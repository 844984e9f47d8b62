/**
 * Helpers shared by the cache commands: reaching the node's CacheService and turning its
 * results into replies. Must never hold protocol logic (server/cache/agent.ts does).
 */
import assert from 'node:assert';
import { CommandError } from '../args.js';
import { array, bulk, integer, NIL, type Reply } from '../reply.js';
import type { DispatchInfo } from '../spec.js';
import type { ResultTree } from '../state-machine.js';
import type { CacheService } from './service.js';

export const NO_CACHE = 'ERR the coherent cache is not available on this server';

export function cacheOf(dispatch: DispatchInfo): CacheService {
  if (dispatch.cache === undefined) throw new CommandError(NO_CACHE);
  return dispatch.cache;
}

/** A ResultTree as a RESP reply: text and bytes as bulk strings, numbers as integers. */
export function treeReply(tree: ResultTree): Reply {
  if (tree === null) return NIL;
  if (typeof tree === 'boolean') return integer(tree ? 1 : 0);
  if (typeof tree === 'number' || typeof tree === 'bigint') return integer(tree);
  if (typeof tree === 'string' || Buffer.isBuffer(tree)) return bulk(tree);
  assert.ok(Array.isArray(tree), 'result tree node');
  return array((tree as readonly ResultTree[]).map(treeReply));
}
