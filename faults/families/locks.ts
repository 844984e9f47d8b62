/**
 * The lock family: client processes on every member take exclusive locks with leases and
 * fencing tokens, and write through them, while the nemeses act.
 *
 * Each process loops: with a fresh owner per acquisition (so a re-grant to the same owner can
 * never be mistaken for a new hold), `LOCK name owner EXCLUSIVE TTL t WAIT w` on one of a few
 * locks; when granted, one to three actions (`SET data value FENCE name token`, `LOCK.RENEW`,
 * `GET data`), then `UNLOCK`. Some holders misbehave on purpose: a "zombie" stalls past its
 * lease, then still writes with its old token and tries to renew (fencing must refuse the write
 * if someone else was granted the lock meanwhile), and some walk away without UNLOCK (the lease
 * must free the lock). Other processes read the data keys. Locks and data keys rotate every
 * `opsPerGeneration` operations, so each data key's register history stays small.
 *
 * At the end, for every lock, a write fenced with a token older than the newest acknowledged
 * grant must be refused (no grant lost across the faults). Checkers: checkers/locks.ts
 * (exclusion, tokens, fencing) and the register linearizability checker on the data keys.
 *
 * Owns: its clients (closed by stop()). Must never: resend a command, reuse an owner across
 * holds, or write with a token it was not granted for that lock.
 */
import { Redis } from 'ioredis';
import { checkLinearizable } from '../checkers/linearizable.js';
import {
  checkLocks,
  dataHistory,
  type FenceProbe,
  type LockOp,
  type LockVerdict,
} from '../checkers/locks.js';
import { clockWindows } from '../checkers/clock-windows.js';
import type { CheckerVerdict, CheckContext, Family, FamilyContext, FamilyRun } from '../family.js';
import { History, type Endpoint, type Outcome } from '../history.js';
import { ClientPool, ClientSlot, errorMessage, pause, type ErrorRule } from './clients.js';

const LOCKS_PER_GENERATION = 3;
/** About 150 data-key operations per lock and generation: well under the linearizability bound. */
const OPS_PER_GENERATION = 600;
const TTLS_MS = [800, 1_500, 2_500] as const;
const WAIT_MS = 300;

/** -LOCKLOST is an answer (the hold is gone); -FENCED refused the write at apply: nothing written. */
const lockRule: ErrorRule = (message) =>
  message.startsWith('LOCKLOST')
    ? 'ok'
    : message.startsWith('FENCED')
      ? ('fail' satisfies Outcome)
      : undefined;

class LockWorkload {
  readonly history: History<LockOp>;
  private readonly pool: ClientPool;
  private done: Promise<void> = Promise.resolve();
  private issued = 0;
  private seq = 0;

