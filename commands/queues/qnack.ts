/**
 * QNACK: gives a leased message back, now or after a delay.
 *
 * Format:
 *   QNACK queue receipt [DELAY milliseconds]
 *
 * Reply:
 *   Integer: 1 when the delivery was given back; 0 when its message is no longer leased by it
 *   (acked, or its lease ran out already). A message given back after its last allowed
 *   delivery (QCONFIG MAXDELIVERIES, default 20) moves to the dead-letter queue instead.
 *   Errors: `-LEASELOST ...` for a delivery superseded by a later one, `-ERR ...` for a bad
 *   receipt or DELAY.
 */
import { writeHandler, type CommandSpec } from '../spec.js';
import { integerReply } from '../results.js';
import { receiptWithDuration } from './common.js';
import type { QueueOperation } from './operations.js';

type NackOperation = Extract<QueueOperation, { type: 'queues.nack' }>;

export const qnack: CommandSpec = {
  name: 'qnack',
  arity: -3,
  flags: ['write', 'fast'],
  aclCategories: ['@write', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'update'],
  docs: {
    summary: 'Gives a leased message back to its queue, now or after a delay.',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(log N) where N is the number of messages given back.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'receipt', type: 'string' },
      { name: 'milliseconds', type: 'integer', token: 'DELAY', optional: true },
    ],
    format: 'QNACK queue receipt [DELAY milliseconds]',
    reply:
      'Integer: 1 when given back, 0 when the delivery no longer holds its message. -LEASELOST if superseded.',
  },
  handler: writeHandler<NackOperation>({
    parse(args) {
      const { queue, receipt, ms } = receiptWithDuration(args, 'DELAY', true);
      return { type: 'queues.nack', queue, receipt, delayMs: ms };
    },
    reply: integerReply,
  }),
};
