/**
 * Plain (non-cluster-mode) clients against every node of a three-node cluster: redis-cli,
 * ioredis and node-redis each write through one node and read through every node (followers
 * forward writes to the leader; reads pass a ReadIndex barrier, so a write acknowledged by one
 * node is visible on every node at once). Cluster-mode clients (ioredis Cluster, createCluster,
 * redis-cli -c) are covered by ../cluster-clients.spec.ts.
 */
import { expect } from 'chai';
import { createClient } from 'redis';
import { redisCli } from '../harness.js';
import { Cluster, HOST, client, skipUnlessClusterSupported } from './cluster-harness.js';

describe('cluster: redis-cli, ioredis and node-redis against any node', function () {
  this.timeout(60_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
    cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 });
    await cluster.waitForLeader();
    await cluster.waitUntilServing();
  });

  after(async function () {
    await cluster?.destroy();
    cluster = undefined;
  });

  function nodes(): Cluster {
    if (cluster === undefined) throw new Error('no cluster');
    return cluster;
  }

  it('redis-cli: SET through each node, GET and INCR through every node', async function () {
    const c = nodes();
    for (const writer of c.nodes) {
      const key = `cli:${writer.id}`;
      const set = await redisCli(writer.port, ['SET', key, `from-${writer.id}`], undefined, 10_000);
      expect(set.stdout.trim(), set.stderr).to.equal('OK');
      for (const reader of c.nodes) {
        const get = await redisCli(reader.port, ['GET', key], undefined, 10_000);
        expect(get.stdout.trim(), `GET ${key} on ${reader.id}`).to.equal(`from-${writer.id}`);
      }
    }
    const counts: string[] = [];
    for (const node of c.nodes)
      counts.push((await redisCli(node.port, ['INCR', 'cli:counter'], undefined, 10_000)).stdout.trim());
    expect(counts).to.deep.equal(['1', '2', '3']);
  });

  it('ioredis: a pipeline through each node, read back through every node', async function () {
    const c = nodes();
    const clients = c.nodes.map((n) => client(n.port, 10_000));
    try {
      for (const [i, writer] of clients.entries()) {
        const pipeline = writer.pipeline();
        for (let k = 0; k < 50; k++) pipeline.set(`io:${i}:${k}`, `v${i}-${k}`);
        const replies = (await pipeline.exec()) ?? [];
        expect(replies.map(([err, reply]) => (err === null ? reply : err.message))).to.deep.equal(
          Array(50).fill('OK'),
        );
      }
      const keys = c.nodes.flatMap((_, i) => Array.from({ length: 50 }, (_, k) => `io:${i}:${k}`));
      const expected = c.nodes.flatMap((_, i) => Array.from({ length: 50 }, (_, k) => `v${i}-${k}`));
      for (const reader of clients) expect(await reader.mget(...keys)).to.deep.equal(expected);
      expect(await clients[1]?.del('io:0:0')).to.equal(1);
      for (const reader of clients) expect(await reader.exists('io:0:0')).to.equal(0);
    } finally {
      for (const redis of clients) redis.disconnect();
    }
  });

  it('concurrent reads from fresh connections on every node all pass the read barrier', async function () {
    const c = nodes();
    const clients = c.nodes.flatMap((n) => Array.from({ length: 8 }, () => client(n.port, 10_000)));
    try {
      expect(await clients[0]?.set('concurrent', 'seen-everywhere')).to.equal('OK');
      const replies = await Promise.all(
        clients.map((redis) =>
          redis.get('concurrent').then(
            (v) => String(v),
            (err: unknown) => (err instanceof Error ? err.message : String(err)),
          ),
        ),
      );
      expect(replies).to.deep.equal(Array(clients.length).fill('seen-everywhere'));
    } finally {
      for (const redis of clients) redis.disconnect();
    }
  });

  it('node-redis (RESP2 and RESP3): SET with PX through a follower, TTL and GET everywhere', async function () {
    const c = nodes();
    const leader = await c.waitForLeader();
    const follower = c.nodes.find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');
    for (const protocol of [2, 3] as const) {
      const clients = c.nodes.map((n) =>
        createClient({ socket: { host: HOST, port: n.port, connectTimeout: 5_000 }, RESP: protocol }),
      );
      for (const redis of clients) redis.on('error', () => undefined);
      try {
        await Promise.all(clients.map((redis) => redis.connect()));
        const writer = clients[c.nodes.indexOf(follower)];
        if (writer === undefined) throw new Error('no follower client');
        const key = `nr:${protocol}`;
        expect(await writer.set(key, `resp${protocol}`, { PX: 600_000 })).to.equal('OK');
        for (const reader of clients) {
          expect(await reader.get(key)).to.equal(`resp${protocol}`);
          const ttl = await reader.pTTL(key);
          expect(ttl).to.be.within(1, 600_000);
        }
      } finally {
        await Promise.all(clients.map((redis) => redis.quit().catch(() => redis.destroy())));
      }
    }
  });
});
