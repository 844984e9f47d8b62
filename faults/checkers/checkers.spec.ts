/**
 * The checkers on hand-made histories: each must accept the good ones (including unknown
 * outcomes that did or did not take effect) and catch the bad ones (a stale read, a lost write,
 * a duplicate increment, a lost increment, diverging replicas), and the linearizability search
 * is compared with a brute-force search over every ordering on small random histories.
 */
import { expect } from 'chai';
import type { HistoryOp, OpKind, Outcome } from '../history.js';
import { Prng } from '../prng.js';
import { checkCounters } from './counter.js';
import { checkDurability, type FinalRead } from './durability.js';
import { checkKey, checkLinearizable, stepRegister, type RegisterState } from './linearizable.js';

let nextId = 0;
function op(
  kind: OpKind,
  key: string,
  invokeMs: number,
  completeMs: number | undefined,
  result: Outcome,
  io: { value?: string; output?: string | null } = {},
  proc = 0,
): HistoryOp {
  return {
    id: nextId++,
    process: proc,
    node: 'n1',
    kind,
    key,
    result,
    invokeMs,
    ...(completeMs !== undefined ? { completeMs } : {}),
    ...(io.value !== undefined ? { value: io.value } : {}),
    ...(io.output !== undefined ? { output: io.output } : {}),
  };
}
const set = (v: string, a: number, b: number | undefined, r: Outcome = 'ok'): HistoryOp =>
  op('set', 'x', a, b, r, { value: v });
const get = (v: string | null, a: number, b: number, r: Outcome = 'ok'): HistoryOp =>
  op('get', 'x', a, b, r, { output: v });
const incr = (v: string | undefined, a: number, b: number | undefined, r: Outcome = 'ok', key = 'c'): HistoryOp =>
  op('incr', key, a, b, r, v === undefined ? {} : { output: v });

