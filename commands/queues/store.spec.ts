import { expect } from 'chai';
import fc from 'fast-check';
import { decodeOperation, encodeOperation } from '../codec.js';
import { StateMachine, type Entry, type Result, type ResultTree } from '../state-machine.js';
import { QUEUE_POOL, queueEntriesArb, queueOperationArb } from './arbitraries.js';
import type { QueueOperation, Receipt } from './operations.js';
import {
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  DEFAULT_MAX_DELIVERIES,
  DEFAULT_MAX_LENGTH,
  DEFAULT_VISIBILITY_MS,
  deadLetterName,
  formatReceipt,
  parseReceipt,
} from './store.js';

/**
 * The naive model: each queue is a plain array of messages in id order; every question is
 * answered by scanning it (ready = filter + lowest id, due leases = filter + sort). No heaps,
 * no lazy deletion, no counters kept in step.
 */
interface MMsg {
  id: number;
  payload: string;
  pushedAt: number;
  state: 'ready' | 'leased' | 'delayed';
  deliveries: number;
  until: number;
  vis: number;
  consumer: string;
}
interface MWaiter {
  id: string;
  count: number;
  vis: number;
  consumer: string;
  deadline: number;
}
interface MQueue {
  name: string;
  ordinal: number;
  nextId: number;
  msgs: MMsg[];
  waiters: MWaiter[];
  idem: { key: string; firstId: number; count: number; at: number }[];
  vis: number;
  maxDeliveries: number;
  maxLength: number;
  window: number;
}

class Model {
  queues: MQueue[] = [];
  clock = 0;
  term = 0;
  wakes: [string, Result][] = [];

  private get(name: string): MQueue | undefined {
    return this.queues.find((q) => q.name === name);
  }
  private create(name: string, deadLetter = false): MQueue {
    let q = this.get(name);
    if (q === undefined) {
      q = {
        name,
        ordinal: this.queues.length,
        nextId: 1,
        msgs: [],
        waiters: [],
        idem: [],
        vis: DEFAULT_VISIBILITY_MS,
        maxDeliveries: deadLetter ? 0 : DEFAULT_MAX_DELIVERIES,
        maxLength: DEFAULT_MAX_LENGTH,
        window: DEFAULT_IDEMPOTENCY_WINDOW_MS,
      };
      this.queues.push(q);
    }
    return q;
  }
  private ready(q: MQueue): MMsg[] {
    return q.msgs.filter((m) => m.state === 'ready');
  }
  private lease(q: MQueue, count: number, vis: number, consumer: string, now: number): ResultTree[] {
    const v = vis > 0 ? vis : q.vis;
    return this.ready(q)
      .slice(0, count)
      .map((m) => {
        m.state = 'leased';
        m.deliveries++;
        m.until = now + v;
        m.vis = v;
        m.consumer = consumer;
        return [m.id, m.payload, m.deliveries, formatReceipt(m.id, m.deliveries)];
      });
  }
  private append(q: MQueue, payload: string, pushedAt: number): void {
    q.msgs.push({
      id: q.nextId++,
      payload,
      pushedAt,
      state: 'ready',
      deliveries: 0,
      until: 0,
      vis: 0,
      consumer: '',
    });
  }
  /** Returns the queues that got a ready message. */
  private giveBack(q: MQueue, m: MMsg): MQueue {
    if (q.maxDeliveries > 0 && m.deliveries >= q.maxDeliveries) {
      const dlq = this.create(deadLetterName(Buffer.from(q.name)).toString(), true);
      if (dlq.msgs.length < dlq.maxLength) {
        q.msgs = q.msgs.filter((x) => x !== m);
        this.append(dlq, m.payload, m.pushedAt);
        return dlq;
      }
    }
    m.state = 'ready';
    m.until = 0;
    return q;
  }
  private serve(q: MQueue, now: number): void {
    while (this.ready(q).length > 0 && q.waiters.length > 0) {
      const w = q.waiters.shift()!;
      this.wakes.push([w.id, { type: 'tree', value: this.lease(q, w.count, w.vis, w.consumer, now) }]);
    }
  }

