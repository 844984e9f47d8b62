/**
 * The queue family's store (StateFamily, snapshot section 3): named queues of messages with
 * leases (visibility timeouts), delays, delivery counts, dead-lettering, producers'
 * idempotency keys and blocked consumers (QPOP ... BLOCK), inside the state machine.
 *
 * Owns: every queue's messages, ids, settings, counters, waiters and idempotency records; one
 * timer heap for all leases, delays and waits; the family's snapshot encoding.
 *
 * Semantics (docs/queues.md says them to users):
 * - Ids are per queue, 1, 2, 3 ... in apply order, never reused (a queue record is never
 *   dropped, so its counter survives everything; restarts and leader changes replay the log).
 * - Ready messages are leased lowest id first (a message given back returns to its place).
 * - A message is delivered at most `maxDeliveries` times (0 = no limit): when a lease of its
 *   last allowed delivery runs out, or is NACKed, it moves to the dead-letter queue instead of
 *   becoming ready (it stays in its queue when the dead-letter queue is full).
 * - An ack must name the delivery (receipt id-delivery): a delivery that was superseded by a
 *   later one is refused (LEASELOST), so an old lease holder cannot ack a newer delivery.
 * - Blocked consumers are served in arrival order, in the same apply that makes messages
 *   ready; a wait that runs out is woken with null at leader time.
 *
 * Per-queue state is independent: an operation touches one queue and at most its dead-letter
 * queue, which hashes to the same slot (deadLetterName). Must never: read the clock (time is
 * `nowMs` from the entry), change state in a read method, keep a caller's Buffer (payloads are
 * copied), or grow without a bound (every collection has a limit below).
 */
import assert from 'node:assert';
import { keySlot } from '../cluster/slot.js';
import type { ChunkReader, FamilyContext, StateFamily } from '../family.js';
import { BLOCKED_RESULT, OK_RESULT } from '../results.js';
import type { Result, ResultTree } from '../state-machine.js';
import { MinHeap } from '../heap.js';
import type { QueueOperation, Receipt } from './operations.js';

// ---- limits and defaults (docs/queues.md) ----
export const QUEUE_SNAPSHOT_SECTION = 3;
export const MAX_QUEUES = 100_000;
export const MAX_QUEUE_NAME_BYTES = 1024;
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
export const MAX_PUSH_PAYLOADS = 10_000;
export const MAX_POP_COUNT = 10_000;
export const MAX_WAITERS_PER_QUEUE = 10_000;
export const MAX_CONSUMER_BYTES = 256;
export const MAX_IDEMPOTENCY_KEY_BYTES = 256;
/** Idempotency records kept per queue; the oldest is forgotten first beyond this. */
export const MAX_IDEMPOTENCY_KEYS = 100_000;
export const MAX_ACK_RECEIPTS = 10_000;
export const MAX_REPLAY_COUNT = 10_000;
/** Longest lease, delay, wait and idempotency window: 12 hours (SQS's visibility limit). */
export const MAX_DURATION_MS = 12 * 60 * 60 * 1000;
/** BLOCK 0 ("forever") waits this long: a waiter whose node died must not stay forever. */
export const MAX_BLOCK_MS = 5 * 60 * 1000;
export const MAX_MAX_LENGTH = 10_000_000;
export const DEFAULT_VISIBILITY_MS = 30_000;
export const DEFAULT_MAX_DELIVERIES = 20;
export const DEFAULT_MAX_LENGTH = 1_000_000;
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 5 * 60 * 1000;
export const DEAD_LETTER_SUFFIX = ':dlq';

type MessageState = 'ready' | 'leased' | 'delayed';
const STATES: readonly MessageState[] = ['ready', 'leased', 'delayed'];

/**
 * A message's delivery state. Immutable: every change replaces the object, so a snapshot
 * capture only copies references (O(1) per message) and still sees capture-time values.
 */
interface Delivery {
  readonly state: MessageState;
  /** How many times it was leased so far. */
  readonly deliveries: number;
  /** leased: the lease's deadline; delayed: when it becomes ready; ready: 0. */
  readonly untilMs: number;
  /** The current lease's length (kept so a new leader can renew it: onTermStart). */
  readonly visibilityMs: number;
  readonly consumer: Buffer;
}

interface Message {
  readonly id: number;
  readonly payload: Buffer;
  /** Leader time the message was first pushed (kept through dead-lettering and replay). */
  readonly pushedAtMs: number;
  d: Delivery;
  /** Bumped whenever a timer is armed for the message: older timers are stale. Not state. */
  gen: number;
}

const READY: Delivery = Object.freeze({
  state: 'ready',
  deliveries: 0,
  untilMs: 0,
  visibilityMs: 0,
  consumer: Buffer.alloc(0),
});

interface QueueWaiter {
  readonly id: string;
  readonly count: number;
  readonly visibilityMs: number;
  readonly consumer: Buffer;
  readonly deadlineMs: number;
}

interface IdempotencyRecord {
  readonly firstId: number;
  readonly count: number;
  readonly atMs: number;
}

export interface QueueSettings {
  visibilityMs: number;
  /** 0 = no limit. */
  maxDeliveries: number;
  maxLength: number;
  idempotencyWindowMs: number;
}

export interface QueueCounters {
  pushed: number;
  delivered: number;
  redelivered: number;
  acked: number;
  nacked: number;
  expired: number;
  deadLettered: number;
  replayed: number;
  duplicatePushes: number;
}

