/**
 * QTOUCH: extends a lease while work on the message goes on.
 *
 * Format:
 *   QTOUCH queue receipt [VISIBILITY milliseconds]
 *
 * Reply:
 *   Integer: the lease's new deadline (ms since epoch, leader time): now plus VISIBILITY, or
 *   plus the lease's own visibility when omitted.
 *   Errors: `-LEASELOST ...` when the delivery no longer holds the message (its lease ran
 *   out, it was given back, acked or delivered again), `-ERR ...` for a bad receipt.
 */
import { writeHandler, type CommandSpec } from '../spec.js';
import { integerReply } from '../results.js';
import { receiptWithDuration } from './common.js';
import type { QueueOperation } from './operations.js';

type TouchOperation = Extract<QueueOperation, { type: 'queues.touch' }>;

export const qtouch: CommandSpec = {
  name: 'qtouch',
  arity: -3,
  flags: ['write', 'fast'],
  aclCategories: ['@write', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'update'],
  docs: {
    summary: 'Extends the lease of a delivery.',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(log N) where N is the number of timers.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'receipt', type: 'string' },
      { name: 'milliseconds', type: 'integer', token: 'VISIBILITY', optional: true },
    ],
    format: 'QTOUCH queue receipt [VISIBILITY milliseconds]',
    reply:
      'Integer: the new lease deadline (ms since epoch). -LEASELOST when the delivery no longer holds the message.',
  },
  handler: writeHandler<TouchOperation>({
    parse(args) {
      const { queue, receipt, ms } = receiptWithDuration(args, 'VISIBILITY', false);
      return { type: 'queues.touch', queue, receipt, visibilityMs: ms };
    },
    reply: integerReply,
  }),
};
