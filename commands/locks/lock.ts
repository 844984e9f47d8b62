/**
 * LOCK: acquires a shared or exclusive lock with a lease, waiting up to WAIT ms in a FIFO queue.
 *
 * Format:
 *   LOCK name owner [SHARED | EXCLUSIVE] [TTL milliseconds] [WAIT milliseconds]
 *
 * Reply:
 *   Integer: the fencing token of the grant (strictly increasing per lock over all grants). The
 *   owner already holding the lock gets its same token back (a resend is harmless); a SHARED
 *   holder asking for EXCLUSIVE upgrades once the other sharers leave (a new token). Nil when
 *   not granted within WAIT (0 or absent: try once). `-DEADLOCK a -> b -> a on locks x, y` when
 *   waiting would close a cycle of owners waiting for each other (nothing is queued).
 *   `-TRYAGAIN outcome unknown: ...` when no answer came within WAIT plus a margin (the
 *   cluster is unreachable): resend the LOCK, which returns the token if it was granted.
 *   TTL defaults to 30000 ms.
 *
 * A blocked LOCK holds only its own connection (like BLPOP): it registers a waiter on this
 * node (commands/waiters.ts) that the state machine wakes when a release, an expiry or the
 * WAIT deadline serves it, in leader time; when the client disconnects it withdraws its wait.
 */
import { CommandError, SYNTAX_ERROR, type ArgCursor } from '../args.js';
import type { CommandContext } from '../context.js';
import { TooManyWaitersError } from '../waiters.js';
import { NIL, error, integer, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec, type DispatchInfo } from '../spec.js';
import type { Result } from '../state-machine.js';
import { lockKey, ttlArgument, waitArgument } from './args.js';
import type { LockMode, LockOperation } from './operations.js';
import { DEFAULT_TTL_MS } from './store.js';

/**
 * How long past WAIT a blocked LOCK waits for its wake-up before answering "outcome unknown":
 * several election timeouts, so a leader change alone never causes it.
 */
export const WAKE_UP_MARGIN_MS = 10_000;

type AcquireOperation = Extract<LockOperation, { type: 'lock.acquire' }>;

export function parseLock(args: ArgCursor): AcquireOperation {
  const name = lockKey(args.required(), 'name');
  const owner = lockKey(args.required(), 'owner');
  let mode: LockMode | null = null;
  let ttlMs = DEFAULT_TTL_MS;
  let waitMs = 0;
  while (args.hasMore()) {
    const word = args.keyword();
    switch (word) {
      case 'SHARED':
      case 'EXCLUSIVE': {
        const m = word === 'SHARED' ? 'shared' : 'exclusive';
        if (mode !== null && mode !== m) throw new CommandError(SYNTAX_ERROR);
        mode = m;
        break;
      }
      case 'TTL':
        ttlMs = ttlArgument(args.required());
        break;
      case 'WAIT':
        waitMs = waitArgument(args.required());
        break;
      default:
        throw new CommandError(SYNTAX_ERROR);
    }
  }
  return { type: 'lock.acquire', name, owner, mode: mode ?? 'exclusive', ttlMs, waitMs, waiterId: '' };
}

export function lockReply(result: Result): Reply {
  if (result.type === 'error') return error(result.message);
  if (result.type === 'tree') return typeof result.value === 'number' ? integer(result.value) : NIL;
  return error(`ERR unexpected result ${result.type}`);
}

async function blockedLock(ctx: CommandContext, info: DispatchInfo, op: AcquireOperation): Promise<Reply> {
  const executor = info.executor;
  let waiter;
  try {
    waiter = executor.waiters.create();
  } catch (e) {
    if (e instanceof TooManyWaitersError) return error(`ERR ${e.message}`);
    throw e;
  }
  const withWaiter: AcquireOperation = { ...op, waiterId: waiter.id };
  let first: Result;
  try {
    first = await executor.write(withWaiter);
  } catch (e) {
    waiter.release();
    throw e;
  }
  if (first.type !== 'blocked') {
    waiter.release();
    return lockReply(first);
  }
  const cancel = (): void => {
    // Best effort: if it cannot be proposed now, the wait's deadline removes the waiter anyway.
    void Promise.resolve()
      .then(() => executor.write({ type: 'lock.cancel', name: op.name, waiterId: waiter.id }))
      .catch(() => undefined);
  };
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: () => void = () => undefined;
  // null: no wake-up in time; 'closed': the client left (its wait is withdrawn, nobody reads the reply).
  const gaveUp = new Promise<null | 'closed'>((resolve) => {
    timer = setTimeout(() => resolve(null), op.waitMs + WAKE_UP_MARGIN_MS);
    unsubscribe = ctx.session.onClose(() => resolve('closed'));
  });
  try {
    const result = await Promise.race([waiter.woken, gaveUp]);
    if (result !== null && result !== 'closed') return lockReply(result);
    cancel();
    if (result === 'closed') return error('ERR client closed the connection while waiting');
    return error(
      `TRYAGAIN outcome unknown: no answer from the cluster within WAIT + ${WAKE_UP_MARGIN_MS} ms; resend LOCK to learn whether it was granted`,
    );
  } finally {
    clearTimeout(timer);
    unsubscribe();
    waiter.release();
  }
}

export const lock: CommandSpec = {
  name: 'lock',
  arity: -3,
  // 'local' kind (it blocks on a waiter), so not flagged 'write', though it proposes one.
  flags: ['denyoom'],
  aclCategories: ['@write', '@slow', '@blocking'],
  keys: NO_KEYS,
  docs: {
    summary: 'Acquires a shared or exclusive lock with a lease; returns its fencing token.',
    since: '0.1.0',
    group: 'lock',
    complexity: 'O(1) granted; O(owners + waits) to check for a deadlock when it has to wait',
    arguments: [
      { name: 'name', type: 'string' },
      { name: 'owner', type: 'string' },
      {
        name: 'mode',
        type: 'oneof',
        optional: true,
        arguments: [
          { name: 'shared', type: 'pure-token', token: 'SHARED' },
          { name: 'exclusive', type: 'pure-token', token: 'EXCLUSIVE' },
        ],
      },
      { name: 'milliseconds', type: 'integer', token: 'TTL', optional: true },
      { name: 'milliseconds', type: 'integer', token: 'WAIT', optional: true },
    ],
    format: 'LOCK name owner [SHARED | EXCLUSIVE] [TTL milliseconds] [WAIT milliseconds]',
    reply:
      'Integer: the fencing token (the same one to the owner already holding it); nil when not granted within WAIT; -DEADLOCK naming the cycle when waiting would close one.',
  },
  handler: {
    kind: 'local',
    run(ctx, args, info): Reply | Promise<Reply> {
      const op = parseLock(args);
      if (op.waitMs > 0) return blockedLock(ctx, info, op);
      const r = info.executor.write(op);
      return r instanceof Promise ? r.then(lockReply) : lockReply(r);
    },
  },
};