const COUNTER_NAMES: readonly (keyof QueueCounters)[] = [
  'pushed',
  'delivered',
  'redelivered',
  'acked',
  'nacked',
  'expired',
  'deadLettered',
  'replayed',
  'duplicatePushes',
];

function zeroCounters(): QueueCounters {
  return {
    pushed: 0,
    delivered: 0,
    redelivered: 0,
    acked: 0,
    nacked: 0,
    expired: 0,
    deadLettered: 0,
    replayed: 0,
    duplicatePushes: 0,
  };
}

class Queue {
  nextId = 1;
  readonly messages = new Map<number, Message>();
  /** Ids of messages that became ready by a push, ascending; entries before `freshHead` are used. */
  fresh: number[] = [];
  freshHead = 0;
  /** Ids of messages that became ready again (lease ran out, NACK, delay over). */
  readonly returned = new MinHeap<number>((a, b) => a < b);
  ready = 0;
  leased = 0;
  delayed = 0;
  waiters: QueueWaiter[] = [];
  readonly idempotency = new Map<string, IdempotencyRecord>();
  readonly counters = zeroCounters();

  constructor(
    readonly name: string,
    /** Creation order: the tie-break between queues' timers due at the same ms. */
    readonly ordinal: number,
    readonly settings: QueueSettings,
  ) {}

  /** The ready message with the lowest id, taken out of the ready structures, or undefined. */
  takeReady(): Message | undefined {
    for (;;) {
      // Drop entries of messages acked while ready (lazy deletion).
      while (this.freshHead < this.fresh.length && !this.isReady(this.fresh[this.freshHead]!))
        this.freshHead++;
      for (
        let top = this.returned.peek();
        top !== undefined && !this.isReady(top);
        top = this.returned.peek()
      )
        this.returned.pop();
      const f = this.fresh[this.freshHead];
      const r = this.returned.peek();
      let id: number;
      if (f !== undefined && (r === undefined || f < r)) {
        id = f;
        this.freshHead++;
        if (this.freshHead > 1024 && this.freshHead * 2 > this.fresh.length) {
          this.fresh = this.fresh.slice(this.freshHead);
          this.freshHead = 0;
        }
      } else if (r !== undefined) {
        id = r;
        this.returned.pop();
      } else {
        return undefined;
      }
      return this.messages.get(id);
    }
  }

  private isReady(id: number): boolean {
    return this.messages.get(id)?.d.state === 'ready';
  }
}

/** A lease, delay or wait running out. Stale ones (gen changed) are skipped when they fire. */
interface Timer {
  readonly atMs: number;
  /** 0: a message's lease or delay; 1: the queue's waiters' deadlines. */
  readonly kind: 0 | 1;
  readonly queue: Queue;
  readonly id: number;
  readonly gen: number;
}

function timerLess(a: Timer, b: Timer): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.kind !== b.kind) return a.kind < b.kind;
  if (a.queue.ordinal !== b.queue.ordinal) return a.queue.ordinal < b.queue.ordinal;
  if (a.id !== b.id) return a.id < b.id;
  return a.gen < b.gen;
}

/** The receipt QPOP hands out for a delivery, and QACK/QNACK/QTOUCH take back. */
export function formatReceipt(id: number, delivery: number): string {
  return `${id}-${delivery}`;
}

/** "id-delivery" -> Receipt, or null when malformed. */
export function parseReceipt(raw: Buffer): Receipt | null {
  const text = raw.toString('latin1');
  const m = /^([1-9][0-9]{0,14})-([1-9][0-9]{0,14})$/.exec(text);
  if (m === null) return null;
  return { id: Number(m[1]), delivery: Number(m[2]) };
}

/**
 * The dead-letter queue's name: `<queue>:dlq`, written so that it hashes to the queue's own
 * Redis Cluster slot (a queue and its dead-letter queue must stay in one Raft group when slots
 * are split): with the queue's hash tag if it has one, else `{<queue>}:dlq`. A queue name
 * whose slot neither form keeps (a stray '}' or an empty tag) gets `<queue>:dlq` anyway.
 */
export function deadLetterName(queue: Buffer): Buffer {
  const plain = Buffer.concat([queue, Buffer.from(DEAD_LETTER_SUFFIX)]);
  const slot = keySlot(queue);
  if (keySlot(plain) === slot) return plain;
  const tagged = Buffer.concat([Buffer.from('{'), queue, Buffer.from('}' + DEAD_LETTER_SUFFIX)]);
  return keySlot(tagged) === slot ? tagged : plain;
}

/** What QINFO shows about one queue. */
export interface QueueInfo {
  readonly ready: number;
  readonly leased: number;
  readonly delayed: number;
  readonly deadLetterLength: number;
  readonly oldestAgeMs: number;
  readonly waiting: number;
  readonly nextId: number;
  readonly idempotencyKeys: number;
  readonly settings: QueueSettings;
  readonly counters: QueueCounters;
  readonly deadLetterQueue: string;
}

/** One leased message, as QPENDING lists it. */
export interface PendingMessage {
  readonly id: number;
  readonly consumer: Buffer;
  readonly deliveries: number;
  readonly deadlineMs: number;
  readonly receipt: string;
}

