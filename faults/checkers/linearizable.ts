/**
 * Linearizability checker for registers (SET/GET/INCR on string keys): Wing & Gong's search with
 * Lowe's memoisation (the algorithm Porcupine implements), one key at a time.
 *
 * The history of a key becomes a list of call and return events in real-time order. The search
 * walks the list from its head: at a call it tries to linearize that operation now (apply it to
 * the model; if the model accepts the recorded output and the pair (set of linearized
 * operations, model state) was not seen before, the operation is lifted out of the list and the
 * walk restarts from the head); at a return event of an operation not yet linearized there is
 * no way forward, so it backtracks (puts back the last lifted operation and tries the next call
 * after it). The history is linearizable when every operation with a known outcome has been
 * lifted.
 *
 * Outcomes: `ok` operations must take effect between invocation and completion. `fail`
 * operations never took effect and are dropped. `unknown` operations (a timeout, a lost
 * connection, -TRYAGAIN after the write was sent) may take effect at any time after their
 * invocation, or never: they have no return event, and the search may finish without them.
 * Reads with unknown or failed outcome constrain nothing and are dropped.
 *
 * Owns: nothing beyond one call. Must never: report `ok` for a history it did not finish
 * searching (a search past `maxSteps` is reported as `timeout`, not as a pass or a failure).
 */
import type { HistoryOp } from '../history.js';

export type RegisterState = string | null;

export interface KeyVerdict {
  key: string;
  ops: number;
  /** `timeout`: the search hit its step bound; nothing is proven either way. */
  result: 'ok' | 'violation' | 'timeout';
  steps: number;
  /** For a violation: the longest linearizable prefix found and the ops that could not follow. */
  detail?: string;
}

export interface LinearizabilityVerdict {
  checker: 'linearizable';
  valid: boolean;
  /** Keys whose search hit the step bound (valid stays true; the verdict says so). */
  timedOut: string[];
  keys: KeyVerdict[];
  violations: KeyVerdict[];
}

export interface LinearizabilityOptions {
  /** Search steps per key before giving up with `timeout`. */
  maxSteps?: number;
  /** Refuse (throw) histories with more operations than this on one key. */
  maxOpsPerKey?: number;
}

const DEFAULT_MAX_STEPS = 2_000_000;
const DEFAULT_MAX_OPS_PER_KEY = 2_000;
/** Bound on the memo set; past it the search stops with `timeout` rather than eat the heap. */
const MAX_MEMO_ENTRIES = 2_000_000;

/**
 * The register model: the next state if `op` may take effect in `state` with its recorded
 * output, or undefined. An unknown-outcome op accepts any output (it was never seen).
 */
export function stepRegister(state: RegisterState, op: HistoryOp): { next: RegisterState } | undefined {
  const known = op.result === 'ok';
  switch (op.kind) {
    case 'set':
      return { next: op.value ?? null };
    case 'get':
      return !known || op.output === state ? { next: state } : undefined;
    case 'incr': {
      const current = state === null ? 0n : /^-?\d+$/.test(state) ? BigInt(state) : undefined;
      if (current === undefined) return undefined; // INCR on a non-integer errors: never an ok op
      const next = (current + 1n).toString();
      return !known || op.output === next ? { next } : undefined;
    }
  }
}

interface Entry {
  op: number;
  isCall: boolean;
  prev: Entry | null;
  next: Entry | null;
  /** For a call: its return event, or null for an unknown outcome (returns at infinity). */
  match: Entry | null;
}

