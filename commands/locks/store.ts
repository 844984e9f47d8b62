/**
 * The lock manager's replicated state: named shared/exclusive locks with leases, FIFO wait
 * queues, fencing tokens and deadlock detection, inside the state machine (a StateFamily,
 * snapshot section 2).
 *
 * Owns: every lock record (holders with their lease, waiters in queue order), the one
 * state-machine-wide token counter, the last tokens of dropped locks (for fenced writes), the
 * family's counters, and the derived indexes (waiter id -> waiter, owner -> locks it waits on,
 * the deadline heap) that are rebuilt on restore. Must never read the clock (time is the
 * entry's), use timers or randomness, keep a caller's Buffer, or change state in a read.
 *
 * Rules (docs/locks.md):
 * - A grant takes the next value of one counter shared by all locks, so tokens are strictly
 *   increasing per lock over all grants, across leader changes and restarts (it is replicated
 *   and in the snapshot). A holder asking again gets its own token back.
 * - Waiters are served FIFO in the apply that frees the lock (release, expiry, force, a waiter
 *   withdrawn or timed out); consecutive SHARED waiters at the head are granted together; a
 *   SHARED request behind a waiting EXCLUSIVE one waits. An upgrade (a SHARED holder asking for
 *   EXCLUSIVE) queues ahead of plain waiters, since they wait for its hold anyway.
 * - Before a request is queued, the wait-for graph (owner -> owner, through conflicting holds
 *   and conflicting waiters ahead in a queue) is searched for a path back to the requester; if
 *   there is one the request is refused with -DEADLOCK and not queued. The graph is acyclic
 *   after every apply, so exactly one request of a would-be cycle is refused.
 * - A lock with no holder and no waiter is dropped (memory is bounded by live holds and
 *   waits); its last token moves to a bounded `retired` map, and when that map is full the
 *   oldest entry is evicted into `retiredFloor`, a token no evicted lock's last token exceeds.
 *   A fenced write on a lock found nowhere is judged against that floor: it may refuse a
 *   stale-but-unsuperseded token of a long-dropped lock, but never accepts a superseded one.
 *
 * Names and owners are Map keys as latin1 strings (one char per byte: binary safe and exact).
 */
import assert from 'node:assert';
import type { ChunkReader, FamilyContext, StateFamily } from '../family.js';
import { MinHeap } from '../heap.js';
import { BLOCKED_RESULT } from '../results.js';
import type { Result } from '../state-machine.js';
import type { LockMode, LockOperation } from './operations.js';

/** Lease of a hold when LOCK gives no TTL. */
export const DEFAULT_TTL_MS = 30_000;
/** Live lock records at most (each has a holder or a waiter). */
export const MAX_LOCKS = 1_000_000;
/** Holders (sharers) and waiters of one lock at most, each. */
export const MAX_HOLDERS_PER_LOCK = 10_000;
export const MAX_WAITERS_PER_LOCK = 10_000;
/** Last tokens of dropped locks kept exactly; older ones fold into retiredFloor. */
export const MAX_RETIRED = 100_000;

const SNAPSHOT_FORMAT = 1;

interface Hold {
  readonly owner: string;
  mode: LockMode;
  token: number;
  /** The lease length the holder asked for: renewals and a new term use it. */
  ttlMs: number;
  expiresAtMs: number;
}

interface QueuedWaiter {
  readonly owner: string;
  readonly mode: LockMode;
  readonly ttlMs: number;
  readonly waiterId: string;
  readonly deadlineMs: number;
}

interface LockRecord {
  readonly name: string;
  /** In grant order. */
  readonly holders: Map<string, Hold>;
  /** In service order. */
  waiters: QueuedWaiter[];
  /** The latest token granted on this lock (or a floor known to be at least it). */
  lastToken: number;
}

/** A deadline in the heap; stale marks (a renewed hold, a served waiter) are skipped. */
interface Mark {
  readonly atMs: number;
  readonly kind: 'hold' | 'wait';
  readonly lock: string;
  /** The holder's owner, or the waiter's id. */
  readonly key: string;
}

