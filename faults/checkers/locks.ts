/**
 * Lock checker: exclusive leases, fencing tokens and fenced writes, judged from a history of
 * LOCK / LOCK.RENEW / UNLOCK / SET ... FENCE / GET operations (faults/families/locks.ts).
 *
 * Every hold has its own owner (a fresh owner string per acquisition), so a grant, its
 * renewals, its fenced writes and its release are tied together by `hold` (the acquire op's
 * id). All times are the runner's clock; a server's lease is measured in leader time, which runs
 * at the rate of real time unless a clock nemesis is acting.
 *
 * What a hold certainly covers. A grant G (LOCK answered a token) applied within
 * [G.invoke, G.complete]; its lease ends no earlier than `invoke + TTL` of the last lease-setting
 * operation that was acknowledged (the grant, or a LOCK.RENEW answered with the token: the server
 * counts TTL from the entry's leader time, which is after the client sent it; a new leader only
 * lengthens leases), lowered to `invoke + TTL` of any later renewal whose outcome is unknown.
 * Its release applied no earlier than the UNLOCK's invocation. So the holder certainly holds
 * throughout its **certain interval** [G.complete, min(first UNLOCK invocation, lease bound)).
 * A hold that lost its lease may still think it holds; fencing is for that, and the certain
 * interval does not include it.
 *
 * Properties (each a violation when broken; `margin` absorbs millisecond rounding):
 *   exclusion
 *     - the certain intervals of two holds of the same lock overlap (by more than `margin`);
 *     - a hold's renewal answered with its token, or its UNLOCK answered 1 (proof that it held at
 *       some instant of that operation), lies wholly inside another hold's certain interval;
 *     - a hold is lost early: LOCK.RENEW answered -LOCKLOST, or its first UNLOCK answered 0, and
 *       completed before the lease bound (the lease cannot have run out yet; nothing else in the
 *       workload releases it).
 *     These depend on leader clocks. Where a clock nemesis (skew, rate) acted between the
 *     earliest grant involved and the latest time involved, they are reported as **excused**
 *     (the lease bound is void there; fencing still has to hold) and do not fail the verdict.
 *   tokens
 *     - two holds with different owners got the same token (one counter for every grant);
 *     - grant order: G1 acknowledged before G2 was invoked (same lock) but token(G1) >= token(G2);
 *     - a renewal answered a token other than its grant's;
 *     - at the end, a fenced write with a token older than the newest acknowledged grant of the
 *       lock is accepted (`probes`): a grant was lost across the faults.
 *   fencing
 *     - an acknowledged fenced write W carried a token older than a grant of its lock that was
 *       acknowledged before W was invoked (that grant applied before W did);
 *     - acknowledged fenced writes W1 before W2 (real time) with token(W1) > token(W2): a
 *       write's token is its lock's latest when it applies (every token used here was granted
 *       for that lock), and the latest only grows;
 *     - a fenced write refused (-FENCED) although no grant of its lock with a newer token could
 *       have applied before it: every grant invoked before the write completed was acknowledged
 *       with a token not newer than the write's (grants with an unknown outcome may have been
 *       newer, so they excuse a refusal).
 * The values the fenced writes put in the lock's data key are checked by the register
 * linearizability checker (`dataHistory`): a refused write must never become visible.
 *
 * Owns: nothing beyond one call. Must never: fail a history for what an unknown outcome could
 * explain, or treat a lease bound as valid while a clock nemesis acted.
 */
import type { BaseOp, HistoryOp } from '../history.js';
import { clockAffected as touches, type ClockWindow } from './clock-windows.js';

export type LockOpKind = 'acquire' | 'renew' | 'release' | 'fenced-set' | 'read';

export interface LockOp extends BaseOp {
  kind: LockOpKind;
  lock: string;
  /** The owner string sent (one per hold); reads outside a hold carry the process's name. */
  owner: string;
  /** renew, release, fenced-set (and reads inside a hold): the id of the hold's acquire op. */
  hold?: number;
  /** acquire, renew: the TTL sent. */
  ttlMs?: number;
  /** acquire: the WAIT sent. */
  waitMs?: number;
  /** fenced-set: the token sent. */
  token?: number;
  /** fenced-set, read: the data key. */
  key?: string;
  /** fenced-set: the value written. */
  value?: string;
  /**
   * acquire: the token, or null (not granted within WAIT); renew: the token or 'LOCKLOST';
   * release: 1 or 0; read: the value (null: missing); fenced-set: 'OK'; -FENCED is a `fail`.
   */
  output?: number | string | null;
}

