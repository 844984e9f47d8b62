/**
 * Membership changes under load: a fourth node started with --join is added with RAFT.NODE ADD
 * on the leader (joins as a learner, promoted to voter once caught up), then a founding
 * follower is removed with RAFT.NODE REMOVE, while ioredis clients keep writing. What a user
 * checks: INFO raft lists the voters as expected after each step, and every acknowledged write
 * is readable on every remaining member.
 */
import { expect } from 'chai';
import { waitFor } from '../harness.js';
import {
  Cluster,
  WriteLoad,
  client,
  skipUnlessClusterSupported,
  verifyWrites,
  waitForAcks,
  type ClusterNode,
} from './cluster-harness.js';

async function voters(node: ClusterNode): Promise<string[]> {
  const list = (await node.raftInfo()).get('raft_voters') ?? '';
  return list === '' ? [] : list.split(',').sort();
}

async function raftNode(leader: ClusterNode, ...args: string[]): Promise<unknown> {
  const redis = client(leader.port, 20_000);
  try {
    return await redis.call('RAFT.NODE', ...args);
  } finally {
    redis.disconnect();
  }
}

describe('cluster: add and remove members under load', function () {
  this.timeout(90_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a --join node added with RAFT.NODE ADD becomes a voter, a follower is removed, no acked write is lost', async function () {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    const members = new Set<ClusterNode>(c.nodes);
    const load = new WriteLoad({
      ports: () => [...members].map((n) => n.port),
      writers: 4,
      maxWritesPerWriter: 20_000,
      maxDurationMs: 40_000,
      prefix: 'members',
    });
    let victim: ClusterNode | undefined;
    try {
      await waitForAcks(load, 200);

      const added = await c.allocateNode();
      await added.start('join');
      expect(await raftNode(leader, 'ADD', added.id, added.address)).to.equal('OK');
      const promotedAt = Date.now();
      await waitFor(
        `${added.id} to be a voter`,
        async () => ((await voters(leader)).includes(added.id) ? true : undefined),
        20_000,
      );
      console.log(`      ${added.id} promoted to voter ${Date.now() - promotedAt} ms after RAFT.NODE ADD`);
      members.add(added);
      await waitForAcks(load, load.ackCount() + 200);

      victim = c.nodes.find((n) => n !== leader && n !== added);
      if (victim === undefined) throw new Error('no follower to remove');
      const removed = victim;
      members.delete(removed);
      expect(await raftNode(leader, 'REMOVE', removed.id)).to.equal('OK');
      await waitFor(
        `${removed.id} to leave the voters`,
        async () => (!(await voters(leader)).includes(removed.id) ? true : undefined),
        10_000,
      );
      expect(await voters(leader)).to.deep.equal([...members].map((n) => n.id).sort());
      await waitForAcks(load, load.ackCount() + 200);
    } finally {
      await load.stop();
    }
    await victim?.stop();

    const remaining = [...members];
    const finalLeader = await c.waitForLeader(10_000, remaining);
    const commit = await finalLeader.raftNumber('raft_commit_index');
    await c.waitForApplied(commit, remaining);
    const acked = load.acked().length;
    expect(acked).to.be.at.least(600);
    for (const node of remaining) {
      expect(await verifyWrites(node.port, load.records), `violations on ${node.id}`).to.deep.equal([]);
    }
    console.log(
      `      ${acked} acked, ${load.records.length - acked} unknown; all acked readable on ${remaining.map((n) => n.id).join(',')}`,
    );
  });
});
