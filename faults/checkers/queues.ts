/**
 * Queue checker: delivery guarantees of docs/queues.md judged from a history of QPUSH (with
 * IDEMP), QPOP, QACK and a final drain (faults/families/queues.ts).
 *
 * Every payload is unique to one logical push (producer, sequence number, position), and the
 * push's IDEMP key is unique to it; a producer resends the same command (same key) after an
 * error, and every resend is its own operation in the history. Ids are per queue and never
 * reused; a delivery is (id, delivery count) and its receipt is "id-count". Times are the
 * runner's clock; a lease (VISIBILITY) is measured in leader time, which runs at the rate of
 * real time unless a clock nemesis acts.
 *
 * Properties (each a violation when broken):
 *   - lost: every payload of an acknowledged push was delivered: in an acknowledged QPOP
 *     (workload or drain) of its queue or of its dead-letter queue, or it is still leased at
 *     the end (QPENDING lists its id, known from the push's reply: a consumer got it and never
 *     acked; counted as `leasedAtEnd`, not a violation, since nothing was lost);
 *   - never-pushed: a delivered payload no push carried, or only a push that certainly failed;
 *   - payload: one id delivered with two payloads, or with another payload than the push's
 *     reply gave that id; a push answered with ids not strictly increasing, or not one per payload;
 *   - duplicate-push: one payload under two ids of a queue (every push of a payload carried the
 *     same IDEMP key, and resends come within seconds, inside the idempotency window);
 *   - duplicate-delivery: the same (id, delivery count) handed out twice;
 *   - delivery-order: a message's deliveries in real-time order with counts not increasing;
 *   - acked-redelivered: a QPOP invoked after a QACK of the message completed (answered 1 or 0:
 *     either way the message had left the queue) delivered it;
 *   - acked-twice: two QACKs of one message each answered 1;
 *   - early-redelivery: a later delivery of a message completed before the earlier delivery's
 *     lease could end (its QPOP's invocation + VISIBILITY: the lease counts from the entry's
 *     leader time, after the client sent it; a new leader only lengthens leases; nothing in the
 *     workload gives a message back early);
 *   - lease-lost-early: a QACK answered -LEASELOST before that delivery's lease could end;
 *   - fifo: first deliveries (count 1) out of id order: message b's first delivery completed
 *     before message a's was invoked, with a < b (a was pushed first, never delivered, and not
 *     delayed, so QPOP, which leases the lowest ready ids first, had to take a no later than b);
 *   - push-order: an acknowledged push completed before another was invoked but got larger ids
 *     (ids follow the order pushes apply; a push's window runs from its key's first attempt
 *     that could have applied to its first acknowledgement, since a resend answers the ids
 *     an earlier attempt got). With the fifo check, per-producer FIFO of first
 *     deliveries follows: a producer's pushes are sequential.
 * The two lease checks depend on leader clocks: inside a clock nemesis's window they are
 * reported as excused, not as violations.
 *
 * Owns: nothing beyond one call. Must never: count an unknown push as required, or an unknown
 * QPOP or QACK as having happened or not.
 */
import type { BaseOp } from '../history.js';
import { clockAffected, type ClockWindow } from './clock-windows.js';

export interface Delivery {
  id: number;
  payload: string;
  deliveries: number;
  receipt: string;
}

export interface PendingEntry {
  id: number;
  consumer: string;
  deliveries: number;
  msLeft: number;
  receipt: string;
}

export type QueueOpKind = 'push' | 'pop' | 'ack' | 'pending';