describe('faults/checkers: linearizable (WGL search per key)', () => {
  it('accepts sequential and overlapping histories that have a linearization', () => {
    expect(checkKey('x', [set('a', 0, 1), get('a', 2, 3), set('b', 4, 5), get('b', 6, 7)]).result).to.equal('ok');
    // A read overlapping a write may see either value.
    expect(checkKey('x', [set('a', 0, 1), set('b', 2, 6), get('a', 3, 4), get('b', 5, 7)]).result).to.equal('ok');
    // A missing key reads null.
    expect(checkKey('x', [get(null, 0, 1), set('a', 2, 3)]).result).to.equal('ok');
  });

  it('catches a stale read: a value overwritten by a completed write is read later', () => {
    const v = checkKey('x', [set('a', 0, 1), set('b', 2, 3), get('a', 4, 5)]);
    expect(v.result).to.equal('violation');
    expect(v.detail).to.match(/no linearization/);
  });

  it('catches a read of a value nobody wrote and reads going back in time', () => {
    expect(checkKey('x', [set('a', 0, 1), get('z', 2, 3)]).result).to.equal('violation');
    // Two sequential reads that see b then a, while the writes a then b were sequential.
    const h = [set('a', 0, 1), set('b', 2, 10), get('b', 3, 4), get('a', 5, 6)];
    expect(checkKey('x', h).result).to.equal('violation');
  });

  it('lets an unknown write take effect late, or never', () => {
    // Unknown write of b invoked at 2, never completed: read at 10 may see b ...
    expect(checkKey('x', [set('a', 0, 1), set('b', 2, undefined, 'unknown'), get('b', 10, 11)]).result).to.equal('ok');
    // ... or still a ...
    expect(checkKey('x', [set('a', 0, 1), set('b', 2, undefined, 'unknown'), get('a', 10, 11)]).result).to.equal('ok');
    // ... but not b then a (it took effect once), and never before its invocation.
    expect(
      checkKey('x', [set('a', 0, 1), set('b', 2, undefined, 'unknown'), get('b', 10, 11), get('a', 12, 13)]).result,
    ).to.equal('violation');
    expect(checkKey('x', [set('a', 0, 1), get('b', 2, 3), set('b', 4, undefined, 'unknown')]).result).to.equal('violation');
  });

  it('drops failed writes: a read of a failed write is a violation', () => {
    expect(checkKey('x', [set('a', 0, 1), set('b', 2, 3, 'fail'), get('b', 4, 5)]).result).to.equal('violation');
    expect(checkKey('x', [set('a', 0, 1), set('b', 2, 3, 'fail'), get('a', 4, 5)]).result).to.equal('ok');
  });

  it('checks INCR outputs against the register model', () => {
    expect(checkKey('c', [incr('1', 0, 1), incr('2', 2, 3), get('2', 4, 5)].map((o) => ({ ...o, key: 'c' }))).result).to.equal('ok');
    // A duplicate increment: two sequential INCRs both answered 1.
    expect(checkKey('c', [incr('1', 0, 1), incr('1', 2, 3)]).result).to.equal('violation');
    // An unknown INCR that applied explains a jump.
    expect(checkKey('c', [incr('1', 0, 1), incr(undefined, 2, undefined, 'unknown'), incr('3', 4, 5)]).result).to.equal('ok');
  });

  it('partitions by key and reports which key failed', () => {
    const h = [set('a', 0, 1), op('set', 'y', 0, 1, 'ok', { value: 'q' }), op('get', 'y', 2, 3, 'ok', { output: 'z' })];
    const v = checkLinearizable(h);
    expect(v.valid).to.equal(false);
    expect(v.violations.map((k) => k.key)).to.deep.equal(['y']);
    expect(v.keys.map((k) => k.result)).to.deep.equal(['ok', 'violation']);
  });

  it('reports timeout rather than a verdict when the step bound is hit', () => {
    const h: HistoryOp[] = [];
    for (let i = 0; i < 12; i++) h.push(set(`v${i}`, 0, 100));
    h.push(get('nobody', 101, 102));
    expect(checkKey('x', h, { maxSteps: 50 }).result).to.equal('timeout');
    expect(checkKey('x', h).result).to.equal('violation');
  });

  it('finishes quickly on 1,000 concurrent ops per key', () => {
    const prng = new Prng(7);
    const h: HistoryOp[] = [];
    let state: RegisterState = null;
    let t = 0;
    // A real-ish history: five clients, each op overlapping others, generated from a sequential run.
    for (let i = 0; i < 1_000; i++) {
      const start = t;
      t += 1 + prng.below(3);
      if (prng.below(2) === 0) {
        state = `v${i}`;
        h.push(set(state, start, start + 4));
      } else h.push(get(state, start, start + 4));
    }
    const v = checkKey('x', h);
    expect(v.result).to.equal('ok');
  });

  it('agrees with a brute-force search over all orders on small random histories', () => {
    const prng = new Prng(12345);
    let violations = 0;
    for (let round = 0; round < 300; round++) {
      const h: HistoryOp[] = [];
      const n = 2 + prng.below(5);
      for (let i = 0; i < n; i++) {
        const a = prng.below(10);
        const b = a + 1 + prng.below(6);
        const r: Outcome = prng.below(5) === 0 ? 'unknown' : 'ok';
        if (prng.below(2) === 0) h.push(set(`v${prng.below(3)}`, a, r === 'ok' ? b : undefined, r));
        else h.push(get(prng.below(4) === 0 ? null : `v${prng.below(3)}`, a, b));
      }
      const expected = bruteForce(h);
      const got = checkKey('x', h).result;
      if (!expected) violations++;
      expect(got, JSON.stringify(h)).to.equal(expected ? 'ok' : 'violation');
    }
    expect(violations).to.be.greaterThan(20); // the sample has both kinds
  });
});

/** Tries every subset of unknown ops and every order consistent with real time. */
function bruteForce(h: readonly HistoryOp[]): boolean {
  const ops = h.filter((o) => o.result !== 'fail' && !(o.kind === 'get' && o.result !== 'ok'));
  const used = new Array<boolean>(ops.length).fill(false);
  const search = (state: RegisterState, placed: number[]): boolean => {
    if (ops.every((o, i) => used[i] || o.result !== 'ok')) return true;
    for (let i = 0; i < ops.length; i++) {
      if (used[i]) continue;
      const o = ops[i]!;
      // o may go next only if no unplaced ok op completed before o was invoked.
      const blocked = ops.some((p, j) => !used[j] && j !== i && p.result === 'ok' && p.completeMs! < o.invokeMs);
      if (blocked) continue;
      const stepped = stepRegister(state, o);
      if (stepped === undefined) continue;
      used[i] = true;
      if (search(stepped.next, [...placed, i])) return true;
      used[i] = false;
    }
    return false;
  };
  return search(null, []);
}

