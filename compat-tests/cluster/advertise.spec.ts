/**
 * What a node tells clients about itself (CLUSTER SLOTS, CLUSTER NODES, -MOVED) when it listens
 * on every interface. Regression (fault-suite finding, docs/operations.md): a node started with
 * --bind 0.0.0.0 and --join advertised itself as 0.0.0.0 once it led, because it named itself
 * by its bind address instead of the address the cluster was given for it (RAFT.NODE ADD).
 *
 * A user checks, with every node bound to 0.0.0.0 and answering -MOVED: after a --join node
 * takes the lead, CLUSTER SLOTS and CLUSTER NODES on it and on a follower name it by its
 * RAFT.NODE ADD address, a follower's -MOVED points there, and ioredis in cluster mode
 * reaches it; with --advertise, the node names itself as told.
 */
import { expect } from 'chai';
import { Cluster as RedisCluster } from 'ioredis';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported, type ClusterNode } from './cluster-harness.js';

async function call(node: ClusterNode, ...args: string[]): Promise<unknown> {
  const redis = client(node.port, 10_000);
  try {
    return await redis.call(args[0]!, ...args.slice(1));
  } finally {
    redis.disconnect();
  }
}

/** [host, port] of the slots' owner in CLUSTER SLOTS. */
async function slotsOwner(node: ClusterNode): Promise<[string, number]> {
  const slots = (await call(node, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const master = slots[0]![2];
  return [master[0], master[1]];
}

/** The master's line of CLUSTER NODES (ids there are 40-hex names derived from node ids). */
async function masterLine(node: ClusterNode): Promise<string> {
  const text = String(await call(node, 'CLUSTER', 'NODES'));
  expect(text).to.not.include('0.0.0.0');
  const line = text.split('\n').find((l) => l.split(' ')[2]?.split(',').includes('master') === true);
  if (line === undefined) throw new Error(`no master in CLUSTER NODES:\n${text}`);
  return line;
}

describe('cluster: nodes bound to 0.0.0.0 advertise a reachable address', function () {
  this.timeout(90_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a --join node that leads names itself by its RAFT.NODE ADD address in CLUSTER SLOTS/NODES and -MOVED', async function () {
    const c = (cluster = await Cluster.start({
      size: 3,
      tickMs: 50,
      electionTicks: 10,
      extraArgs: ['--bind', '0.0.0.0', '--cluster-redirect', 'yes'],
    }));
    const leader = await c.waitForLeader();
    const n4 = await c.allocateNode();
    await n4.start('join');
    expect(await call(leader, 'RAFT.NODE', 'ADD', n4.id, n4.address)).to.equal('OK');
    await waitFor(
      `${n4.id} to be a voter`,
      async () =>
        (await leader.raftInfo()).get('raft_voters')?.split(',').includes(n4.id) === true ? true : undefined,
      20_000,
    );
    expect(await call(leader, 'RAFT.TRANSFER-LEADER', n4.id)).to.equal('OK');
    expect((await c.waitForLeader(20_000)).id).to.equal(n4.id);
    const follower = c.nodes.find((n) => n !== n4)!;

    // The leader about itself, and a follower about the leader.
    for (const node of [n4, follower]) {
      await waitFor(
        `${node.id} to name ${n4.id} as the slots' owner`,
        async () => ((await slotsOwner(node))[0] !== '' ? true : undefined),
        10_000,
      );
      expect(await slotsOwner(node), node.id).to.deep.equal(['127.0.0.1', n4.port]);
      const line = await masterLine(node);
      expect(line.split(' ')[1], line).to.equal(`127.0.0.1:${n4.port}@${n4.peerPort}`);
    }
    expect((await masterLine(n4)).split(' ')[2]).to.equal('myself,master');

    // A follower redirects key commands to the leader's reachable address.
    const moved = await call(follower, 'SET', 'k', 'v').then(
      () => undefined,
      (err: unknown) => (err as Error).message,
    );
    expect(moved).to.match(new RegExp(`^MOVED \\d+ 127\\.0\\.0\\.1:${n4.port}$`));

    // A cluster-mode client seeded with a follower only learns the leader's address from the
    // cluster and writes through it (with 0.0.0.0 it would dial a wildcard).
    const rc = new RedisCluster([{ host: '127.0.0.1', port: follower.port }], {
      enableReadyCheck: false,
      slotsRefreshTimeout: 5_000,
      redisOptions: { commandTimeout: 5_000, connectTimeout: 2_000 },
    });
    rc.on('error', () => undefined);
    try {
      expect(await rc.set('via-cluster-client', 'yes')).to.equal('OK');
      expect(await call(n4, 'GET', 'via-cluster-client')).to.equal('yes');
    } finally {
      rc.disconnect();
    }
  });

  it('--advertise names the node as told, ahead of the bootstrap list', async function () {
    const c = (cluster = await Cluster.start({
      size: 1,
      tickMs: 50,
      electionTicks: 10,
      extraArgs: ['--bind', '0.0.0.0', '--advertise', 'localhost'],
    }));
    const n1 = await c.waitForLeader();
    expect(await slotsOwner(n1)).to.deep.equal(['localhost', n1.port]);
    expect((await masterLine(n1)).split(' ')[1]).to.equal(`localhost:${n1.port}@${n1.peerPort}`);
  });
});
