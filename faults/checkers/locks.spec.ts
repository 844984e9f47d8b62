/**
 * The lock checker on hand-made histories: it must accept correct runs (hand-offs by release
 * and by lease expiry, a zombie holder refused by fencing, refusals an unknown grant explains,
 * lease breaches inside a clock nemesis's window) and catch each kind of violation (overlapping
 * holders, a hold proven live inside another's, a lease lost early, tokens out of grant order or
 * duplicated, a renewal with another token, a stale token accepted, fenced writes out of token
 * order, a refusal nothing explains, a superseded token accepted at the end, a refused write
 * that became visible).
 */
import { expect } from 'chai';
import type { Outcome } from '../history.js';
import { checkLinearizable } from './linearizable.js';
import { checkLocks, dataHistory, type LockOp } from './locks.js';

let nextId = 0;
function op(
  fields: Partial<LockOp> & Pick<LockOp, 'kind'>,
  invokeMs: number,
  completeMs: number | undefined,
  result: Outcome = 'ok',
): LockOp {
  return {
    id: nextId++,
    process: 0,
    node: 'n1',
    lock: 'L',
    owner: 'a',
    result,
    invokeMs,
    ...(completeMs !== undefined ? { completeMs } : {}),
    ...fields,
  };
}
const acquire = (
  owner: string,
  token: number | null,
  a: number,
  b: number | undefined,
  ttlMs = 1_000,
  result: Outcome = 'ok',
): LockOp =>
  op(
    { kind: 'acquire', owner, ttlMs, waitMs: 300, ...(result === 'ok' ? { output: token } : {}) },
    a,
    b,
    result,
  );
const renew = (
  g: LockOp,
  output: number | 'LOCKLOST' | undefined,
  a: number,
  b: number | undefined,
  result: Outcome = 'ok',
): LockOp =>
  op(
    {
      kind: 'renew',
      owner: g.owner,
      hold: g.id,
      ttlMs: g.ttlMs!,
      ...(output !== undefined ? { output } : {}),
    },
    a,
    b,
    result,
  );
const release = (
  g: LockOp,
  output: 0 | 1 | undefined,
  a: number,
  b: number | undefined,
  result: Outcome = 'ok',
): LockOp =>
  op(
    { kind: 'release', owner: g.owner, hold: g.id, ...(output !== undefined ? { output } : {}) },
    a,
    b,
    result,
  );
const fencedSet = (
  g: LockOp,
  token: number,
  value: string,
  a: number,
  b: number | undefined,
  result: Outcome = 'ok',
): LockOp =>
  op(
    {
      kind: 'fenced-set',
      owner: g.owner,
      hold: g.id,
      token,
      key: 'data',
      value,
      ...(result === 'ok' ? { output: 'OK' } : {}),
      ...(result === 'fail'
        ? { error: `FENCED token ${token} is older than lock 'L' current token 99` }
        : {}),
    },
    a,
    b,
    result,
  );
const read = (value: string | null, a: number, b: number): LockOp =>
  op({ kind: 'read', owner: 'reader', key: 'data', output: value }, a, b);

function kinds(history: LockOp[], options: Parameters<typeof checkLocks>[1] = {}): string[] {
  return checkLocks(history, options).violations.map((v) => v.kind);
}

