/**
 * UNLOCK: releases an owner's hold on a lock; the next waiters are granted in the same apply.
 *
 * Format:
 *   UNLOCK name owner
 *
 * Reply:
 *   Integer: 1 if the owner held the lock and released it, 0 if it did not hold it (never
 *   held, already released, or its lease expired).
 */
import type { ArgCursor } from '../args.js';
import { error, integer, type Reply } from '../reply.js';
import { NO_KEYS, writeHandler, type CommandSpec } from '../spec.js';
import type { Result } from '../state-machine.js';
import { lockKey } from './args.js';
import type { LockOperation } from './operations.js';

type ReleaseOperation = Extract<LockOperation, { type: 'lock.release' }>;

function parseUnlock(args: ArgCursor): ReleaseOperation {
  const name = lockKey(args.required(), 'name');
  const owner = lockKey(args.required(), 'owner');
  return { type: 'lock.release', name, owner };
}

/** An integer result as a reply (errors as errors): UNLOCK and LOCK.FORCERELEASE. */
export function integerReply(result: Result): Reply {
  if (result.type === 'integer') return integer(result.value);
  if (result.type === 'error') return error(result.message);
  return error(`ERR unexpected result ${result.type}`);
}

export const unlock: CommandSpec = {
  name: 'unlock',
  arity: 3,
  flags: ['write', 'fast'],
  aclCategories: ['@write', '@fast'],
  keys: NO_KEYS,
  docs: {
    summary: "Releases an owner's hold on a lock, granting it to the next waiters.",
    since: '0.1.0',
    group: 'lock',
    complexity: 'O(1) plus O(N) for the N waiters granted',
    arguments: [
      { name: 'name', type: 'string' },
      { name: 'owner', type: 'string' },
    ],
    format: 'UNLOCK name owner',
    reply: 'Integer: 1 if released, 0 if the owner did not hold the lock.',
  },
  handler: writeHandler({ parse: parseUnlock, reply: integerReply }),
};
