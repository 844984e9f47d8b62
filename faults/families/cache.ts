/**
 * The cache family: CSET / CGET on a small set of hot keys from client processes on every
 * member while the nemeses act, so near-cache lines are held in E, M and S on several nodes and
 * every write needs an invalidation (or update) round.
 *
 * Each process loops: CGET (three times in five) or CSET of a value unique to the write
 * (INVALIDATE, or UPDATE one time in four) on one of three keys. Keys rotate every
 * `OPS_PER_GENERATION` operations. At the end, after one lease with no write in flight, every
 * member CGETs every key (recorded as final reads). Checker: checkers/cache.ts, which runs the
 * cache's own coherence checker (commands/cache/coherence-check.ts).
 *
 * Owns: its clients (closed by stop()). Must never: resend a CSET, or judge a read itself.
 */
import { Redis } from 'ioredis';
import { checkCache, type CacheOp } from '../checkers/cache.js';
import type { Family, FamilyContext, FamilyRun } from '../family.js';
import { History, type Endpoint } from '../history.js';
import { ClientPool, ClientSlot, errorMessage, pause } from './clients.js';

const KEYS = 3;
const OPS_PER_GENERATION = 1_500;
/**
 * A CSET waits for the invalidation round: up to one lease (2 s by default, plus a margin) when
 * a holder cannot be reached, or after a leader change; a shorter timeout would make most writes
 * under faults unknown.
 */
const CSET_TIMEOUT_MS = 3_000;
/** The near-cache lease (--cache-lease-ms default) plus its margin and some slack. */
const QUIET_BEFORE_FINAL_READS_MS = 2_500;

class CacheWorkload {
  readonly history: History<CacheOp>;
  private readonly pool: ClientPool;
  private done: Promise<void> = Promise.resolve();
  private issued = 0;
  private seq = 0;
  readonly keys = new Set<string>();

  constructor(private readonly ctx: FamilyContext) {
    this.history = new History<CacheOp>(ctx.maxOps, ctx.now);
    this.pool = new ClientPool(ctx.endpoints, Math.max(ctx.commandTimeoutMs, CSET_TIMEOUT_MS));
  }

  start(): void {
    this.done = Promise.all(Array.from({ length: this.ctx.processes }, (_, slot) => this.loop(slot))).then(
      () => undefined,
    );
  }

  async stop(): Promise<void> {
    this.pool.stopped = true;
    await this.done;
    this.pool.closeAll();
  }

  private async loop(slot: number): Promise<void> {
    const prng = this.ctx.prng;
    const client = new ClientSlot(this.pool, slot);
    try {
      while (!this.pool.stopped && !this.history.full()) {
        if (!(await client.ready())) continue;
        const generation = Math.floor(this.issued++ / OPS_PER_GENERATION);
        const key = `${this.ctx.prefix}:k:${generation}:${prng.below(KEYS)}`;
        this.keys.add(key);
        if (prng.below(5) < 3) {
          const op = this.history.invoke({ process: client.process, node: client.node, kind: 'cget', key });
          await client.call(this.history, op, ['CGET', key], (reply) => {
            if (reply !== null && typeof reply !== 'string') return 'unknown';
            op.output = reply;
            return 'ok';
          });
        } else {
          const value = `p${client.process}-${this.seq++}`;
          const policy = prng.below(4) === 0 ? 'UPDATE' : 'INVALIDATE';
          const op = this.history.invoke({
            process: client.process,
            node: client.node,
            kind: 'cset',
            key,
            value,
            policy,
          });
          await client.call(this.history, op, ['CSET', key, value, policy], (reply) =>
            reply === 'OK' ? 'ok' : 'unknown',
          );
        }
      }
    } finally {
      client.drop();
    }
  }

  /** Every member's CGET of every key, once no write has been in flight for a lease. */
  async finalReads(endpoints: readonly Endpoint[]): Promise<void> {
    await pause(QUIET_BEFORE_FINAL_READS_MS);
    const keys = [...this.keys].sort();
    await Promise.all(
      endpoints.map(async (endpoint) => {
        const redis = new Redis({
          host: endpoint.host,
          port: endpoint.port,
          commandTimeout: 5_000,
          connectTimeout: 2_000,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: true,
        });
        redis.on('error', () => undefined);
        try {
          for (const key of keys) {
            const op = this.history.invoke({
              process: -1,
              node: endpoint.node,
              kind: 'cget',
              key,
              final: true,
            });
            try {
              const reply = await redis.call('CGET', key);
              if (reply === null || typeof reply === 'string') {
                op.output = reply;
                this.history.complete(op, 'ok');
              } else
                this.history.complete(op, 'unknown', undefined, `unexpected reply ${JSON.stringify(reply)}`);
            } catch (err) {
              this.history.complete(op, 'unknown', undefined, errorMessage(err));
            }
          }
        } finally {
          redis.disconnect();
        }
      }),
    );
  }
}

export const cacheFamily: Family = {
  name: 'cache',
  create(ctx: FamilyContext): FamilyRun {
    const workload = new CacheWorkload(ctx);
    return {
      family: 'cache',
      start: () => workload.start(),
      stop: () => workload.stop(),
      ops: () => workload.history.ops,
      async check(endpoints: readonly Endpoint[]) {
        await workload.finalReads(endpoints);
        const history = workload.history.ops;
        const v = checkCache(history);
        return {
          verdicts: [
            {
              family: 'cache',
              checker: 'coherence',
              valid: v.valid,
              summary:
                `${v.keys} keys, CSET ok ${v.writes.ok} / unknown ${v.writes.unknown} / fail ${v.writes.fail}, ` +
                `CGET ok ${v.reads.ok} / unknown ${v.reads.unknown} (${v.finalReads} final), ` +
                `${v.staleReadCount} stale, ${v.futureReads.length} future, ${v.disagreements.length} disagreeing keys`,
              details: [...v.staleReads, ...v.futureReads, ...v.disagreements].slice(0, 5),
              data: v,
            },
          ],
          files: { 'cache-history.json': history },
        };
      },
    };
  },
};
