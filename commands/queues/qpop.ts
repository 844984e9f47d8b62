/**
 * QPOP: leases ready messages of a queue, lowest id first, optionally waiting for them.
 *
 * Format:
 *   QPOP queue [COUNT count] [BLOCK milliseconds] [VISIBILITY milliseconds] [CONSUMER name]
 *
 * Reply:
 *   Array of messages, each [id (integer), payload (bulk), deliveries (integer), receipt
 *   (bulk "id-delivery")]; nil (null array) when no message is ready, or when a BLOCK wait
 *   ran out. COUNT (1 to 10,000, default 1) is the most messages leased. Each leased message is
 *   invisible to other consumers for VISIBILITY ms (default: the queue's, 30 s) and is then
 *   delivered again unless acked: QACK/QNACK/QTOUCH take its receipt. BLOCK waits up to that
 *   many ms (0 = 5 minutes, the longest wait) holding only this connection; blocked consumers
 *   are served in arrival order. CONSUMER names the lease holder for QPENDING (default: the
 *   client's name, else its node address and client id).
 *   Errors: `-ERR ...` for bad options or too many blocked consumers; `-TRYAGAIN outcome
 *   unknown ...` when a blocked wait got no answer from the cluster in time (messages it may
 *   have leased are delivered again after their visibility timeout).
 */
import { CommandError, type ArgCursor } from '../args.js';
import { movedReply } from '../cluster/redirect.js';
import type { ClientSession, CommandContext } from '../context.js';
import type { Executor } from '../executor.js';
import { NIL_ARRAY, error, type Reply } from '../reply.js';
import type { CommandSpec } from '../spec.js';
import type { Result } from '../state-machine.js';
import { TooManyWaitersError, type Waiter } from '../waiters.js';
import { boundedInteger, durationMs, messagesReply } from './common.js';
import type { QueueOperation } from './operations.js';
import { MAX_BLOCK_MS, MAX_CONSUMER_BYTES, MAX_POP_COUNT } from './store.js';

type PopOperation = Extract<QueueOperation, { type: 'queues.pop' }>;

/**
 * How long past its own deadline a blocked QPOP waits for the cluster's answer (the timeout
 * is decided at leader time; a leader change or a slow commit delays it) before giving up
 * with an "outcome unknown" error.
 */
export const BLOCK_ANSWER_GRACE_MS = 15_000;

interface PopRequest {
  readonly queue: Buffer;
  readonly count: number;
  readonly visibilityMs: number;
  readonly consumer: Buffer;
  /** null: do not wait. */
  readonly blockMs: number | null;
}

export function parsePop(args: ArgCursor, session: ClientSession): PopRequest {
  const queue = args.required();
  let count = 1;
  let blockMs: number | null = null;
  let visibilityMs = 0;
  let consumer: Buffer | null = null;
  while (args.hasMore()) {
    const word = args.keyword();
    if (!args.hasMore()) throw new CommandError('ERR syntax error');
    switch (word) {
      case 'COUNT':
        count = boundedInteger(args, 'COUNT', 1, MAX_POP_COUNT);
        break;
      case 'BLOCK': {
        const ms = boundedInteger(args, 'BLOCK (ms)', 0, MAX_BLOCK_MS);
        blockMs = ms === 0 ? MAX_BLOCK_MS : ms;
        break;
      }
      case 'VISIBILITY':
        visibilityMs = durationMs(args, 'VISIBILITY');
        break;
      case 'CONSUMER':
        consumer = args.required();
        if (consumer.length > MAX_CONSUMER_BYTES)
          throw new CommandError(`ERR CONSUMER name longer than ${MAX_CONSUMER_BYTES} bytes`);
        break;
      default:
        throw new CommandError('ERR syntax error');
    }
  }
  consumer ??= Buffer.from(session.name !== '' ? session.name : `${session.laddr}#${session.id}`);
  return { queue, count, visibilityMs, consumer, blockMs };
}