  apply(e: Entry): Result {
    this.clock = Math.max(this.clock, e.timeMs);
    const now = this.clock;
    if (e.term !== undefined && e.term > this.term) {
      this.term = e.term;
      for (const q of this.queues)
        for (const m of q.msgs) if (m.state === 'leased') m.until = Math.max(m.until, now + m.vis);
    }
    // Time: due leases and delays in (time, queue, id) order, then waiters served, then waits end.
    const due: [MQueue, MMsg][] = [];
    for (const q of this.queues)
      for (const m of q.msgs) if (m.state !== 'ready' && m.until <= now) due.push([q, m]);
    due.sort(([qa, a], [qb, b]) => a.until - b.until || qa.ordinal - qb.ordinal || a.id - b.id);
    const touched: MQueue[] = [];
    for (const [q, m] of due) {
      const t = m.state === 'delayed' ? ((m.state = 'ready'), (m.until = 0), q) : this.giveBack(q, m);
      if (!touched.includes(t)) touched.push(t);
    }
    for (const q of touched) this.serve(q, now);
    for (const q of this.queues) {
      for (const w of q.waiters.filter((x) => x.deadline <= now))
        this.wakes.push([w.id, { type: 'tree', value: null }]);
      q.waiters = q.waiters.filter((x) => x.deadline > now);
    }
    const op = e.op;
    if (op.type === 'sys.tick') return { type: 'ok' };
    if (!op.type.startsWith('queues.')) throw new Error('not a queue op');
    return this.queueOp(op as QueueOperation, now);
  }

  private check(m: MMsg, r: Receipt): Result | null {
    if (r.delivery === m.deliveries) return null;
    if (r.delivery < m.deliveries) return { type: 'error', message: 'LEASELOST' };
    return { type: 'error', message: 'ERR' };
  }