  constructor(private readonly ctx: FamilyContext) {
    this.history = new History<LockOp>(ctx.maxOps, ctx.now);
    // A blocked LOCK answers within WAIT plus the commit.
    this.pool = new ClientPool(ctx.endpoints, ctx.commandTimeoutMs + WAIT_MS);
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

  private running(): boolean {
    return !this.pool.stopped && !this.history.full();
  }

  private names(): { lock: string; key: string } {
    const generation = Math.floor(this.issued / OPS_PER_GENERATION);
    const i = this.ctx.prng.below(LOCKS_PER_GENERATION);
    return {
      lock: `${this.ctx.prefix}:lock:${generation}:${i}`,
      key: `${this.ctx.prefix}:data:${generation}:${i}`,
    };
  }

  private async loop(slot: number): Promise<void> {
    const prng = this.ctx.prng;
    const client = new ClientSlot(this.pool, slot);
    let holds = 0;
    try {
      while (this.running()) {
        if (!(await client.ready())) continue;
        const { lock, key } = this.names();
        this.issued++;
        if (prng.below(5) === 0) {
          await this.read(client, lock, key, `${this.ctx.prefix}:p${client.process}`, undefined);
          continue;
        }
        const owner = `${this.ctx.prefix}:p${client.process}h${holds++}`;
        const ttlMs = prng.pick(TTLS_MS);
        const acquire = this.history.invoke({
          process: client.process,
          node: client.node,
          kind: 'acquire',
          lock,
          owner,
          ttlMs,
          waitMs: WAIT_MS,
        });
        const granted = await client.call(
          this.history,
          acquire,
          ['LOCK', lock, owner, 'EXCLUSIVE', 'TTL', ttlMs, 'WAIT', WAIT_MS],
          (reply) => {
            if (reply === null) {
              acquire.output = null;
              return 'ok';
            }
            if (typeof reply !== 'number') return 'unknown';
            acquire.output = reply;
            return 'ok';
          },
        );
        if (granted.outcome !== 'ok' || typeof acquire.output !== 'number') {
          if (granted.outcome === 'ok') await pause(10 + prng.below(40));
          continue;
        }
        await this.hold(client, acquire, acquire.output, key);
      }
    } finally {
      client.drop();
    }
  }

  /** One hold: a few actions, maybe a stall past the lease, then UNLOCK (or walk away). */
  private async hold(client: ClientSlot, acquire: LockOp, token: number, key: string): Promise<void> {
    const prng = this.ctx.prng;
    const { lock, owner, ttlMs } = acquire;
    const process = client.process;
    const still = (): boolean => this.running() && client.process === process;
    const zombie = prng.below(10) === 0;
    const walkAway = !zombie && prng.below(12) === 0;
    const actions = 1 + prng.below(3);
    for (let i = 0; i < actions && still(); i++) {
      const roll = prng.below(20);
      const ok =
        roll < 12
          ? await this.fencedSet(client, acquire, token, key)
          : roll < 17
            ? await this.renew(client, acquire)
            : await this.read(client, lock, key, owner, acquire.id);
      if (!ok) return;
    }
    if (zombie && still()) {
      // Stall past the lease, then act on the old grant as a paused process would.
      await pause(ttlMs! + 100 + prng.below(300));
      if (!still() || !(await this.fencedSet(client, acquire, token, key))) return;
      if (!still() || !(await this.renew(client, acquire))) return;
    }
    if (walkAway || !still()) return;
    const release = this.history.invoke({
      process,
      node: client.node,
      kind: 'release',
      lock,
      owner,
      hold: acquire.id,
    });
    await client.call(this.history, release, ['UNLOCK', lock, owner], (reply) => {
      if (reply !== 0 && reply !== 1) return 'unknown';
      release.output = reply;
      return 'ok';
    });
  }

  /** False when the process can no longer act on this hold (unknown outcome, lost connection). */
  private async fencedSet(client: ClientSlot, acquire: LockOp, token: number, key: string): Promise<boolean> {
    const value = `t${token}-p${client.process}-${this.seq++}`;
    const op = this.history.invoke({
      process: client.process,
      node: client.node,
      kind: 'fenced-set',
      lock: acquire.lock,
      owner: acquire.owner,
      hold: acquire.id,
      token,
      key,
      value,
    });
    const r = await client.call(
      this.history,
      op,
      ['SET', key, value, 'FENCE', acquire.lock, token],
      (reply) => {
        if (reply !== 'OK') return 'unknown';
        op.output = 'OK';
        return 'ok';
      },
      lockRule,
    );
    // A refused (fenced) write is an answer: the holder may go on (and find out on renewal).
    return r.outcome === 'ok' || r.error?.startsWith('FENCED') === true;
  }

  private async renew(client: ClientSlot, acquire: LockOp): Promise<boolean> {
    const op = this.history.invoke({
      process: client.process,
      node: client.node,
      kind: 'renew',
      lock: acquire.lock,
      owner: acquire.owner,
      hold: acquire.id,
      ttlMs: acquire.ttlMs!,
    });
    const r = await client.call(
      this.history,
      op,
      ['LOCK.RENEW', acquire.lock, acquire.owner, 'TTL', acquire.ttlMs!],
      (reply) => {
        if (typeof reply !== 'number') return 'unknown';
        op.output = reply;
        return 'ok';
      },
      lockRule,
    );
    return r.outcome === 'ok';
  }

  private async read(
    client: ClientSlot,
    lock: string,
    key: string,
    owner: string,
    hold: number | undefined,
  ): Promise<boolean> {
    const op = this.history.invoke({
      process: client.process,
      node: client.node,
      kind: 'read',
      lock,
      owner,
      key,
      ...(hold !== undefined ? { hold } : {}),
    });
    const r = await client.call(this.history, op, ['GET', key], (reply) => {
      if (reply !== null && typeof reply !== 'string') return 'unknown';
      op.output = reply;
      return 'ok';
    });
    return r.outcome === 'ok';
  }
}

/**
 * For every lock with an acknowledged grant newer than 1: `SET probe x FENCE lock newest-1`
 * through the first member that answers; it must be refused (-FENCED).
 */
async function fenceProbes(
  endpoints: readonly Endpoint[],
  history: readonly LockOp[],
  prefix: string,
): Promise<FenceProbe[]> {
  const newest = new Map<string, number>();
  for (const op of history) {
    if (op.kind === 'acquire' && op.result === 'ok' && typeof op.output === 'number') {
      newest.set(op.lock, Math.max(newest.get(op.lock) ?? 0, op.output));
    }
  }
  const probes: FenceProbe[] = [];
  const clients = endpoints.map((e) => {
    const redis = new Redis({
      host: e.host,
      port: e.port,
      commandTimeout: 3_000,
      connectTimeout: 2_000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
    });
    redis.on('error', () => undefined);
    return { endpoint: e, redis };
  });
  try {
    for (const [lock, token] of [...newest].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (token <= 1) continue;
      let reply = 'no member answered';
      let node = '?';
      for (const { endpoint, redis } of clients) {
        node = endpoint.node;
        try {
          reply = String(await redis.call('SET', `${prefix}:probe`, lock, 'FENCE', lock, String(token - 1)));
          break;
        } catch (err) {
          const message = errorMessage(err);
          if (message.startsWith('FENCED')) {
            reply = 'FENCED';
            break;
          }
          reply = message.slice(0, 120);
        }
      }
      probes.push({ lock, newest: token, token: token - 1, node, reply });
    }
  } finally {
    for (const { redis } of clients) redis.disconnect();
  }
  return probes;
}

function lockSummary(v: LockVerdict): string {
  return (
    `${v.locks} locks, ${v.grants} grants (${v.notGranted} not granted in WAIT, ${v.unknownAcquires} unknown), ` +
    `${v.renewals} renewals, ${v.lostLeases} LOCKLOST, ${v.releases} releases, fenced writes ok ${v.fencedWrites.ok} / ` +
    `refused ${v.fencedWrites.refused} / unknown ${v.fencedWrites.unknown}, end probes ${v.probes.refused}/${v.probes.sent} refused` +
    (v.excused.length > 0 ? `, ${v.excused.length} lease-bound breaches under clock faults (excused)` : '')
  );
}

export const locksFamily: Family = {
  name: 'locks',
  create(ctx: FamilyContext): FamilyRun {
    const workload = new LockWorkload(ctx);
    return {
      family: 'locks',
      start: () => workload.start(),
      stop: () => workload.stop(),
      ops: () => workload.history.ops,
      async check(endpoints: readonly Endpoint[], context: CheckContext) {
        const history = workload.history.ops;
        const probes = await fenceProbes(endpoints, history, ctx.prefix);
        const verdict = checkLocks(history, { clockWindows: clockWindows(context.faults), probes });
        const lin = checkLinearizable(dataHistory(history));
        const part = (property: 'exclusion' | 'tokens' | 'fencing'): CheckerVerdict => {
          const violations = verdict.violations.filter((v) => v.property === property);
          return {
            family: 'locks',
            checker: property,
            valid: violations.length === 0,
            summary: property === 'exclusion' ? lockSummary(verdict) : `${violations.length} violations`,
            details: violations.slice(0, 5).map((v) => `${v.kind} ${v.lock}: ${v.detail}`),
            data: property === 'exclusion' ? verdict : { violations },
          };
        };
        const verdicts: CheckerVerdict[] = [
          part('exclusion'),
          part('tokens'),
          part('fencing'),
          {
            family: 'locks',
            checker: 'data-linearizable',
            valid: lin.valid,
            summary: `${lin.keys.length} data keys, ${lin.violations.length} violations, ${lin.timedOut.length} timed out`,
            details: lin.violations.slice(0, 5).map((v) => `${v.key}: ${v.detail ?? ''}`),
            data: lin,
          },
        ];
        return { verdicts, files: { 'locks-history.json': history, 'locks-probes.json': probes } };
      },
    };
  },
};
