import { expect } from 'chai';
import fc from 'fast-check';
import { ArgCursor, CommandError, parseInt64, parseSafeInteger } from './args.js';

/** The naive model of Redis's string2ll: the canonical decimal form of an int64. */
function naiveInt64(text: string): bigint | null {
  if (!/^-?(0|[1-9][0-9]*)$/.test(text) || text === '-0') return null;
  const v = BigInt(text);
  return v >= -(2n ** 63n) && v <= 2n ** 63n - 1n ? v : null;
}

describe('args', () => {
  describe('parseInt64', () => {
    it('accepts canonical integers across int64', () => {
      for (const [text, v] of [
        ['0', 0n],
        ['-1', -1n],
        ['42', 42n],
        ['9223372036854775807', 2n ** 63n - 1n],
        ['-9223372036854775808', -(2n ** 63n)],
        ['123456789012345', 123456789012345n],
        ['1234567890123456', 1234567890123456n],
      ] as const) {
        expect(parseInt64(Buffer.from(text)), text).to.equal(v);
      }
    });

    it('rejects what Redis rejects', () => {
      for (const text of [
        '',
        '-',
        '+1',
        ' 1',
        '1 ',
        '01',
        '-0',
        '00',
        '1.5',
        '1e3',
        '9223372036854775808',
        '-9223372036854775809',
        'abc',
        '0x10',
        '١',
      ]) {
        expect(parseInt64(Buffer.from(text)), JSON.stringify(text)).to.equal(null);
      }
    });

    it('agrees with the naive model on random strings', () => {
      const digits = fc.stringMatching(/^-?[0-9]{0,21}$/);
      fc.assert(
        fc.property(fc.oneof(digits, fc.string({ maxLength: 22 }), fc.bigInt().map(String)), (text) => {
          expect(parseInt64(Buffer.from(text))).to.equal(naiveInt64(text));
        }),
        { numRuns: 2000 },
      );
    });

    it('parseSafeInteger refuses int64 values outside the safe range', () => {
      expect(parseSafeInteger(Buffer.from('9007199254740991'))).to.equal(Number.MAX_SAFE_INTEGER);
      expect(parseSafeInteger(Buffer.from('9007199254740992'))).to.equal(null);
    });
  });

  describe('ArgCursor', () => {
    const cursor = (...words: string[]) => new ArgCursor(words.map((w) => Buffer.from(w)));

    it('walks required, optional and keyword arguments', () => {
      const c = cursor('set', 'k', 'v', 'ex', '10');
      expect(c.remaining).to.equal(4);
      expect(c.required().toString()).to.equal('k');
      expect(c.requiredString()).to.equal('v');
      expect(c.peekKeyword()).to.equal('EX');
      expect(c.keyword()).to.equal('EX');
      expect(c.integer()).to.equal(10);
      expect(c.optional()).to.equal(undefined);
      expect(() => c.end()).not.to.throw();
    });

    it('raises Redis errors as CommandError replies', () => {
      const missing = cursor('get');
      expect(() => missing.required()).to.throw(CommandError, 'ERR syntax error');
      const notInt = cursor('incrby', 'k', 'x');
      notInt.required();
      try {
        notInt.int64();
        expect.fail('int64 accepted x');
      } catch (e) {
        expect(e).to.be.instanceOf(CommandError);
        expect((e as CommandError).reply).to.deep.equal({
          kind: 'error',
          message: 'ERR value is not an integer or out of range',
        });
      }
      const extra = cursor('x', 'a');
      expect(() => extra.end()).to.throw(CommandError, 'ERR syntax error');
    });

    it('rest takes every remaining argument', () => {
      const c = cursor('del', 'a', 'b', 'c');
      c.required();
      expect(c.rest().map(String)).to.deep.equal(['b', 'c']);
      expect(c.hasMore()).to.equal(false);
    });
  });
});
