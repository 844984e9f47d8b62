import { expect } from 'chai';
import { Harness, plain } from '../testing.js';

describe('DEL, EXISTS, MGET, MSET, DBSIZE, FLUSHALL, FLUSHDB', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });

  it('MSET sets pairs and clears expiry; MGET answers in order with nils', async () => {
    await h.run('SET', 'a', 'old', 'PX', '10');
    expect(plain(await h.run('MSET', 'a', '1', 'b', '2', 'a', '3'))).to.equal('OK');
    h.nowMs += 100;
    expect(plain(await h.run('MGET', 'a', 'b', 'c'))).to.deep.equal(['3', '2', null]);
    expect(plain(await h.run('MSET', 'a', '1', 'b'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'mset' command",
    });
  });

  it('DEL counts keys that existed, EXISTS counts repeats', async () => {
    await h.run('MSET', 'a', '1', 'b', '2');
    expect(plain(await h.run('EXISTS', 'a', 'a', 'b', 'z'))).to.equal(3n);
    expect(plain(await h.run('DEL', 'a', 'z', 'a'))).to.equal(1n);
    expect(plain(await h.run('EXISTS', 'a'))).to.equal(0n);
    expect(plain(await h.run('DBSIZE'))).to.equal(1n);
  });

  it('an expired key is not counted by DEL', async () => {
    await h.run('SET', 'a', '1', 'PX', '5');
    h.nowMs += 5;
    expect(plain(await h.run('DEL', 'a'))).to.equal(0n);
  });

  it('FLUSHALL and FLUSHDB empty the keyspace; other arguments are syntax errors', async () => {
    await h.run('MSET', 'a', '1', 'b', '2');
    expect(plain(await h.run('FLUSHDB', 'ASYNC'))).to.equal('OK');
    expect(plain(await h.run('DBSIZE'))).to.equal(0n);
    await h.run('SET', 'a', '1');
    expect(plain(await h.run('FLUSHALL', 'now'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(await h.run('FLUSHALL', 'SYNC', 'SYNC'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(await h.run('DBSIZE'))).to.equal(1n);
    expect(plain(await h.run('FLUSHALL'))).to.equal('OK');
    expect(plain(await h.run('GET', 'a'))).to.equal(null);
  });

  it('answers synchronously with the local executor (the fast path)', () => {
    expect(h.runSync('SET', 'a', '1')).to.deep.equal({ kind: 'simple', value: 'OK' });
    expect(plain(h.runSync('GET', 'a'))).to.equal('1');
  });
});
