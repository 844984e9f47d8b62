/**
 * QPENDING: the leased messages of a queue (like XPENDING).
 *
 * Format:
 *   QPENDING queue [COUNT count] [CONSUMER name]
 *
 * Reply:
 *   Array, lowest id first, of [id, consumer, deliveries, deadline-ms (ms since epoch),
 *   ms-left (may be <= 0 for a lease about to be expired), receipt]; at most COUNT entries
 *   (1 to 10,000, default 100), only CONSUMER's when given. Empty for an unknown queue.
 */
import { CommandError } from '../args.js';
import { array, bulk, integer } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';
import { boundedInteger } from './common.js';
import { MAX_POP_COUNT } from './store.js';

interface PendingQuery {
  readonly queue: Buffer;
  readonly count: number;
  readonly consumer: Buffer | null;
}

export const qpending: CommandSpec = {
  name: 'qpending',
  arity: -2,
  flags: ['readonly'],
  aclCategories: ['@read', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  docs: {
    summary: 'Lists leased messages with their consumer, delivery count and lease deadline.',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(N) where N is the number of messages in the queue.',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'count', type: 'integer', token: 'COUNT', optional: true },
      { name: 'name', type: 'string', token: 'CONSUMER', optional: true },
    ],
    format: 'QPENDING queue [COUNT count] [CONSUMER name]',
    reply: 'Array of [id, consumer, deliveries, deadline-ms, ms-left, receipt], lowest id first.',
  },
  handler: readHandler<PendingQuery>({
    parse(args) {
      const queue = args.required();
      let count = 100;
      let consumer: Buffer | null = null;
      while (args.hasMore()) {
        const word = args.keyword();
        if (!args.hasMore()) throw new CommandError('ERR syntax error');
        if (word === 'COUNT') count = boundedInteger(args, 'COUNT', 1, MAX_POP_COUNT);
        else if (word === 'CONSUMER') consumer = args.required();
        else throw new CommandError('ERR syntax error');
      }
      return { queue, count, consumer };
    },
    query: (sm, q, nowMs) =>
      array(
        sm.queues
          .pending(q.queue, q.count, q.consumer)
          .map((p) =>
            array([
              integer(p.id),
              bulk(p.consumer),
              integer(p.deliveries),
              integer(p.deadlineMs),
              integer(p.deadlineMs - nowMs),
              bulk(p.receipt),
            ]),
          ),
      ),
  }),
};
