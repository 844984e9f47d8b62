/**
 * The queue family: producers and consumers on every member while the nemeses act.
 *
 * Producers (half the processes) push to one of two queues, one or two payloads per QPUSH, each
 * push with an IDEMP key of its own; after an error they resend the same command (same key) up
 * to twice, as docs/queues.md tells producers to. Consumers (the other half) `QPOP ... COUNT n
 * BLOCK ms VISIBILITY ms`, then QACK each receipt on its own (so every answer is attributable).
 * Some consumers crash holding their leases (the connection is closed, the process never comes
 * back: its messages must be delivered again after the lease), some stall past the lease before
 * acking (the ack is accepted if nobody got the message since, else -LEASELOST).
 *
 * At the end (after the faults, the cluster converged) the queues and their dead-letter queues
 * are drained: QPOP with a long lease and QACK until empty, waiting for leases of crashed
 * consumers to run out, within a deadline; what is still leased then is listed with QPENDING.
 * Checker: checkers/queues.ts.
 *
 * Owns: its clients (closed by stop()). Must never: resend except an explicit IDEMP resend
 * recorded as its own operation, or ack a receipt it was not given.
 */
import { Redis } from 'ioredis';
import { clockWindows } from '../checkers/clock-windows.js';
import { checkQueues, type Delivery, type PendingEntry, type QueueOp } from '../checkers/queues.js';
import type { CheckContext, Family, FamilyContext, FamilyRun } from '../family.js';
import { History, runClock, type Endpoint } from '../history.js';
import { ClientPool, ClientSlot, errorMessage, pause, type ErrorRule } from './clients.js';

const QUEUES = 2;
const VISIBILITY_MS = 1_500;
const BLOCK_MS = 200;
const MAX_PUSH_ATTEMPTS = 3;
/** How long the drain waits for leases of crashed consumers to run out. */
const DRAIN_DEADLINE_MS = 25_000;

/** -LEASELOST is an answer: that delivery was superseded and nothing was acked. */
const ackRule: ErrorRule = (message) => (message.startsWith('LEASELOST') ? 'ok' : undefined);

/** The dead-letter queue of a queue without a hash tag (docs/queues.md). */
export function deadLetterQueue(queue: string): string {
  return `{${queue}}:dlq`;
}

/** QPOP's reply: nil, or [id, payload, deliveries, receipt] per message. */
export function parseDeliveries(reply: unknown): Delivery[] | undefined {
  if (reply === null) return [];
  if (!Array.isArray(reply)) return undefined;
  const out: Delivery[] = [];
  for (const m of reply as unknown[]) {
    if (!Array.isArray(m) || m.length !== 4) return undefined;
    const [id, payload, deliveries, receipt] = m as unknown[];
    if (
      typeof id !== 'number' ||
      typeof payload !== 'string' ||
      typeof deliveries !== 'number' ||
      typeof receipt !== 'string'
    )
      return undefined;
    out.push({ id, payload, deliveries, receipt });
  }
  return out;
}

function parsePending(reply: unknown): PendingEntry[] | undefined {
  if (!Array.isArray(reply)) return undefined;
  const out: PendingEntry[] = [];
  for (const e of reply as unknown[]) {
    if (!Array.isArray(e) || e.length !== 6) return undefined;
    const [id, consumer, deliveries, , msLeft, receipt] = e as unknown[];
    if (
      typeof id !== 'number' ||
      typeof deliveries !== 'number' ||
      typeof msLeft !== 'number' ||
      typeof receipt !== 'string'
    )
      return undefined;
    out.push({ id, consumer: String(consumer), deliveries, msLeft, receipt });
  }
  return out;
}

class QueueWorkload {
  readonly history: History<QueueOp>;
  private readonly pool: ClientPool;
  private done: Promise<void> = Promise.resolve();
  readonly queues: string[];
  crashes = 0;

  constructor(private readonly ctx: FamilyContext) {
    // Drain operations are recorded after the workload's bound is reached, if it was.
    this.history = new History<QueueOp>(ctx.maxOps, ctx.now);
    this.pool = new ClientPool(ctx.endpoints, ctx.commandTimeoutMs + BLOCK_MS);
    this.queues = Array.from({ length: QUEUES }, (_, i) => `${ctx.prefix}:q${i}`);
  }

  start(): void {
    const producers = Math.max(1, Math.floor(this.ctx.processes / 2));
    const consumers = Math.max(1, this.ctx.processes - producers);
    const loops = [
      ...Array.from({ length: producers }, (_, i) => this.producer(i)),
      ...Array.from({ length: consumers }, (_, i) => this.consumer(producers + i)),
    ];
    this.done = Promise.all(loops).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.pool.stopped = true;
    await this.done;
    this.pool.closeAll();
  }

