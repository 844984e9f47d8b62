import { expect } from 'chai';
import { LocalExecutor } from '../../commands/executor.js';
import { Harness, plain } from '../../commands/testing.js';
import { CacheAgent } from './agent.js';

/** The cache commands through the dispatcher, on one node that is its own leader. */
function harness(): { h: Harness; agent: CacheAgent } {
  const executor = new LocalExecutor();
  const agent = new CacheAgent({
    host: {
      id: 'n1',
      isLeader: () => true,
      leaderId: () => 'n1',
      term: () => 1,
      peers: () => [],
      readBarrier: () => Promise.resolve(),
      propose: (op) => Promise.resolve(executor.write(op)),
      stateMachine: executor.stateMachine,
      leaderTimeMs: () => executor.stateMachine.readTime(Date.now()),
      request: () => Promise.reject(new Error('no peers')),
      isConnected: () => false,
    },
  });
  // Takes office (as server/node.ts does on the role change): its first grants then install.
  agent.leadershipChanged();
  return { h: new Harness(executor, agent), agent };
}

describe('cache commands (CGET, CSET, CDEL, CPOLICY, CSTATE, INFO cache)', () => {
  it('CSET then CGET answers from the line, synchronously; CDEL removes it', async () => {
    const { h } = harness();
    expect(plain(await h.run('CSET', 'k', 'v'))).to.equal('OK');
    expect(plain(h.runSync('CGET', 'k'))).to.equal('v');
    expect(plain(await h.run('CDEL', 'k'))).to.equal(1n);
    expect(plain(await h.run('CDEL', 'k'))).to.equal(0n);
    expect(plain(await h.run('CGET', 'k'))).to.equal(null);
    // The absence is cached too.
    expect(plain(h.runSync('CGET', 'k'))).to.equal(null);
  });

  it('CSET options: PX, INVALIDATE|UPDATE; syntax and expiry errors keep the connection', async () => {
    const { h } = harness();
    expect(plain(await h.run('CSET', 'k', 'v', 'PX', '60000', 'UPDATE'))).to.equal('OK');
    expect(plain(await h.run('CSET', 'k', 'v', 'INVALIDATE'))).to.equal('OK');
    expect(plain(await h.run('CSET', 'k', 'v', 'PX'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(await h.run('CSET', 'k', 'v', 'UPDATE', 'INVALIDATE'))).to.deep.equal({
      error: 'ERR syntax error',
    });
    expect(plain(await h.run('CSET', 'k', 'v', 'PX', '0'))).to.deep.equal({
      error: "ERR invalid expire time in 'cset' command",
    });
    expect(plain(await h.run('CSET', 'k'))).to.deep.equal({
      error: "ERR wrong number of arguments for 'cset' command",
    });
    expect(plain(await h.run('CGET', 'k'))).to.equal('v');
  });

  it('CPOLICY sets the cluster-wide and per-key policies, replicated in home', async () => {
    const { h } = harness();
    expect(plain(await h.run('CPOLICY', 'UPDATE'))).to.equal('OK');
    expect(plain(await h.run('CPOLICY', 'INVALIDATE', 'k'))).to.equal('OK');
    expect(plain(await h.run('CPOLICY', 'DEFAULT'))).to.deep.equal({
      error: 'ERR the cluster-wide policy must be INVALIDATE or UPDATE',
    });
    expect(plain(await h.run('CPOLICY', 'SOMETIMES'))).to.deep.equal({ error: 'ERR syntax error' });
    const sm = (h.executor as LocalExecutor).stateMachine;
    expect(sm.cache.clusterPolicy).to.equal('update');
    expect(sm.cache.policyOf(Buffer.from('k'))).to.equal('invalidate');
    expect(sm.cache.policyOf(Buffer.from('other'))).to.equal('update');
  });

  it('CSTATE shows the line and the directory; INFO cache counts hits and misses', async () => {
    const { h } = harness();
    await h.run('CSET', 'k', 'v');
    const state = plain(await h.run('CSTATE', 'k')) as unknown[];
    const [line, directory] = state as [unknown[], unknown[]];
    expect(line.slice(0, 3)).to.deep.equal(['n1', 'M', 1n]);
    expect(directory.slice(0, 5)).to.deep.equal([
      'directory',
      'n1',
      'invalidations-in-flight',
      0n,
      'holders',
    ]);
    const holders = directory[5] as unknown[][];
    expect(holders.map((x) => x.slice(0, 2))).to.deep.equal([['n1', 'M']]);
    h.runSync('CGET', 'k');
    await h.run('CGET', 'missing');
    const info = String(plain(h.runSync('INFO', 'cache')));
    expect(info).to.match(/^# Cache\r\n/);
    expect(info).to.include('cache_hits:1\r\n');
    expect(info).to.include('cache_misses:1\r\n');
    expect(info).to.include('cache_lines_m:1\r\n');
  });

  it('CSET / CDEL FENCE: the current token writes; an older one writes nothing and answers -FENCED', async () => {
    const { h } = harness();
    const sm = (h.executor as LocalExecutor).stateMachine;
    expect(plain(await h.run('LOCK', 'L', 'A'))).to.equal(1n);
    expect(plain(await h.run('CSET', 'k', 'a', 'FENCE', 'L', '1'))).to.equal('OK');
    await h.run('UNLOCK', 'L', 'A');
    expect(plain(await h.run('LOCK', 'L', 'B'))).to.equal(2n);
    expect(plain(await h.run('CSET', 'k', 'b', 'PX', '60000', 'FENCE', 'L', '2', 'UPDATE'))).to.equal('OK');
    const version = sm.cache.versionOf(Buffer.from('k'));
    expect(version).to.be.greaterThan(0);
    const fenced = { error: "FENCED token 1 is older than lock 'L' current token 2" };
    expect(plain(await h.run('CSET', 'k', 'stale', 'fence', 'L', '1'))).to.deep.equal(fenced);
    expect(plain(await h.run('CDEL', 'k', 'FENCE', 'L', '1'))).to.deep.equal(fenced);
    // Home is untouched (same version); the refused writer dropped its M line and refetched B's value (E).
    expect(sm.cache.versionOf(Buffer.from('k'))).to.equal(version);
    expect(plain(await h.run('CGET', 'k'))).to.equal('b');
    const line = (plain(await h.run('CSTATE', 'k')) as unknown[][])[0]!;
    expect(line.slice(0, 3)).to.deep.equal(['n1', 'E', BigInt(version)]);
    expect(String(plain(h.runSync('INFO', 'cache')))).to.include('cache_writes_fenced:2\r\n');
    expect(plain(await h.run('CDEL', 'k', 'FENCE', 'L', '2'))).to.equal(1n);
    expect(plain(await h.run('CGET', 'k'))).to.equal(null);
    // Bad FENCE arguments: client errors, nothing proposed.
    expect(plain(await h.run('CSET', 'k', 'v', 'FENCE', 'L'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(await h.run('CSET', 'k', 'v', 'FENCE', 'L', '2', 'FENCE', 'L', '2'))).to.deep.equal({
      error: 'ERR syntax error',
    });
    expect(plain(await h.run('CDEL', 'k', 'FENCE', 'L', '0'))).to.deep.equal({
      error: 'ERR FENCE token must be a positive integer',
    });
    expect(plain(await h.run('CDEL', 'k', 'NOPE'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(await h.run('CDEL', 'k', 'FENCE', 'L', '2', 'x'))).to.deep.equal({
      error: 'ERR syntax error',
    });
    expect(plain(await h.run('CGET', 'k'))).to.equal(null);
  });

  it('without a cache service the commands answer a clear error', async () => {
    const h = new Harness();
    expect(plain(await h.run('CGET', 'k'))).to.deep.equal({
      error: 'ERR the coherent cache is not available on this server',
    });
    expect(String(plain(h.runSync('INFO')))).to.not.include('# Cache');
  });
});