/** A fenced write made at the end with a token older than the newest acknowledged grant. */
export interface FenceProbe {
  lock: string;
  /** The newest token the history saw granted (acknowledged) for the lock. */
  newest: number;
  /** The token sent (older than `newest`). */
  token: number;
  node: string;
  /** 'FENCED', 'OK', or the error that kept the probe from being answered. */
  reply: string;
}

export type LockProperty = 'exclusion' | 'tokens' | 'fencing';

export interface LockViolation {
  property: LockProperty;
  kind:
    | 'overlap'
    | 'held-inside-other'
    | 'lost-early'
    | 'token-duplicate'
    | 'token-order'
    | 'renew-token'
    | 'final-fence'
    | 'fence-stale'
    | 'fence-order'
    | 'fence-refused';
  lock: string;
  ops: number[];
  detail: string;
}

export interface LockVerdict {
  checker: 'locks';
  valid: boolean;
  locks: number;
  grants: number;
  notGranted: number;
  unknownAcquires: number;
  renewals: number;
  lostLeases: number;
  releases: number;
  fencedWrites: { ok: number; refused: number; unknown: number };
  probes: { sent: number; refused: number; unanswered: number };
  violations: LockViolation[];
  /** Lease-bound violations inside a clock nemesis's window: reported, not failing. */
  excused: LockViolation[];
}

export interface LockCheckOptions {
  /** Stretches where a node's clock was skewed or ran at another rate (lease bounds void). */
  clockWindows?: readonly ClockWindow[];
  /** Slack for millisecond rounding of leader time (default 5 ms). */
  marginMs?: number;
  probes?: readonly FenceProbe[];
}

/** LOCK's default TTL (docs/locks.md): used for a grant or renewal recorded without one. */
const DEFAULT_TTL_MS = 30_000;
const MAX_REPORTED = 50;

interface Hold {
  grant: LockOp;
  token: number;
  /** Certain interval. */
  start: number;
  end: number;
  /** Operations proving the hold was live at some instant of [invokeMs, completeMs]. */
  evidence: LockOp[];
}

function byInvoke(a: LockOp, b: LockOp): number {
  return a.invokeMs - b.invokeMs || a.id - b.id;
}

/** The max of `value` over `items` (sorted by `time`) with time < `before`; -Infinity if none. */
function prefixMax<T>(
  items: readonly T[],
  time: (t: T) => number,
  value: (t: T) => number,
): (before: number) => number {
  const times = items.map(time);
  const maxes: number[] = [];
  let m = -Infinity;
  for (const t of items) {
    m = Math.max(m, value(t));
    maxes.push(m);
  }
  return (before: number): number => {
    // Last index with times[i] < before.
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid]! < before) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? -Infinity : maxes[lo - 1]!;
  };
}

export function describeLockOp(op: LockOp): string {
  const args =
    op.kind === 'acquire'
      ? ` TTL ${String(op.ttlMs)} WAIT ${String(op.waitMs)}`
      : op.kind === 'renew'
        ? ` TTL ${String(op.ttlMs)}`
        : op.kind === 'fenced-set'
          ? ` ${String(op.key)}=${String(op.value)} FENCE ${String(op.token)}`
          : '';
  const out = op.output !== undefined ? ` -> ${JSON.stringify(op.output)}` : '';
  const done = op.completeMs === undefined ? '?' : op.completeMs.toFixed(1);
  return `#${op.id} ${op.kind.toUpperCase()} ${op.lock} ${op.owner}${args}${out} [${op.result}${op.error !== undefined && op.result !== 'ok' ? `: ${op.error.slice(0, 60)}` : ''}] ${op.invokeMs.toFixed(1)}..${done} ms`;
}

