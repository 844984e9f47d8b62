/**
 * QACK: acknowledges deliveries: their messages leave the queue for good.
 *
 * Format:
 *   QACK queue [FENCE name token] receipt [receipt ...]
 *
 * Reply:
 *   Integer: how many messages were removed. A receipt ("id-delivery", from QPOP) of a
 *   message no longer in the queue (acked already: a resend is harmless; or dead-lettered)
 *   counts 0. A delivery whose lease ran out and which was delivered again since is refused:
 *   `-LEASELOST ...`, and then nothing of this QACK is acked (all or nothing). A lease that ran
 *   out but whose message was not delivered again yet can still be acked.
 *   Errors: `-ERR invalid receipt ...` for anything but id-delivery.
 *   With FENCE (Concord): `-FENCED ...` and nothing acked when `token` is older than lock
 *   `name`'s latest fencing token (commands/locks/fence.ts). FENCE comes right after the queue
 *   name, where a receipt (always "id-delivery") can never be mistaken for it.
 */
import { writeHandler, type CommandSpec } from '../spec.js';
import { CommandError, SYNTAX_ERROR, type ArgCursor } from '../args.js';
import { integerReply } from '../results.js';
import { receiptArgument } from './common.js';
import type { QueueOperation } from './operations.js';
import { MAX_ACK_RECEIPTS } from './store.js';
import { FENCE_ARGUMENT, fenceArguments, withFence, type Fence } from '../locks/fence.js';
import type { FencedOperation } from '../locks/operations.js';

type AckOperation = Extract<QueueOperation, { type: 'queues.ack' }>;

export function parseQack(args: ArgCursor): AckOperation | FencedOperation {
  const queue = args.required();
  let fence: Fence | null = null;
  if (args.peekKeyword() === 'FENCE') {
    args.keyword();
    fence = fenceArguments(args);
  }
  const raw = args.rest();
  if (raw.length === 0) throw new CommandError(SYNTAX_ERROR);
  if (raw.length > MAX_ACK_RECEIPTS)
    throw new CommandError(`ERR a QACK takes at most ${MAX_ACK_RECEIPTS} receipts`);
  return withFence<AckOperation>({ type: 'queues.ack', queue, receipts: raw.map(receiptArgument) }, fence);
}

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
      FENCE_ARGUMENT,
      { name: 'receipt', type: 'string', multiple: true },
    ],
    format: 'QACK queue [FENCE name token] receipt [receipt ...]',
    reply:
      "Integer: messages removed (a receipt of a message already gone counts 0). -LEASELOST, and nothing acked, if a delivery was superseded by a later one. With FENCE: -FENCED, and nothing acked, when the token is older than the lock's latest.",
  },
  // A refused fence is an error result, which integerReply already turns into the error reply.
  handler: writeHandler<AckOperation | FencedOperation>({ parse: parseQack, reply: integerReply }),
};
