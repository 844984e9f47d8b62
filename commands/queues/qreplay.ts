/**
 * QREPLAY: moves messages from a queue's dead-letter queue back to the queue.
 *
 * Format:
 *   QREPLAY queue [COUNT count]
 *
 * Reply:
 *   Integer: messages moved. Up to COUNT (1 to 10,000, default 10,000) READY messages of the
 *   dead-letter queue (QINFO dead-letter-queue names it; leased ones stay) are appended to the
 *   queue, lowest id first, with new ids and a delivery count of 0; fewer when the queue
 *   reaches its MAXLEN. 0 when there is no dead-letter queue.
 */
import { CommandError } from '../args.js';
import { integerReply } from '../results.js';
import { writeHandler, type CommandSpec } from '../spec.js';
import { boundedInteger } from './common.js';
import type { QueueOperation } from './operations.js';
import { MAX_REPLAY_COUNT } from './store.js';

type ReplayOperation = Extract<QueueOperation, { type: 'queues.replay' }>;

export const qreplay: CommandSpec = {
  name: 'qreplay',
  arity: -2,
  flags: ['write'],
  aclCategories: ['@write', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'insert'],
  docs: {
    summary: "Moves ready messages of a queue's dead-letter queue back to the queue.",
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(N) where N is the number of messages moved.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'count', type: 'integer', token: 'COUNT', optional: true },
    ],
    format: 'QREPLAY queue [COUNT count]',
    reply: 'Integer: messages moved back (new ids, delivery count 0).',
  },
  handler: writeHandler<ReplayOperation>({
    parse(args) {
      const queue = args.required();
      let count = MAX_REPLAY_COUNT;
      if (args.hasMore()) {
        if (args.keyword() !== 'COUNT') throw new CommandError('ERR syntax error');
        count = boundedInteger(args, 'COUNT', 1, MAX_REPLAY_COUNT);
      }
      args.end();
      return { type: 'queues.replay', queue, count };
    },
    reply: integerReply,
  }),
};