/** Totals over every queue (INFO queues). */
export interface QueueTotals {
  queues: number;
  ready: number;
  leased: number;
  delayed: number;
  waiting: number;
  idempotencyKeys: number;
  counters: QueueCounters;
}

const NIL_TREE: Result = Object.freeze({ type: 'tree', value: null });

export class QueueStore implements StateFamily {
  readonly snapshotSection = QUEUE_SNAPSHOT_SECTION;
  /** Queue name (latin1 of its bytes) -> queue, in creation order. Queues are never dropped. */
  private queues = new Map<string, Queue>();
  private timers = new MinHeap<Timer>(timerLess);
  /** When the timer heap is this big, stale timers are counted and maybe dropped. */
  private compactAt = MIN_COMPACT_AT;

  constructor(private readonly context: FamilyContext) {}

  // ---- StateFamily ----

  nextDeadlineMs(): number {
    // Stale timers (acked or touched leases, served waits) are dropped here rather than each
    // costing the leader a needless tick entry. The heap is not state (snapshots rebuild it,
    // timers fire in a total order and stale ones are skipped), so no result changes.
    for (let t = this.timers.peek(); t !== undefined; t = this.timers.peek()) {
      if (this.isLive(t)) return t.atMs;
      this.timers.pop();
    }
    return Infinity;
  }

  private isLive(t: Timer): boolean {
    if (t.kind === 1) return t.queue.waiters.some((w) => w.deadlineMs <= t.atMs);
    const m = t.queue.messages.get(t.id);
    return m !== undefined && m.gen === t.gen && m.d.state !== 'ready';
  }

  advanceTime(nowMs: number): void {
    const touched = new Set<Queue>();
    const waitsDue = new Set<Queue>();
    for (let t = this.timers.peek(); t !== undefined && t.atMs <= nowMs; t = this.timers.peek()) {
      this.timers.pop();
      const q = t.queue;
      if (t.kind === 1) {
        waitsDue.add(q);
        continue;
      }
      const m = q.messages.get(t.id);
      if (m === undefined || m.gen !== t.gen) continue;
      if (m.d.state === 'leased') {
        q.counters.expired++;
        this.giveBack(q, m, touched);
      } else if (m.d.state === 'delayed') {
        q.delayed--;
        this.makeReady(q, m);
        touched.add(q);
      }
    }
    // Messages made ready at this time go to waiters first; then waits that ran out end.
    for (const q of touched) this.serveWaiters(q, nowMs);
    for (const q of waitsDue) this.expireWaiters(q, nowMs);
  }

  onTermStart(nowMs: number): void {
    // A new leader's clock may be ahead of the old one's, and time passed without a leader:
    // every lease in flight gets at least its full visibility again from now, so a leader
    // change never causes a burst of early redeliveries (at-least-once holds either way).
    for (const q of this.queues.values()) {
      if (q.leased === 0) continue;
      for (const m of q.messages.values()) {
        if (m.d.state !== 'leased') continue;
        const until = nowMs + m.d.visibilityMs;
        if (m.d.untilMs < until) {
          m.d = { ...m.d, untilMs: until };
          this.arm(q, m);
        }
      }
    }
  }

  // ---- writes (called only from StateMachine.apply) ----

  apply(op: QueueOperation, nowMs: number): Result {
    switch (op.type) {
      case 'queues.push':
        return this.push(op.queue, op.payloads, op.idempotencyKey, op.delayMs, nowMs);
      case 'queues.pop':
        return this.pop(op, nowMs);
      case 'queues.ack':
        return this.ack(op.queue, op.receipts);
      case 'queues.nack':
        return this.nack(op.queue, op.receipt, op.delayMs, nowMs);
      case 'queues.touch':
        return this.touch(op.queue, op.receipt, op.visibilityMs, nowMs);
      case 'queues.cancel':
        return this.cancel(op.queue, op.waiterId);
      case 'queues.config':
        return this.configure(op, nowMs);
      case 'queues.replay':
        return this.replay(op.queue, op.count, nowMs);
      default: {
        const unknown: never = op;
        throw new Error(`unknown queue operation ${JSON.stringify(unknown)}`);
      }
    }
  }

  private push(
    name: Buffer,
    payloads: readonly Buffer[],
    idempotencyKey: Buffer | null,
    delayMs: number,
    nowMs: number,
  ): Result {
    if (payloads.length === 0 || payloads.length > MAX_PUSH_PAYLOADS)
      return error(`ERR a QPUSH takes 1 to ${MAX_PUSH_PAYLOADS} payloads`);
    if (!validDuration(delayMs, true)) return error('ERR invalid DELAY');
    for (const p of payloads)
      if (p.length > MAX_PAYLOAD_BYTES) return error(`ERR payload larger than ${MAX_PAYLOAD_BYTES} bytes`);
    if (idempotencyKey !== null && idempotencyKey.length > MAX_IDEMPOTENCY_KEY_BYTES)
      return error(`ERR idempotency key longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes`);
    const q = this.queueFor(name);
    if (typeof q === 'string') return error(q);
    let idemKey: string | null = null;
    if (idempotencyKey !== null) {
      this.forgetOldPushes(q, nowMs);
      idemKey = idempotencyKey.toString('latin1');
      const seen = q.idempotency.get(idemKey);
      if (seen !== undefined) {
        q.counters.duplicatePushes++;
        return idsTree(seen.firstId, seen.count);
      }
    }
    if (q.messages.size + payloads.length > q.settings.maxLength)
      return error(
        `QFULL queue '${printable(q.name)}' holds ${q.messages.size} of at most ${q.settings.maxLength} messages`,
      );
    const firstId = q.nextId;
    for (const payload of payloads) {
      const m: Message = {
        id: q.nextId++,
        payload: Buffer.from(payload),
        pushedAtMs: nowMs,
        d: delayMs > 0 ? { ...READY, state: 'delayed', untilMs: nowMs + delayMs } : READY,
        gen: 0,
      };
      q.messages.set(m.id, m);
      if (delayMs > 0) {
        q.delayed++;
        this.arm(q, m);
      } else {
        q.fresh.push(m.id);
        q.ready++;
      }
    }
    q.counters.pushed += payloads.length;
    if (idemKey !== null) {
      if (q.idempotency.size >= MAX_IDEMPOTENCY_KEYS) {
        const oldest = q.idempotency.keys().next();
        if (oldest.done !== true) q.idempotency.delete(oldest.value);
      }
      q.idempotency.set(idemKey, { firstId, count: payloads.length, atMs: nowMs });
    }
    this.serveWaiters(q, nowMs);
    return idsTree(firstId, payloads.length);
  }

