/**
 * Test support for the lock cluster specs: a lock client over ioredis that records what it saw
 * (grants with their token and the time the reply arrived, releases with the time the UNLOCK
 * was first sent), and the checks on such a history: no two exclusive holds overlap, tokens
 * increase in grant order.
 *
 * Times are performance.now() of this one test process, so comparable across its clients.
 * A release's time is when its first UNLOCK attempt was SENT (the earliest the lock can have
 * been freed), a grant's time when its reply ARRIVED (the latest it can have been granted):
 * so under mutual exclusion the next grant always comes after the previous release.
 * Must never treat an errored command as done or not done: the client retries idempotently
 * (LOCK by the same owner returns its token, UNLOCK of a released lock answers 0).
 */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';

export interface Hold {
  readonly owner: string;
  readonly token: number;
  readonly grantedAt: number;
  releasedAt: number;
}

/** Runs `cmd` until it answers without an operating error (TRYAGAIN, CLUSTERDOWN, timeout), at most `tries` times. */
export async function retrying<T>(cmd: () => Promise<T>, tries = 40): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      return await cmd();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // Client errors decided by the state machine are answers, not failures to retry.
      if (/^(DEADLOCK|LOCKLOST|FENCED|ERR)/.test(message)) throw e;
      last = e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

export async function lock(redis: Redis, ...args: (string | number)[]): Promise<number | null> {
  const r = (await redis.call('LOCK', ...args.map(String))) as number | null;
  return r;
}

/** Takes `name` exclusively for `owner` (waiting up to waitMs), retrying across failovers. */
export async function acquire(
  redis: Redis,
  name: string,
  owner: string,
  waitMs: number,
  ttlMs = 30_000,
): Promise<Hold | null> {
  const token = await retrying(() => lock(redis, name, owner, 'TTL', ttlMs, 'WAIT', waitMs));
  if (token === null) return null;
  return { owner, token, grantedAt: performance.now(), releasedAt: Infinity };
}

/** Releases `hold`, recording when the first UNLOCK was sent. */
export async function release(redis: Redis, name: string, hold: Hold): Promise<void> {
  hold.releasedAt = performance.now();
  await retrying(() => redis.call('UNLOCK', name, hold.owner));
}

/**
 * Mutual exclusion and token order from a history of exclusive holds of one lock: sorted by
 * token, each grant arrives after the previous hold's release was sent, and tokens are
 * distinct. Returns the violations found (empty when none).
 */
export function exclusionViolations(holds: readonly Hold[]): string[] {
  const sorted = [...holds].sort((a, b) => a.token - b.token);
  const out: string[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (next.token === prev.token)
      out.push(`token ${next.token} granted twice (${prev.owner}, ${next.owner})`);
    if (next.grantedAt <= prev.releasedAt)
      out.push(
        `${next.owner} (token ${next.token}) granted at ${next.grantedAt.toFixed(1)} before ${prev.owner} (token ${prev.token}) released at ${prev.releasedAt.toFixed(1)}`,
      );
  }
  return out;
}

/** LOCK.INFO as a plain object (RESP2 flat arrays to maps). */
export async function lockInfo(
  redis: Redis,
  name: string,
): Promise<{
  mode: string;
  token: number;
  holders: { owner: string; mode: string; token: number; ttl: number }[];
  waiters: { owner: string; mode: string; wait: number }[];
}> {
  const flat = (await redis.call('LOCK.INFO', name)) as unknown[];
  const obj = (a: unknown[]): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < a.length; i += 2) o[String(a[i])] = a[i + 1];
    return o;
  };
  const top = obj(flat);
  return {
    mode: String(top['mode']),
    token: Number(top['token']),
    holders: (top['holders'] as unknown[][]).map((h) => {
      const o = obj(h);
      return {
        owner: String(o['owner']),
        mode: String(o['mode']),
        token: Number(o['token']),
        ttl: Number(o['ttl']),
      };
    }),
    waiters: (top['waiters'] as unknown[][]).map((w) => {
      const o = obj(w);
      return { owner: String(o['owner']), mode: String(o['mode']), wait: Number(o['wait']) };
    }),
  };
}

/** A field of `INFO locks`. */
export async function infoLocks(redis: Redis, field: string): Promise<number> {
  const text = (await redis.call('INFO', 'locks')) as string;
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(text);
  if (m === null) throw new Error(`no ${field} in INFO locks`);
  return Number(m[1]);
}