  private running(): boolean {
    return !this.pool.stopped && !this.history.full();
  }

  private async producer(slot: number): Promise<void> {
    const prng = this.ctx.prng;
    const client = new ClientSlot(this.pool, slot);
    const name = `${this.ctx.prefix}:prod${slot}`;
    let seq = 0;
    try {
      while (this.running()) {
        const queue = prng.pick(this.queues);
        const n = prng.below(4) === 0 ? 2 : 1;
        const idemp = `${name}:${seq}`;
        const payloads = Array.from({ length: n }, (_, j) => `${name}:${seq}:${j}`);
        seq++;
        for (let attempt = 1; attempt <= MAX_PUSH_ATTEMPTS && this.running();) {
          if (!(await client.ready())) continue;
          const op = this.history.invoke({
            process: client.process,
            node: client.node,
            kind: 'push',
            queue,
            client: name,
            payloads,
            idemp,
            attempt,
          });
          const r = await client.call(
            this.history,
            op,
            ['QPUSH', queue, 'IDEMP', idemp, ...payloads],
            (reply) => {
              if (
                !Array.isArray(reply) ||
                reply.length !== payloads.length ||
                !reply.every((x) => typeof x === 'number')
              )
                return 'unknown';
              op.ids = reply;
              return 'ok';
            },
          );
          if (r.outcome === 'ok') break;
          attempt++;
        }
        // Roughly the consumers' pace (a pop and an ack per message), so the queues stay short.
        await pause(5 + prng.below(10));
      }
    } finally {
      client.drop();
    }
  }

  private async consumer(slot: number): Promise<void> {
    const prng = this.ctx.prng;
    const client = new ClientSlot(this.pool, slot);
    try {
      while (this.running()) {
        if (!(await client.ready())) continue;
        const process = client.process;
        const name = `${this.ctx.prefix}:c${process}`;
        const queue = prng.pick(this.queues);
        const count = 1 + prng.below(3);
        const op = this.history.invoke({
          process,
          node: client.node,
          kind: 'pop',
          queue,
          client: name,
          count,
          visibilityMs: VISIBILITY_MS,
        });
        const r = await client.call(
          this.history,
          op,
          ['QPOP', queue, 'COUNT', count, 'BLOCK', BLOCK_MS, 'VISIBILITY', VISIBILITY_MS, 'CONSUMER', name],
          (reply) => {
            const messages = parseDeliveries(reply);
            if (messages === undefined) return 'unknown';
            op.messages = messages;
            return 'ok';
          },
        );
        const messages = op.messages ?? [];
        if (r.outcome !== 'ok' || messages.length === 0) continue;
        if (prng.below(15) === 0) {
          // Crash holding the leases: this consumer is gone for good.
          this.crashes++;
          client.retire();
          continue;
        }
        if (prng.below(20) === 0) await pause(VISIBILITY_MS + 100 + prng.below(400));
        for (const d of messages) {
          if (!this.running()) break;
          if (client.process !== process || !(await client.ready())) break;
          const ack = this.history.invoke({
            process,
            node: client.node,
            kind: 'ack',
            queue,
            client: name,
            receipts: [d.receipt],
          });
          const a = await client.call(
            this.history,
            ack,
            ['QACK', queue, d.receipt],
            (reply) => {
              if (typeof reply !== 'number') return 'unknown';
              ack.output = reply;
              return 'ok';
            },
            ackRule,
          );
          if (a.outcome !== 'ok') break;
        }
      }
    } finally {
      client.drop();
    }
  }