  private pop(op: Extract<QueueOperation, { type: 'queues.pop' }>, nowMs: number): Result {
    if (!(op.count >= 1 && op.count <= MAX_POP_COUNT && Number.isInteger(op.count)))
      return error(`ERR COUNT must be 1 to ${MAX_POP_COUNT}`);
    if (!validDuration(op.visibilityMs, true)) return error('ERR invalid VISIBILITY');
    if (op.consumer.length > MAX_CONSUMER_BYTES)
      return error(`ERR consumer name longer than ${MAX_CONSUMER_BYTES} bytes`);
    const key = op.queue.toString('latin1');
    let q = this.queues.get(key);
    if (q !== undefined && q.ready > 0) {
      return { type: 'tree', value: this.lease(q, op.count, op.visibilityMs, op.consumer, nowMs) };
    }
    if (op.waiterId === '') return NIL_TREE;
    if (!validDuration(op.blockMs, false)) return error('ERR invalid BLOCK');
    if (q === undefined) {
      const created = this.queueFor(op.queue);
      if (typeof created === 'string') return error(created);
      q = created;
    }
    if (q.waiters.length >= MAX_WAITERS_PER_QUEUE)
      return error(
        `ERR too many consumers blocked on queue '${printable(q.name)}' (${MAX_WAITERS_PER_QUEUE})`,
      );
    const deadlineMs = nowMs + op.blockMs;
    q.waiters.push({
      id: op.waiterId,
      count: op.count,
      visibilityMs: op.visibilityMs,
      consumer: Buffer.from(op.consumer),
      deadlineMs,
    });
    this.pushTimer({ atMs: deadlineMs, kind: 1, queue: q, id: 0, gen: 0 });
    return BLOCKED_RESULT;
  }

  private ack(name: Buffer, receipts: readonly Receipt[]): Result {
    if (receipts.length === 0 || receipts.length > MAX_ACK_RECEIPTS)
      return error(`ERR a QACK takes 1 to ${MAX_ACK_RECEIPTS} receipts`);
    const q = this.queues.get(name.toString('latin1'));
    if (q === undefined) return { type: 'integer', value: 0 };
    // All or nothing: one superseded delivery refuses the whole QACK.
    for (const r of receipts) {
      const m = q.messages.get(r.id);
      if (m === undefined) continue;
      const refused = checkDelivery(m, r);
      if (refused !== null) return error(refused);
    }
    let acked = 0;
    for (const r of receipts) {
      const m = q.messages.get(r.id);
      if (m === undefined) continue; // acked already (a resend), dead-lettered, or never pushed
      this.remove(q, m);
      acked++;
    }
    q.counters.acked += acked;
    return { type: 'integer', value: acked };
  }

  private nack(name: Buffer, receipt: Receipt, delayMs: number, nowMs: number): Result {
    if (!validDuration(delayMs, true)) return error('ERR invalid DELAY');
    const q = this.queues.get(name.toString('latin1'));
    const m = q?.messages.get(receipt.id);
    if (q === undefined || m === undefined) return { type: 'integer', value: 0 };
    const refused = checkDelivery(m, receipt);
    if (refused !== null) return error(refused);
    // Its lease ran out already: it is back (or dead-lettered) without this NACK.
    if (m.d.state !== 'leased') return { type: 'integer', value: 0 };
    q.counters.nacked++;
    const touched = new Set<Queue>();
    if (delayMs > 0 && !this.dueForDeadLetter(q, m)) {
      q.leased--;
      m.d = { ...m.d, state: 'delayed', untilMs: nowMs + delayMs };
      q.delayed++;
      this.arm(q, m);
    } else {
      this.giveBack(q, m, touched);
    }
    for (const t of touched) this.serveWaiters(t, nowMs);
    return { type: 'integer', value: 1 };
  }