/** Checks one key's operations (all on the same key). */
export function checkKey(key: string, history: readonly HistoryOp[], options: LinearizabilityOptions = {}): KeyVerdict {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  const ops = history.filter(
    (op) => op.result !== 'fail' && !(op.kind === 'get' && op.result === 'unknown'),
  );
  const maxOps = options.maxOpsPerKey ?? DEFAULT_MAX_OPS_PER_KEY;
  if (ops.length > maxOps) {
    throw new Error(`linearizable: key ${key} has ${ops.length} ops (bound ${maxOps}); rotate keys in the workload`);
  }
  // Events in time order; at equal times returns come after calls (touching intervals overlap,
  // which is the permissive reading: same-millisecond events are not ordered).
  const events: { time: number; isCall: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.invokeMs, isCall: true, op: i });
    if (op.result === 'ok') {
      if (op.completeMs === undefined) throw new Error(`linearizable: ok op ${op.id} has no completion time`);
      events.push({ time: op.completeMs, isCall: false, op: i });
    }
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));

  const head: Entry = { op: -1, isCall: false, prev: null, next: null, match: null };
  let tail = head;
  const calls: Entry[] = new Array<Entry>(ops.length);
  for (const ev of events) {
    const entry: Entry = { op: ev.op, isCall: ev.isCall, prev: tail, next: null, match: null };
    tail.next = entry;
    tail = entry;
    if (ev.isCall) calls[ev.op] = entry;
    else calls[ev.op]!.match = entry;
  }

  const lift = (call: Entry): void => {
    call.prev!.next = call.next;
    if (call.next !== null) call.next.prev = call.prev;
    const ret = call.match;
    if (ret !== null) {
      ret.prev!.next = ret.next;
      if (ret.next !== null) ret.next.prev = ret.prev;
    }
  };
  const unlift = (call: Entry): void => {
    const ret = call.match;
    if (ret !== null) {
      ret.prev!.next = ret;
      if (ret.next !== null) ret.next.prev = ret;
    }
    call.prev!.next = call;
    if (call.next !== null) call.next.prev = call;
  };

  let remainingKnown = ops.filter((op) => op.result === 'ok').length;
  const linearized = new Uint8Array(ops.length);
  const memo = new Set<string>();
  const stateKey = (state: RegisterState): string => {
    // The set of lifted ops as a compact bitmap string, plus the state.
    let bits = '';
    for (let i = 0; i < linearized.length; i += 16) {
      let word = 0;
      for (let j = 0; j < 16 && i + j < linearized.length; j++) word |= linearized[i + j]! << j;
      bits += String.fromCharCode(word);
    }
    return `${bits}\u0000${state === null ? '\u0001' : `\u0002${state}`}`;
  };

  const stack: { call: Entry; prior: RegisterState }[] = [];
  let state: RegisterState = null;
  let entry: Entry | null = head.next;
  let steps = 0;
  let deepest = 0;
  let deepestStuckAt: number | undefined;

  while (remainingKnown > 0) {
    if (++steps > maxSteps || memo.size > MAX_MEMO_ENTRIES) {
      return { key, ops: ops.length, result: 'timeout', steps };
    }
    if (entry === null) {
      // Only unknown calls were left to try from here and none helped: backtrack.
      const top = stack.pop();
      if (top === undefined) break;
      const op = ops[top.call.op]!;
      state = top.prior;
      linearized[top.call.op] = 0;
      if (op.result === 'ok') remainingKnown++;
      unlift(top.call);
      entry = top.call.next;
      continue;
    }
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const stepped = stepRegister(state, op);
      if (stepped !== undefined) {
        linearized[entry.op] = 1;
        const seen = stateKey(stepped.next);
        if (!memo.has(seen)) {
          memo.add(seen);
          stack.push({ call: entry, prior: state });
          state = stepped.next;
          if (op.result === 'ok') remainingKnown--;
          lift(entry);
          if (stack.length > deepest) {
            deepest = stack.length;
            deepestStuckAt = undefined;
          }
          entry = head.next;
          continue;
        }
        linearized[entry.op] = 0;
      }
      entry = entry.next;
      continue;
    }
    // A return event of an op not yet linearized: it cannot be placed later. Backtrack.
    if (stack.length === deepest && deepestStuckAt === undefined) deepestStuckAt = entry.op;
    const top = stack.pop();
    if (top === undefined) break;
    const op = ops[top.call.op]!;
    state = top.prior;
    linearized[top.call.op] = 0;
    if (op.result === 'ok') remainingKnown++;
    unlift(top.call);
    entry = top.call.next;
  }
  if (remainingKnown === 0) return { key, ops: ops.length, result: 'ok', steps };
  const stuck = deepestStuckAt === undefined ? undefined : ops[deepestStuckAt];
  return {
    key,
    ops: ops.length,
    result: 'violation',
    steps,
    detail:
      `no linearization: at most ${deepest} of ${ops.length} ops could be ordered` +
      (stuck === undefined ? '' : `; stuck before op ${describeOp(stuck)}`),
  };
}

export function describeOp(op: HistoryOp): string {
  const arg = op.kind === 'set' ? ` ${JSON.stringify(op.value)}` : '';
  const out = op.result === 'ok' && op.kind !== 'set' ? ` -> ${JSON.stringify(op.output)}` : '';
  const done = op.completeMs === undefined ? '?' : op.completeMs.toFixed(1);
  return `#${op.id} p${op.process}@${op.node} ${op.kind.toUpperCase()} ${op.key}${arg}${out} [${op.result}] ${op.invokeMs.toFixed(1)}..${done} ms`;
}

/** Partitions the history by key and checks each key. */
export function checkLinearizable(
  history: readonly HistoryOp[],
  options: LinearizabilityOptions = {},
): LinearizabilityVerdict {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const keys = [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, ops]) => checkKey(key, ops, options));
  const violations = keys.filter((k) => k.result === 'violation');
  return {
    checker: 'linearizable',
    valid: violations.length === 0,
    timedOut: keys.filter((k) => k.result === 'timeout').map((k) => k.key),
    keys,
    violations,
  };
}