/** One edge of the wait-for graph: `from` waits for `to` because of lock `lock`. */
export interface WaitEdge {
  readonly from: string;
  readonly to: string;
  readonly lock: string;
  /** Whether `to` holds the lock, or waits ahead of `from` in its queue. */
  readonly as: 'holder' | 'waiter';
}

export interface LockCounters {
  grants: number;
  expiries: number;
  deadlocks: number;
  waitTimeouts: number;
  forcedReleases: number;
}

export interface LockFigures extends LockCounters {
  readonly locks: number;
  readonly holders: number;
  readonly waiters: number;
  readonly lastToken: number;
  readonly retired: number;
}

/** What LOCK.INFO shows of one lock. */
export interface LockView {
  readonly mode: 'none' | LockMode;
  readonly lastToken: number;
  readonly holders: readonly { owner: Buffer; mode: LockMode; token: number; ttlLeftMs: number }[];
  readonly waiters: readonly { owner: Buffer; mode: LockMode; waitLeftMs: number }[];
}

const NIL_RESULT: Result = Object.freeze({ type: 'tree', value: null });
const ZERO: Result = Object.freeze({ type: 'integer', value: 0 });
const SUPERSEDED: Result = Object.freeze({
  type: 'error',
  message: 'ERR superseded by a newer LOCK of the same owner on the same lock',
});
const ONE: Result = Object.freeze({ type: 'integer', value: 1 });

function tokenResult(token: number): Result {
  return { type: 'tree', value: token };
}

function conflicts(a: LockMode, b: LockMode): boolean {
  return a === 'exclusive' || b === 'exclusive';
}

/** A name or owner as text in a message (latin1 key back to bytes, shown as UTF-8). */
export function shown(key: string): string {
  return Buffer.from(key, 'latin1')
    .toString('utf8')
    .replace(/[\r\n]/g, ' ');
}

export class LockStore implements StateFamily {
  readonly snapshotSection = 2;
  private locks = new Map<string, LockRecord>();
  private retired = new Map<string, number>();
  private retiredFloor = 0;
  /** The last token issued by any grant (0: none yet). */
  private tokenCounter = 0;
  private counters: LockCounters = zeroCounters();
  private holderCount = 0;
  private waiterCount = 0;
  // Derived (rebuilt on restore, never in the snapshot):
  private waiterIndex = new Map<string, { lock: string; waiter: QueuedWaiter }>();
  /** owner -> lock -> how many of its waiters are queued there. */
  private waitingOn = new Map<string, Map<string, number>>();
  private heap = new MinHeap<Mark>(markBefore);

  constructor(private readonly context: FamilyContext) {}

  // ---- operations ----