  private touch(name: Buffer, receipt: Receipt, visibilityMs: number, nowMs: number): Result {
    if (!validDuration(visibilityMs, true)) return error('ERR invalid VISIBILITY');
    const q = this.queues.get(name.toString('latin1'));
    const m = q?.messages.get(receipt.id);
    if (q === undefined || m === undefined)
      return error(
        `LEASELOST message ${receipt.id} is not in the queue (acked, dead-lettered or never pushed)`,
      );
    const refused = checkDelivery(m, receipt);
    if (refused !== null) return error(refused);
    if (m.d.state !== 'leased')
      return error(
        `LEASELOST the lease of delivery ${receipt.delivery} of message ${receipt.id} ran out (or was given back)`,
      );
    const visibility = visibilityMs > 0 ? visibilityMs : m.d.visibilityMs;
    m.d = { ...m.d, visibilityMs: visibility, untilMs: nowMs + visibility };
    this.arm(q, m);
    return { type: 'integer', value: m.d.untilMs };
  }

  private cancel(name: Buffer, waiterId: string): Result {
    const q = this.queues.get(name.toString('latin1'));
    if (q === undefined) return { type: 'integer', value: 0 };
    const i = q.waiters.findIndex((w) => w.id === waiterId);
    if (i < 0) return { type: 'integer', value: 0 };
    q.waiters.splice(i, 1);
    return { type: 'integer', value: 1 };
  }

  private configure(op: Extract<QueueOperation, { type: 'queues.config' }>, nowMs: number): Result {
    const { visibilityMs, maxDeliveries, maxLength, idempotencyWindowMs } = op;
    if (visibilityMs !== -1 && !validDuration(visibilityMs, false))
      return error(`ERR VISIBILITY must be 1 to ${MAX_DURATION_MS} ms`);
    if (
      maxDeliveries !== -1 &&
      !(Number.isInteger(maxDeliveries) && maxDeliveries >= 0 && maxDeliveries <= 1_000_000)
    )
      return error('ERR MAXDELIVERIES must be 0 (no limit) to 1000000');
    if (maxLength !== -1 && !(Number.isInteger(maxLength) && maxLength >= 1 && maxLength <= MAX_MAX_LENGTH))
      return error(`ERR MAXLEN must be 1 to ${MAX_MAX_LENGTH}`);
    if (idempotencyWindowMs !== -1 && !validDuration(idempotencyWindowMs, false))
      return error(`ERR IDEMPWINDOW must be 1 to ${MAX_DURATION_MS} ms`);
    const q = this.queueFor(op.queue);
    if (typeof q === 'string') return error(q);
    if (visibilityMs !== -1) q.settings.visibilityMs = visibilityMs;
    if (maxDeliveries !== -1) q.settings.maxDeliveries = maxDeliveries;
    if (maxLength !== -1) q.settings.maxLength = maxLength;
    if (idempotencyWindowMs !== -1) q.settings.idempotencyWindowMs = idempotencyWindowMs;
    this.forgetOldPushes(q, nowMs);
    return OK_RESULT;
  }

  private replay(name: Buffer, count: number, nowMs: number): Result {
    if (!(Number.isInteger(count) && count >= 1 && count <= MAX_REPLAY_COUNT))
      return error(`ERR COUNT must be 1 to ${MAX_REPLAY_COUNT}`);
    const dlq = this.queues.get(deadLetterName(name).toString('latin1'));
    if (dlq === undefined || dlq.ready === 0) return { type: 'integer', value: 0 };
    const q = this.queueFor(name);
    if (typeof q === 'string') return error(q);
    let moved = 0;
    while (moved < count && q.messages.size < q.settings.maxLength) {
      const m = dlq.takeReady();
      if (m === undefined) break;
      dlq.ready--;
      dlq.messages.delete(m.id);
      this.append(q, m.payload, m.pushedAtMs);
      moved++;
    }
    q.counters.replayed += moved;
    this.serveWaiters(q, nowMs);
    return { type: 'integer', value: moved };
  }

  // ---- internals ----

  /** The queue named `name`, created with default settings if new; a message if it cannot be. */
  private queueFor(name: Buffer, deadLetter = false): Queue | string {
    const key = name.toString('latin1');
    const existing = this.queues.get(key);
    if (existing !== undefined) return existing;
    if (name.length > MAX_QUEUE_NAME_BYTES) return `ERR queue name longer than ${MAX_QUEUE_NAME_BYTES} bytes`;
    if (this.queues.size >= MAX_QUEUES) return `ERR too many queues (${MAX_QUEUES})`;
    const q = new Queue(key, this.queues.size, defaultSettings(deadLetter));
    this.queues.set(key, q);
    return q;
  }

  /** Appends a ready message with a new id (dead-lettering and replay; the caller checks room). */
  private append(q: Queue, payload: Buffer, pushedAtMs: number): void {
    const m: Message = { id: q.nextId++, payload, pushedAtMs, d: READY, gen: 0 };
    q.messages.set(m.id, m);
    q.fresh.push(m.id);
    q.ready++;
  }

  private lease(
    q: Queue,
    count: number,
    visibilityMs: number,
    consumer: Buffer,
    nowMs: number,
  ): ResultTree[] {
    const visibility = visibilityMs > 0 ? visibilityMs : q.settings.visibilityMs;
    const out: ResultTree[] = [];
    while (out.length < count) {
      const m = q.takeReady();
      if (m === undefined) break;
      q.ready--;
      q.leased++;
      m.d = {
        state: 'leased',
        deliveries: m.d.deliveries + 1,
        untilMs: nowMs + visibility,
        visibilityMs: visibility,
        consumer,
      };
      this.arm(q, m);
      q.counters.delivered++;
      if (m.d.deliveries > 1) q.counters.redelivered++;
      out.push([m.id, m.payload, m.d.deliveries, formatReceipt(m.id, m.d.deliveries)]);
    }
    return out;
  }

