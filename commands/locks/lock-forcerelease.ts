/**
 * LOCK.FORCERELEASE: an administrator's release of a lock: every hold, or one owner's. The
 * next waiters are granted in the same apply; a fenced write with the released holders'
 * tokens is refused once the lock is granted again.
 *
 * Format:
 *   LOCK.FORCERELEASE name [owner]
 *
 * Reply:
 *   Integer: the number of holds released (0 when there were none).
 */
import type { ArgCursor } from '../args.js';
import { NO_KEYS, writeHandler, type CommandSpec } from '../spec.js';
import { lockKey } from './args.js';
import type { LockOperation } from './operations.js';
import { integerReply } from './unlock.js';

type ForceOperation = Extract<LockOperation, { type: 'lock.force-release' }>;

function parseForceRelease(args: ArgCursor): ForceOperation {
  const name = lockKey(args.required(), 'name');
  const raw = args.optional();
  args.end();
  return { type: 'lock.force-release', name, owner: raw === undefined ? null : lockKey(raw, 'owner') };
}

export const lockForceRelease: CommandSpec = {
  name: 'lock.forcerelease',
  arity: -2,
  flags: ['write', 'admin'],
  aclCategories: ['@write', '@admin', '@dangerous', '@slow'],
  keys: NO_KEYS,
  docs: {
    summary: "Releases every hold on a lock (or one owner's), whoever holds it.",
    since: '0.1.0',
    group: 'lock',
    complexity: 'O(N) for the N holds released and waiters granted',
    arguments: [
      { name: 'name', type: 'string' },
      { name: 'owner', type: 'string', optional: true },
    ],
    format: 'LOCK.FORCERELEASE name [owner]',
    reply: 'Integer: the number of holds released.',
  },
  handler: writeHandler({ parse: parseForceRelease, reply: integerReply }),
};