  /** Applies a lock operation (lock.fenced is the state machine's: it applies the inner op). */
  apply(op: Exclude<LockOperation, { type: 'lock.fenced' }>, nowMs: number): Result {
    switch (op.type) {
      case 'lock.acquire':
        return this.acquire(op, nowMs);
      case 'lock.release':
        return this.release(op.name.toString('latin1'), op.owner.toString('latin1'), nowMs);
      case 'lock.renew':
        return this.renew(op.name.toString('latin1'), op.owner.toString('latin1'), op.ttlMs, nowMs);
      case 'lock.cancel':
        return this.cancel(op.name.toString('latin1'), op.waiterId, nowMs);
      case 'lock.force-release':
        return this.forceRelease(
          op.name.toString('latin1'),
          op.owner === null ? null : op.owner.toString('latin1'),
          nowMs,
        );
      default: {
        const unknown: never = op;
        throw new Error(`unknown lock operation ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * Whether a write fenced by `token` on lock `name` may apply: null if so, else the -FENCED
   * error. A token is refused when an older grant than the lock's latest, or never issued.
   */
  checkFence(name: Buffer, token: number): Result | null {
    const key = name.toString('latin1');
    if (token > this.tokenCounter || token < 1)
      return { type: 'error', message: `FENCED token ${token} was never issued` };
    const current = this.currentToken(key);
    if (token < current)
      return {
        type: 'error',
        message: `FENCED token ${token} is older than lock '${shown(key)}' current token ${current}`,
      };
    return null;
  }

  private acquire(op: Extract<LockOperation, { type: 'lock.acquire' }>, now: number): Result {
    const name = op.name.toString('latin1');
    const owner = op.owner.toString('latin1');
    let rec = this.locks.get(name);
    if (rec === undefined) {
      if (this.locks.size >= MAX_LOCKS)
        return { type: 'error', message: `ERR too many locks (max ${MAX_LOCKS})` };
      rec = this.createRecord(name);
    }
    const held = rec.holders.get(owner);
    if (held !== undefined && (held.mode === 'exclusive' || op.mode === 'shared')) {
      // A resend (or a weaker request) by the holder: the same token, the lease as asked.
      this.extendHold(rec, held, now + op.ttlMs);
      return tokenResult(held.token);
    }
    const upgrade = held !== undefined;
    if ((upgrade || rec.waiters.length === 0) && this.compatible(rec, owner, op.mode)) {
      if (!upgrade && rec.holders.size >= MAX_HOLDERS_PER_LOCK) {
        this.dropIfIdle(rec);
        return { type: 'error', message: `ERR too many holders of one lock (max ${MAX_HOLDERS_PER_LOCK})` };
      }
      return tokenResult(this.grant(rec, owner, op.mode, op.ttlMs, now));
    }
    if (op.waitMs <= 0 || op.waiterId === '') {
      this.dropIfIdle(rec);
      return NIL_RESULT;
    }
    if (rec.waiters.length >= MAX_WAITERS_PER_LOCK) {
      return { type: 'error', message: `ERR too many waiters on one lock (max ${MAX_WAITERS_PER_LOCK})` };
    }
    if (this.waiterIndex.has(op.waiterId)) return { type: 'error', message: 'ERR waiter id already in use' };
    const waiter: QueuedWaiter = {
      owner,
      mode: op.mode,
      ttlMs: op.ttlMs,
      waiterId: op.waiterId,
      deadlineMs: now + op.waitMs,
    };
    const previous = rec.waiters.findIndex((w) => w.owner === owner && w.mode === op.mode);
    if (previous >= 0) {
      // The same owner asks again for what it already waits for (a resend after a lost reply
      // or a reconnect): the new request takes the old one's place in the queue, so it keeps
      // its turn, and one owner never queues twice (a second entry behind others would wait
      // for them while they wait for the first one's grant). The wait-for graph is unchanged.
      const old = rec.waiters[previous]!;
      this.dequeue(rec, old);
      this.enqueue(rec, waiter, previous);
      this.context.wake(old.waiterId, SUPERSEDED);
      this.heapPush({ atMs: waiter.deadlineMs, kind: 'wait', lock: name, key: waiter.waiterId });
      return BLOCKED_RESULT;
    }
    // An upgrade goes ahead of plain waiters (they wait for its hold anyway), behind other
    // upgrades; a plain request goes to the back.
    let at = rec.waiters.length;
    if (upgrade) {
      at = 0;
      while (at < rec.waiters.length && rec.holders.has(rec.waiters[at]!.owner)) at++;
    }
    this.enqueue(rec, waiter, at);
    const cycle = this.findCycle(owner);
    if (cycle !== null) {
      this.dequeue(rec, waiter);
      this.counters.deadlocks++;
      this.dropIfIdle(rec);
      return { type: 'error', message: deadlockMessage(cycle) };
    }
    this.heapPush({ atMs: waiter.deadlineMs, kind: 'wait', lock: name, key: waiter.waiterId });
    return BLOCKED_RESULT;
  }

  private release(name: string, owner: string, now: number): Result {
    const rec = this.locks.get(name);
    if (rec === undefined || !rec.holders.has(owner)) return ZERO;
    this.dropHold(rec, owner);
    this.serve(rec, now);
    this.dropIfIdle(rec);
    return ONE;
  }

  private renew(name: string, owner: string, ttlMs: number, now: number): Result {
    const held = this.locks.get(name)?.holders.get(owner);
    if (held === undefined) {
      return {
        type: 'error',
        message: `LOCKLOST '${shown(owner)}' does not hold lock '${shown(name)}' (its lease expired, or it was released or taken over)`,
      };
    }
    if (ttlMs > 0) held.ttlMs = ttlMs;
    // A renewal sets the lease from now, even shorter than before (the holder asked for it).
    held.expiresAtMs = now + held.ttlMs;
    this.heapPush({ atMs: held.expiresAtMs, kind: 'hold', lock: name, key: owner });
    return tokenResult(held.token);
  }

  private cancel(name: string, waiterId: string, now: number): Result {
    const entry = this.waiterIndex.get(waiterId);
    if (entry === undefined || entry.lock !== name) return ZERO;
    const rec = this.locks.get(name);
    assert(rec !== undefined, `waiter ${waiterId} indexed on a missing lock`);
    // No wake-up: the request that registered it is gone (or gave up) already.
    this.dequeue(rec, entry.waiter);
    this.serve(rec, now);
    this.dropIfIdle(rec);
    return ONE;
  }

  private forceRelease(name: string, owner: string | null, now: number): Result {
    const rec = this.locks.get(name);
    if (rec === undefined) return ZERO;
    const owners = owner === null ? [...rec.holders.keys()] : rec.holders.has(owner) ? [owner] : [];
    for (const o of owners) this.dropHold(rec, o);
    this.counters.forcedReleases += owners.length;
    this.serve(rec, now);
    this.dropIfIdle(rec);
    return { type: 'integer', value: owners.length };
  }

  // ---- StateFamily ----

  nextDeadlineMs(): number {
    // Dropping stale marks here changes no replicated state (the heap is derived).
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined) return Infinity;
      if (this.isLive(top)) return top.atMs;
      this.heap.pop();
    }
  }

  advanceTime(nowMs: number): void {
    const due: Mark[] = [];
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || top.atMs > nowMs) break;
      this.heap.pop();
      if (this.isLive(top)) due.push(top);
    }
    // The heap's shape differs between a node that restored a snapshot and one that did not:
    // process in a canonical order so every node does the same.
    due.sort(compareMarks);
    for (const mark of due) {
      if (!this.isLive(mark)) continue; // served or renewed by an earlier one
      const rec = this.locks.get(mark.lock)!;
      if (mark.kind === 'hold') {
        this.dropHold(rec, mark.key);
        this.counters.expiries++;
      } else {
        const { waiter } = this.waiterIndex.get(mark.key)!;
        this.dequeue(rec, waiter);
        this.counters.waitTimeouts++;
        this.context.wake(waiter.waiterId, NIL_RESULT);
      }
      this.serve(rec, nowMs);
      this.dropIfIdle(rec);
    }
    this.compactHeap();
  }

  onTermStart(nowMs: number): void {
    // A new leader: every lease runs at least its full TTL from now (its clock may differ
    // from the old leader's, and time passed without a leader), as etcd's lessor on promotion.
    for (const rec of this.locks.values())
      for (const hold of rec.holders.values()) this.extendHold(rec, hold, nowMs + hold.ttlMs);
  }

  capture(): ChunkReader {
    // Serialized at capture: lock state is small (bounded by live holds and waits), and a
    // copy would cost about as much as the bytes.
    let bytes: Buffer | null = this.serialize();
    return {
      next(): Buffer | null {
        const out = bytes;
        bytes = null;
        return out;
      },
    };
  }

  restore(data: Buffer): void {
    this.locks = new Map();
    this.retired = new Map();
    this.retiredFloor = 0;
    this.tokenCounter = 0;
    this.counters = zeroCounters();
    this.holderCount = 0;
    this.waiterCount = 0;
    this.waiterIndex = new Map();
    this.waitingOn = new Map();
    this.heap = new MinHeap<Mark>(markBefore);
    if (data.length === 0) return;
    const s = JSON.parse(data.toString('utf8')) as Serialized;
    if (s.v !== SNAPSHOT_FORMAT) throw new Error(`unsupported lock snapshot format ${String(s.v)}`);
    this.tokenCounter = s.token;
    this.retiredFloor = s.floor;
    this.counters = {
      grants: s.counters[0],
      expiries: s.counters[1],
      deadlocks: s.counters[2],
      waitTimeouts: s.counters[3],
      forcedReleases: s.counters[4],
    };
    for (const [name, token] of s.retired) this.retired.set(name, token);
    for (const [name, lastToken, holders, waiters] of s.locks) {
      const rec: LockRecord = { name, holders: new Map(), waiters: [], lastToken };
      this.locks.set(name, rec);
      for (const [owner, mode, token, ttlMs, expiresAtMs] of holders) {
        rec.holders.set(owner, { owner, mode: modeOf(mode), token, ttlMs, expiresAtMs });
        this.holderCount++;
        this.heapPush({ atMs: expiresAtMs, kind: 'hold', lock: name, key: owner });
      }
      for (const [owner, mode, ttlMs, waiterId, deadlineMs] of waiters) {
        const waiter: QueuedWaiter = { owner, mode: modeOf(mode), ttlMs, waiterId, deadlineMs };
        this.enqueue(rec, waiter, rec.waiters.length);
        this.heapPush({ atMs: deadlineMs, kind: 'wait', lock: name, key: waiterId });
      }
    }
  }

  // ---- reads (never change state) ----

  figures(): LockFigures {
    return {
      ...this.counters,
      locks: this.locks.size,
      holders: this.holderCount,
      waiters: this.waiterCount,
      lastToken: this.tokenCounter,
      retired: this.retired.size,
    };
  }

  /** LOCK.INFO: null when the lock has no holder and no waiter. */
  view(name: Buffer, nowMs: number): LockView | null {
    const rec = this.locks.get(name.toString('latin1'));
    if (rec === undefined) return null;
    let mode: LockView['mode'] = 'none';
    for (const h of rec.holders.values()) mode = h.mode === 'exclusive' || mode === 'none' ? h.mode : mode;
    return {
      mode,
      lastToken: rec.lastToken,
      holders: [...rec.holders.values()].map((h) => ({
        owner: Buffer.from(h.owner, 'latin1'),
        mode: h.mode,
        token: h.token,
        ttlLeftMs: Math.max(0, h.expiresAtMs - nowMs),
      })),
      waiters: rec.waiters.map((w) => ({
        owner: Buffer.from(w.owner, 'latin1'),
        mode: w.mode,
        waitLeftMs: Math.max(0, w.deadlineMs - nowMs),
      })),
    };
  }

  /** The latest token of lock `name` as fencing judges it (0: never granted). */
  currentToken(name: string): number {
    return this.locks.get(name)?.lastToken ?? this.retired.get(name) ?? this.retiredFloor;
  }

  /**
   * LOCK.WAITSFOR: every wait-for edge reachable from `owner`, breadth first (what it waits
   * for, what those wait for ...). Empty when it waits for nothing.
   */
  waitsFor(owner: Buffer): WaitEdge[] {
    const start = owner.toString('latin1');
    const out: WaitEdge[] = [];
    const seen = new Set<string>([start]);
    const queue = [start];
    const cache = new Map<string, QueueIndex>();
    for (let i = 0; i < queue.length; i++) {
      for (const edge of this.edgesFrom(queue[i]!, cache)) {
        out.push(edge);
        if (!seen.has(edge.to)) {
          seen.add(edge.to);
          queue.push(edge.to);
        }
      }
    }
    return out;
  }

  /** Canonical bytes of the state (tests compare them; capture() hands them out). */
  serialize(): Buffer {
    const s: Serialized = {
      v: SNAPSHOT_FORMAT,
      token: this.tokenCounter,
      floor: this.retiredFloor,
      counters: [
        this.counters.grants,
        this.counters.expiries,
        this.counters.deadlocks,
        this.counters.waitTimeouts,
        this.counters.forcedReleases,
      ],
      retired: [...this.retired],
      locks: [...this.locks.values()].map((rec) => [
        rec.name,
        rec.lastToken,
        [...rec.holders.values()].map((h) => [
          h.owner,
          h.mode === 'exclusive' ? 1 : 0,
          h.token,
          h.ttlMs,
          h.expiresAtMs,
        ]),
        rec.waiters.map((w) => [w.owner, w.mode === 'exclusive' ? 1 : 0, w.ttlMs, w.waiterId, w.deadlineMs]),
      ]),
    };
    return Buffer.from(JSON.stringify(s), 'utf8');
  }

  // ---- internals ----

  private createRecord(name: string): LockRecord {
    const rec: LockRecord = {
      name,
      holders: new Map(),
      waiters: [],
      lastToken: this.retired.get(name) ?? this.retiredFloor,
    };
    this.retired.delete(name);
    this.locks.set(name, rec);
    return rec;
  }

  /** Drops a record with no holder and no waiter, keeping its last token for fencing. */
  private dropIfIdle(rec: LockRecord): void {
    if (rec.holders.size > 0 || rec.waiters.length > 0) return;
    this.locks.delete(rec.name);
    if (rec.lastToken <= this.retiredFloor) return; // the floor speaks for it already
    this.retired.set(rec.name, rec.lastToken);
    if (this.retired.size > MAX_RETIRED) {
      const [oldest, token] = this.retired.entries().next().value!;
      this.retired.delete(oldest);
      if (token > this.retiredFloor) this.retiredFloor = token;
    }
  }

  /** Whether `owner` may hold `mode` next to the other holders. */
  private compatible(rec: LockRecord, owner: string, mode: LockMode): boolean {
    for (const h of rec.holders.values()) if (h.owner !== owner && conflicts(mode, h.mode)) return false;
    return true;
  }

  private grant(rec: LockRecord, owner: string, mode: LockMode, ttlMs: number, now: number): number {
    const token = ++this.tokenCounter;
    rec.lastToken = token;
    this.counters.grants++;
    const expiresAtMs = now + ttlMs;
    const held = rec.holders.get(owner);
    if (held !== undefined) {
      // An upgrade is a new grant: a new token, a new lease.
      held.mode = mode;
      held.token = token;
      held.ttlMs = ttlMs;
      held.expiresAtMs = expiresAtMs;
    } else {
      rec.holders.set(owner, { owner, mode, token, ttlMs, expiresAtMs });
      this.holderCount++;
    }
    this.heapPush({ atMs: expiresAtMs, kind: 'hold', lock: rec.name, key: owner });
    return token;
  }

  private extendHold(rec: LockRecord, hold: Hold, atMs: number): void {
    if (atMs <= hold.expiresAtMs) return;
    hold.expiresAtMs = atMs;
    this.heapPush({ atMs, kind: 'hold', lock: rec.name, key: hold.owner });
  }

  private dropHold(rec: LockRecord, owner: string): void {
    if (rec.holders.delete(owner)) this.holderCount--;
  }

  /** Grants to the waiters at the head of the queue while they fit, waking each with its token. */
  private serve(rec: LockRecord, now: number): void {
    while (rec.waiters.length > 0) {
      const w = rec.waiters[0]!;
      const held = rec.holders.get(w.owner);
      if (held !== undefined && (held.mode === 'exclusive' || w.mode === 'shared')) {
        // The same owner asked twice (e.g. a resend from a new connection): its own token.
        this.dequeue(rec, w);
        this.extendHold(rec, held, now + w.ttlMs);
        this.context.wake(w.waiterId, tokenResult(held.token));
        continue;
      }
      if (!this.compatible(rec, w.owner, w.mode)) return;
      if (held === undefined && rec.holders.size >= MAX_HOLDERS_PER_LOCK) return;
      this.dequeue(rec, w);
      this.context.wake(w.waiterId, tokenResult(this.grant(rec, w.owner, w.mode, w.ttlMs, now)));
    }
  }

  private enqueue(rec: LockRecord, waiter: QueuedWaiter, at: number): void {
    rec.waiters.splice(at, 0, waiter);
    this.waiterCount++;
    this.waiterIndex.set(waiter.waiterId, { lock: rec.name, waiter });
    let locks = this.waitingOn.get(waiter.owner);
    if (locks === undefined) this.waitingOn.set(waiter.owner, (locks = new Map<string, number>()));
    locks.set(rec.name, (locks.get(rec.name) ?? 0) + 1);
  }

  private dequeue(rec: LockRecord, waiter: QueuedWaiter): void {
    const i = rec.waiters.indexOf(waiter);
    assert(i >= 0, 'dequeue of a waiter not in the queue');
    rec.waiters.splice(i, 1);
    this.waiterCount--;
    this.waiterIndex.delete(waiter.waiterId);
    const locks = this.waitingOn.get(waiter.owner)!;
    const n = locks.get(rec.name)! - 1;
    if (n > 0) locks.set(rec.name, n);
    else {
      locks.delete(rec.name);
      if (locks.size === 0) this.waitingOn.delete(waiter.owner);
    }
  }

  /**
   * What `owner` waits for, in a canonical order (locks by name, then queue order). The edges
   * are a reduction of "every conflicting holder, every conflicting waiter ahead" with the same
   * reachability, so a search costs O(queue) and not O(queue^2): a waiter's edges stop at the
   * nearest EXCLUSIVE waiter ahead (of another owner), which itself reaches, by induction, every
   * waiter ahead of it and every holder; so past it only the conflicting waiters in between
   * (all of them for an exclusive request, none for a shared one) are listed, and the holders
   * only when no exclusive waiter is ahead. (The model spec checks the decisions against the
   * full graph.)
   */
  private edgesFrom(owner: string, cache: Map<string, QueueIndex>): WaitEdge[] {
    const locks = this.waitingOn.get(owner);
    if (locks === undefined) return [];
    const out: WaitEdge[] = [];
    const seen = new Set<string>();
    for (const name of [...locks.keys()].sort()) {
      const rec = this.locks.get(name)!;
      const q = queueIndex(rec, cache);
      const add = (to: string, as: 'holder' | 'waiter'): void => {
        const k = `${name}\u0000${to}`;
        if (seen.has(k)) return;
        seen.add(k);
        out.push({ from: owner, to, lock: name, as });
      };
      for (const i of q.positions.get(owner) ?? []) {
        const w = rec.waiters[i]!;
        let stop = q.prevExclusive[i]!;
        while (stop >= 0 && rec.waiters[stop]!.owner === owner) stop = q.prevExclusive[stop]!;
        if (stop >= 0) add(rec.waiters[stop]!.owner, 'waiter');
        if (w.mode === 'exclusive')
          for (let j = stop + 1; j < i; j++) {
            const ahead = rec.waiters[j]!;
            if (ahead.owner !== owner) add(ahead.owner, 'waiter');
          }
        if (stop < 0)
          for (const h of rec.holders.values())
            if (h.owner !== owner && conflicts(w.mode, h.mode)) add(h.owner, 'holder');
      }
    }
    return out;
  }

  /** A path of wait-for edges from `owner` back to itself, or null (depth-first, canonical). */
  private findCycle(owner: string): WaitEdge[] | null {
    const visited = new Set<string>([owner]);
    const path: WaitEdge[] = [];
    const cache = new Map<string, QueueIndex>();
    const stack: { edges: WaitEdge[]; next: number }[] = [{ edges: this.edgesFrom(owner, cache), next: 0 }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const edge = frame.edges[frame.next++];
      if (edge === undefined) {
        stack.pop();
        path.pop();
        continue;
      }
      if (edge.to === owner) return [...path, edge];
      if (visited.has(edge.to)) continue;
      visited.add(edge.to);
      path.push(edge);
      stack.push({ edges: this.edgesFrom(edge.to, cache), next: 0 });
    }
    return null;
  }

  private isLive(mark: Mark): boolean {
    if (mark.kind === 'hold')
      return this.locks.get(mark.lock)?.holders.get(mark.key)?.expiresAtMs === mark.atMs;
    const entry = this.waiterIndex.get(mark.key);
    return entry !== undefined && entry.waiter.deadlineMs === mark.atMs;
  }

  /** Rebuilds the heap from the state when stale marks outnumber live ones (bounds it). */
  private compactHeap(): void {
    if (this.heap.size <= 2 * (this.holderCount + this.waiterCount) + 64) return;
    this.heap.retain((m) => this.isLive(m));
  }

  private heapPush(mark: Mark): void {
    this.heap.push(mark);
    // Renewals push new marks; keep stale ones from piling up between deadlines.
    if (this.heap.size > 4 * (this.holderCount + this.waiterCount) + 1024) this.compactHeap();
  }
}

type Serialized = {
  v: number;
  token: number;
  floor: number;
  counters: [number, number, number, number, number];
  retired: [string, number][];
  locks: [
    string,
    number,
    [string, number, number, number, number][],
    [string, number, number, string, number][],
  ][];
};

/** A queue seen during one search (the state does not change meanwhile). */
interface QueueIndex {
  /** For each position, the position of the nearest exclusive waiter ahead, or -1. */
  readonly prevExclusive: Int32Array;
  /** Each owner's positions in the queue. */
  readonly positions: Map<string, number[]>;
}

function queueIndex(rec: LockRecord, cache: Map<string, QueueIndex>): QueueIndex {
  const cached = cache.get(rec.name);
  if (cached !== undefined) return cached;
  const n = rec.waiters.length;
  const prevExclusive = new Int32Array(n);
  const positions = new Map<string, number[]>();
  let last = -1;
  for (let i = 0; i < n; i++) {
    const w = rec.waiters[i]!;
    prevExclusive[i] = last;
    if (w.mode === 'exclusive') last = i;
    const list = positions.get(w.owner);
    if (list === undefined) positions.set(w.owner, [i]);
    else list.push(i);
  }
  const q = { prevExclusive, positions };
  cache.set(rec.name, q);
  return q;
}

function zeroCounters(): LockCounters {
  return { grants: 0, expiries: 0, deadlocks: 0, waitTimeouts: 0, forcedReleases: 0 };
}

function modeOf(code: number): LockMode {
  if (code !== 0 && code !== 1) throw new Error(`bad lock mode ${code} in snapshot`);
  return code === 1 ? 'exclusive' : 'shared';
}

/** By deadline only: advanceTime sorts what is due (compareMarks), so equal ones never show. */
function markBefore(a: Mark, b: Mark): boolean {
  return a.atMs < b.atMs;
}

function compareMarks(a: Mark, b: Mark): number {
  if (a.atMs !== b.atMs) return a.atMs - b.atMs;
  // Holds before waits at the same instant: a lease that ends serves a waiter due then.
  if (a.kind !== b.kind) return a.kind === 'hold' ? -1 : 1;
  if (a.lock !== b.lock) return a.lock < b.lock ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** `DEADLOCK a -> b -> a on locks x, y`: the owners of the cycle and the lock of each edge. */
function deadlockMessage(cycle: readonly WaitEdge[]): string {
  const owners = [cycle[0]!.from, ...cycle.map((e) => e.to)].map(shown).join(' -> ');
  const locks = cycle.map((e) => shown(e.lock)).join(', ');
  return `DEADLOCK ${owners} on locks ${locks}`;
}