  private dueForDeadLetter(q: Queue, m: Message): boolean {
    return q.settings.maxDeliveries > 0 && m.d.deliveries >= q.settings.maxDeliveries;
  }

  /** A leased message's lease ended (ran out or NACK): ready again, or dead-lettered. */
  private giveBack(q: Queue, m: Message, touched: Set<Queue>): void {
    q.leased--;
    if (this.dueForDeadLetter(q, m)) {
      const dlq = this.queueFor(deadLetterName(Buffer.from(q.name, 'latin1')), true);
      if (typeof dlq !== 'string' && dlq !== q && dlq.messages.size < dlq.settings.maxLength) {
        q.messages.delete(m.id);
        m.gen++;
        q.counters.deadLettered++;
        this.append(dlq, m.payload, m.pushedAtMs);
        touched.add(dlq);
        return;
      }
      // No room in the dead-letter queue: it stays here (never lost), ready again.
    }
    this.makeReady(q, m);
    touched.add(q);
  }

  private makeReady(q: Queue, m: Message): void {
    m.d = { ...m.d, state: 'ready', untilMs: 0 };
    m.gen++;
    q.returned.push(m.id);
    q.ready++;
  }

  private remove(q: Queue, m: Message): void {
    q.messages.delete(m.id);
    m.gen++;
    if (m.d.state === 'ready') q.ready--;
    else if (m.d.state === 'leased') q.leased--;
    else q.delayed--;
  }

  /** Serves blocked consumers in arrival order while ready messages last. */
  private serveWaiters(q: Queue, nowMs: number): void {
    while (q.ready > 0 && q.waiters.length > 0) {
      const w = q.waiters.shift()!;
      const messages = this.lease(q, w.count, w.visibilityMs, w.consumer, nowMs);
      assert.ok(messages.length > 0, 'a ready count above 0 gave no message');
      this.context.wake(w.id, { type: 'tree', value: messages });
    }
  }

  /** Ends, with a null result, every wait of `q` whose deadline is `nowMs` or earlier. */
  private expireWaiters(q: Queue, nowMs: number): void {
    if (q.waiters.every((w) => w.deadlineMs > nowMs)) return;
    const keep: QueueWaiter[] = [];
    for (const w of q.waiters) {
      if (w.deadlineMs <= nowMs) this.context.wake(w.id, NIL_TREE);
      else keep.push(w);
    }
    q.waiters = keep;
  }

  private forgetOldPushes(q: Queue, nowMs: number): void {
    const window = q.settings.idempotencyWindowMs;
    for (const [key, record] of q.idempotency) {
      if (record.atMs + window > nowMs) break;
      q.idempotency.delete(key);
    }
  }

  private arm(q: Queue, m: Message): void {
    m.gen++;
    this.pushTimer({ atMs: m.d.untilMs, kind: 0, queue: q, id: m.id, gen: m.gen });
  }

  private pushTimer(t: Timer): void {
    this.timers.push(t);
    if (this.timers.size > this.compactAt) {
      // Acked and touched leases leave stale timers until their time comes: drop them when
      // they are more than half the heap (checked each time the heap doubles: amortized O(1)).
      let live = 0;
      for (const q of this.queues.values()) live += q.leased + q.delayed + q.waiters.length;
      if (this.timers.size > 2 * live + 1024) this.rebuildTimers();
      this.compactAt = Math.max(MIN_COMPACT_AT, 2 * this.timers.size);
    }
  }

  /** Rebuilds the timer heap from the live state (drops stale timers; order is unchanged). */
  private rebuildTimers(): void {
    const items: Timer[] = [];
    for (const q of this.queues.values()) {
      if (q.leased + q.delayed > 0) {
        for (const m of q.messages.values()) {
          if (m.d.state === 'ready') continue;
          items.push({ atMs: m.d.untilMs, kind: 0, queue: q, id: m.id, gen: m.gen });
        }
      }
      for (const w of q.waiters) items.push({ atMs: w.deadlineMs, kind: 1, queue: q, id: 0, gen: 0 });
    }
    this.timers.reset(items);
  }

  // ---- reads (never change state) ----

  /** Messages held (ready, leased and delayed); 0 for a queue that does not exist. */
  length(name: Buffer): number {
    return this.queues.get(name.toString('latin1'))?.messages.size ?? 0;
  }

  info(name: Buffer, nowMs: number): QueueInfo | null {
    const q = this.queues.get(name.toString('latin1'));
    if (q === undefined) return null;
    const dlqName = deadLetterName(name);
    let oldest = -1;
    for (const m of q.messages.values()) {
      oldest = Math.max(0, nowMs - m.pushedAtMs);
      break;
    }
    let idempotencyKeys = 0;
    for (const record of q.idempotency.values())
      if (record.atMs + q.settings.idempotencyWindowMs > nowMs) idempotencyKeys++;
    return {
      ready: q.ready,
      leased: q.leased,
      delayed: q.delayed,
      deadLetterLength: this.length(dlqName),
      oldestAgeMs: oldest,
      waiting: q.waiters.length,
      nextId: q.nextId,
      idempotencyKeys,
      settings: { ...q.settings },
      counters: { ...q.counters },
      deadLetterQueue: dlqName.toString(),
    };
  }