describe('faults/checkers: durability', () => {
  const reads = (value: string | null, nodes = ['n1', 'n2', 'n3'], key = 'x'): FinalRead[] =>
    nodes.map((node) => ({ node, key, value }));

  it('accepts the last acknowledged write, or a concurrent or unknown later one', () => {
    const h = [set('a', 0, 1), set('b', 2, 3)];
    expect(checkDurability(h, reads('b')).valid).to.equal(true);
    const overlapping = [set('a', 0, 5), set('b', 2, 3)];
    expect(checkDurability(overlapping, reads('a')).valid).to.equal(true);
    const unknownLater = [set('a', 0, 1), set('b', 2, undefined, 'unknown')];
    expect(checkDurability(unknownLater, reads('a')).valid).to.equal(true);
    expect(checkDurability(unknownLater, reads('b')).valid).to.equal(true);
    expect(checkDurability([set('b', 2, undefined, 'unknown')], reads(null)).valid).to.equal(true);
  });

  it('catches a lost write: the key is missing or holds an older value on some node', () => {
    const h = [set('a', 0, 1), set('b', 2, 3)];
    const lost = checkDurability(h, [...reads('b', ['n1', 'n2']), ...reads('a', ['n3'])]);
    expect(lost.valid).to.equal(false);
    expect(lost.violations.map((v) => v.why).join('\n')).to.match(/stale.*lost/).and.match(/disagree/);
    const missing = checkDurability(h, reads(null));
    expect(missing.valid).to.equal(false);
    expect(missing.violations[0]!.why).to.match(/missing/);
  });

  it('catches a value nobody wrote and a failed write that took effect', () => {
    expect(checkDurability([set('a', 0, 1)], reads('zz')).valid).to.equal(false);
    expect(checkDurability([set('a', 0, 1), set('b', 2, 3, 'fail')], reads('b')).valid).to.equal(false);
  });

  it('reports unreadable nodes without failing on them', () => {
    const v = checkDurability([set('a', 0, 1)], [...reads('a', ['n1', 'n2']), { node: 'n3', key: 'x', value: undefined }]);
    expect(v.valid).to.equal(true);
    expect(v.unreadNodes).to.deep.equal(['n3']);
  });
});

describe('faults/checkers: counter', () => {
  const finals = (value: string | null, key = 'c'): FinalRead[] =>
    ['n1', 'n2', 'n3'].map((node) => ({ node, key, value }));

  it('accepts counts within [acked, acked + unknown]', () => {
    const h = [incr('1', 0, 1), incr(undefined, 2, undefined, 'unknown'), incr('2', 3, 4)];
    expect(checkCounters(h, finals('2')).valid).to.equal(true);
    const h2 = [incr('1', 0, 1), incr(undefined, 2, undefined, 'unknown'), incr('3', 3, 4)];
    expect(checkCounters(h2, finals('3')).valid).to.equal(true);
  });

  it('catches a duplicate increment (a resent INCR applied twice)', () => {
    const h = [incr('1', 0, 1), incr('3', 2, 3)];
    const v = checkCounters(h, finals('3'));
    expect(v.valid).to.equal(false);
    expect(v.violations.map((x) => x.why).join('\n')).to.match(/duplicate increment/);
  });

  it('catches two clients given the same count, and counts going backwards', () => {
    expect(checkCounters([incr('1', 0, 5), incr('1', 1, 6)], finals('2')).valid).to.equal(false);
    const backwards = checkCounters([incr('2', 0, 1), incr('1', 2, 3)], finals('2'));
    expect(backwards.valid).to.equal(false);
    expect(backwards.violations[0]!.why).to.match(/after INCR/);
  });

  it('catches a lost increment at the end', () => {
    const v = checkCounters([incr('1', 0, 1), incr('2', 2, 3)], finals('1'));
    expect(v.valid).to.equal(false);
    expect(v.violations[0]!.why).to.match(/lost increment/);
  });
});
