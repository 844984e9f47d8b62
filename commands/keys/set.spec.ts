import { expect } from 'chai';
import { ArgCursor, CommandError } from '../args.js';
import { Harness, plain } from '../testing.js';
import { parseSet } from './set.js';

const parse = (...words: string[]) => parseSet(new ArgCursor(['set', ...words].map((w) => Buffer.from(w))));
const parseError = (...words: string[]): string => {
  try {
    parse(...words);
  } catch (e) {
    if (e instanceof CommandError) return e.message;
    throw e;
  }
  return 'no error';
};

describe('SET', () => {
  describe('parse', () => {
    it('builds typed operations for each option', () => {
      expect(parse('k', 'v')).to.deep.include({
        condition: 'always',
        expire: 'none',
        expireMs: 0,
        get: false,
      });
      expect(parse('k', 'v', 'nx')).to.deep.include({ condition: 'nx' });
      expect(parse('k', 'v', 'XX', 'get')).to.deep.include({ condition: 'xx', get: true });
      expect(parse('k', 'v', 'EX', '10')).to.deep.include({ expire: 'ttl', expireMs: 10_000 });
      expect(parse('k', 'v', 'px', '1500')).to.deep.include({ expire: 'ttl', expireMs: 1500 });
      expect(parse('k', 'v', 'exat', '1700000000')).to.deep.include({
        expire: 'at',
        expireMs: 1_700_000_000_000,
      });
      expect(parse('k', 'v', 'pxat', '1700000000123')).to.deep.include({
        expire: 'at',
        expireMs: 1_700_000_000_123,
      });
      expect(parse('k', 'v', 'keepttl')).to.deep.include({ expire: 'keep' });
      expect(parse('k', 'v', 'ex', '1', 'ex', '2')).to.deep.include({ expireMs: 2000 });
      expect(parse('k', 'v', 'nx', 'get', 'px', '5')).to.deep.include({
        condition: 'nx',
        get: true,
        expireMs: 5,
      });
    });

    it('answers Redis errors for bad options', () => {
      expect(parseError('k', 'v', 'nx', 'xx')).to.equal('ERR syntax error');
      expect(parseError('k', 'v', 'ex', '10', 'px', '10')).to.equal('ERR syntax error');
      expect(parseError('k', 'v', 'ex', '10', 'keepttl')).to.equal('ERR syntax error');
      expect(parseError('k', 'v', 'ex')).to.equal('ERR syntax error');
      expect(parseError('k', 'v', 'foo')).to.equal('ERR syntax error');
      expect(parseError('k', 'v', 'ex', 'abc')).to.equal('ERR value is not an integer or out of range');
      expect(parseError('k', 'v', 'ex', '1.5')).to.equal('ERR value is not an integer or out of range');
      expect(parseError('k', 'v', 'ex', '0')).to.equal("ERR invalid expire time in 'set' command");
      expect(parseError('k', 'v', 'px', '-5')).to.equal("ERR invalid expire time in 'set' command");
      expect(parseError('k', 'v', 'ex', '9223372036854775807')).to.equal(
        "ERR invalid expire time in 'set' command",
      );
      // Syntax is checked before the time's value, as in Redis.
      expect(parseError('k', 'v', 'ex', 'abc', 'nx', 'xx')).to.equal('ERR syntax error');
    });
  });

  describe('replies', () => {
    let h: Harness;
    beforeEach(() => {
      h = new Harness();
    });

    it('OK, nil when a condition prevents the write, previous value with GET', async () => {
      expect(plain(await h.run('SET', 'k', 'v1'))).to.equal('OK');
      expect(plain(await h.run('SET', 'k', 'v2', 'NX'))).to.equal(null);
      expect(plain(await h.run('SET', 'other', 'v', 'XX'))).to.equal(null);
      expect(plain(await h.run('SET', 'k', 'v3', 'GET'))).to.equal('v1');
      expect(plain(await h.run('SET', 'k', 'v4', 'NX', 'GET'))).to.equal('v3');
      expect(plain(await h.run('GET', 'k'))).to.equal('v3');
      expect(plain(await h.run('SET', 'fresh', 'x', 'GET'))).to.equal(null);
      expect(plain(await h.run('GET', 'fresh'))).to.equal('x');
    });

    it('is binary safe', async () => {
      const key = Buffer.from([0, 255, 13, 10, 128]);
      const value = Buffer.from([0xc3, 0x28, 0, 1, 2, 255]);
      await h.run('SET', key, value);
      const reply = await h.run('GET', key);
      expect(reply.kind).to.equal('bulk');
      expect(Buffer.compare((reply as { value: Buffer }).value, value)).to.equal(0);
    });

    it('expires by the entry time of the write and the read time', async () => {
      await h.run('SET', 'k', 'v', 'PX', '100');
      h.nowMs += 99;
      expect(plain(await h.run('GET', 'k'))).to.equal('v');
      h.nowMs += 1;
      expect(plain(await h.run('GET', 'k'))).to.equal(null);
      expect(plain(await h.run('EXISTS', 'k'))).to.equal(0n);
    });

    it('KEEPTTL keeps the expiry, a plain SET clears it', async () => {
      await h.run('SET', 'k', 'v', 'EX', '10');
      await h.run('SET', 'k', 'w', 'KEEPTTL');
      h.nowMs += 10_000;
      expect(plain(await h.run('GET', 'k'))).to.equal(null);
      await h.run('SET', 'k', 'v', 'EX', '10');
      await h.run('SET', 'k', 'w');
      h.nowMs += 20_000;
      expect(plain(await h.run('GET', 'k'))).to.equal('w');
    });

    it('EXAT in the past deletes the key and replies OK', async () => {
      await h.run('SET', 'k', 'v');
      expect(plain(await h.run('SET', 'k', 'w', 'EXAT', '1'))).to.equal('OK');
      expect(plain(await h.run('GET', 'k'))).to.equal(null);
      expect(plain(await h.run('DBSIZE'))).to.equal(0n);
    });

    it('has arity -3', async () => {
      expect(plain(await h.run('SET', 'k'))).to.deep.equal({
        error: "ERR wrong number of arguments for 'set' command",
      });
    });
  });
});
