/**
 * QPUSH: appends messages to a queue, in order, as one replicated operation.
 *
 * Format:
 *   QPUSH queue [IDEMP key] [DELAY milliseconds] payload [payload ...]
 *
 * Reply:
 *   Array of integers: the new messages' ids, in payload order (ids are per queue, increasing,
 *   never reused). With IDEMP, a resend with the same key within the queue's idempotency
 *   window (QCONFIG IDEMPWINDOW, default 5 minutes of leader time) adds nothing and replies
 *   the ids of the first push. DELAY makes the messages ready only after that many ms.
 *   Errors: `-QFULL ...` when the queue would exceed its MAXLEN (nothing is added),
 *   `-ERR ...` for a payload over 1 MiB, more than 10,000 payloads, a bad DELAY.
 *   The options come first: a first payload spelled IDEMP or DELAY needs `DELAY 0` before it.
 */
import { CommandError } from '../args.js';
import { writeHandler, type CommandSpec } from '../spec.js';
import type { QueueOperation } from './operations.js';
import { durationMs, idsReply } from './common.js';
import { MAX_IDEMPOTENCY_KEY_BYTES, MAX_PAYLOAD_BYTES, MAX_PUSH_PAYLOADS } from './store.js';

type PushOperation = Extract<QueueOperation, { type: 'queues.push' }>;

export const qpush: CommandSpec = {
  name: 'qpush',
  arity: -3,
  flags: ['write', 'denyoom', 'fast'],
  aclCategories: ['@write', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'insert'],
  docs: {
    summary: 'Appends messages to a queue and returns their ids.',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(N) where N is the number of payloads.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'key', type: 'string', token: 'IDEMP', optional: true },
      { name: 'milliseconds', type: 'integer', token: 'DELAY', optional: true },
      { name: 'payload', type: 'string', multiple: true },
    ],
    format: 'QPUSH queue [IDEMP key] [DELAY milliseconds] payload [payload ...]',
    reply:
      "Array of integers: the new ids in payload order; a resend with the same IDEMP key within the window replies the first push's ids and adds nothing. -QFULL when the queue would exceed its MAXLEN.",
  },
  handler: writeHandler<PushOperation>({
    parse(args) {
      const queue = args.required();
      let idempotencyKey: Buffer | null = null;
      let delayMs = 0;
      for (;;) {
        const word = args.peekKeyword();
        if (word === 'IDEMP' && idempotencyKey === null && args.remaining >= 3) {
          args.required();
          idempotencyKey = args.required();
          if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_BYTES)
            throw new CommandError(`ERR IDEMP key longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes`);
        } else if (word === 'DELAY' && args.remaining >= 3) {
          args.required();
          delayMs = durationMs(args, 'DELAY', true);
        } else {
          break;
        }
      }
      const payloads = args.rest();
      if (payloads.length === 0) throw new CommandError("ERR wrong number of arguments for 'qpush' command");
      if (payloads.length > MAX_PUSH_PAYLOADS)
        throw new CommandError(`ERR a QPUSH takes at most ${MAX_PUSH_PAYLOADS} payloads`);
      for (const p of payloads)
        if (p.length > MAX_PAYLOAD_BYTES)
          throw new CommandError(`ERR payload larger than ${MAX_PAYLOAD_BYTES} bytes`);
      return { type: 'queues.push', queue, payloads, idempotencyKey, delayMs };
    },
    reply: idsReply,
  }),
};
