/**
 * FLUSHALL and FLUSHDB: remove every key (Concord has the one database 0, so both do the same),
 * the coherent cache's values included (CSET keys; their per-key policies stay). ASYNC and SYNC
 * are accepted; the removal is one replicated operation (`cache.flushall`) either way. On a
 * server with near-caches the reply waits, like a CSET, until no node can still serve a line
 * of the flushed home (every node dropped its lines, or its lease ran out).
 *
 * Format:
 *   FLUSHALL [ASYNC | SYNC]
 *   FLUSHDB [ASYNC | SYNC]
 *
 * Reply:
 *   Simple string OK. `-ERR syntax error` for another argument.
 */
import { CommandError, SYNTAX_ERROR, type ArgCursor } from '../args.js';
import { OK, error, type Reply } from '../reply.js';
import type { ArgumentDoc, CommandSpec, LocalHandler } from '../spec.js';
import { NO_KEYS } from '../spec.js';
import type { Result } from '../state-machine.js';

const MODE: ArgumentDoc = {
  name: 'flush-type',
  type: 'oneof',
  optional: true,
  arguments: [
    { name: 'async', type: 'pure-token', token: 'ASYNC', since: '4.0.0' },
    { name: 'sync', type: 'pure-token', token: 'SYNC', since: '6.2.0' },
  ],
};

function parseFlush(args: ArgCursor): void {
  if (args.remaining > 1) throw new CommandError(SYNTAX_ERROR);
  if (args.hasMore()) {
    const mode = args.keyword();
    if (mode !== 'ASYNC' && mode !== 'SYNC') throw new CommandError(SYNTAX_ERROR);
  }
}

function reply(result: Result): Reply {
  // cache.flushall answers tree [version]: the index of the flush, which FLUSHALL does not show.
  return result.type === 'error' ? error(result.message) : OK;
}

/**
 * Through the node's cache agent when there is one (it runs the near-cache flush round on the
 * leader); otherwise straight to the executor (no near-cache can hold a line).
 */
const handler: LocalHandler = {
  kind: 'local',
  run(_ctx, args, dispatch) {
    parseFlush(args);
    if (dispatch.cache !== undefined) return dispatch.cache.flushAll().then(reply);
    const r = dispatch.executor.write({ type: 'cache.flushall' });
    return r instanceof Promise ? r.then(reply) : reply(r);
  },
};

export const flushall: CommandSpec = {
  name: 'flushall',
  arity: -1,
  flags: ['write'],
  aclCategories: ['@keyspace', '@write', '@slow', '@dangerous'],
  keys: NO_KEYS,
  tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
  docs: {
    summary: 'Removes all keys from all databases.',
    since: '1.0.0',
    group: 'server',
    complexity: 'O(N) where N is the total number of keys in all databases',
    arguments: [MODE],
    format: 'FLUSHALL [ASYNC | SYNC]',
    reply:
      "Simple string OK, once the keyspace and the cache's home are empty and no node's near-cache can still serve a flushed value.",
  },
  handler,
};

export const flushdb: CommandSpec = {
  name: 'flushdb',
  arity: -1,
  flags: ['write'],
  aclCategories: ['@keyspace', '@write', '@slow', '@dangerous'],
  keys: NO_KEYS,
  tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
  docs: {
    summary: 'Remove all keys from the current database.',
    since: '1.0.0',
    group: 'server',
    complexity: 'O(N) where N is the number of keys in the selected database',
    arguments: [MODE],
    format: 'FLUSHDB [ASYNC | SYNC]',
    reply:
      "Simple string OK, once the keyspace and the cache's home are empty and no node's near-cache can still serve a flushed value.",
  },
  handler,
};
