import { expect } from 'chai';
import { contextKey, ReadOnly } from './read-only.js';

const ctx = (n: number) => new Uint8Array([n]);

describe('ReadOnly', () => {
  it('confirms a request and every earlier one, in order', () => {
    const ro = new ReadOnly(10);
    expect(ro.add(5, { from: 'a', context: ctx(1) })).to.equal(true);
    expect(ro.add(6, { from: 'b', context: ctx(2) })).to.equal(true);
    expect(ro.add(7, { from: 'a', context: ctx(3) })).to.equal(true);
    expect(ro.recvAck('x', ctx(2))!.size).to.equal(1);
    expect(ro.recvAck('y', ctx(9))).to.equal(null);
    const done = ro.advance(ctx(2));
    expect(done.map((d) => [d.index, d.request.from])).to.deep.equal([
      [5, 'a'],
      [6, 'b'],
    ]);
    expect(ro.size).to.equal(1);
    expect(ro.lastPendingContext()).to.deep.equal(ctx(3));
  });

  it('is bounded and refuses duplicate contexts', () => {
    const ro = new ReadOnly(2);
    expect(ro.add(1, { from: 'a', context: ctx(1) })).to.equal(true);
    expect(ro.add(1, { from: 'a', context: ctx(1) })).to.equal(false);
    expect(ro.add(1, { from: 'a', context: ctx(2) })).to.equal(true);
    expect(ro.add(1, { from: 'a', context: ctx(3) })).to.equal(false);
    ro.reset();
    expect(ro.size).to.equal(0);
    expect(ro.advance(ctx(1))).to.deep.equal([]);
  });

  it('context keys are injective hex', () => {
    expect(contextKey(new Uint8Array([0, 255, 16]))).to.equal('00ff10');
    expect(contextKey(new Uint8Array([1, 2]))).to.not.equal(contextKey(new Uint8Array([0x12])));
  });
});