  /** Leased messages in id order (at most `count`), optionally only `consumer`'s. */
  pending(name: Buffer, count: number, consumer: Buffer | null): PendingMessage[] {
    const q = this.queues.get(name.toString('latin1'));
    const out: PendingMessage[] = [];
    if (q === undefined || q.leased === 0) return out;
    for (const m of q.messages.values()) {
      if (out.length >= count) break;
      if (m.d.state !== 'leased') continue;
      if (consumer !== null && !m.d.consumer.equals(consumer)) continue;
      out.push({
        id: m.id,
        consumer: m.d.consumer,
        deliveries: m.d.deliveries,
        deadlineMs: m.d.untilMs,
        receipt: formatReceipt(m.id, m.d.deliveries),
      });
    }
    return out;
  }

  totals(): QueueTotals {
    const t: QueueTotals = {
      queues: this.queues.size,
      ready: 0,
      leased: 0,
      delayed: 0,
      waiting: 0,
      idempotencyKeys: 0,
      counters: zeroCounters(),
    };
    for (const q of this.queues.values()) {
      t.ready += q.ready;
      t.leased += q.leased;
      t.delayed += q.delayed;
      t.waiting += q.waiters.length;
      t.idempotencyKeys += q.idempotency.size;
      for (const name of COUNTER_NAMES) t.counters[name] += q.counters[name];
    }
    return t;
  }

  // ---- snapshot ----

  /**
   * Captures the logical state (not the heaps: they are rebuilt on restore, and their order is
   * total, so behaviour is the same) by copying references only (payloads and Delivery objects
   * are immutable), without serializing; the reader encodes at most MESSAGES_PER_PIECE messages
   * per call, so neither capture nor a piece holds the event loop for long.
   */
  capture(): ChunkReader {
    const images: QueueImage[] = [];
    for (const q of this.queues.values()) images.push(imageOf(q));
    const header = Buffer.alloc(5);
    header.writeUInt8(QUEUE_SNAPSHOT_FORMAT, 0);
    header.writeUInt32BE(images.length, 1);
    function* pieces(): Generator<Buffer> {
      yield header;
      for (const image of images) yield* encodeImage(image);
    }
    const it = pieces();
    return {
      next(): Buffer | null {
        const r = it.next();
        return r.done === true ? null : r.value;
      },
    };
  }

  restore(data: Buffer): void {
    this.queues = new Map();
    this.timers = new MinHeap<Timer>(timerLess);
    this.compactAt = MIN_COMPACT_AT;
    if (data.length === 0) return;
    const r = new SnapshotReader(data);
    const format = r.u8();
    if (format !== QUEUE_SNAPSHOT_FORMAT) throw new Error(`unknown queue snapshot format ${format}`);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const name = r.bytes().toString('latin1');
      const settings: QueueSettings = {
        visibilityMs: r.f64(),
        maxDeliveries: r.f64(),
        maxLength: r.f64(),
        idempotencyWindowMs: r.f64(),
      };
      const q = new Queue(name, i, settings);
      q.nextId = r.f64();
      for (const c of COUNTER_NAMES) q.counters[c] = r.f64();
      const messages = r.u32();
      for (let j = 0; j < messages; j++) {
        const id = r.f64();
        const pushedAtMs = r.f64();
        const state = STATES[r.u8()];
        if (state === undefined) throw new Error('bad message state in queue snapshot');
        const d: Delivery = {
          state,
          deliveries: r.f64(),
          untilMs: r.f64(),
          visibilityMs: r.f64(),
          consumer: r.bytes(),
        };
        const m: Message = { id, pushedAtMs, d, payload: r.bytes(), gen: 0 };
        q.messages.set(id, m);
        if (state === 'ready') {
          q.fresh.push(id);
          q.ready++;
        } else if (state === 'leased') q.leased++;
        else q.delayed++;
      }
      const waiters = r.u32();
      for (let j = 0; j < waiters; j++) {
        q.waiters.push({
          id: r.bytes().toString('utf8'),
          count: r.f64(),
          visibilityMs: r.f64(),
          consumer: r.bytes(),
          deadlineMs: r.f64(),
        });
      }
      const keys = r.u32();
      for (let j = 0; j < keys; j++) {
        const key = r.bytes().toString('latin1');
        q.idempotency.set(key, { firstId: r.f64(), count: r.f64(), atMs: r.f64() });
      }
      this.queues.set(name, q);
    }
    r.end();
    this.rebuildTimers();
  }

  /** The whole state as bytes (tests). */
  snapshot(): Buffer {
    const reader = this.capture();
    const chunks: Buffer[] = [];
    for (let c = reader.next(Infinity); c !== null; c = reader.next(Infinity)) chunks.push(c);
    return Buffer.concat(chunks);
  }
}

const MIN_COMPACT_AT = 4096;
const QUEUE_SNAPSHOT_FORMAT = 1;

function defaultSettings(deadLetter: boolean): QueueSettings {
  return {
    visibilityMs: DEFAULT_VISIBILITY_MS,
    // A dead-letter queue does not dead-letter again: its messages stay until acked or replayed.
    maxDeliveries: deadLetter ? 0 : DEFAULT_MAX_DELIVERIES,
    maxLength: DEFAULT_MAX_LENGTH,
    idempotencyWindowMs: DEFAULT_IDEMPOTENCY_WINDOW_MS,
  };
}

