/**
 * QINFO: a queue's figures and settings.
 *
 * Format:
 *   QINFO queue
 *
 * Reply:
 *   Map (flat array in RESP2) of field -> value: ready, leased, delayed, dead-lettered (messages
 *   in the dead-letter queue now), dead-letter-queue (its name), oldest-age-ms (age of the
 *   lowest id held, -1 when empty), waiting-consumers, last-id, idempotency-keys, the settings
 *   visibility-ms, max-deliveries (0 = no limit), max-length, idempotency-window-ms, and the
 *   totals pushed, delivered, redelivered, acked, nacked, expired (leases run out),
 *   dead-lettered-total, replayed, duplicate-pushes.
 *   Error: `-ERR no such queue` when the queue does not exist.
 */
import { bulk, error, integer, map, type Reply } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const qinfo: CommandSpec = {
  name: 'qinfo',
  arity: 2,
  flags: ['readonly'],
  aclCategories: ['@read', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  docs: {
    summary: "Returns a queue's counts, settings and totals.",
    since: '0.1.0',
    group: 'queue',
    complexity: 'O(K) where K is the number of idempotency keys held.',
    arguments: [{ name: 'queue', type: 'key', keySpecIndex: 0 }],
    format: 'QINFO queue',
    reply:
      'Map of field -> value: ready, leased, delayed, dead-lettered, dead-letter-queue, oldest-age-ms, waiting-consumers, last-id, idempotency-keys, settings and totals. -ERR no such queue.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => {
      const queue = args.required();
      args.end();
      return queue;
    },
    query(sm, queue, nowMs): Reply {
      const i = sm.queues.info(queue, nowMs);
      if (i === null) return error('ERR no such queue');
      const fields: [string, Reply][] = [
        ['ready', integer(i.ready)],
        ['leased', integer(i.leased)],
        ['delayed', integer(i.delayed)],
        ['dead-lettered', integer(i.deadLetterLength)],
        ['dead-letter-queue', bulk(i.deadLetterQueue)],
        ['oldest-age-ms', integer(i.oldestAgeMs)],
        ['waiting-consumers', integer(i.waiting)],
        ['last-id', integer(i.nextId - 1)],
        ['idempotency-keys', integer(i.idempotencyKeys)],
        ['visibility-ms', integer(i.settings.visibilityMs)],
        ['max-deliveries', integer(i.settings.maxDeliveries)],
        ['max-length', integer(i.settings.maxLength)],
        ['idempotency-window-ms', integer(i.settings.idempotencyWindowMs)],
        ['pushed', integer(i.counters.pushed)],
        ['delivered', integer(i.counters.delivered)],
        ['redelivered', integer(i.counters.redelivered)],
        ['acked', integer(i.counters.acked)],
        ['nacked', integer(i.counters.nacked)],
        ['expired', integer(i.counters.expired)],
        ['dead-lettered-total', integer(i.counters.deadLettered)],
        ['replayed', integer(i.counters.replayed)],
        ['duplicate-pushes', integer(i.counters.duplicatePushes)],
      ];
      return map(fields.map(([k, v]) => [bulk(k), v] as const));
    },
  }),
};
