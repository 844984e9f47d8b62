import { expect } from 'chai';
import fc from 'fast-check';
import {
  ARG_OVERHEAD_BYTES,
  DEFAULT_PROTO_MAX_BULK_LEN,
  INLINE_MAX_BYTES,
  RequestDecoder,
  parseRedisInteger,
  splitInlineArgs,
} from './decode.js';

interface Outcome {
  requests: string[][];
  error: string | null;
}

function makeDecoder(authRequired = false, protoMaxBulkLen = DEFAULT_PROTO_MAX_BULK_LEN): RequestDecoder {
  return new RequestDecoder({ authRequired, protoMaxBulkLen });
}

function drain(decoder: RequestDecoder, into: Outcome): void {
  for (let argv = decoder.next(); argv !== null; argv = decoder.next()) {
    into.requests.push(argv.map((a) => a.toString('latin1')));
  }
  if (decoder.error) into.error = decoder.error.message;
}

/** Feeds the input in the given pieces, decoding after each. */
function decodeIn(pieces: Buffer[], authRequired = false, protoMaxBulkLen?: number): Outcome {
  const decoder = makeDecoder(authRequired, protoMaxBulkLen);
  const outcome: Outcome = { requests: [], error: null };
  for (const piece of pieces) {
    decoder.feed(piece);
    drain(decoder, outcome);
  }
  return outcome;
}

function whole(input: string | Buffer, authRequired = false, protoMaxBulkLen?: number): Outcome {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  return decodeIn([bytes], authRequired, protoMaxBulkLen);
}

function byteByByte(input: string | Buffer, authRequired = false, protoMaxBulkLen?: number): Outcome {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const pieces: Buffer[] = [];
  // Copies, so a view cannot accidentally see a neighbouring byte.
  for (let i = 0; i < bytes.length; i++) pieces.push(Buffer.from([bytes[i]!]));
  return decodeIn(pieces, authRequired, protoMaxBulkLen);
}

/** Asserts the same outcome whole and byte by byte. */
function expectDecodes(
  input: string | Buffer,
  expected: Outcome,
  authRequired = false,
  protoMaxBulkLen?: number,
): void {
  expect(whole(input, authRequired, protoMaxBulkLen), 'whole').to.deep.equal(expected);
  expect(byteByByte(input, authRequired, protoMaxBulkLen), 'byte by byte').to.deep.equal(expected);
}

function multibulk(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg, 'latin1') : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

