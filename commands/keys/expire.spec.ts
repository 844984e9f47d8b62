import { expect } from 'chai';
import { Harness, plain } from '../testing.js';

describe('EXPIRE family, PERSIST, TTL, PTTL, TYPE, STRLEN, GETDEL', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  it('TTL/PTTL report -2, -1 and time left (TTL rounded as Redis)', async () => {
    expect(plain(await h.run('TTL', 'k'))).to.equal(-2n);
    await h.run('SET', 'k', 'v');
    expect(plain(await h.run('PTTL', 'k'))).to.equal(-1n);
    await h.run('PEXPIRE', 'k', '10500');
    expect(plain(await h.run('PTTL', 'k'))).to.equal(10500n);
    expect(plain(await h.run('TTL', 'k'))).to.equal(11n);
    h.nowMs += 1000;
    expect(plain(await h.run('TTL', 'k'))).to.equal(10n);
  });

  it('EXPIRE sets relative to the applied time; EXPIREAT/PEXPIREAT are absolute', async () => {
    await h.run('MSET', 'a', '1', 'b', '2');
    expect(plain(await h.run('EXPIRE', 'a', '10'))).to.equal(1n);
    expect(plain(await h.run('PEXPIREAT', 'b', String(h.nowMs + 500)))).to.equal(1n);
    expect(plain(await h.run('EXPIREAT', 'missing', '99999999999'))).to.equal(0n);
    h.nowMs += 500;
    expect(plain(await h.run('GET', 'b'))).to.equal(null);
    expect(plain(await h.run('GET', 'a'))).to.equal('1');
    h.nowMs += 9500;
    expect(plain(await h.run('EXISTS', 'a'))).to.equal(0n);
  });

  it('a time in the past deletes the key', async () => {
    await h.run('SET', 'a', '1');
    expect(plain(await h.run('EXPIRE', 'a', '-1'))).to.equal(1n);
    expect(plain(await h.run('EXISTS', 'a'))).to.equal(0n);
    await h.run('SET', 'a', '1');
    expect(plain(await h.run('EXPIRE', 'a', '-9223372036854775808'))).to.equal(1n);
    expect(plain(await h.run('EXISTS', 'a'))).to.equal(0n);
  });

  it('NX, XX, GT, LT as Redis 7 (no expiry counts as infinite)', async () => {
    await h.run('SET', 'a', '1');
    expect(plain(await h.run('EXPIRE', 'a', '100', 'XX'))).to.equal(0n);
    expect(plain(await h.run('EXPIRE', 'a', '100', 'GT'))).to.equal(0n);
    expect(plain(await h.run('EXPIRE', 'a', '100', 'LT'))).to.equal(1n);
    expect(plain(await h.run('EXPIRE', 'a', '50', 'NX'))).to.equal(0n);
    expect(plain(await h.run('EXPIRE', 'a', '200', 'GT'))).to.equal(1n);
    expect(plain(await h.run('EXPIRE', 'a', '300', 'lt'))).to.equal(0n);
    expect(plain(await h.run('TTL', 'a'))).to.equal(200n);
    expect(plain(await h.run('EXPIRE', 'a', '1', 'NX', 'XX'))).to.deep.equal({
      error: 'ERR NX and XX, GT or LT options at the same time are not compatible',
    });
    expect(plain(await h.run('EXPIRE', 'a', '1', 'GT', 'LT'))).to.deep.equal({
      error: 'ERR GT and LT options at the same time are not compatible',
    });
    expect(plain(await h.run('EXPIRE', 'a', '1', 'FOO'))).to.deep.equal({
      error: 'ERR Unsupported option FOO',
    });
    expect(plain(await h.run('EXPIRE', 'a', 'x'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    expect(plain(await h.run('PEXPIRE', 'a', '9223372036854775807'))).to.deep.equal({
      error: "ERR invalid expire time in 'pexpire' command",
    });
  });

  it('PERSIST removes an expiry', async () => {
    await h.run('SET', 'a', '1', 'EX', '5');
    expect(plain(await h.run('PERSIST', 'a'))).to.equal(1n);
    expect(plain(await h.run('PERSIST', 'a'))).to.equal(0n);
    expect(plain(await h.run('PERSIST', 'zz'))).to.equal(0n);
    h.nowMs += 10_000;
    expect(plain(await h.run('GET', 'a'))).to.equal('1');
  });

  it('TYPE, STRLEN, GETDEL', async () => {
    await h.run('SET', 'a', Buffer.from([1, 2, 3, 0]));
    expect(plain(await h.run('TYPE', 'a'))).to.equal('string');
    expect(plain(await h.run('TYPE', 'b'))).to.equal('none');
    expect(plain(await h.run('STRLEN', 'a'))).to.equal(4n);
    expect(plain(await h.run('STRLEN', 'b'))).to.equal(0n);
    expect(plain(await h.run('GETDEL', 'a'))).to.equal('\x01\x02\x03\x00');
    expect(plain(await h.run('GETDEL', 'a'))).to.equal(null);
    expect(plain(await h.run('DBSIZE'))).to.equal(0n);
  });
});
