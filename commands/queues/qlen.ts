/**
 * QLEN: how many messages a queue holds.
 *
 * Format:
 *   QLEN queue
 *
 * Reply:
 *   Integer: messages not yet acked (ready, leased and delayed; not the dead-letter queue's);
 *   0 for a queue that does not exist.
 */
import { integer } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const qlen: CommandSpec = {
  name: 'qlen',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@read', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  docs: {
    summary: 'Returns the number of messages a queue holds (ready, leased and delayed).',
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(1)',
    arguments: [{ name: 'queue', type: 'key', keySpecIndex: 0 }],
    format: 'QLEN queue',
    reply: 'Integer: messages not yet acked (ready, leased, delayed); 0 when the queue does not exist.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => {
      const queue = args.required();
      args.end();
      return queue;
    },
    query: (sm, queue) => integer(sm.queues.length(queue)),
  }),
};