describe('faults/checkers: locks (exclusion, tokens, fencing)', () => {
  it('accepts hand-offs by UNLOCK and by lease expiry, with fenced writes and renewals', () => {
    const a = acquire('a', 1, 0, 10, 1_000);
    const b = acquire('b', 2, 5, 130, 100); // waited for a's release
    const c = acquire('c', 3, 150, 160, 100); // b walked away: granted after b's lease
    const history = [
      a,
      fencedSet(a, 1, 'v1', 11, 20),
      renew(a, 1, 21, 30),
      release(a, 1, 100, 120),
      b,
      fencedSet(b, 2, 'v2', 131, 140),
      c,
      fencedSet(c, 3, 'v3', 161, 170),
      release(c, 1, 171, 180),
    ];
    const v = checkLocks(history);
    expect(v.violations).to.deep.equal([]);
    expect(v.valid).to.equal(true);
    expect(v.grants).to.equal(3);
    expect(v.fencedWrites.ok).to.equal(3);
  });

  it('accepts a zombie holder: lease run out, another granted, its late write refused and its renewal LOCKLOST', () => {
    const a = acquire('a', 1, 0, 10, 100);
    const b = acquire('b', 2, 120, 130, 1_000);
    const history = [
      a,
      fencedSet(a, 1, 'v1', 11, 20),
      b,
      fencedSet(b, 2, 'v2', 131, 140),
      fencedSet(a, 1, 'late', 150, 160, 'fail'),
      renew(a, 'LOCKLOST', 161, 170),
      release(a, 0, 171, 180),
      read('v2', 181, 185),
    ];
    const v = checkLocks(history);
    expect(v.violations).to.deep.equal([]);
    expect(v.fencedWrites.refused).to.equal(1);
    expect(v.lostLeases).to.equal(1);
    expect(checkLinearizable(dataHistory(history)).valid).to.equal(true);
  });

  it('lets a grant with an unknown outcome explain a refusal, and an unknown renewal only shorten the bound', () => {
    const a = acquire('a', 1, 0, 10, 1_000);
    const lost = acquire('x', null, 20, undefined, 1_000, 'unknown'); // may have been granted token 2
    expect(kinds([a, lost, fencedSet(a, 1, 'v', 30, 40, 'fail')])).to.deep.equal([]);
    // The grant's lease ends at 1000 or later whether an unknown renewal at 500 applied or not.
    const b = acquire('b', 5, 0, 10, 1_000);
    const unknownRenewal = renew(b, undefined, 500, undefined, 'unknown');
    expect(kinds([b, unknownRenewal, renew(b, 'LOCKLOST', 900, 950)])).to.deep.equal(['lost-early']);
    expect(kinds([b, unknownRenewal, renew(b, 'LOCKLOST', 1_100, 1_150)])).to.deep.equal([]);
    // A renewal with a shorter TTL that may have applied lowers the bound (500 + 200).
    const shorter = { ...renew(b, undefined, 500, undefined, 'unknown'), ttlMs: 200 };
    expect(kinds([b, shorter, renew(b, 'LOCKLOST', 800, 850)])).to.deep.equal([]);
  });

  it('catches two holders at once (certain intervals overlap)', () => {
    const a = acquire('a', 1, 0, 10, 1_000);
    const b = acquire('b', 2, 20, 30, 1_000);
    expect(kinds([a, b, release(a, 1, 200, 210)])).to.include('overlap');
    // Releasing before the other's grant completes is fine (the grant may apply at the release).
    expect(kinds([a, release(a, 1, 25, 35), b])).to.deep.equal([]);
  });

  it('catches a hold proven live (UNLOCK answered 1) inside another hold', () => {
    const a = acquire('a', 1, 0, 10, 30); // certainly held until 30 only
    const b = acquire('b', 2, 35, 40, 1_000);
    expect(kinds([a, b, release(a, 1, 50, 55)])).to.deep.equal(['held-inside-other']);
    expect(kinds([a, b, release(a, 0, 50, 55)])).to.deep.equal([]);
  });

  it('catches a lease lost early (LOCKLOST or UNLOCK 0 before TTL after the last renewal)', () => {
    const a = acquire('a', 1, 0, 10, 1_000);
    expect(kinds([a, renew(a, 'LOCKLOST', 20, 25)])).to.deep.equal(['lost-early']);
    expect(kinds([a, renew(a, 1, 500, 510), release(a, 0, 1_200, 1_210)])).to.deep.equal(['lost-early']);
    expect(kinds([a, renew(a, 1, 500, 510), release(a, 0, 1_600, 1_610)])).to.deep.equal([]);
  });

  it('excuses lease-bound breaches inside a clock nemesis window, but not token or fencing violations', () => {
    const a = acquire('a', 1, 0, 10, 1_000);
    const b = acquire('b', 2, 20, 30, 1_000);
    const clockWindows = [{ name: 'clock-skew', startMs: 5, endMs: 2_000 }];
    const v = checkLocks([a, b, release(a, 1, 200, 210)], { clockWindows });
    expect(v.valid).to.equal(true);
    expect(v.excused.map((x) => x.kind)).to.include('overlap');
    // A stale token accepted is a violation whatever the clocks did.
    const w = fencedSet(a, 1, 'late', 40, 50);
    expect(checkLocks([a, b, w], { clockWindows }).violations.map((x) => x.kind)).to.deep.equal([
      'fence-stale',
    ]);
  });

  it('catches tokens out of grant order, duplicated, or a renewal with another token', () => {
    const a = acquire('a', 5, 0, 10, 50);
    const b = acquire('b', 3, 100, 110, 50);
    expect(kinds([a, b])).to.deep.equal(['token-order']);
    const c = acquire('c', 5, 100, 110, 50);
    expect(kinds([a, c])).to.include('token-duplicate');
    expect(kinds([a, renew(a, 6, 20, 25)])).to.deep.equal(['renew-token']);
  });

  it('catches a stale token accepted by a fenced write', () => {
    const a = acquire('a', 1, 0, 10, 100);
    const b = acquire('b', 2, 120, 130, 1_000);
    expect(kinds([a, b, fencedSet(a, 1, 'late', 140, 150)])).to.deep.equal(['fence-stale']);
    // Concurrent with the grant: the write may have applied first.
    expect(kinds([a, b, fencedSet(a, 1, 'late', 125, 150)])).to.deep.equal([]);
  });

  it('catches fenced writes applied out of token order', () => {
    const a = acquire('a', 1, 0, 10, 100);
    const b = acquire('b', 2, 5, 115, 100); // granted at a's expiry
    // b's write completes before a's late write is invoked, and a's is accepted: out of order.
    const history = [a, b, fencedSet(b, 2, 'v2', 116, 120), fencedSet(a, 1, 'late', 121, 130)];
    expect(kinds(history)).to.include('fence-order');
  });

  it('catches a refusal that no newer grant explains', () => {
    const a = acquire('a', 1, 0, 10, 1_000);
    expect(kinds([a, fencedSet(a, 1, 'v', 20, 30, 'fail')])).to.deep.equal(['fence-refused']);
  });

  it('catches a superseded token accepted at the end (a lost grant)', () => {
    const probes = [{ lock: 'L', newest: 7, token: 6, node: 'n2', reply: 'OK' }];
    expect(kinds([], { probes })).to.deep.equal(['final-fence']);
    const fine = checkLocks([], {
      probes: [
        { ...probes[0]!, reply: 'FENCED' },
        { ...probes[0]!, reply: 'timeout' },
      ],
    });
    expect(fine.valid).to.equal(true);
    expect(fine.probes).to.deep.equal({ sent: 2, refused: 1, unanswered: 1 });
  });

  it('the data keys: a refused fenced write must never be read', () => {
    const a = acquire('a', 1, 0, 10, 100);
    const history = [
      a,
      fencedSet(a, 1, 'v1', 11, 20),
      fencedSet(a, 1, 'refused', 21, 30, 'fail'),
      read('refused', 40, 45),
    ];
    expect(checkLinearizable(dataHistory(history)).valid).to.equal(false);
    expect(checkLinearizable(dataHistory([...history.slice(0, 3), read('v1', 40, 45)])).valid).to.equal(true);
  });
});