describe('resp/decode', () => {
  describe('multibulk requests', () => {
    it('decodes one request', () => {
      expectDecodes('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n', {
        requests: [['SET', 'k', 'value']],
        error: null,
      });
    });

    it('keeps arguments binary-safe (CR, LF, NUL, high bytes inside a bulk)', () => {
      const payload = Buffer.from([0, 13, 10, 255, 36, 42, 13]);
      const input = multibulk('SET', 'k', payload);
      for (const outcome of [whole(input), byteByByte(input)]) {
        expect(outcome.error).to.equal(null);
        expect(Buffer.from(outcome.requests[0]![2]!, 'latin1').equals(payload)).to.equal(true);
      }
    });

    it('decodes many pipelined requests from one chunk, in order', () => {
      const input = Buffer.concat([multibulk('PING'), multibulk('GET', 'a'), multibulk('ECHO', '')]);
      expectDecodes(input, { requests: [['PING'], ['GET', 'a'], ['ECHO', '']], error: null });
    });

    it('skips empty and negative multibulks as Redis does', () => {
      expectDecodes('*0\r\n*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n', { requests: [['PING']], error: null });
    });

    it('accepts a zero-length bulk', () => {
      expectDecodes('*2\r\n$4\r\nECHO\r\n$0\r\n\r\n', { requests: [['ECHO', '']], error: null });
    });

    it('waits for the rest of a request without producing it early', () => {
      const decoder = makeDecoder();
      decoder.feed(Buffer.from('*2\r\n$4\r\nECHO\r\n$3\r\nab'));
      expect(decoder.next()).to.equal(null);
      expect(decoder.error).to.equal(null);
      expect(decoder.midRequest()).to.equal(true);
      decoder.feed(Buffer.from('c\r\n'));
      expect(decoder.next()!.map(String)).to.deep.equal(['ECHO', 'abc']);
      expect(decoder.next()).to.equal(null);
      expect(decoder.bufferedBytes()).to.equal(0);
    });

    it('allocates nothing for a huge multibulk count until arguments arrive', () => {
      const decoder = makeDecoder();
      const before = process.memoryUsage().arrayBuffers;
      decoder.feed(Buffer.from('*2000000000\r\n$4\r\nPING\r\n'));
      expect(decoder.next()).to.equal(null);
      expect(decoder.error).to.equal(null);
      const grown = process.memoryUsage().arrayBuffers - before;
      expect(grown).to.be.below(1024 * 1024);
    });

    it('does not allocate a declared bulk length before the bytes come', () => {
      const decoder = makeDecoder();
      decoder.feed(Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nabc'));
      expect(decoder.next()).to.equal(null);
      expect(decoder.error).to.equal(null);
      expect(decoder.bufferedBytes()).to.equal(3);
    });

    it('counts the arguments of a request in progress in heldBytes, and releases them', () => {
      const decoder = makeDecoder();
      decoder.feed(Buffer.from('*2000000000\r\n' + '$1\r\nx\r\n'.repeat(1000)));
      expect(decoder.next()).to.equal(null);
      expect(decoder.bufferedBytes()).to.equal(0);
      expect(decoder.heldBytes()).to.equal(1000 * (1 + ARG_OVERHEAD_BYTES));
      decoder.feed(Buffer.from('*x\r\n'));
      decoder.next();
      const other = makeDecoder();
      other.feed(Buffer.from('*2\r\n$1\r\na\r\n$1\r\nb\r\n'));
      expect(other.next()!.map(String)).to.deep.equal(['a', 'b']);
      expect(other.heldBytes()).to.equal(0);
    });

    it('assembles a large bulk from many chunks without re-copying each time', () => {
      const payload = Buffer.alloc(1024 * 1024, 7);
      const input = multibulk('SET', 'k', payload);
      const pieces: Buffer[] = [];
      for (let i = 0; i < input.length; i += 1000) pieces.push(input.subarray(i, i + 1000));
      const started = process.hrtime.bigint();
      const outcome = decodeIn(pieces);
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      expect(outcome.error).to.equal(null);
      expect(outcome.requests[0]![2]!.length).to.equal(payload.length);
      // Quadratic copying (1049 chunks x up to 1 MB) would take seconds.
      expect(elapsedMs).to.be.below(2000);
    });
  });

  describe('inline requests', () => {
    it('splits on spaces and accepts LF or CRLF endings', () => {
      expectDecodes('PING\r\nSET  k   v\nGET\tk\r\n', {
        requests: [['PING'], ['SET', 'k', 'v'], ['GET', 'k']],
        error: null,
      });
    });

    it('ignores empty lines', () => {
      expectDecodes('\r\n\n   \r\nPING\r\n', { requests: [['PING']], error: null });
    });

    it('applies double-quote escapes \\n \\r \\t \\b \\a \\xHH and \\"', () => {
      expectDecodes('SET k "a b\\n\\r\\t\\b\\a\\x41\\x7a\\"q\\\\"\r\n', {
        requests: [['SET', 'k', 'a b\n\r\t\b\x07Az"q\\']],
        error: null,
      });
    });

    it("takes single quotes literally except \\'", () => {
      expectDecodes("SET k 'a \\n \\'b'\r\n", { requests: [['SET', 'k', "a \\n 'b"]], error: null });
    });

    it('joins a quote in the middle of a word, as sdssplitargs does', () => {
      expectDecodes('ECHO ab"c d"\r\n', { requests: [['ECHO', 'abc d']], error: null });
    });

    it('accepts empty quoted arguments', () => {
      expectDecodes('ECHO "" \'\'\r\n', { requests: [['ECHO', '', '']], error: null });
    });

    it('rejects unbalanced quotes, and a closing quote followed by a letter', () => {
      const error = 'ERR Protocol error: unbalanced quotes in request';
      expectDecodes('PING\r\nECHO "abc\r\nPING\r\n', { requests: [['PING']], error });
      expectDecodes("ECHO 'abc\r\n", { requests: [], error });
      expectDecodes('ECHO "a"b\r\n', { requests: [], error });
    });

    it('rejects a line longer than 64 KB without a newline', () => {
      const input = 'A'.repeat(INLINE_MAX_BYTES + 1);
      expect(whole(input)).to.deep.equal({
        requests: [],
        error: 'ERR Protocol error: too big inline request',
      });
    });

    it('accepts a long line that does end within the limit', () => {
      const long = 'x'.repeat(INLINE_MAX_BYTES - 10);
      expect(whole(`ECHO ${long}\r\n`).requests).to.deep.equal([['ECHO', long]]);
    });

    it('mixes inline and multibulk requests in one stream', () => {
      expectDecodes('PING\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n', {
        requests: [['PING'], ['PING'], ['ECHO', 'x']],
        error: null,
      });
    });
  });

  describe('framing errors (Redis texts)', () => {
    const cases: [string, string, string[][]][] = [
      ['*abc\r\n', 'ERR Protocol error: invalid multibulk length', []],
      ['*\r\n', 'ERR Protocol error: invalid multibulk length', []],
      ['*3000000000\r\n', 'ERR Protocol error: invalid multibulk length', []],
      ['*01\r\n', 'ERR Protocol error: invalid multibulk length', []],
      ['*-0\r\n', 'ERR Protocol error: invalid multibulk length', []],
      ['*99999999999999999999\r\n', 'ERR Protocol error: invalid multibulk length', []],
      ['*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n', "ERR Protocol error: expected '$', got 'f'", []],
      ['*1\r\n$-10\r\n', 'ERR Protocol error: invalid bulk length', []],
      ['*1\r\n$x\r\n', 'ERR Protocol error: invalid bulk length', []],
      ['*1\r\n$536870913\r\n', 'ERR Protocol error: invalid bulk length', []],
      ['*1\r\n$9223372036854775808\r\n', 'ERR Protocol error: invalid bulk length', []],
      ['*1\r\n$4\r\nPING\r\n*1\r\n:1\r\n', "ERR Protocol error: expected '$', got ':'", [['PING']]],
    ];
    for (const [input, message, before] of cases) {
      it(`${JSON.stringify(input)} -> ${message}`, () => {
        expectDecodes(input, { requests: before, error: message });
      });
    }

    it('rejects a `*` line longer than 64 KB without CR', () => {
      expect(whole('*' + '1'.repeat(INLINE_MAX_BYTES + 1)).error).to.equal(
        'ERR Protocol error: too big mbulk count string',
      );
    });

    it('rejects a `$` line longer than 64 KB without CR', () => {
      expect(whole('*1\r\n$' + '1'.repeat(INLINE_MAX_BYTES + 1)).error).to.equal(
        'ERR Protocol error: too big bulk count string',
      );
    });

    it('applies proto-max-bulk-len', () => {
      expect(whole('*1\r\n$11\r\n', false, 10).error).to.equal('ERR Protocol error: invalid bulk length');
      expect(whole('*1\r\n$10\r\n0123456789\r\n', false, 10).requests).to.deep.equal([['0123456789']]);
    });

    it('limits an unauthenticated client to 10 arguments of 16384 bytes', () => {
      expectDecodes(
        '*11\r\n',
        { requests: [], error: 'ERR Protocol error: unauthenticated multibulk length' },
        true,
      );
      expectDecodes(
        '*1\r\n$16385\r\n',
        { requests: [], error: 'ERR Protocol error: unauthenticated bulk length' },
        true,
      );
      const ten = multibulk(...Array.from({ length: 10 }, () => 'x'.repeat(16384)));
      expect(whole(ten, true).requests).to.have.length(1);
      // Without a password to give, the same request is fine.
      expect(whole('*11\r\n', false).error).to.equal(null);
    });

    it('stops for good after an error', () => {
      const decoder = makeDecoder();
      decoder.feed(Buffer.from('*x\r\n'));
      expect(decoder.next()).to.equal(null);
      expect(decoder.error?.code).to.equal('invalid-mbulk-length');
      decoder.feed(Buffer.from('PING\r\n'));
      expect(decoder.next()).to.equal(null);
      expect(decoder.bufferedBytes()).to.equal(0);
    });
  });

  describe('parseRedisInteger (string2ll)', () => {
    const parse = (s: string): number => parseRedisInteger(Buffer.from(s), 0, s.length);
    it('accepts canonical integers', () => {
      expect(parse('0')).to.equal(0);
      expect(parse('-1')).to.equal(-1);
      expect(parse('1234567')).to.equal(1234567);
      expect(parse('9223372036854775807')).to.be.above(9e18);
    });
    it('rejects what string2ll rejects', () => {
      for (const bad of [
        '',
        '-',
        '+1',
        '01',
        '-0',
        ' 1',
        '1 ',
        '1a',
        '9223372036854775808',
        '123456789012345678901',
      ]) {
        expect(parse(bad), bad).to.be.NaN;
      }
    });
  });

  describe('splitInlineArgs', () => {
    it('returns views for plain words and stops at NUL like the C code', () => {
      const args = splitInlineArgs(Buffer.from('a bb\0 ccc'))!;
      expect(args.map(String)).to.deep.equal(['a', 'bb']);
    });
    it('keeps vertical tab inside a word but skips it between words', () => {
      expect(splitInlineArgs(Buffer.from('\va\vb c'))!.map(String)).to.deep.equal(['a\vb', 'c']);
    });
  });

  describe('property: any split of any pipeline decodes the same', () => {
    const arg = fc.uint8Array({ minLength: 0, maxLength: 40 }).map((a) => Buffer.from(a));
    const request = fc.array(arg, { minLength: 1, maxLength: 6 });
    it('multibulk pipelines, cut at random points', () => {
      fc.assert(
        fc.property(
          fc.array(request, { minLength: 1, maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 12 }),
          (requests, cuts) => {
            const input = Buffer.concat(requests.map((r) => multibulk(...r)));
            const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
            const pieces: Buffer[] = [];
            let last = 0;
            for (const point of points) {
              pieces.push(input.subarray(last, point));
              last = point;
            }
            pieces.push(input.subarray(last));
            const outcome = decodeIn(pieces);
            expect(outcome.error).to.equal(null);
            expect(outcome.requests).to.deep.equal(requests.map((r) => r.map((a) => a.toString('latin1'))));
          },
        ),
        { numRuns: 300 },
      );
    });

    it('inline lines of plain words decode whole and byte by byte alike', () => {
      const word = fc.stringMatching(/^[a-zA-Z0-9_:.-]{1,12}$/);
      fc.assert(
        fc.property(
          fc.array(fc.array(word, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 5 }),
          (lines) => {
            const input = lines.map((words) => words.join(' ') + '\r\n').join('');
            const expected = { requests: lines, error: null };
            expect(whole(input)).to.deep.equal(expected);
            expect(byteByByte(input)).to.deep.equal(expected);
          },
        ),
        { numRuns: 200 },
      );
    });
  });
});
