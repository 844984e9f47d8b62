/**
 * FLUSHALL and FLUSHDB: remove every key (Concord has the one database 0, so both do the same).
 * ASYNC and SYNC are accepted; the removal is one replicated operation either way.
 *
 * Format:
 *   FLUSHALL [ASYNC | SYNC]
 *   FLUSHDB [ASYNC | SYNC]
 *
 * Reply:
 *   Simple string OK. `-ERR syntax error` for another argument.
 */
import { CommandError, SYNTAX_ERROR, type ArgCursor } from '../args.js';
import { okReply } from '../results.js';
import type { ArgumentDoc, CommandSpec } from '../spec.js';
import { NO_KEYS, writeHandler } from '../spec.js';

const MODE: ArgumentDoc = {
  name: 'flush-type',
  type: 'oneof',
  optional: true,
  arguments: [
    { name: 'async', type: 'pure-token', token: 'ASYNC', since: '4.0.0' },
    { name: 'sync', type: 'pure-token', token: 'SYNC', since: '6.2.0' },
  ],
};

function parseFlush(args: ArgCursor): { readonly type: 'keys.flushall' } {
  if (args.remaining > 1) throw new CommandError(SYNTAX_ERROR);
  if (args.hasMore()) {
    const mode = args.keyword();
    if (mode !== 'ASYNC' && mode !== 'SYNC') throw new CommandError(SYNTAX_ERROR);
  }
  return { type: 'keys.flushall' };
}

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
    reply: 'Simple string OK.',
  },
  handler: writeHandler({ parse: parseFlush, reply: okReply }),
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
    reply: 'Simple string OK.',
  },
  handler: writeHandler({ parse: parseFlush, reply: okReply }),
};
