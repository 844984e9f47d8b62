/**
 * LOCK.RENEW: extends an owner's lease on a lock it holds.
 *
 * Format:
 *   LOCK.RENEW name owner [TTL milliseconds]
 *
 * Reply:
 *   Integer: the hold's fencing token (unchanged); the lease now runs TTL ms (default: the
 *   TTL of the grant or of the last renewal) from the renewal's leader time.
 *   `-LOCKLOST ...` when the owner does not hold the lock: its lease already expired, or it
 *   was released, force-released or taken over. A lost lock is never silently re-acquired.
 */
import type { ArgCursor } from '../args.js';
import { CommandError, SYNTAX_ERROR } from '../args.js';
import { NO_KEYS, writeHandler, type CommandSpec } from '../spec.js';
import { lockKey, ttlArgument } from './args.js';
import { lockReply } from './lock.js';
import type { LockOperation } from './operations.js';

type RenewOperation = Extract<LockOperation, { type: 'lock.renew' }>;

function parseRenew(args: ArgCursor): RenewOperation {
  const name = lockKey(args.required(), 'name');
  const owner = lockKey(args.required(), 'owner');
  let ttlMs = 0;
  if (args.hasMore()) {
    if (args.keyword() !== 'TTL') throw new CommandError(SYNTAX_ERROR);
    ttlMs = ttlArgument(args.required());
  }
  args.end();
  return { type: 'lock.renew', name, owner, ttlMs };
}

export const lockRenew: CommandSpec = {
  name: 'lock.renew',
  arity: -3,
  flags: ['write', 'fast'],
  aclCategories: ['@write', '@fast'],
  keys: NO_KEYS,
  docs: {
    summary: "Extends an owner's lease on a lock it holds.",
    since: '0.1.0',
    group: 'lock',
    complexity: 'O(1)',
    arguments: [
      { name: 'name', type: 'string' },
      { name: 'owner', type: 'string' },
      { name: 'milliseconds', type: 'integer', token: 'TTL', optional: true },
    ],
    format: 'LOCK.RENEW name owner [TTL milliseconds]',
    reply:
      'Integer: the fencing token of the hold; -LOCKLOST when the lease already expired or the lock was released or taken over.',
  },
  handler: writeHandler({ parse: parseRenew, reply: lockReply }),
};
