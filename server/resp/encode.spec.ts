import { expect } from 'chai';
import type { Protocol } from '../../commands/context.js';
import {
  NIL,
  NIL_ARRAY,
  OK,
  PONG,
  array,
  bulk,
  error,
  integer,
  map,
  simple,
  verbatim,
  type Reply,
} from '../../commands/reply.js';
import { OutputBuffer, encodeReply, encodeToBuffer, formatDouble } from './encode.js';

const enc = (reply: Reply, protocol: Protocol): string => encodeToBuffer(reply, protocol).toString('latin1');

describe('resp/encode', () => {
  const both = (reply: Reply, resp2: string, resp3: string): void => {
    expect(enc(reply, 2), 'RESP2').to.equal(resp2);
    expect(enc(reply, 3), 'RESP3').to.equal(resp3);
  };

  it('encodes the pre-encoded constants', () => {
    both(OK, '+OK\r\n', '+OK\r\n');
    both(PONG, '+PONG\r\n', '+PONG\r\n');
    both(NIL, '$-1\r\n', '_\r\n');
    both(NIL_ARRAY, '*-1\r\n', '_\r\n');
  });

  it('encodes simple strings, errors and integers alike in both protocols', () => {
    both(simple('QUEUED'), '+QUEUED\r\n', '+QUEUED\r\n');
    both(error('ERR syntax error'), '-ERR syntax error\r\n', '-ERR syntax error\r\n');
    both(integer(0), ':0\r\n', ':0\r\n');
    both(integer(-42), ':-42\r\n', ':-42\r\n');
    both(integer(9223372036854775807n), ':9223372036854775807\r\n', ':9223372036854775807\r\n');
  });

  it('replaces CR and LF in line replies so they cannot break the framing', () => {
    both(error('ERR bad\r\nthing'), '-ERR bad  thing\r\n', '-ERR bad  thing\r\n');
    both(simple('a\nb'), '+a b\r\n', '+a b\r\n');
  });

  it('uses byte lengths for bulk strings (UTF-8 strings and binary Buffers)', () => {
    const text = 'héllo €';
    const bytes = Buffer.from(text, 'utf8');
    expect(
      encodeToBuffer(bulk(text), 2).equals(
        Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]),
      ),
    ).to.equal(true);
    const binary = Buffer.from([0, 13, 10, 255]);
    expect(
      encodeToBuffer(bulk(binary), 3).equals(
        Buffer.concat([Buffer.from('$4\r\n'), binary, Buffer.from('\r\n')]),
      ),
    ).to.equal(true);
    both(bulk(''), '$0\r\n\r\n', '$0\r\n\r\n');
    both(bulk(null), '$-1\r\n', '_\r\n');
  });

  it('encodes non-ASCII error text as UTF-8', () => {
    expect(encodeToBuffer(error("ERR no such key 'ключ'"), 2).toString('utf8')).to.equal(
      "-ERR no such key 'ключ'\r\n",
    );
  });

  it('encodes nested arrays and the nil array', () => {
    both(
      array([bulk('a'), integer(1), array([])]),
      '*3\r\n$1\r\na\r\n:1\r\n*0\r\n',
      '*3\r\n$1\r\na\r\n:1\r\n*0\r\n',
    );
    both(array(null), '*-1\r\n', '_\r\n');
  });

  it('downgrades a map to a flat array in RESP2', () => {
    both(map([[bulk('k'), integer(1)]]), '*2\r\n$1\r\nk\r\n:1\r\n', '%1\r\n$1\r\nk\r\n:1\r\n');
  });

  it('downgrades set, push, double, boolean, null and verbatim in RESP2', () => {
    both({ kind: 'set', items: [bulk('x')] }, '*1\r\n$1\r\nx\r\n', '~1\r\n$1\r\nx\r\n');
    both({ kind: 'push', items: [bulk('x')] }, '*1\r\n$1\r\nx\r\n', '>1\r\n$1\r\nx\r\n');
    both({ kind: 'double', value: 1.5 }, '$3\r\n1.5\r\n', ',1.5\r\n');
    both({ kind: 'double', value: -Infinity }, '$4\r\n-inf\r\n', ',-inf\r\n');
    both({ kind: 'boolean', value: true }, ':1\r\n', '#t\r\n');
    both({ kind: 'boolean', value: false }, ':0\r\n', '#f\r\n');
    both({ kind: 'null' }, '$-1\r\n', '_\r\n');
    both(verbatim('héllo'), '$6\r\nhéllo\r\n'.replace('é', 'Ã©'), '=10\r\ntxt:héllo\r\n'.replace('é', 'Ã©'));
  });

  it('formats doubles as Redis shows them', () => {
    expect([1, 0.1, 1e21, NaN, Infinity, -0.5].map(formatDouble)).to.deep.equal([
      '1',
      '0.1',
      '1e+21',
      'nan',
      'inf',
      '-0.5',
    ]);
  });

  it('writes headers and integers digit by digit exactly as the decimal string', () => {
    const values = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65535, 1e9, 2 ** 31, Number.MAX_SAFE_INTEGER];
    for (const n of values) {
      expect(enc(integer(n), 2), String(n)).to.equal(`:${n}\r\n`);
      expect(
        enc(array(Array.from({ length: Math.min(n, 3) }, () => integer(n))), 2).startsWith(
          `*${Math.min(n, 3)}\r\n`,
        ),
      ).to.equal(true);
    }
    const out = new OutputBuffer();
    for (const n of values) out.header(36, n);
    expect(Buffer.concat(out.take()).toString('latin1')).to.equal(values.map((n) => `$${n}\r\n`).join(''));
  });

  describe('OutputBuffer', () => {
    it('keeps order across copied pieces and referenced large buffers', () => {
      const out = new OutputBuffer();
      const large = Buffer.alloc(100 * 1024, 1);
      encodeReply(out, bulk('small'), 2);
      encodeReply(out, bulk(large), 2);
      encodeReply(out, OK, 2);
      const expected = Buffer.concat([
        Buffer.from('$5\r\nsmall\r\n'),
        Buffer.from(`$${large.length}\r\n`),
        large,
        Buffer.from('\r\n+OK\r\n'),
      ]);
      expect(out.length).to.equal(expected.length);
      const taken = out.take();
      expect(Buffer.concat(taken).equals(expected)).to.equal(true);
      // The large value is passed by reference, not copied.
      expect(taken.some((chunk) => chunk === large)).to.equal(true);
      expect(out.length).to.equal(0);
    });

    it('never changes bytes it has handed over', () => {
      const out = new OutputBuffer();
      encodeReply(out, bulk('first'), 2);
      const first = out.take();
      const snapshot = Buffer.concat(first);
      for (let i = 0; i < 2000; i++) encodeReply(out, bulk(`value-${i}`), 2);
      out.take();
      expect(Buffer.concat(first).equals(snapshot)).to.equal(true);
    });

    it('grows past one chunk for many small replies', () => {
      const out = new OutputBuffer();
      for (let i = 0; i < 10000; i++) encodeReply(out, integer(i), 2);
      const text = Buffer.concat(out.take()).toString('latin1');
      expect(text.startsWith(':0\r\n:1\r\n:2\r\n')).to.equal(true);
      expect(text.endsWith(':9999\r\n')).to.equal(true);
      expect(text.split('\r\n').length - 1).to.equal(10000);
    });
  });
});
