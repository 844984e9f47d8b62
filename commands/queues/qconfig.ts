/**
 * QCONFIG: sets a queue's settings (creating the queue if needed).
 *
 * Format:
 *   QCONFIG queue [VISIBILITY milliseconds] [MAXDELIVERIES count] [MAXLEN count]
 *     [IDEMPWINDOW milliseconds]
 *
 * Reply:
 *   OK. VISIBILITY: the default lease length (default 30000); MAXDELIVERIES: deliveries before
 *   a message is dead-lettered (default 20; 0 = never); MAXLEN: messages held at most (default
 *   1,000,000; QPUSH beyond it fails with -QFULL); IDEMPWINDOW: how long a QPUSH IDEMP key is
 *   remembered (default 300000; at most 100,000 keys per queue are kept, oldest forgotten
 *   first). A lowered MAXLEN drops nothing: it only refuses pushes until the queue is shorter.
 *   QINFO shows the current settings. Errors: `-ERR ...` for a value out of range.
 */
import { CommandError } from '../args.js';
import { okReply } from '../results.js';
import { writeHandler, type CommandSpec } from '../spec.js';
import { boundedInteger, durationMs } from './common.js';
import type { QueueOperation } from './operations.js';
import { MAX_MAX_LENGTH } from './store.js';

type ConfigOperation = Extract<QueueOperation, { type: 'queues.config' }>;

export const qconfig: CommandSpec = {
  name: 'qconfig',
  arity: -4,
  flags: ['write'],
  aclCategories: ['@write', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RW', 'update'],
  docs: {
    summary: "Sets a queue's visibility timeout, delivery limit, maximum length and idempotency window.",
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(1)',
    arguments: [
      { name: 'queue', type: 'key', keySpecIndex: 0 },
      { name: 'milliseconds', type: 'integer', token: 'VISIBILITY', optional: true },
      { name: 'count', type: 'integer', token: 'MAXDELIVERIES', optional: true },
      { name: 'count', type: 'integer', token: 'MAXLEN', optional: true },
      { name: 'milliseconds', type: 'integer', token: 'IDEMPWINDOW', optional: true },
    ],
    format:
      'QCONFIG queue [VISIBILITY milliseconds] [MAXDELIVERIES count] [MAXLEN count] [IDEMPWINDOW milliseconds]',
    reply: 'OK.',
  },
  handler: writeHandler<ConfigOperation>({
    parse(args) {
      const queue = args.required();
      let visibilityMs = -1;
      let maxDeliveries = -1;
      let maxLength = -1;
      let idempotencyWindowMs = -1;
      while (args.hasMore()) {
        const word = args.keyword();
        if (!args.hasMore()) throw new CommandError('ERR syntax error');
        switch (word) {
          case 'VISIBILITY':
            visibilityMs = durationMs(args, 'VISIBILITY');
            break;
          case 'MAXDELIVERIES':
            maxDeliveries = boundedInteger(args, 'MAXDELIVERIES', 0, 1_000_000);
            break;
          case 'MAXLEN':
            maxLength = boundedInteger(args, 'MAXLEN', 1, MAX_MAX_LENGTH);
            break;
          case 'IDEMPWINDOW':
            idempotencyWindowMs = durationMs(args, 'IDEMPWINDOW');
            break;
          default:
            throw new CommandError('ERR syntax error');
        }
      }
      return { type: 'queues.config', queue, visibilityMs, maxDeliveries, maxLength, idempotencyWindowMs };
    },
    reply: okReply,
  }),
};
