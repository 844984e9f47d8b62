import { expect } from 'chai';
import fc from 'fast-check';
import { operationArb } from './arbitraries.js';
import { CodecError, decodeOperation, decodeResult, encodeOperation, encodeResult } from './codec.js';
import type { Operation, Result, ResultTree } from './state-machine.js';

describe('operation codec', () => {
  it('round-trips every operation', () => {
    fc.assert(
      fc.property(operationArb, (op) => {
        expect(decodeOperation(encodeOperation(op))).to.deep.equal(op);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps its wire format: these bytes must decode forever (tags are never renumbered)', () => {
    const op: Operation = {
      type: 'keys.set',
      key: Buffer.from('k'),
      value: Buffer.from('v'),
      condition: 'nx',
      expire: 'ttl',
      expireMs: 1500,
      get: true,
    };
    // version 1, tag 1, key "k", value "v", nx=1, ttl=1, 1500.0 as float64, get=1
    const golden = [
      '01',
      '0001',
      '00000001',
      '6b',
      '00000001',
      '76',
      '01',
      '01',
      '4097700000000000',
      '01',
    ].join('');
    expect(encodeOperation(op).toString('hex')).to.equal(golden);
    expect(decodeOperation(Buffer.from(golden, 'hex'))).to.deep.equal(op);
    expect(encodeOperation({ type: 'keys.flushall' }).toString('hex')).to.equal('010005');
    expect(encodeOperation({ type: 'keys.del', keys: [Buffer.from('a')] }).toString('hex')).to.equal(
      '010002000000010000000161',
    );
    expect(
      encodeOperation({ type: 'keys.incrby', key: Buffer.from('a'), delta: -1n }).toString('hex'),
    ).to.equal('01000300000001' + '61' + 'ffffffffffffffff');
  });

  it('rejects corrupt bytes with CodecError, never a wrong operation', () => {
    const bytes = encodeOperation({ type: 'keys.mset', pairs: [[Buffer.from('a'), Buffer.from('1')]] });
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodeOperation(bytes.subarray(0, n)), `prefix ${n}`).to.throw(CodecError);
    }
    expect(() => decodeOperation(Buffer.concat([bytes, Buffer.from([0])]))).to.throw(CodecError, /trailing/);
    expect(() => decodeOperation(Buffer.from('020005', 'hex'))).to.throw(CodecError, /version/);
    expect(() => decodeOperation(Buffer.from('01ffff', 'hex'))).to.throw(CodecError, /tag/);
    expect(() => decodeOperation(Buffer.from('010002ffffffff', 'hex'))).to.throw(CodecError, /count/);
  });

  it('decodes random bytes either to an operation that re-encodes identically or to CodecError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (raw) => {
        const bytes = Buffer.from(raw);
        let op: Operation;
        try {
          op = decodeOperation(bytes);
        } catch (e) {
          expect(e).to.be.instanceOf(CodecError);
          return;
        }
        expect(encodeOperation(op).equals(bytes)).to.equal(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('result codec', () => {
  const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
  const resultArb: fc.Arbitrary<Result> = fc.oneof(
    fc.constant<Result>({ type: 'ok' }),
    fc.double({ noNaN: true }).map((value): Result => ({ type: 'integer', value })),
    fc
      .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
      .map((value): Result => ({ type: 'integer', value })),
    fc
      .record({ written: fc.boolean(), previous: fc.option(bytes, { nil: null }) })
      .map((r): Result => ({ type: 'set', ...r })),
    fc.option(bytes, { nil: null }).map((value): Result => ({ type: 'value', value })),
    fc.string().map((message): Result => ({ type: 'error', message })),
    fc.constant<Result>({ type: 'blocked' }),
    fc
      .letrec<{ tree: ResultTree }>((tie) => ({
        tree: fc.oneof(
          { depthSize: 'small' },
          fc.constant(null),
          fc.boolean(),
          fc.double({ noNaN: true }),
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          fc.string(),
          bytes,
          fc.array(tie('tree'), { maxLength: 4 }),
        ),
      }))
      .tree.map((value): Result => ({ type: 'tree', value })),
  );

  it('round-trips every result, numbers and bigints kept apart', () => {
    fc.assert(
      fc.property(resultArb, (result) => {
        expect(decodeResult(encodeResult(result))).to.deep.equal(result);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps its wire format', () => {
    expect(encodeResult({ type: 'ok' }).toString('hex')).to.equal('0101');
    expect(encodeResult({ type: 'value', value: null }).toString('hex')).to.equal('010400');
    expect(decodeResult(Buffer.from('0103010000000001', 'hex').subarray(0, 4))).to.deep.equal({
      type: 'set',
      written: true,
      previous: null,
    });
  });

  it('rejects unknown versions, unknown kinds, truncation and trailing bytes', () => {
    expect(() => decodeResult(Buffer.from('0201', 'hex'))).to.throw(CodecError, /version/);
    expect(() => decodeResult(Buffer.from('0199', 'hex'))).to.throw(CodecError, /kind/);
    expect(() => decodeResult(Buffer.from('010201', 'hex'))).to.throw(CodecError, /truncated/);
    expect(() => decodeResult(Buffer.from('010100', 'hex'))).to.throw(CodecError, /trailing/);
  });
});
