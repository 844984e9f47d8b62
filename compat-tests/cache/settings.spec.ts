/**
 * FLUSHALL / FLUSHDB and the cache's CONFIG parameters against a real three-node cluster
 * (ioredis): FLUSHALL empties the cache's home and every node's near-cache before it answers,
 * also with a node killed (then it waits out that node's lease); CONFIG SET changes the
 * cluster-wide lease and policy through the log (every node reports them) and a node's own
 * bounds at once; bad values get Redis's CONFIG SET error and change nothing.
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported, type ClusterNode } from '../cluster/cluster-harness.js';

const LEASE_MS = 1_000;

async function infoCache(redis: Redis): Promise<Map<string, string>> {
  const text = String(await redis.info('cache'));
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return out;
}

async function configGet(redis: Redis, name: string): Promise<string | undefined> {
  const reply = (await redis.call('CONFIG', 'GET', name)) as string[];
  return reply[1];
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return 'no error';
}

describe('cache: FLUSHALL and CONFIG on a three-node cluster', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;
  const clients: Redis[] = [];

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.disconnect();
    await cluster?.destroy();
    cluster = undefined;
  });

  async function start(): Promise<{ leader: ClusterNode; followers: ClusterNode[]; c: Cluster }> {
    const c = (cluster = await Cluster.start({
      size: 3,
      tickMs: 50,
      electionTicks: 10,
      logLevel: 'warn',
      extraArgs: ['--cache-lease-ms', String(LEASE_MS)],
    }));
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    return { leader, followers: c.nodes.filter((n) => n !== leader), c };
  }

  function connect(node: ClusterNode): Redis {
    const redis = client(node.port, 10_000);
    clients.push(redis);
    return redis;
  }

  it('FLUSHALL from a follower empties the home and every near-cache before it answers', async () => {
    const { c, followers } = await start();
    const all = c.nodes.map(connect);
    const keys = ['f:a', 'f:b', 'f:c'];
    for (const k of keys) await all[0]!.call('CSET', k, `v-${k}`);
    await all[0]!.set('plain', 'x');
    for (const r of all) for (const k of keys) expect(await r.call('CGET', k)).to.equal(`v-${k}`);
    for (const r of all) expect(Number((await infoCache(r)).get('cache_lines'))).to.be.at.least(3);

    const follower = connect(followers[0]!);
    expect(await follower.call('FLUSHALL')).to.equal('OK');
    // The reply came after every node acked the flush: no node holds a line any more, and
    // nothing of the old home is served anywhere.
    for (const r of all)
      expect((await infoCache(r)).get('cache_lines'), 'lines after FLUSHALL').to.equal('0');
    for (const r of all) for (const k of keys) expect(await r.call('CGET', k)).to.equal(null);
    expect(await all[1]!.get('plain')).to.equal(null);
    expect(await all[2]!.dbsize()).to.equal(0);
    const flushes = await Promise.all(
      all.map(async (r) => Number((await infoCache(r)).get('cache_data_flushes'))),
    );
    expect(
      flushes.reduce((a, b) => a + b, 0),
      'one FLUSHALL round, run by the leader',
    ).to.equal(1);

    // FLUSHDB does the same; a pipelined FLUSHDB then CGET on one connection reads the flush.
    await all[0]!.call('CSET', 'f:a', 'again');
    expect(await follower.call('CGET', 'f:a')).to.equal('again');
    const replies = await follower.pipeline().call('FLUSHDB', 'ASYNC').call('CGET', 'f:a').exec();
    expect(replies?.map(([err, value]) => err ?? value)).to.deep.equal(['OK', null]);
    // Per-key policies are settings, not data: they survive a flush.
    expect(await all[0]!.call('CPOLICY', 'UPDATE', 'f:b')).to.equal('OK');
    await all[0]!.call('FLUSHALL');
    await all[0]!.call('CSET', 'f:b', 'v1');
    expect(await all[1]!.call('CGET', 'f:b')).to.equal('v1');
    await all[0]!.call('CSET', 'f:b', 'v2');
    expect(Number((await infoCache(all[1]!)).get('cache_updates_received'))).to.be.at.least(1);
  });

  it('FLUSHALL with a holder killed (-9) completes (the leader waits out its lease), and others read nil', async () => {
    const { leader, followers } = await start();
    const lead = connect(leader);
    const victim = connect(followers[0]!);
    const other = connect(followers[1]!);
    await lead.call('CSET', 'k', 'old');
    expect(await victim.call('CGET', 'k')).to.equal('old');
    expect(await other.call('CGET', 'k')).to.equal('old');
    await followers[0]!.kill9();
    const sentBefore = Number((await infoCache(lead)).get('cache_flushes_sent'));
    // The dead node never acks: the leader stops waiting once its lease (+ margin) is over.
    expect(await other.call('FLUSHALL')).to.equal('OK');
    expect(await other.call('CGET', 'k')).to.equal(null);
    expect(await lead.call('CGET', 'k')).to.equal(null);
    const figures = await infoCache(lead);
    expect(Number(figures.get('cache_flushes_sent')) - sentBefore, 'a FLUSH to each peer').to.equal(2);
    expect(figures.get('cache_data_flushes')).to.equal('1');
  });

  it('CONFIG SET cache-lease-ms / cache-policy apply cluster-wide through the log; bounds per node', async () => {
    const { c, leader, followers } = await start();
    const all = c.nodes.map(connect);
    const f = connect(followers[0]!);
    const writer = connect(leader);
    expect(await configGet(f, 'cache-lease-ms')).to.equal(String(LEASE_MS));
    expect(await configGet(f, 'cache-policy')).to.equal('invalidate');

    expect(await f.call('CONFIG', 'SET', 'cache-lease-ms', '3000', 'cache-policy', 'UPDATE')).to.equal('OK');
    for (const r of all)
      await waitFor(
        'the lease applied on every node',
        async () => ((await configGet(r, 'cache-lease-ms')) === '3000' ? true : undefined),
        10_000,
      );
    for (const r of all) {
      expect(await configGet(r, 'cache-policy')).to.equal('update');
      expect((await infoCache(r)).get('cache_lease_ms')).to.equal('3000');
    }
    // The grant carries the new lease: a fresh line has more than the old 1 s left.
    await writer.call('CSET', 'lease:k', 'v');
    expect(await f.call('CGET', 'lease:k')).to.equal('v');
    const state = (await f.call('CSTATE', 'lease:k')) as unknown[][];
    const mine = state.find((row) => row[0] === followers[0]!.id)!;
    expect(mine[1]).to.be.oneOf(['E', 'S']);
    expect(Number(mine[3])).to.be.above(LEASE_MS).and.at.most(3_000);
    // Update policy cluster-wide: the holder receives the value instead of an invalidation.
    await writer.call('CSET', 'lease:k', 'v2');
    expect(Number((await infoCache(f)).get('cache_updates_received'))).to.be.at.least(1);

    // Node-local bounds: at once, on that node only; lines beyond the bound are evicted.
    for (const k of ['b1', 'b2', 'b3', 'b4', 'b5']) {
      await writer.call('CSET', k, k);
      await f.call('CGET', k);
    }
    expect(Number((await infoCache(f)).get('cache_lines'))).to.be.at.least(5);
    expect(await f.call('CONFIG', 'SET', 'cache-max-entries', '2')).to.equal('OK');
    const figures = await infoCache(f);
    expect(figures.get('cache_max_lines')).to.equal('2');
    expect(Number(figures.get('cache_lines'))).to.be.at.most(2);
    expect(Number(figures.get('cache_evictions'))).to.be.at.least(3);
    expect(await configGet(writer, 'cache-max-entries')).to.equal('100000');
    expect(await f.call('CONFIG', 'SET', 'cache-max-bytes', '1mb')).to.equal('OK');
    expect((await infoCache(f)).get('cache_max_bytes')).to.equal(String(1024 * 1024));

    // Refusals are Redis's CONFIG SET errors, and a refused CONFIG SET changes nothing.
    expect(await errorOf(f.call('CONFIG', 'SET', 'cache-lease-ms', '5'))).to.equal(
      "ERR CONFIG SET failed (possibly related to argument 'cache-lease-ms') - argument must be between 10 and 600000 inclusive",
    );
    expect(await errorOf(f.call('CONFIG', 'SET', 'cache-policy', 'sometimes'))).to.equal(
      "ERR CONFIG SET failed (possibly related to argument 'cache-policy') - argument(s) must be one of the following: invalidate, update",
    );
    expect(await errorOf(f.call('CONFIG', 'SET', 'cache-max-entries', '0'))).to.match(
      /^ERR CONFIG SET failed \(possibly related to argument 'cache-max-entries'\)/,
    );
    expect(await errorOf(f.call('CONFIG', 'SET', 'cache-max-entries', '7', 'cache-lease-ms', 'x'))).to.equal(
      "ERR CONFIG SET failed (possibly related to argument 'cache-lease-ms') - argument couldn't be parsed into an integer",
    );
    expect(await configGet(f, 'cache-max-entries')).to.equal('2');
    expect(await configGet(f, 'cache-lease-ms')).to.equal('3000');
  });
});