  /**
   * Empties every queue and dead-letter queue through the first member that answers: QPOP with
   * a lease longer than the drain, QACK of what came, until QLEN is 0 or the deadline; then
   * QPENDING lists what is still leased. Every command is recorded (drain: true).
   */
  async drain(endpoints: readonly Endpoint[]): Promise<{ complete: boolean; notes: string[] }> {
    const notes: string[] = [];
    const started = runClock();
    const targets = this.queues.flatMap((q) => [q, deadLetterQueue(q)]);
    const name = `${this.ctx.prefix}:drain`;
    for (const endpoint of endpoints) {
      const redis = new Redis({
        host: endpoint.host,
        port: endpoint.port,
        commandTimeout: 5_000,
        connectTimeout: 2_000,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: true,
      });
      redis.on('error', () => undefined);
      // Every command once; an error stops the drain on this member (the next one takes over).
      const record = async (
        op: QueueOp,
        argv: (string | number)[],
        onReply: (reply: unknown) => boolean,
      ): Promise<boolean> => {
        try {
          const reply = await redis.call(String(argv[0]), ...argv.slice(1).map(String));
          const ok = onReply(reply);
          this.history.complete(
            op,
            ok ? 'ok' : 'unknown',
            undefined,
            ok ? undefined : `unexpected reply ${JSON.stringify(reply)}`,
          );
          return ok;
        } catch (err) {
          this.history.complete(op, 'unknown', undefined, errorMessage(err));
          return false;
        }
      };
      const base = { process: -1, node: endpoint.node, client: name, drain: true } as const;
      try {
        let complete = true;
        for (const queue of targets) {
          let empty = false;
          while (!empty) {
            const pop = this.history.invoke({
              ...base,
              kind: 'pop',
              queue,
              count: 500,
              visibilityMs: 600_000,
            });
            if (
              !(await record(
                pop,
                ['QPOP', queue, 'COUNT', 500, 'VISIBILITY', 600_000, 'CONSUMER', name],
                (reply) => {
                  const m = parseDeliveries(reply);
                  if (m !== undefined) pop.messages = m;
                  return m !== undefined;
                },
              ))
            )
              throw new Error(`drain QPOP on ${endpoint.node}: ${pop.error ?? ''}`);
            const got = pop.messages ?? [];
            if (got.length > 0) {
              const receipts = got.map((d) => d.receipt);
              const ack = this.history.invoke({ ...base, kind: 'ack', queue, receipts });
              if (
                !(await record(ack, ['QACK', queue, ...receipts], (reply) => {
                  if (typeof reply !== 'number') return false;
                  ack.output = reply;
                  return true;
                }))
              )
                throw new Error(`drain QACK on ${endpoint.node}: ${ack.error ?? ''}`);
              continue;
            }
            const left = Number(await redis.call('QLEN', queue));
            if (left === 0) empty = true;
            else if (started() > DRAIN_DEADLINE_MS) {
              complete = false;
              const pending = this.history.invoke({ ...base, kind: 'pending', queue });
              await record(pending, ['QPENDING', queue, 'COUNT', 10_000], (reply) => {
                const entries = parsePending(reply);
                if (entries !== undefined) pending.pending = entries;
                return entries !== undefined;
              });
              notes.push(
                `${queue}: ${left} messages still in the queue after ${DRAIN_DEADLINE_MS} ms (${pending.pending?.length ?? '?'} leased)`,
              );
              empty = true;
            } else await pause(250); // leases of crashed consumers run out
          }
        }
        redis.disconnect();
        return { complete, notes };
      } catch (err) {
        notes.push(`drain through ${endpoint.node} stopped: ${errorMessage(err).slice(0, 200)}`);
        redis.disconnect();
      }
    }
    return { complete: false, notes };
  }
}

export const queuesFamily: Family = {
  name: 'queues',
  create(ctx: FamilyContext): FamilyRun {
    const workload = new QueueWorkload(ctx);
    return {
      family: 'queues',
      start: () => workload.start(),
      stop: () => workload.stop(),
      ops: () => workload.history.ops,
      async check(endpoints: readonly Endpoint[], context: CheckContext) {
        const drained = await workload.drain(endpoints);
        const history = workload.history.ops;
        const v = checkQueues(history, {
          clockWindows: clockWindows(context.faults),
          deadLetter: new Map(workload.queues.map((q) => [q, deadLetterQueue(q)])),
          drainComplete: drained.complete,
        });
        const summary =
          `${v.queues} queues: pushes ok ${v.pushes.ok} / unknown ${v.pushes.unknown} / fail ${v.pushes.fail} (${v.pushes.resends} IDEMP resends), ` +
          `${v.ackedPayloads} acked payloads, ${v.deliveries} deliveries (${v.redeliveries} redeliveries), ${workload.crashes} consumer crashes, ` +
          `acks removed ${v.acks.removed} / already gone ${v.acks.gone} / LEASELOST ${v.acks.leaseLost} / unknown ${v.acks.unknown}, ` +
          `${v.drained} drained at the end, ${v.deadLettered} dead-lettered, ${v.leasedAtEnd} still leased at the end` +
          (drained.complete ? '' : ` (drain incomplete: ${v.unverified} acked payloads unverified)`) +
          (v.excused.length > 0
            ? `, ${v.excused.length} lease-bound breaches under clock faults (excused)`
            : '');
        return {
          verdicts: [
            {
              family: 'queues',
              checker: 'delivery',
              valid: v.valid,
              summary,
              details: [
                ...v.violations.slice(0, 5).map((x) => `${x.kind} ${x.queue}: ${x.detail}`),
                ...drained.notes,
              ],
              data: { ...v, drain: drained },
            },
          ],
          files: { 'queues-history.json': history },
        };
      },
    };
  },
};