  private queueOp(op: QueueOperation, now: number): Result {
    const name = op.queue.toString();
    switch (op.type) {
      case 'queues.push': {
        const q = this.create(name);
        if (op.idempotencyKey !== null) {
          const key = op.idempotencyKey.toString();
          q.idem = q.idem.filter((r) => r.at + q.window > now);
          const seen = q.idem.find((r) => r.key === key);
          if (seen)
            return { type: 'tree', value: Array.from({ length: seen.count }, (_, i) => seen.firstId + i) };
        }
        if (q.msgs.length + op.payloads.length > q.maxLength) return { type: 'error', message: 'QFULL' };
        const first = q.nextId;
        for (const p of op.payloads) {
          this.append(q, p.toString(), now);
          if (op.delayMs > 0)
            Object.assign(q.msgs[q.msgs.length - 1]!, { state: 'delayed', until: now + op.delayMs });
        }
        if (op.idempotencyKey !== null)
          q.idem.push({
            key: op.idempotencyKey.toString(),
            firstId: first,
            count: op.payloads.length,
            at: now,
          });
        this.serve(q, now);
        return { type: 'tree', value: op.payloads.map((_, i) => first + i) };
      }
      case 'queues.pop': {
        const q = this.get(name);
        if (q && this.ready(q).length > 0)
          return {
            type: 'tree',
            value: this.lease(q, op.count, op.visibilityMs, op.consumer.toString(), now),
          };
        if (op.waiterId === '') return { type: 'tree', value: null };
        this.create(name).waiters.push({
          id: op.waiterId,
          count: op.count,
          vis: op.visibilityMs,
          consumer: op.consumer.toString(),
          deadline: now + op.blockMs,
        });
        return { type: 'blocked' };
      }
      case 'queues.ack': {
        const q = this.get(name);
        if (!q) return { type: 'integer', value: 0 };
        for (const r of op.receipts) {
          const m = q.msgs.find((x) => x.id === r.id);
          const refused = m && this.check(m, r);
          if (refused) return refused;
        }
        let n = 0;
        for (const r of op.receipts) {
          const before = q.msgs.length;
          q.msgs = q.msgs.filter((x) => x.id !== r.id);
          n += before - q.msgs.length;
        }
        return { type: 'integer', value: n };
      }
      case 'queues.nack': {
        const q = this.get(name);
        const m = q?.msgs.find((x) => x.id === op.receipt.id);
        if (!q || !m) return { type: 'integer', value: 0 };
        const refused = this.check(m, op.receipt);
        if (refused) return refused;
        if (m.state !== 'leased') return { type: 'integer', value: 0 };
        if (op.delayMs > 0 && !(q.maxDeliveries > 0 && m.deliveries >= q.maxDeliveries)) {
          m.state = 'delayed';
          m.until = now + op.delayMs;
        } else {
          this.serve(this.giveBack(q, m), now);
        }
        return { type: 'integer', value: 1 };
      }
      case 'queues.touch': {
        const q = this.get(name);
        const m = q?.msgs.find((x) => x.id === op.receipt.id);
        if (!q || !m) return { type: 'error', message: 'LEASELOST' };
        const refused = this.check(m, op.receipt);
        if (refused) return refused;
        if (m.state !== 'leased') return { type: 'error', message: 'LEASELOST' };
        if (op.visibilityMs > 0) m.vis = op.visibilityMs;
        m.until = now + m.vis;
        return { type: 'integer', value: m.until };
      }
      case 'queues.cancel': {
        const q = this.get(name);
        const before = q?.waiters.length ?? 0;
        if (q)
          q.waiters = q.waiters.filter(
            (w, i) => w.id !== op.waiterId || q.waiters.findIndex((x) => x.id === op.waiterId) !== i,
          );
        return { type: 'integer', value: before - (q?.waiters.length ?? 0) };
      }
      case 'queues.config': {
        const q = this.create(name);
        if (op.visibilityMs !== -1) q.vis = op.visibilityMs;
        if (op.maxDeliveries !== -1) q.maxDeliveries = op.maxDeliveries;
        if (op.maxLength !== -1) q.maxLength = op.maxLength;
        if (op.idempotencyWindowMs !== -1) q.window = op.idempotencyWindowMs;
        q.idem = q.idem.filter((r) => r.at + q.window > now);
        return { type: 'ok' };
      }
      case 'queues.replay': {
        const dlq = this.get(deadLetterName(op.queue).toString());
        if (!dlq || this.ready(dlq).length === 0) return { type: 'integer', value: 0 };
        const q = this.create(name);
        let moved = 0;
        for (const m of this.ready(dlq)) {
          if (moved >= op.count || q.msgs.length >= q.maxLength) break;
          dlq.msgs = dlq.msgs.filter((x) => x !== m);
          this.append(q, m.payload, m.pushedAt);
          moved++;
        }
        this.serve(q, now);
        return { type: 'integer', value: moved };
      }
      default: {
        const unknown: never = op;
        throw new Error(`unknown ${JSON.stringify(unknown)}`);
      }
    }
  }

  view(name: string): unknown {
    const q = this.get(name);
    if (!q) return null;
    return {
      length: q.msgs.length,
      ready: q.msgs.filter((m) => m.state === 'ready').length,
      leased: q.msgs.filter((m) => m.state === 'leased').length,
      delayed: q.msgs.filter((m) => m.state === 'delayed').length,
      waiting: q.waiters.length,
      lastId: q.nextId - 1,
      pending: q.msgs
        .filter((m) => m.state === 'leased')
        .map((m) => [m.id, m.consumer, m.deliveries, m.until]),
    };
  }
}

function smView(sm: StateMachine, name: string, now: number): unknown {
  const key = Buffer.from(name);
  const info = sm.queues.info(key, now);
  if (info === null) return null;
  return {
    length: sm.queues.length(key),
    ready: info.ready,
    leased: info.leased,
    delayed: info.delayed,
    waiting: info.waiting,
    lastId: info.nextId - 1,
    pending: sm.queues
      .pending(key, 10_000, null)
      .map((p) => [p.id, p.consumer.toString(), p.deliveries, p.deadlineMs]),
  };
}

/** Buffers as strings, error messages cut to their prefix, so results compare. */
function norm(r: Result): unknown {
  if (r.type === 'error') return { error: r.message.split(' ')[0] };
  if (r.type === 'tree') return { tree: normTree(r.value) };
  return r;
}
function normTree(t: ResultTree): unknown {
  if (Buffer.isBuffer(t)) return t.toString();
  if (Array.isArray(t)) return (t as readonly ResultTree[]).map(normTree);
  return t;
}

