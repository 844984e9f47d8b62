import { expect } from 'chai';
import {
  INVALID_LINE,
  eviction,
  exclusiveMiss,
  flush,
  isHit,
  leaseExpiry,
  localWrite,
  remoteRead,
  remoteUpdate,
  remoteWrite,
  sharedMiss,
  type Grant,
  type Line,
} from './near-cache.js';

const v = (s: string): Buffer => Buffer.from(s);

function grant(value: string | null, asOf: number, leaseUntil = 1_000, expiresAt = Infinity): Grant {
  return { value: value === null ? null : v(value), asOf, version: asOf, leaseUntil, expiresAt, regId: 7 };
}

function line(state: Line['state'], value: string, asOf: number, leaseUntil = 1_000): Line {
  return { state, value: v(value), asOf, version: asOf, leaseUntil, expiresAt: Infinity, regId: 7 };
}

describe('MESI near-cache line transitions', () => {
  it('I->E on an exclusive miss', () => {
    const l = exclusiveMiss(INVALID_LINE, grant('a', 5));
    expect(l.state).to.equal('E');
    expect(l.value?.toString()).to.equal('a');
    expect(isHit(l, 999)).to.equal(true);
  });

  it('I->S on a shared miss', () => {
    const l = sharedMiss(INVALID_LINE, grant('a', 5));
    expect(l.state).to.equal('S');
    expect(l.asOf).to.equal(5);
  });

  it('I->E on an exclusive miss of an absent key caches the absence', () => {
    const l = exclusiveMiss(INVALID_LINE, grant(null, 9));
    expect(l.state).to.equal('E');
    expect(l.value).to.equal(null);
    expect(isHit(l, 0)).to.equal(true);
  });

  it('a miss never replaces a line with an older fill', () => {
    const held = line('S', 'new', 10);
    expect(sharedMiss(held, grant('old', 4))).to.equal(held);
    expect(exclusiveMiss(held, grant('old', 4))).to.equal(held);
  });

  it('E->M on a silent local write', () => {
    const l = localWrite(line('E', 'a', 5), grant('b', 6));
    expect(l.state).to.equal('M');
    expect(l.value?.toString()).to.equal('b');
  });

  it('S->M on a local write after the invalidation round', () => {
    expect(localWrite(line('S', 'a', 5), grant('b', 6)).state).to.equal('M');
  });

  it('I->M on a write miss', () => {
    expect(localWrite(INVALID_LINE, grant('b', 6)).state).to.equal('M');
  });

  it('I->S on a local write under the update policy with other holders', () => {
    expect(localWrite(INVALID_LINE, grant('b', 6), true).state).to.equal('S');
  });

  it('M->S on a remote read', () => {
    const l = remoteRead(line('M', 'a', 5));
    expect(l.state).to.equal('S');
    expect(l.value?.toString()).to.equal('a');
  });

  it('E->S on a remote read', () => {
    expect(remoteRead(line('E', 'a', 5)).state).to.equal('S');
  });

  it('S->S on a remote read', () => {
    const held = line('S', 'a', 5);
    expect(remoteRead(held)).to.equal(held);
  });

  it('S->I on a remote write', () => {
    expect(remoteWrite(line('S', 'a', 5), 6).state).to.equal('I');
  });

  it('M->I on a remote write', () => {
    expect(remoteWrite(line('M', 'a', 5), 6).state).to.equal('I');
  });

  it('E->I on a remote write', () => {
    expect(remoteWrite(line('E', 'a', 5), 6).state).to.equal('I');
  });

  it('S->S on a remote write the line already reflects (a late invalidation)', () => {
    const held = line('S', 'a', 8);
    expect(remoteWrite(held, 6)).to.equal(held);
  });

  it('S->S update on remote write under the update policy', () => {
    const l = remoteUpdate(line('S', 'a', 5, 700), v('b'), 6);
    expect(l.state).to.equal('S');
    expect(l.value?.toString()).to.equal('b');
    expect(l.asOf).to.equal(6);
    // The update renews nothing: the lease is the one granted at the fetch.
    expect(l.leaseUntil).to.equal(700);
  });

  it('I->I on a remote update (no lease to serve it under)', () => {
    expect(remoteUpdate(INVALID_LINE, v('b'), 6).state).to.equal('I');
  });

  it('any->I on lease expiry', () => {
    for (const state of ['M', 'E', 'S'] as const) {
      const held = line(state, 'a', 5, 100);
      expect(leaseExpiry(held, 99)).to.equal(held);
      expect(isHit(held, 100)).to.equal(false);
      expect(leaseExpiry(held, 100).state).to.equal('I');
    }
  });

  it('any->I on value expiry (PX) before the lease ends', () => {
    const held: Line = { ...line('E', 'a', 5, 1_000), expiresAt: 50 };
    expect(isHit(held, 49)).to.equal(true);
    expect(leaseExpiry(held, 50).state).to.equal('I');
  });

  it('any->I on eviction', () => {
    for (const state of ['M', 'E', 'S'] as const) expect(eviction(line(state, 'a', 5)).state).to.equal('I');
  });

  it('any->I on a flush by a new leader', () => {
    for (const state of ['M', 'E', 'S'] as const) expect(flush(line(state, 'a', 5)).state).to.equal('I');
  });
});