export interface QueueOp extends BaseOp {
  kind: QueueOpKind;
  queue: string;
  /** push: the producer; pop, ack: the consumer. */
  client: string;
  /** push: the payloads and their IDEMP key; `attempt` 1 is the first send, 2.. resends. */
  payloads?: string[];
  idemp?: string;
  attempt?: number;
  /** push: the ids answered. */
  ids?: number[];
  /** pop: the options sent and the messages answered ([] for nil). */
  count?: number;
  visibilityMs?: number;
  messages?: Delivery[];
  /** ack: the receipts sent, and the count answered or 'LEASELOST'. */
  receipts?: string[];
  output?: number | string;
  /** pending: QPENDING's entries at the end. */
  pending?: PendingEntry[];
  /** Made by the final drain, after the faults. */
  drain?: boolean;
}

export type QueueViolationKind =
  | 'lost'
  | 'never-pushed'
  | 'payload'
  | 'duplicate-push'
  | 'duplicate-delivery'
  | 'delivery-order'
  | 'acked-redelivered'
  | 'acked-twice'
  | 'early-redelivery'
  | 'lease-lost-early'
  | 'fifo'
  | 'push-order';

export interface QueueViolation {
  kind: QueueViolationKind;
  queue: string;
  ops: number[];
  detail: string;
}

export interface QueueVerdict {
  checker: 'queues';
  valid: boolean;
  queues: number;
  pushes: { ok: number; fail: number; unknown: number; resends: number };
  ackedPayloads: number;
  /** Distinct payloads delivered at least once (workload and drain). */
  deliveredPayloads: number;
  deliveries: number;
  redeliveries: number;
  acks: { removed: number; gone: number; leaseLost: number; unknown: number };
  /** Acknowledged payloads delivered only by the drain. */
  drained: number;
  deadLettered: number;
  /** Acknowledged payloads never seen delivered but leased at the end (QPENDING). */
  leasedAtEnd: number;
  /**
   * Acknowledged payloads not seen delivered when the final drain could not finish (no member
   * could serve it): neither delivered nor shown lost. The run is already invalid (the cluster
   * did not recover, an anomaly); claiming a loss the history cannot show would mislead.
   */
  unverified: number;
  violations: QueueViolation[];
  excused: QueueViolation[];
}

export interface QueueCheckOptions {
  clockWindows?: readonly ClockWindow[];
  /** queue -> its dead-letter queue (payloads found there count as delivered). */
  deadLetter?: ReadonlyMap<string, string>;
  marginMs?: number;
  /** Whether the final drain emptied every queue (default true); see `unverified`. */
  drainComplete?: boolean;
}

const MAX_REPORTED = 50;

export function parseReceipt(receipt: string): { id: number; deliveries: number } | undefined {
  const m = /^(\d+)-(\d+)$/.exec(receipt);
  return m === null ? undefined : { id: Number(m[1]), deliveries: Number(m[2]) };
}

function describe(op: QueueOp): string {
  const done = op.completeMs === undefined ? '?' : op.completeMs.toFixed(1);
  let what = '';
  if (op.kind === 'push')
    what = ` ${JSON.stringify(op.payloads)} IDEMP ${String(op.idemp)} -> ${JSON.stringify(op.ids ?? null)}`;
  else if (op.kind === 'pop')
    what = ` VISIBILITY ${String(op.visibilityMs)} -> ${(op.messages ?? []).map((d) => d.receipt).join(',')}`;
  else if (op.kind === 'ack')
    what = ` ${(op.receipts ?? []).join(',')} -> ${JSON.stringify(op.output ?? null)}`;
  return `#${op.id} ${op.kind.toUpperCase()}${op.drain === true ? ' (drain)' : ''} ${op.queue} ${op.client}${what} [${op.result}] ${op.invokeMs.toFixed(1)}..${done} ms`;
}

