import { expect } from 'chai';
import { LocalExecutor } from '../executor.js';
import type { Reply } from '../reply.js';
import { Harness, plain, type TestSession, type TestServer } from '../testing.js';

/** A harness plus more connected clients on the same dispatcher. */
function setup(): {
  h: Harness;
  executor: LocalExecutor;
  other: () => { run: (...w: string[]) => Promise<Reply>; ctx: { session: TestSession; server: TestServer } };
} {
  const holder: { h?: Harness } = {};
  const executor = new LocalExecutor({ clock: () => holder.h!.nowMs });
  const h = new Harness(executor);
  holder.h = h;
  const other = (): {
    run: (...w: string[]) => Promise<Reply>;
    ctx: { session: TestSession; server: TestServer };
  } => {
    const ctx = h.server.connect();
    return {
      ctx,
      run: async (...w: string[]) =>
        h.dispatcher.execute(
          ctx,
          w.map((x) => Buffer.from(x)),
        ),
    };
  };
  return { h, executor, other };
}

/** Lets pending promise callbacks run (the blocked command's continuation). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('LOCK, UNLOCK, LOCK.RENEW, LOCK.INFO, LOCK.WAITSFOR, LOCK.FORCERELEASE', () => {
  it('grants a token, gives the holder the same token again, and releases once', async () => {
    const { h } = setup();
    expect(plain(await h.run('LOCK', 'x', 'a'))).to.equal(1n);
    expect(plain(await h.run('LOCK', 'x', 'a', 'EXCLUSIVE', 'TTL', '5000'))).to.equal(1n);
    expect(plain(await h.run('LOCK', 'x', 'b'))).to.equal(null);
    expect(plain(await h.run('UNLOCK', 'x', 'a'))).to.equal(1n);
    expect(plain(await h.run('UNLOCK', 'x', 'a'))).to.equal(0n);
    expect(plain(await h.run('LOCK', 'x', 'b'))).to.equal(2n);
  });

  it('blocks a LOCK with WAIT on its own connection and wakes it with its token on UNLOCK', async () => {
    const { h, other } = setup();
    const b = other();
    expect(plain(await h.run('LOCK', 'x', 'a'))).to.equal(1n);
    let answered: Reply | undefined;
    const pending = b.run('LOCK', 'x', 'b', 'WAIT', '10000').then((r) => (answered = r));
    await settle();
    expect(answered).to.equal(undefined);
    // Other commands go on meanwhile.
    expect(plain(await h.run('SET', 'k', 'v'))).to.equal('OK');
    expect(plain(await h.run('LOCK.WAITSFOR', 'b'))).to.deep.equal([['b', 'x', 'a', 'holder']]);
    expect(plain(await h.run('INFO', 'clients'))).to.match(/blocked_clients:1\r\n/);
    expect(plain(await h.run('UNLOCK', 'x', 'a'))).to.equal(1n);
    await pending;
    expect(plain(answered!)).to.equal(2n);
    expect(plain(await h.run('LOCK.WAITSFOR', 'b'))).to.deep.equal([]);
  });

  it('answers nil when WAIT runs out (in leader time, on a tick), and removes the waiter', async () => {
    const { h, executor, other } = setup();
    const b = other();
    await h.run('LOCK', 'x', 'a');
    const pending = b.run('LOCK', 'x', 'b', 'WAIT', '500');
    await settle();
    h.nowMs += 499;
    executor.tick();
    h.nowMs += 1;
    executor.tick();
    expect(plain(await pending)).to.equal(null);
    const info = plain(await h.run('LOCK.INFO', 'x')) as Record<string, unknown>;
    expect([info['mode'], info['token'], info['waiters']]).to.deep.equal(['exclusive', 1n, []]);
  });

  it('withdraws the wait of a client that disconnects', async () => {
    const { h, other } = setup();
    const b = other();
    await h.run('LOCK', 'x', 'a');
    const pending = b.run('LOCK', 'x', 'b', 'WAIT', '10000');
    await settle();
    const waiters = async (): Promise<unknown> =>
      (plain(await h.run('LOCK.INFO', 'x')) as Record<string, unknown>)['waiters'];
    expect(await waiters()).to.have.length(1);
    b.ctx.session.close();
    expect(plain(await pending)).to.deep.equal({ error: 'ERR client closed the connection while waiting' });
    await settle();
    expect(await waiters()).to.deep.equal([]);
    expect(h.executor.waiters.size).to.equal(0);
  });

  it('refuses a deadlocking LOCK with -DEADLOCK naming the cycle', async () => {
    const { h, other } = setup();
    const a2 = other();
    await h.run('LOCK', 'x', 'a');
    await h.run('LOCK', 'y', 'b');
    const pending = a2.run('LOCK', 'y', 'a', 'WAIT', '10000');
    await settle();
    expect(plain(await h.run('LOCK', 'x', 'b', 'WAIT', '10000'))).to.deep.equal({
      error: 'DEADLOCK b -> a -> b on locks x, y',
    });
    await h.run('UNLOCK', 'y', 'b');
    expect(plain(await pending)).to.equal(3n);
    const info = plain(await h.run('INFO', 'locks')) as string;
    expect(info).to.match(/lock_deadlocks:1\r\n/);
    expect(info).to.match(/lock_grants:3\r\n/);
  });

  it('renews a lease, and answers -LOCKLOST once it expired', async () => {
    const { h, executor } = setup();
    await h.run('LOCK', 'x', 'a', 'TTL', '1000');
    h.nowMs += 900;
    expect(plain(await h.run('LOCK.RENEW', 'x', 'a'))).to.equal(1n);
    h.nowMs += 900;
    executor.tick();
    expect(plain(await h.run('LOCK.INFO', 'x'))).to.deep.include({ mode: 'exclusive' });
    h.nowMs += 100;
    executor.tick();
    expect(plain(await h.run('LOCK.RENEW', 'x', 'a', 'TTL', '5000'))).to.deep.equal({
      error: "LOCKLOST 'a' does not hold lock 'x' (its lease expired, or it was released or taken over)",
    });
    expect(plain(await h.run('INFO', 'locks'))).to.match(/lock_expiries:1\r\n/);
  });

  it('lets sharers coexist, upgrades one when the others leave, and force-releases', async () => {
    const { h, other } = setup();
    const a2 = other();
    expect(plain(await h.run('LOCK', 'x', 'a', 'SHARED'))).to.equal(1n);
    expect(plain(await h.run('LOCK', 'x', 'b', 'SHARED'))).to.equal(2n);
    expect(plain(await h.run('LOCK', 'x', 'c'))).to.equal(null);
    const upgrade = a2.run('LOCK', 'x', 'a', 'EXCLUSIVE', 'WAIT', '10000');
    await settle();
    expect(plain(await h.run('LOCK.FORCERELEASE', 'x', 'b'))).to.equal(1n);
    expect(plain(await upgrade)).to.equal(3n);
    expect(plain(await h.run('LOCK.FORCERELEASE', 'x'))).to.equal(1n);
    expect(plain(await h.run('LOCK.FORCERELEASE', 'x'))).to.equal(0n);
  });

  it('shows a lock in LOCK.INFO (RESP3 map)', async () => {
    const { h, other } = setup();
    const b = other();
    await h.run('LOCK', 'x', 'a', 'SHARED', 'TTL', '2000');
    void b.run('LOCK', 'x', 'b', 'WAIT', '3000');
    await settle();
    h.session.protocol = 3;
    expect(plain(await h.run('LOCK.INFO', 'x'))).to.deep.equal({
      mode: 'shared',
      token: 1n,
      holders: [{ owner: 'a', mode: 'shared', token: 1n, ttl: 2000n }],
      waiters: [{ owner: 'b', mode: 'exclusive', wait: 3000n }],
    });
    b.ctx.session.close();
  });

  it('fences SET: written with the current token, refused with an older one', async () => {
    const { h } = setup();
    await h.run('LOCK', 'x', 'a');
    expect(plain(await h.run('SET', 'k', 'one', 'FENCE', 'x', '1'))).to.equal('OK');
    await h.run('UNLOCK', 'x', 'a');
    await h.run('LOCK', 'x', 'b');
    expect(plain(await h.run('SET', 'k', 'stale', 'FENCE', 'x', '1'))).to.deep.equal({
      error: "FENCED token 1 is older than lock 'x' current token 2",
    });
    expect(plain(await h.run('SET', 'k', 'two', 'GET', 'FENCE', 'x', '2'))).to.equal('one');
    expect(plain(await h.run('GET', 'k'))).to.equal('two');
    expect(plain(await h.run('SET', 'k', 'v', 'FENCE', 'x', '0'))).to.deep.equal({
      error: 'ERR FENCE token must be a positive integer',
    });
    expect(plain(await h.run('SET', 'k', 'v', 'FENCE', 'x'))).to.deep.equal({ error: 'ERR syntax error' });
  });

  it('answers bad arguments with clear errors and keeps going', async () => {
    const { h } = setup();
    expect(plain(await h.run('LOCK', 'x', 'a', 'SHARED', 'EXCLUSIVE'))).to.deep.equal({
      error: 'ERR syntax error',
    });
    expect(plain(await h.run('LOCK', 'x', 'a', 'TTL', '0'))).to.deep.equal({
      error: 'ERR TTL must be between 1 and 4503599627370496 milliseconds',
    });
    expect(plain(await h.run('LOCK', 'x', 'a', 'WAIT', '-1'))).to.deep.equal({
      error: 'ERR WAIT must be between 0 and 86400000 milliseconds',
    });
    expect(plain(await h.run('LOCK', 'x', 'a', 'TTL', 'abc'))).to.deep.equal({
      error: 'ERR value is not an integer or out of range',
    });
    expect(plain(await h.run('LOCK', '', 'a'))).to.deep.equal({
      error: 'ERR lock name must be 1 to 4096 bytes',
    });
    expect(plain(await h.run('LOCK', 'x'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'lock' command",
    });
    expect(plain(await h.run('LOCK.RENEW', 'x', 'a', 'FOO', '1'))).to.deep.equal({
      error: 'ERR syntax error',
    });
    expect(plain(await h.run('LOCK', 'x', 'a'))).to.equal(1n);
  });
});
