import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, decodeOperation, encodeOperation } from '../codec.js';
import type { Operation } from '../state-machine.js';
import { anyOperationArb, lockOperationArb } from './arbitraries.js';

describe('operation codec: lock operations', () => {
  it('round-trips every lock operation, and fenced wrappers of any operation', () => {
    fc.assert(
      fc.property(anyOperationArb, (op) => {
        expect(decodeOperation(encodeOperation(op))).to.deep.equal(op);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects every truncation of a lock operation with CodecError', () => {
    fc.assert(
      fc.property(lockOperationArb, (op) => {
        const bytes = encodeOperation(op);
        for (let n = 0; n < bytes.length; n++)
          expect(() => decodeOperation(bytes.subarray(0, n))).to.throw(CodecError);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps its wire format (tags 200-205 are permanent)', () => {
    const acquire: Operation = {
      type: 'lock.acquire',
      name: Buffer.from('x'),
      owner: Buffer.from('a'),
      mode: 'exclusive',
      ttlMs: 1500,
      waitMs: 0,
      waiterId: '',
    };
    expect(encodeOperation(acquire).toString('hex')).to.equal(
      '01' +
        '00c8' +
        '00000001' +
        '78' +
        '00000001' +
        '61' +
        '01' +
        '4097700000000000' +
        '0000000000000000' +
        '00000000',
    );
    const release: Operation = { type: 'lock.release', name: Buffer.from('x'), owner: Buffer.from('a') };
    expect(encodeOperation(release).toString('hex')).to.equal(
      '0100c9' + '00000001' + '78' + '00000001' + '61',
    );
    const fencedTick: Operation = {
      type: 'lock.fenced',
      name: Buffer.from('x'),
      token: 2,
      op: { type: 'sys.tick' },
    };
    expect(encodeOperation(fencedTick).toString('hex')).to.equal(
      '0100cd' + '00000001' + '78' + '4000000000000000' + '00000003' + '010064',
    );
  });

  it('refuses a fenced operation nested in another', () => {
    const inner: Operation = {
      type: 'lock.fenced',
      name: Buffer.from('x'),
      token: 1,
      op: { type: 'sys.tick' },
    };
    const outer = encodeOperation({ type: 'lock.fenced', name: Buffer.from('y'), token: 1, op: inner });
    expect(() => decodeOperation(outer)).to.throw(CodecError, /fenced again/);
  });
});