export function checkQueues(history: readonly QueueOp[], options: QueueCheckOptions = {}): QueueVerdict {
  const margin = options.marginMs ?? 5;
  const windows = options.clockWindows ?? [];
  const violations: QueueViolation[] = [];
  const excused: QueueViolation[] = [];
  const report = (v: QueueViolation, span?: [number, number]): void => {
    const list = span !== undefined && clockAffected(windows, span[0], span[1]) ? excused : violations;
    if (list.length < MAX_REPORTED) list.push(v);
    else if (list === violations && violations.length === MAX_REPORTED)
      list.push({ ...v, detail: `(more not listed) ${v.detail}` });
  };
  const deadLetterOf = options.deadLetter ?? new Map<string, string>();
  const home = new Map<string, string>(); // dead-letter queue -> its queue
  for (const [q, dlq] of deadLetterOf) home.set(dlq, q);

  const pushes = { ok: 0, fail: 0, unknown: 0, resends: 0 };
  // Payload -> the outcomes of the pushes that carried it (per queue).
  const pushedPayload = new Map<string, { ok: boolean; maybe: boolean }>();
  const key = (queue: string, x: string | number): string => `${queue}\u0000${x}`;
  const okPushes: QueueOp[] = [];
  const idPayload = new Map<string, { payload: string; op: QueueOp }>();
  for (const op of history) {
    if (op.kind !== 'push') continue;
    pushes[op.result]++;
    if ((op.attempt ?? 1) > 1) pushes.resends++;
    for (const p of op.payloads ?? []) {
      const k = key(op.queue, p);
      const seen = pushedPayload.get(k) ?? { ok: false, maybe: false };
      if (op.result === 'ok') seen.ok = true;
      if (op.result !== 'fail') seen.maybe = true;
      pushedPayload.set(k, seen);
    }
    if (op.result !== 'ok') continue;
    okPushes.push(op);
    const ids = op.ids ?? [];
    const payloads = op.payloads ?? [];
    if (ids.length !== payloads.length || ids.some((id, i) => i > 0 && id <= ids[i - 1]!)) {
      report({
        kind: 'payload',
        queue: op.queue,
        ops: [op.id],
        detail: `push answered ids not one per payload in increasing order: ${describe(op)}`,
      });
    }
    ids.forEach((id, i) => {
      const payload = payloads[i];
      if (payload === undefined) return;
      const k = key(op.queue, id);
      const prior = idPayload.get(k);
      if (prior !== undefined && prior.payload !== payload) {
        report({
          kind: 'payload',
          queue: op.queue,
          ops: [prior.op.id, op.id],
          detail: `id ${id} answered for two payloads: ${describe(prior.op)} and ${describe(op)}`,
        });
      } else idPayload.set(k, { payload, op });
    });
  }

  // Deliveries per message.
  interface Seen {
    op: QueueOp;
    d: Delivery;
  }
  const byMessage = new Map<string, Seen[]>();
  const byDelivery = new Map<string, Seen>();
  const payloadIds = new Map<string, Set<number>>(); // queue+payload -> ids
  const deliveredPayload = new Map<string, { drainOnly: boolean; deadLettered: boolean }>(); // home queue + payload
  let deliveries = 0;
  let redeliveries = 0;
  for (const op of history) {
    if (op.kind !== 'pop' || op.result !== 'ok') continue;
    for (const d of op.messages ?? []) {
      deliveries++;
      if (d.deliveries > 1) redeliveries++;
      const mk = key(op.queue, d.id);
      let list = byMessage.get(mk);
      if (list === undefined) byMessage.set(mk, (list = []));
      list.push({ op, d });
      const dk = `${mk}\u0000${d.deliveries}`;
      const twin = byDelivery.get(dk);
      if (twin !== undefined) {
        report({
          kind: 'duplicate-delivery',
          queue: op.queue,
          ops: [twin.op.id, op.id],
          detail: `delivery ${d.receipt} handed out twice: ${describe(twin.op)} and ${describe(op)}`,
        });
      } else byDelivery.set(dk, { op, d });
      const homeQueue = home.get(op.queue);
      const pushedAs = pushedPayload.get(key(homeQueue ?? op.queue, d.payload));
      if (pushedAs === undefined || !pushedAs.maybe) {
        report({
          kind: 'never-pushed',
          queue: op.queue,
          ops: [op.id],
          detail: `delivered ${JSON.stringify(d.payload)} (${d.receipt}), which ${pushedAs === undefined ? 'no push carried' : 'only failed pushes carried'}: ${describe(op)}`,
        });
      }
      const known = idPayload.get(mk);
      if (known !== undefined && known.payload !== d.payload) {
        report({
          kind: 'payload',
          queue: op.queue,
          ops: [known.op.id, op.id],
          detail: `id ${d.id} delivered as ${JSON.stringify(d.payload)}, pushed as ${JSON.stringify(known.payload)}: ${describe(op)}`,
        });
      } else if (known === undefined) idPayload.set(mk, { payload: d.payload, op });
      if (homeQueue === undefined) {
        const pk = key(op.queue, d.payload);
        let ids = payloadIds.get(pk);
        if (ids === undefined) payloadIds.set(pk, (ids = new Set()));
        ids.add(d.id);
      }
      const hk = key(homeQueue ?? op.queue, d.payload);
      const was = deliveredPayload.get(hk);
      deliveredPayload.set(hk, {
        drainOnly: (was?.drainOnly ?? true) && op.drain === true,
        deadLettered: (was?.deadLettered ?? false) || homeQueue !== undefined,
      });
    }
  }
  for (const op of okPushes) {
    if (home.has(op.queue)) continue;
    (op.ids ?? []).forEach((id, i) => {
      const p = op.payloads?.[i];
      if (p === undefined) return;
      const pk = key(op.queue, p);
      let ids = payloadIds.get(pk);
      if (ids === undefined) payloadIds.set(pk, (ids = new Set()));
      ids.add(id);
    });
  }
  for (const [pk, ids] of payloadIds) {
    if (ids.size > 1) {
      const [queue, payload] = pk.split('\u0000') as [string, string];
      report({
        kind: 'duplicate-push',
        queue,
        ops: [],
        detail: `payload ${JSON.stringify(payload)} (one IDEMP key) enqueued under ids ${[...ids].join(', ')}`,
      });
    }
  }

  // Acks: what left the queue, and when.
  const acks = { removed: 0, gone: 0, leaseLost: 0, unknown: 0 };
  const goneAt = new Map<string, { at: number; op: QueueOp }>(); // message -> earliest completed ack
  const removedBy = new Map<string, QueueOp>();
  for (const op of history) {
    if (op.kind !== 'ack') continue;
    if (op.result === 'unknown') acks.unknown++;
    if (op.result !== 'ok') continue;
    const receipts = (op.receipts ?? []).map(parseReceipt).filter((r) => r !== undefined);
    if (op.output === 'LEASELOST') {
      acks.leaseLost++;
      if (receipts.length === 1) {
        const r = receipts[0]!;
        const given = byDelivery.get(`${key(op.queue, r.id)}\u0000${r.deliveries}`);
        if (
          given?.op.visibilityMs !== undefined &&
          op.completeMs! + margin < given.op.invokeMs + given.op.visibilityMs
        ) {
          report(
            {
              kind: 'lease-lost-early',
              queue: op.queue,
              ops: [given.op.id, op.id],
              detail: `-LEASELOST ${(given.op.invokeMs + given.op.visibilityMs - op.completeMs!).toFixed(0)} ms before the lease could end: ${describe(given.op)}, then ${describe(op)}`,
            },
            [given.op.invokeMs, op.completeMs!],
          );
        }
      }
      continue;
    }
    if (typeof op.output !== 'number') continue;
    if (op.output > 0) acks.removed += op.output;
    else acks.gone += receipts.length;
    for (const r of receipts) {
      const mk = key(op.queue, r.id);
      const g = goneAt.get(mk);
      if (g === undefined || op.completeMs! < g.at) goneAt.set(mk, { at: op.completeMs!, op });
      if (receipts.length === 1 && op.output === 1) {
        const twice = removedBy.get(mk);
        if (twice !== undefined) {
          report({
            kind: 'acked-twice',
            queue: op.queue,
            ops: [twice.id, op.id],
            detail: `message ${r.id} removed twice: ${describe(twice)} and ${describe(op)}`,
          });
        } else removedBy.set(mk, op);
      }
    }
  }

  for (const [mk, seen] of byMessage) {
    const queue = seen[0]!.op.queue;
    const gone = goneAt.get(mk);
    if (gone !== undefined) {
      for (const s of seen) {
        if (s.op.invokeMs > gone.at) {
          report({
            kind: 'acked-redelivered',
            queue,
            ops: [gone.op.id, s.op.id],
            detail: `delivered after its ack completed: ${describe(gone.op)}, then ${describe(s.op)}`,
          });
        }
      }
    }
    if (seen.length < 2) continue;
    for (const x of seen) {
      for (const y of seen) {
        if (x === y) continue;
        if (x.op.completeMs! < y.op.invokeMs && x.d.deliveries >= y.d.deliveries) {
          report({
            kind: 'delivery-order',
            queue,
            ops: [x.op.id, y.op.id],
            detail: `delivery ${x.d.receipt} then ${y.d.receipt}: ${describe(x.op)}, then ${describe(y.op)}`,
          });
        }
        if (
          y.d.deliveries > x.d.deliveries &&
          x.op.visibilityMs !== undefined &&
          y.op.completeMs! >= x.op.invokeMs && // else delivery-order already says it
          y.op.completeMs! + margin < x.op.invokeMs + x.op.visibilityMs
        ) {
          report(
            {
              kind: 'early-redelivery',
              queue,
              ops: [x.op.id, y.op.id],
              detail: `redelivered ${(x.op.invokeMs + x.op.visibilityMs - y.op.completeMs!).toFixed(0)} ms before the lease of ${x.d.receipt} could end: ${describe(x.op)}, then ${describe(y.op)}`,
            },
            [x.op.invokeMs, y.op.completeMs!],
          );
        }
      }
    }
  }

  // FIFO of first deliveries, per queue: a lower id's first delivery never certainly after a higher one's.
  const firsts = new Map<string, Seen[]>();
  for (const seen of byMessage.values()) {
    const first = seen.find((s) => s.d.deliveries === 1);
    if (first === undefined) continue;
    let list = firsts.get(first.op.queue);
    if (list === undefined) firsts.set(first.op.queue, (list = []));
    list.push(first);
  }
  for (const [queue, list] of firsts) {
    list.sort((a, b) => a.d.id - b.d.id);
    let latest: Seen | undefined; // among lower ids: the first delivery invoked last
    for (const s of list) {
      if (latest !== undefined && s.op !== latest.op && s.op.completeMs! < latest.op.invokeMs) {
        report({
          kind: 'fifo',
          queue,
          ops: [latest.op.id, s.op.id],
          detail: `message ${s.d.id} first delivered before message ${latest.d.id} (lower id, ready): ${describe(s.op)}, then ${describe(latest.op)}`,
        });
      }
      if (latest === undefined || s.op.invokeMs > latest.op.invokeMs) latest = s;
    }
  }

  // Push order: ids follow the order pushes apply (one logical push per IDEMP key). A resend
  // answers the ids its key got when an earlier attempt applied, so a key's push may have
  // taken effect as early as its first attempt that could have applied (ok or unknown; a
  // failed attempt certainly did not) and no later than its first acknowledgement.
  const window = new Map<string, { invokeMs: number; completeMs: number }>();
  for (const op of history) {
    if (op.kind !== 'push' || op.result === 'fail') continue;
    const k = key(op.queue, op.idemp ?? `#${op.id}`);
    const w = window.get(k) ?? { invokeMs: Infinity, completeMs: Infinity };
    w.invokeMs = Math.min(w.invokeMs, op.invokeMs);
    if (op.result === 'ok') w.completeMs = Math.min(w.completeMs, op.completeMs!);
    window.set(k, w);
  }
  const invokedAt = (op: QueueOp): number => window.get(key(op.queue, op.idemp ?? `#${op.id}`))!.invokeMs;
  const completedAt = (op: QueueOp): number => window.get(key(op.queue, op.idemp ?? `#${op.id}`))!.completeMs;
  const firstOfKey = new Map<string, QueueOp>();
  for (const op of okPushes) {
    const k = key(op.queue, op.idemp ?? `#${op.id}`);
    const prior = firstOfKey.get(k);
    if (prior === undefined) firstOfKey.set(k, op);
    else if (JSON.stringify(prior.ids) !== JSON.stringify(op.ids)) {
      report({
        kind: 'duplicate-push',
        queue: op.queue,
        ops: [prior.id, op.id],
        detail: `one IDEMP key answered two id lists: ${describe(prior)} and ${describe(op)}`,
      });
    }
  }
  const perQueue = new Map<string, QueueOp[]>();
  for (const op of firstOfKey.values()) {
    if ((op.ids ?? []).length === 0) continue;
    let list = perQueue.get(op.queue);
    if (list === undefined) perQueue.set(op.queue, (list = []));
    list.push(op);
  }
  for (const [queue, list] of perQueue) {
    list.sort((a, b) => completedAt(a) - completedAt(b));
    const byInvoke = [...list].sort((a, b) => invokedAt(a) - invokedAt(b));
    let i = 0;
    let maxId = -Infinity;
    let maxOp: QueueOp | undefined;
    for (const p of byInvoke) {
      while (i < list.length && completedAt(list[i]!) < invokedAt(p)) {
        const top = Math.max(...list[i]!.ids!);
        if (top > maxId) {
          maxId = top;
          maxOp = list[i];
        }
        i++;
      }
      if (maxOp !== undefined && Math.min(...p.ids!) <= maxId) {
        report({
          kind: 'push-order',
          queue,
          ops: [maxOp.id, p.id],
          detail: `a later push got a lower id: ${describe(maxOp)}, then ${describe(p)}`,
        });
      }
    }
  }

  // Every acknowledged push delivered (or still leased at the end).
  const pendingAtEnd = new Set<string>();
  for (const op of history) {
    if (op.kind !== 'pending' || op.result !== 'ok') continue;
    for (const e of op.pending ?? []) pendingAtEnd.add(key(op.queue, e.id));
  }
  let ackedPayloads = 0;
  let drained = 0;
  let deadLettered = 0;
  let leasedAtEnd = 0;
  let unverified = 0;
  for (const op of okPushes) {
    if (home.has(op.queue)) continue;
    (op.payloads ?? []).forEach((p, i) => {
      ackedPayloads++;
      const seen = deliveredPayload.get(key(op.queue, p));
      if (seen !== undefined) {
        if (seen.drainOnly) drained++;
        if (seen.deadLettered) deadLettered++;
        return;
      }
      const id = op.ids?.[i];
      if (id !== undefined && pendingAtEnd.has(key(op.queue, id))) {
        leasedAtEnd++;
        return;
      }
      if (options.drainComplete === false) {
        unverified++;
        return;
      }
      report({
        kind: 'lost',
        queue: op.queue,
        ops: [op.id],
        detail: `acknowledged push never delivered nor in the queue at the end: ${describe(op)}`,
      });
    });
  }

  return {
    checker: 'queues',
    valid: violations.length === 0,
    queues: new Set(history.filter((op) => !home.has(op.queue)).map((op) => op.queue)).size,
    pushes,
    ackedPayloads,
    deliveredPayloads: deliveredPayload.size,
    deliveries,
    redeliveries,
    acks,
    drained,
    deadLettered,
    leasedAtEnd,
    unverified,
    violations,
    excused,
  };
}