const NAMES = [...QUEUE_POOL, ...QUEUE_POOL.map(deadLetterName)].map((b) => b.toString());

function run(entries: Entry[]): void {
  const sm = new StateMachine();
  const smWakes: [string, Result][] = [];
  sm.onWakeUp((id, result) => smWakes.push([id, result]));
  const model = new Model();
  for (const e of entries) {
    const got = sm.apply(e);
    const want = model.apply(e);
    const what = `entry ${e.index} ${JSON.stringify(e.op, (_, v: unknown) => (isBufferJson(v) ? Buffer.from(v.data).toString() : v))}`;
    expect(norm(got), what).to.deep.equal(norm(want));
    const sortWakes = (w: [string, Result][]): unknown =>
      w.map(([id, r]) => [id, norm(r)]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(sortWakes(smWakes), `wakes at ${what}`).to.deep.equal(sortWakes(model.wakes));
    smWakes.length = 0;
    model.wakes.length = 0;
    for (const name of NAMES)
      expect(smView(sm, name, e.timeMs), `${name} after ${what}`).to.deep.equal(model.view(name));
  }
}

function isBufferJson(v: unknown): v is { type: 'Buffer'; data: number[] } {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer';
}

describe('QueueStore against a naive model', () => {
  it('gives the same results, wake-ups, counts and leases for random operation sequences', () => {
    fc.assert(
      fc.property(queueEntriesArb(80), (entries) => run(entries)),
      { numRuns: 400 },
    );
  });

  it('is deterministic, and a restored snapshot continues byte-identically', () => {
    fc.assert(
      fc.property(queueEntriesArb(60), fc.nat(), (entries, cutSeed) => {
        const cut = entries.length === 0 ? 0 : cutSeed % entries.length;
        const a = new StateMachine();
        const results: unknown[] = [];
        for (const e of entries.slice(0, cut)) results.push(norm(a.apply(e)));
        const bytes = a.snapshot();
        const b = new StateMachine();
        b.restore(bytes);
        expect(b.snapshot().equals(bytes), 'restored snapshot bytes').to.equal(true);
        const wakesA: string[] = [];
        const wakesB: string[] = [];
        a.onWakeUp((id, r) => wakesA.push(`${id}:${JSON.stringify(norm(r))}`));
        b.onWakeUp((id, r) => wakesB.push(`${id}:${JSON.stringify(norm(r))}`));
        for (const e of entries.slice(cut)) {
          expect(norm(b.apply(e))).to.deep.equal(norm(a.apply(e)));
          expect(b.nextDeadlineMs() >= a.nextDeadlineMs()).to.equal(true);
        }
        expect([...wakesB].sort()).to.deep.equal([...wakesA].sort());
        expect(b.snapshot().equals(a.snapshot())).to.equal(true);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps its wire format: queue tags 300-307 are permanent', () => {
    const push: QueueOperation = {
      type: 'queues.push',
      queue: Buffer.from('q'),
      payloads: [Buffer.from('a')],
      idempotencyKey: null,
      delayMs: 0,
    };
    // version 1, tag 300, queue "q", 1 payload "a", no key, delay 0.0
    const golden =
      '01' + '012c' + '00000001' + '71' + '00000001' + '00000001' + '61' + '00' + '0000000000000000';
    expect(encodeOperation(push).toString('hex')).to.equal(golden);
    expect(decodeOperation(Buffer.from(golden, 'hex'))).to.deep.equal(push);
    const tags = (
      [
        push,
        {
          type: 'queues.pop',
          queue: Buffer.from('q'),
          count: 1,
          visibilityMs: 0,
          consumer: Buffer.alloc(0),
          waiterId: '',
          blockMs: 0,
        },
        { type: 'queues.ack', queue: Buffer.from('q'), receipts: [] },
        { type: 'queues.nack', queue: Buffer.from('q'), receipt: { id: 1, delivery: 1 }, delayMs: 0 },
        { type: 'queues.touch', queue: Buffer.from('q'), receipt: { id: 1, delivery: 1 }, visibilityMs: 0 },
        { type: 'queues.cancel', queue: Buffer.from('q'), waiterId: 'w' },
        {
          type: 'queues.config',
          queue: Buffer.from('q'),
          visibilityMs: -1,
          maxDeliveries: -1,
          maxLength: -1,
          idempotencyWindowMs: -1,
        },
        { type: 'queues.replay', queue: Buffer.from('q'), count: 1 },
      ] as QueueOperation[]
    ).map((op) => encodeOperation(op).readUInt16BE(1));
    expect(tags).to.deep.equal([300, 301, 302, 303, 304, 305, 306, 307]);
  });

  it('round-trips every queue operation through the codec', () => {
    fc.assert(
      fc.property(queueOperationArb, (op) => {
        expect(decodeOperation(encodeOperation(op))).to.deep.equal(op);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('QueueStore rules', () => {
  const q = Buffer.from('jobs');
  let index = 0;
  let sm: StateMachine;
  let wakes: [string, Result][];
  const at = (timeMs: number, op: QueueOperation | { type: 'sys.tick' }, term = 1): Result =>
    sm.apply({ index: ++index, timeMs, term, op });
  const push = (t: number, ...payloads: string[]): Result =>
    at(t, {
      type: 'queues.push',
      queue: q,
      payloads: payloads.map((p) => Buffer.from(p)),
      idempotencyKey: null,
      delayMs: 0,
    });
  const pop = (t: number, count = 1, extra: Partial<QueueOperation & { type: 'queues.pop' }> = {}): Result =>
    at(t, {
      type: 'queues.pop',
      queue: q,
      count,
      visibilityMs: 1_000,
      consumer: Buffer.from('c'),
      waiterId: '',
      blockMs: 0,
      ...extra,
    });
  const receipts = (r: Result): Receipt[] =>
    r.type === 'tree' && Array.isArray(r.value)
      ? (r.value as ResultTree[][]).map((m) => parseReceipt(Buffer.from(String(m[3])))!)
      : [];

  beforeEach(() => {
    index = 0;
    sm = new StateMachine();
    wakes = [];
    sm.onWakeUp((id, r) => wakes.push([id, r]));
  });

  it('leases lowest id first; a lease that runs out is delivered again with a higher count', () => {
    expect(norm(push(1_000, 'a', 'b', 'c'))).to.deep.equal({ tree: [1, 2, 3] });
    const first = pop(1_000, 2);
    expect(normTree((first as { value: ResultTree }).value)).to.deep.equal([
      [1, 'a', 1, '1-1'],
      [2, 'b', 1, '2-1'],
    ]);
    expect(sm.nextDeadlineMs()).to.equal(2_000);
    at(2_000, { type: 'sys.tick' });
    expect(normTree((pop(2_000, 3) as { value: ResultTree }).value)).to.deep.equal([
      [1, 'a', 2, '1-2'],
      [2, 'b', 2, '2-2'],
      [3, 'c', 1, '3-1'],
    ]);
    // The first holder's receipt is refused; the current one acks.
    expect(
      norm(at(2_001, { type: 'queues.ack', queue: q, receipts: [{ id: 1, delivery: 1 }] })),
    ).to.deep.equal({
      error: 'LEASELOST',
    });
    expect(
      norm(
        at(2_001, {
          type: 'queues.ack',
          queue: q,
          receipts: [
            { id: 1, delivery: 2 },
            { id: 1, delivery: 2 },
          ],
        }),
      ),
    ).to.deep.equal({
      type: 'integer',
      value: 1,
    });
    expect(sm.queues.info(q, 2_001)?.counters.redelivered).to.equal(2);
  });

  it('serves blocked consumers in arrival order in the push that makes messages ready; waits end with nil', () => {
    for (const w of ['w1', 'w2', 'w3'])
      expect(pop(1_000, 2, { waiterId: w, blockMs: 500 }).type).to.equal('blocked');
    push(1_100, 'a', 'b', 'c');
    expect(wakes.map(([id, r]) => [id, normTree((r as { value: ResultTree }).value)])).to.deep.equal([
      [
        'w1',
        [
          [1, 'a', 1, '1-1'],
          [2, 'b', 1, '2-1'],
        ],
      ],
      ['w2', [[3, 'c', 1, '3-1']]],
    ]);
    wakes = [];
    sm.onWakeUp((id, r) => wakes.push([id, r]));
    at(1_499, { type: 'sys.tick' });
    expect(wakes).to.deep.equal([]);
    at(1_500, { type: 'sys.tick' });
    expect(wakes).to.deep.equal([['w3', { type: 'tree', value: null }]]);
    expect(sm.queues.info(q, 1_500)?.waiting).to.equal(0);
  });

  it('dead-letters after max deliveries, and QREPLAY brings messages back with new ids', () => {
    at(0, {
      type: 'queues.config',
      queue: q,
      visibilityMs: -1,
      maxDeliveries: 2,
      maxLength: -1,
      idempotencyWindowMs: -1,
    });
    push(0, 'p');
    pop(0);
    at(1_000, { type: 'sys.tick' });
    pop(1_000);
    at(2_000, { type: 'sys.tick' });
    expect(sm.queues.length(q)).to.equal(0);
    const dlq = deadLetterName(q);
    expect(sm.queues.length(dlq)).to.equal(1);
    expect(sm.queues.info(q, 2_000)?.counters.deadLettered).to.equal(1);
    expect(norm(at(2_000, { type: 'queues.replay', queue: q, count: 10 }))).to.deep.equal({
      type: 'integer',
      value: 1,
    });
    expect(normTree((pop(2_000) as { value: ResultTree }).value)).to.deep.equal([[2, 'p', 1, '2-1']]);
  });

  it('an idempotent resend within the window adds nothing and returns the first ids', () => {
    const op = (t: number): Result =>
      at(t, {
        type: 'queues.push',
        queue: q,
        payloads: [Buffer.from('x'), Buffer.from('y')],
        idempotencyKey: Buffer.from('k'),
        delayMs: 0,
      });
    expect(norm(op(0))).to.deep.equal({ tree: [1, 2] });
    expect(norm(op(DEFAULT_IDEMPOTENCY_WINDOW_MS - 1))).to.deep.equal({ tree: [1, 2] });
    expect(sm.queues.length(q)).to.equal(2);
    expect(norm(op(DEFAULT_IDEMPOTENCY_WINDOW_MS))).to.deep.equal({ tree: [3, 4] });
  });

  it('a new term renews leases to at least now + their visibility', () => {
    push(0, 'a');
    const r = receipts(pop(0));
    at(5_000, { type: 'sys.tick' }, 2);
    expect(sm.queues.pending(q, 10, null)[0]?.deadlineMs).to.equal(6_000);
    expect(norm(at(5_500, { type: 'queues.ack', queue: q, receipts: r }, 2))).to.deep.equal({
      type: 'integer',
      value: 1,
    });
  });

  it('refuses a push beyond MAXLEN with QFULL, adding nothing', () => {
    at(0, {
      type: 'queues.config',
      queue: q,
      visibilityMs: -1,
      maxDeliveries: -1,
      maxLength: 2,
      idempotencyWindowMs: -1,
    });
    push(0, 'a');
    const r = push(0, 'b', 'c');
    expect(r.type === 'error' && r.message.startsWith('QFULL')).to.equal(true);
    expect(sm.queues.length(q)).to.equal(1);
  });

  it('keeps the timer heap bounded when leases are acked long before they run out', () => {
    for (let i = 0; i < 20_000; i++) {
      push(i, 'm');
      const r = receipts(pop(i, 1, { visibilityMs: 10_000_000 }));
      at(i, { type: 'queues.ack', queue: q, receipts: r });
    }
    const heap = (sm.queues as unknown as { timers: { size: number } }).timers.size;
    expect(heap).to.be.below(10_000);
  });

  it('formats and parses receipts, rejecting anything else', () => {
    expect(parseReceipt(Buffer.from(formatReceipt(12, 3)))).to.deep.equal({ id: 12, delivery: 3 });
    for (const bad of ['12', '0-1', '1-0', '01-1', '1-1-1', 'a-1', ''])
      expect(parseReceipt(Buffer.from(bad)), bad).to.equal(null);
  });
});
