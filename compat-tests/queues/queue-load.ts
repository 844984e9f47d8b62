/**
 * A bounded produce/consume/ack load for the queue cluster tests, recording every outcome so
 * the tests assert from histories: producers QPUSH batches (each with an IDEMP key, resent
 * after an error until acknowledged, so an unknown outcome never duplicates a push), consumers
 * QPOP ... BLOCK, check, and QACK. Clients are spread over the nodes and move to the next node
 * after an error.
 *
 * Owns only client connections it opened; never starts or kills a node.
 */
import type { Redis } from 'ioredis';
import { client } from '../cluster/cluster-harness.js';

export interface PushRecord {
  readonly producer: number;
  readonly seq: number;
  readonly id: number;
}

export interface DeliveryRecord {
  readonly consumer: number;
  readonly id: number;
  readonly payload: string;
  readonly delivery: number;
  readonly atMs: number;
}

export interface QueueLoadOptions {
  queue: string;
  ports: () => readonly number[];
  producers: number;
  consumers: number;
  batchesPerProducer: number;
  batchSize: number;
  /** Messages per QPOP. */
  popCount: number;
  visibilityMs: number;
  /** Bound on the whole run. */
  maxDurationMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class QueueLoad {
  readonly pushes: PushRecord[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  /** Ids whose QACK was acknowledged, with when. */
  readonly ackedAt = new Map<number, number>();
  /** Sum of QACK replies (messages removed by acks whose answer we saw). */
  ackReplies = 0;
  /** QACK replies smaller than the receipts sent (only after an unknown-outcome QACK). */
  shortAcks = 0;
  readonly errors: string[] = [];
  readonly violations: string[] = [];
  private producersDone = 0;
  private stopped = false;
  private readonly started = Date.now();
  private readonly clients: Redis[] = [];
  private readonly producing: Promise<void>;
  private readonly consuming: Promise<void>;

  constructor(readonly options: QueueLoadOptions) {
    this.producing = Promise.all(Array.from({ length: options.producers }, (_, p) => this.produce(p))).then(
      () => undefined,
    );
    this.consuming = Promise.all(Array.from({ length: options.consumers }, (_, c) => this.consume(c))).then(
      () => undefined,
    );
  }

  get allProduced(): boolean {
    return this.producersDone === this.options.producers;
  }

  private timeLeft(): boolean {
    return !this.stopped && Date.now() - this.started < this.options.maxDurationMs;
  }

  private connect(index: number): Redis {
    const ports = this.options.ports();
    const redis = client(ports[index % ports.length]!, 5_000);
    this.clients.push(redis);
    return redis;
  }

  private note(text: string): void {
    if (this.errors.length < 200) this.errors.push(text);
  }

  private async produce(p: number): Promise<void> {
    const { queue, batchesPerProducer, batchSize } = this.options;
    let conn = p;
    let redis = this.connect(conn);
    try {
      for (let b = 0; b < batchesPerProducer && this.timeLeft(); b++) {
        const payloads = Array.from({ length: batchSize }, (_, i) => `p${p}:${b * batchSize + i}`);
        for (;;) {
          if (!this.timeLeft()) return;
          try {
            const ids = (await redis.call('QPUSH', queue, 'IDEMP', `p${p}:b${b}`, ...payloads)) as number[];
            ids.forEach((id, i) => this.pushes.push({ producer: p, seq: b * batchSize + i, id }));
            break;
          } catch (e) {
            this.note(`producer ${p}: ${message(e)}`);
            redis.disconnect();
            redis = this.connect(++conn);
            await sleep(50);
          }
        }
      }
    } finally {
      this.producersDone++;
      redis.disconnect();
    }
  }

  private async consume(c: number): Promise<void> {
    const { queue, popCount, visibilityMs } = this.options;
    let conn = c;
    let redis = this.connect(conn);
    const reconnect = async (e: unknown): Promise<void> => {
      this.note(`consumer ${c}: ${message(e)}`);
      redis.disconnect();
      redis = this.connect(++conn);
      await sleep(50);
    };
    try {
      while (this.timeLeft()) {
        let batch: [number, string, number, string][] | null;
        try {
          batch = (await redis.call(
            'QPOP',
            queue,
            'COUNT',
            popCount,
            'BLOCK',
            300,
            'VISIBILITY',
            visibilityMs,
            'CONSUMER',
            `c${c}`,
          )) as [number, string, number, string][] | null;
        } catch (e) {
          await reconnect(e);
          continue;
        }
        if (batch === null) continue;
        const now = Date.now();
        for (const [id, payload, delivery] of batch) {
          if (this.ackedAt.has(id))
            this.violations.push(`message ${id} delivered (delivery ${delivery}) after its ack`);
          this.deliveries.push({ consumer: c, id, payload, delivery, atMs: now });
        }
        await this.ack(batch, () => redis, reconnect);
      }
    } finally {
      redis.disconnect();
    }
  }

  private async ack(
    batch: [number, string, number, string][],
    connection: () => Redis,
    reconnect: (e: unknown) => Promise<void>,
  ): Promise<void> {
    const receipts = batch.map((m) => m[3]);
    let unknownBefore = false;
    for (let attempt = 0; attempt < 50 && this.timeLeft(); attempt++) {
      try {
        const n = (await connection().call('QACK', this.options.queue, ...receipts)) as number;
        this.ackReplies += n;
        if (n !== receipts.length) {
          if (!unknownBefore) this.violations.push(`QACK of ${receipts.length} fresh receipts removed ${n}`);
          this.shortAcks++;
        }
        const now = Date.now();
        for (const [id] of batch) this.ackedAt.set(id, now);
        return;
      } catch (e) {
        if (message(e).startsWith('LEASELOST')) {
          // A lease ran out during an outage and the message went to someone else: ack the
          // others one by one (that delivery is the other consumer's to ack).
          for (const [id, , , receipt] of batch) {
            try {
              const n = (await connection().call('QACK', this.options.queue, receipt)) as number;
              this.ackReplies += n;
              if (n === 1) this.ackedAt.set(id, Date.now());
            } catch (inner) {
              this.note(`ack ${receipt}: ${message(inner)}`);
            }
          }
          return;
        }
        unknownBefore = true;
        await reconnect(e);
      }
    }
  }

  /** Stops when every producer is done and `drained()` says the queue is empty (or time is up). */
  async finish(drained: () => Promise<boolean>): Promise<void> {
    await this.producing;
    while (this.timeLeft()) {
      if (await drained().catch(() => false)) break;
      await sleep(100);
    }
    this.stopped = true;
    await this.consuming;
    for (const c of this.clients) c.disconnect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([this.producing, this.consuming]);
    for (const c of this.clients) c.disconnect();
  }
}