function popOperation(p: PopRequest, waiterId: string): PopOperation {
  return {
    type: 'queues.pop',
    queue: p.queue,
    count: p.count,
    visibilityMs: p.visibilityMs,
    consumer: p.consumer,
    waiterId,
    blockMs: waiterId === '' ? 0 : (p.blockMs ?? 0),
  };
}

/** Withdraws a wait the state may hold (client gone, or no answer): best effort. */
function proposeCancel(executor: Executor, queue: Buffer, waiterId: string): void {
  const r = executor.write({ type: 'queues.cancel', queue, waiterId });
  // If it fails (no leader, node stopping) the wait still ends at its deadline.
  if (r instanceof Promise) r.catch(() => undefined);
}

async function blockingPop(
  ctx: CommandContext,
  executor: Executor,
  waiter: Waiter,
  request: PopRequest,
): Promise<Reply> {
  const op = popOperation(request, waiter.id);
  let result: Result;
  try {
    result = await executor.write(op);
  } catch (e) {
    // The wait may or may not be recorded: withdraw it, then report the operating error.
    waiter.release();
    proposeCancel(executor, op.queue, waiter.id);
    throw e;
  }
  if (result.type !== 'blocked') {
    waiter.release();
    return messagesReply(result);
  }
  let unsubscribe: () => void = () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<'closed'>((resolve) => {
    unsubscribe = ctx.session.onClose(() => resolve('closed'));
  });
  const overdue = new Promise<'overdue'>((resolve) => {
    timer = setTimeout(() => resolve('overdue'), op.blockMs + BLOCK_ANSWER_GRACE_MS);
  });
  try {
    const outcome = await Promise.race([waiter.woken, closed, overdue]);
    if (outcome === 'closed' || outcome === 'overdue') {
      waiter.release();
      proposeCancel(executor, op.queue, waiter.id);
      if (outcome === 'closed') return NIL_ARRAY; // nobody reads it
      return error(
        `TRYAGAIN outcome unknown: no answer to the blocked QPOP within ${op.blockMs + BLOCK_ANSWER_GRACE_MS} ms (leased messages are delivered again after their visibility timeout)`,
      );
    }
    return messagesReply(outcome);
  } finally {
    unsubscribe();
    clearTimeout(timer);
  }
}

export const qpop: CommandSpec = {
  name: 'qpop',
  arity: -2,
  flags: ['write', 'blocking'],
  aclCategories: ['@write', '@blocking', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'access', 'update'],
  docs: {
    summary: 'Leases ready messages of a queue (lowest id first), optionally blocking until some are ready.',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(N log M) where N is the count and M the messages given back to the queue.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'count', type: 'integer', token: 'COUNT', optional: true },
      { name: 'milliseconds', type: 'integer', token: 'BLOCK', optional: true },
      { name: 'milliseconds', type: 'integer', token: 'VISIBILITY', optional: true },
      { name: 'name', type: 'string', token: 'CONSUMER', optional: true },
    ],
    format: 'QPOP queue [COUNT count] [BLOCK milliseconds] [VISIBILITY milliseconds] [CONSUMER name]',
    reply:
      'Array of [id, payload, deliveries, receipt] per leased message; nil when none is ready or a BLOCK wait ran out.',
  },
  handler: {
    kind: 'local',
    run(ctx, args, dispatch): Reply | Promise<Reply> {
      const moved = movedReply(ctx, qpop, args.argv);
      if (moved !== null) return moved;
      const request = parsePop(args, ctx.session);
      const executor = dispatch.executor;
      if (request.blockMs === null) {
        const r = executor.write(popOperation(request, ''));
        return r instanceof Promise ? r.then(messagesReply) : messagesReply(r);
      }
      let waiter: Waiter;
      try {
        waiter = executor.waiters.create();
      } catch (e) {
        if (e instanceof TooManyWaitersError) return error(`ERR ${e.message}`);
        throw e;
      }
      return blockingPop(ctx, executor, waiter, request);
    },
  },
};