export function checkLocks(history: readonly LockOp[], options: LockCheckOptions = {}): LockVerdict {
  const margin = options.marginMs ?? 5;
  const windows = options.clockWindows ?? [];
  const violations: LockViolation[] = [];
  const excused: LockViolation[] = [];
  const clockAffected = (lo: number, hi: number): boolean => touches(windows, lo, hi);
  const report = (v: LockViolation, span?: [number, number]): void => {
    const list = span !== undefined && clockAffected(span[0], span[1]) ? excused : violations;
    if (list.length < MAX_REPORTED) list.push(v);
    else if (list === violations && violations.length === MAX_REPORTED) {
      // Keep the count honest: one marker past the bound.
      list.push({ ...v, detail: `(more violations not listed) ${v.detail}` });
    }
  };
  const byId = new Map<number, LockOp>();
  for (const op of history) byId.set(op.id, op);

  // Operations of each hold, in the order the holder issued them.
  const holdOps = new Map<number, LockOp[]>();
  for (const op of history) {
    if (op.kind === 'acquire' || op.hold === undefined) continue;
    let list = holdOps.get(op.hold);
    if (list === undefined) holdOps.set(op.hold, (list = []));
    list.push(op);
  }

  let notGranted = 0;
  let unknownAcquires = 0;
  let renewals = 0;
  let lostLeases = 0;
  let releases = 0;
  const fenced = { ok: 0, refused: 0, unknown: 0 };
  const holdsByLock = new Map<string, Hold[]>();
  const acquiresByLock = new Map<string, LockOp[]>();

  for (const op of history) {
    if (op.kind === 'fenced-set') {
      if (op.result === 'ok') fenced.ok++;
      else if (op.result === 'fail') fenced.refused += op.error?.startsWith('FENCED') === true ? 1 : 0;
      else fenced.unknown++;
    }
    if (op.kind !== 'acquire') continue;
    let acquires = acquiresByLock.get(op.lock);
    if (acquires === undefined) acquiresByLock.set(op.lock, (acquires = []));
    acquires.push(op);
    if (op.result === 'unknown') unknownAcquires++;
    if (op.result !== 'ok') continue;
    if (typeof op.output !== 'number') {
      notGranted++;
      continue;
    }
    const token = op.output;
    let bound = op.invokeMs + (op.ttlMs ?? DEFAULT_TTL_MS);
    let end = Infinity;
    const evidence: LockOp[] = [];
    let lostAt: number | undefined;
    const ops = (holdOps.get(op.id) ?? []).sort(byInvoke);
    for (const later of ops) {
      if (later.kind === 'renew') {
        const ttl = later.ttlMs ?? op.ttlMs ?? DEFAULT_TTL_MS;
        if (later.result === 'unknown') {
          bound = Math.min(bound, later.invokeMs + ttl);
        } else if (later.result === 'ok' && typeof later.output === 'number') {
          renewals++;
          evidence.push(later);
          if (later.output !== token) {
            report({
              property: 'tokens',
              kind: 'renew-token',
              lock: op.lock,
              ops: [op.id, later.id],
              detail: `renewal answered token ${later.output}, the grant's is ${token}: ${describeLockOp(later)}`,
            });
          }
          if (lostAt === undefined) bound = later.invokeMs + ttl;
        } else if (later.result === 'ok' && later.output === 'LOCKLOST') {
          lostLeases++;
          if (lostAt === undefined && later.completeMs! + margin < Math.min(bound, end)) {
            report(
              {
                property: 'exclusion',
                kind: 'lost-early',
                lock: op.lock,
                ops: [op.id, later.id],
                detail: `-LOCKLOST ${(bound - later.completeMs!).toFixed(0)} ms before the lease could end (bound ${bound.toFixed(1)}): ${describeLockOp(later)}`,
              },
              [op.invokeMs, later.completeMs!],
            );
          }
          lostAt ??= later.invokeMs;
        }
      } else if (later.kind === 'release' && later.result !== 'fail') {
        if (later.result === 'ok') releases++;
        if (end === Infinity) {
          if (
            later.result === 'ok' &&
            later.output === 0 &&
            lostAt === undefined &&
            later.completeMs! + margin < bound
          ) {
            report(
              {
                property: 'exclusion',
                kind: 'lost-early',
                lock: op.lock,
                ops: [op.id, later.id],
                detail: `UNLOCK answered 0 ${(bound - later.completeMs!).toFixed(0)} ms before the lease could end (bound ${bound.toFixed(1)}): ${describeLockOp(later)}`,
              },
              [op.invokeMs, later.completeMs!],
            );
          }
          end = later.invokeMs;
        }
        if (later.result === 'ok' && later.output === 1) evidence.push(later);
      }
    }
    const hold: Hold = {
      grant: op,
      token,
      start: op.completeMs!,
      end: Math.min(end, bound, lostAt ?? Infinity),
      evidence,
    };
    let list = holdsByLock.get(op.lock);
    if (list === undefined) holdsByLock.set(op.lock, (list = []));
    list.push(hold);
  }

  // Tokens: one counter for every grant, so different owners never share a token.
  const tokenOwner = new Map<number, LockOp>();
  for (const holds of holdsByLock.values()) {
    for (const h of holds) {
      const seen = tokenOwner.get(h.token);
      if (seen !== undefined && seen.owner !== h.grant.owner) {
        report({
          property: 'tokens',
          kind: 'token-duplicate',
          lock: h.grant.lock,
          ops: [seen.id, h.grant.id],
          detail: `token ${h.token} granted twice: ${describeLockOp(seen)} and ${describeLockOp(h.grant)}`,
        });
      } else tokenOwner.set(h.token, h.grant);
    }
  }

  for (const [lock, holds] of holdsByLock) {
    // Grant order: a grant acknowledged before another was invoked has the smaller token.
    const byComplete = [...holds].sort((a, b) => a.start - b.start);
    const maxTokenBefore = prefixMax(
      byComplete,
      (h) => h.start,
      (h) => h.token,
    );
    for (const h of holds) {
      const before = maxTokenBefore(h.grant.invokeMs);
      if (before >= h.token) {
        const earlier = byComplete.find((g) => g.start < h.grant.invokeMs && g.token === before)!;
        if (earlier.grant.owner !== h.grant.owner) {
          report({
            property: 'tokens',
            kind: 'token-order',
            lock,
            ops: [earlier.grant.id, h.grant.id],
            detail: `token ${h.token} granted after token ${before} was acknowledged: ${describeLockOp(earlier.grant)} then ${describeLockOp(h.grant)}`,
          });
        }
      }
    }

    // Exclusion: certain intervals never overlap; proof of holding never inside another's.
    const sorted = [...holds].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      const a = sorted[i]!;
      for (let j = i + 1; j < sorted.length; j++) {
        const b = sorted[j]!;
        if (b.start >= a.end) break; // sorted by start: no later b overlaps a either
        const hi = Math.min(a.end, b.end);
        if (hi - b.start > margin) {
          report(
            {
              property: 'exclusion',
              kind: 'overlap',
              lock,
              ops: [a.grant.id, b.grant.id],
              detail: `two holders for ${(hi - b.start).toFixed(1)} ms: ${describeLockOp(a.grant)} (certainly held until ${a.end.toFixed(1)}) and ${describeLockOp(b.grant)} (from ${b.start.toFixed(1)})`,
            },
            [Math.min(a.grant.invokeMs, b.grant.invokeMs), hi],
          );
        }
      }
    }
    for (const a of holds) {
      for (const e of a.evidence) {
        for (const b of holds) {
          if (b === a || b.grant.owner === a.grant.owner) continue;
          if (b.start + margin <= e.invokeMs && e.completeMs! + margin <= b.end) {
            report(
              {
                property: 'exclusion',
                kind: 'held-inside-other',
                lock,
                ops: [a.grant.id, e.id, b.grant.id],
                detail: `${describeLockOp(e)} shows ${a.grant.owner} holding while ${describeLockOp(b.grant)} certainly held (${b.start.toFixed(1)}..${b.end.toFixed(1)})`,
              },
              [Math.min(a.grant.invokeMs, b.grant.invokeMs), e.completeMs!],
            );
          }
        }
      }
    }
  }

  // Fencing.
  const writesByLock = new Map<string, LockOp[]>();
  for (const op of history) {
    if (op.kind !== 'fenced-set' || op.token === undefined) continue;
    let list = writesByLock.get(op.lock);
    if (list === undefined) writesByLock.set(op.lock, (list = []));
    list.push(op);
  }
  for (const [lock, writes] of writesByLock) {
    const holds = [...(holdsByLock.get(lock) ?? [])].sort((a, b) => a.start - b.start);
    const grantBefore = prefixMax(
      holds,
      (h) => h.start,
      (h) => h.token,
    );
    const acked = writes.filter((w) => w.result === 'ok').sort((a, b) => a.completeMs! - b.completeMs!);
    const writeBefore = prefixMax(
      acked,
      (w) => w.completeMs!,
      (w) => w.token!,
    );
    for (const w of acked) {
      const newest = grantBefore(w.invokeMs);
      if (newest > w.token!) {
        const g = holds.find((h) => h.start < w.invokeMs && h.token === newest)!;
        report({
          property: 'fencing',
          kind: 'fence-stale',
          lock,
          ops: [g.grant.id, w.id],
          detail: `accepted token ${String(w.token)} after token ${newest} was granted: ${describeLockOp(g.grant)}, then ${describeLockOp(w)}`,
        });
      }
      const prior = writeBefore(w.invokeMs);
      if (prior > w.token!) {
        const p = acked.find((x) => x.completeMs! < w.invokeMs && x.token === prior)!;
        report({
          property: 'fencing',
          kind: 'fence-order',
          lock,
          ops: [p.id, w.id],
          detail: `fenced writes applied out of token order: ${describeLockOp(p)}, then ${describeLockOp(w)}`,
        });
      }
    }
    const acquires = acquiresByLock.get(lock) ?? [];
    for (const w of writes) {
      if (w.result !== 'fail' || w.error?.startsWith('FENCED') !== true) continue;
      const excuse = acquires.some(
        (g) =>
          g.invokeMs < w.completeMs! &&
          (g.result === 'unknown' ||
            (g.result === 'ok' && typeof g.output === 'number' && g.output > w.token!)),
      );
      if (!excuse) {
        report({
          property: 'fencing',
          kind: 'fence-refused',
          lock,
          ops: [w.id],
          detail: `refused although no newer grant could have applied: ${describeLockOp(w)}`,
        });
      }
    }
  }

  // The end: a token older than the newest acknowledged grant must be refused everywhere.
  const probes = { sent: 0, refused: 0, unanswered: 0 };
  for (const p of options.probes ?? []) {
    probes.sent++;
    if (p.reply === 'FENCED') probes.refused++;
    else if (p.reply === 'OK') {
      report({
        property: 'tokens',
        kind: 'final-fence',
        lock: p.lock,
        ops: [],
        detail: `at the end ${p.node} accepted a write fenced with token ${p.token}, older than the acknowledged grant ${p.newest}: a grant was lost`,
      });
    } else probes.unanswered++;
  }

  let grants = 0;
  for (const holds of holdsByLock.values()) grants += holds.length;
  return {
    checker: 'locks',
    valid: violations.length === 0,
    locks: acquiresByLock.size,
    grants,
    notGranted,
    unknownAcquires,
    renewals,
    lostLeases,
    releases,
    fencedWrites: fenced,
    probes,
    violations,
    excused,
  };
}

/** The fenced writes and reads of the data keys as register operations (for checkLinearizable). */
export function dataHistory(history: readonly LockOp[]): HistoryOp[] {
  const out: HistoryOp[] = [];
  for (const op of history) {
    if (op.key === undefined) continue;
    if (op.kind === 'fenced-set') {
      out.push({
        id: op.id,
        process: op.process,
        node: op.node,
        kind: 'set',
        key: op.key,
        value: op.value ?? null,
        result: op.result,
        invokeMs: op.invokeMs,
        ...(op.completeMs !== undefined ? { completeMs: op.completeMs } : {}),
      });
    } else if (op.kind === 'read') {
      out.push({
        id: op.id,
        process: op.process,
        node: op.node,
        kind: 'get',
        key: op.key,
        result: op.result,
        invokeMs: op.invokeMs,
        ...(op.result === 'ok' ? { output: typeof op.output === 'string' ? op.output : null } : {}),
        ...(op.completeMs !== undefined ? { completeMs: op.completeMs } : {}),
      });
    }
  }
  return out;
}
