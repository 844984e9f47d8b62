/**
 * QACK: acknowledges deliveries: their messages leave the queue for good.
 *
 * Format:
 *   QACK queue receipt [receipt ...]
 *
 * Reply:
 *   Integer: how many messages were removed. A receipt ("id-delivery", from QPOP) of a
 *   message no longer in the queue (acked already: a resend is harmless; or dead-lettered)
 *   counts 0. A delivery whose lease ran out and which was delivered again since is refused:
 *   `-LEASELOST ...`, and then nothing of this QACK is acked (all or nothing). A lease that ran
 *   out but whose message was not delivered again yet can still be acked.
 *   Errors: `-ERR invalid receipt ...` for anything but id-delivery.
 */
import { writeHandler, type CommandSpec } from '../spec.js';
import { CommandError } from '../args.js';
import { integerReply } from '../results.js';
import { receiptArgument } from './common.js';
import type { QueueOperation } from './operations.js';
import { MAX_ACK_RECEIPTS } from './store.js';

type AckOperation = Extract<QueueOperation, { type: 'queues.ack' }>;

export const qack: CommandSpec = {
  name: 'qack',
  arity: -3,
  flags: ['write', 'fast'],
  aclCategories: ['@write', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'delete'],
  docs: {
    summary: 'Acknowledges deliveries by their receipts: their messages leave the queue.',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(N) where N is the number of receipts.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'receipt', type: 'string', multiple: true },
    ],
    format: 'QACK queue receipt [receipt ...]',
    reply:
      'Integer: messages removed (a receipt of a message already gone counts 0). -LEASELOST, and nothing acked, if a delivery was superseded by a later one.',
  },
  handler: writeHandler<AckOperation>({
    parse(args) {
      const queue = args.required();
      const raw = args.rest();
      if (raw.length > MAX_ACK_RECEIPTS)
        throw new CommandError(`ERR a QACK takes at most ${MAX_ACK_RECEIPTS} receipts`);
      return { type: 'queues.ack', queue, receipts: raw.map(receiptArgument) };
    },
    reply: integerReply,
  }),
};