function error(message: string): Result {
  return { type: 'error', message };
}

/** An integer number of ms within the bound; 0 allowed only where it means "none/default". */
function validDuration(ms: number, zeroAllowed: boolean): boolean {
  return Number.isInteger(ms) && ms <= MAX_DURATION_MS && (zeroAllowed ? ms >= 0 : ms >= 1);
}

function idsTree(firstId: number, count: number): Result {
  const ids: number[] = new Array<number>(count);
  for (let i = 0; i < count; i++) ids[i] = firstId + i;
  return { type: 'tree', value: ids };
}

/** Null when `r` names the message's current delivery; else why it is refused. */
function checkDelivery(m: Message, r: Receipt): string | null {
  if (r.delivery === m.d.deliveries) return null;
  if (r.delivery < m.d.deliveries)
    return `LEASELOST the lease of delivery ${r.delivery} of message ${m.id} ran out and the message was delivered again (delivery ${m.d.deliveries}); nothing done`;
  return `ERR message ${m.id} has not had a delivery ${r.delivery} (it has had ${m.d.deliveries})`;
}

function printable(latin1: string): string {
  const s = Buffer.from(latin1, 'latin1').toString();
  return (s.length > 64 ? s.slice(0, 64) + '...' : s).replace(/[\r\n]/g, ' ');
}

interface QueueImage {
  readonly name: string;
  readonly settings: QueueSettings;
  readonly nextId: number;
  readonly counters: QueueCounters;
  /** The messages and, index for index, their delivery state at capture time. */
  readonly messages: readonly Message[];
  readonly deliveries: readonly Delivery[];
  readonly waiters: readonly QueueWaiter[];
  readonly idempotency: readonly (readonly [string, IdempotencyRecord])[];
}

/** Messages encoded per snapshot piece: keeps each piece (and each event-loop turn) short. */
const MESSAGES_PER_PIECE = 2048;

function imageOf(q: Queue): QueueImage {
  const messages = new Array<Message>(q.messages.size);
  const deliveries = new Array<Delivery>(q.messages.size);
  let i = 0;
  for (const m of q.messages.values()) {
    messages[i] = m;
    deliveries[i++] = m.d;
  }
  return {
    name: q.name,
    settings: { ...q.settings },
    nextId: q.nextId,
    counters: { ...q.counters },
    messages,
    deliveries,
    waiters: [...q.waiters],
    idempotency: [...q.idempotency.entries()],
  };
}

/**
 * The pieces of one queue's encoding, in order: its header and message count, its messages
 * MESSAGES_PER_PIECE at a time, then its waiters and idempotency records. Concatenated they
 * are the queue's bytes (restore reads the section as one buffer).
 */
function* encodeImage(image: QueueImage): Generator<Buffer> {
  let w = new SnapshotWriter();
  w.bytes(Buffer.from(image.name, 'latin1'));
  w.f64(image.settings.visibilityMs);
  w.f64(image.settings.maxDeliveries);
  w.f64(image.settings.maxLength);
  w.f64(image.settings.idempotencyWindowMs);
  w.f64(image.nextId);
  for (const c of COUNTER_NAMES) w.f64(image.counters[c]);
  w.u32(image.messages.length);
  for (let i = 0; i < image.messages.length; i++) {
    const m = image.messages[i]!;
    const d = image.deliveries[i]!;
    w.f64(m.id);
    w.f64(m.pushedAtMs);
    w.u8(STATES.indexOf(d.state));
    w.f64(d.deliveries);
    w.f64(d.untilMs);
    w.f64(d.visibilityMs);
    w.bytes(d.consumer);
    w.bytes(m.payload);
    if ((i + 1) % MESSAGES_PER_PIECE === 0) {
      yield w.finish();
      w = new SnapshotWriter();
    }
  }
  w.u32(image.waiters.length);
  for (const wt of image.waiters) {
    w.bytes(Buffer.from(wt.id, 'utf8'));
    w.f64(wt.count);
    w.f64(wt.visibilityMs);
    w.bytes(wt.consumer);
    w.f64(wt.deadlineMs);
  }
  w.u32(image.idempotency.length);
  for (const [key, record] of image.idempotency) {
    w.bytes(Buffer.from(key, 'latin1'));
    w.f64(record.firstId);
    w.f64(record.count);
    w.f64(record.atMs);
  }
  yield w.finish();
}

class SnapshotWriter {
  private parts: Buffer[] = [];
  private buf = Buffer.allocUnsafe(64 * 1024);
  private pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.parts.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(64 * 1024, n));
    this.pos = 0;
  }
  u8(v: number): void {
    this.room(1);
    this.pos = this.buf.writeUInt8(v, this.pos);
  }
  u32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
  }
  f64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
  }
  bytes(b: Buffer): void {
    this.u32(b.length);
    this.room(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }
  finish(): Buffer {
    this.parts.push(this.buf.subarray(0, this.pos));
    return Buffer.concat(this.parts);
  }
}

class SnapshotReader {
  private pos = 0;
  constructor(private readonly data: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.data.length) throw new Error('truncated queue snapshot');
  }
  u8(): number {
    this.need(1);
    return this.data.readUInt8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.data.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.data.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const b = Buffer.from(this.data.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }
  end(): void {
    if (this.pos !== this.data.length) throw new Error('trailing bytes in queue snapshot');
  }
}
