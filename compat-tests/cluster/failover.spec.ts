/**
 * Crash tests with real node processes: kill -9 the leader while ioredis clients write, and
 * kill -9 every node mid-load. What a user checks: the cluster serves again within a few
 * seconds, and every write that was acknowledged is readable afterwards on every node (writes
 * that errored or timed out are "unknown": either outcome is allowed, but no key may hold a
 * value that was never written to it).
 */
import { expect } from 'chai';
import {
  Cluster,
  WriteLoad,
  firstAckAfter,
  skipUnlessClusterSupported,
  verifyWrites,
  waitForAcks,
} from './cluster-harness.js';

describe('cluster: kill -9 under load', function () {
  this.timeout(90_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a new leader serves within a few seconds of kill -9 of the leader; no acknowledged write is lost', async function () {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    const oldLeader = await c.waitForLeader();
    const load = new WriteLoad({
      ports: () => c.running().map((n) => n.port),
      writers: 4,
      maxWritesPerWriter: 3_000,
      maxDurationMs: 20_000,
      prefix: 'kill-leader',
    });
    try {
      await waitForAcks(load, 200);
      const killedAt = Date.now();
      await oldLeader.kill9();
      const survivors = c.running();
      const newLeader = await c.waitForLeader(10_000, survivors);
      const electedMs = Date.now() - killedAt;
      expect(newLeader.id).to.not.equal(oldLeader.id);
      const before = load.ackCount();
      await waitForAcks(load, before + 200);
      const firstAck = firstAckAfter(load, killedAt);
      expect(firstAck, 'an acknowledged write after the kill').to.not.equal(undefined);
      const servedMs = (firstAck ?? Infinity) - killedAt;
      console.log(
        `      leader ${oldLeader.id} killed: ${newLeader.id} leader after ${electedMs} ms, first ack ${servedMs} ms`,
      );
      expect(servedMs, 'ms until a write is acknowledged again').to.be.below(5_000);
    } finally {
      await load.stop();
    }
    const acked = load.acked();
    expect(acked.length).to.be.at.least(400);

    // The old leader comes back with its data dir and catches up as a follower.
    await oldLeader.start();
    const leader = await c.waitForLeader();
    const commit = await leader.raftNumber('raft_commit_index');
    await c.waitForApplied(commit, c.nodes);
    for (const node of c.nodes) {
      const violations = await verifyWrites(node.port, load.records);
      expect(violations, `violations on ${node.id}`).to.deep.equal([]);
    }
    const unknown = load.records.length - acked.length;
    console.log(
      `      ${acked.length} acked, ${unknown} unknown; all acked readable on ${c.nodes.length} nodes`,
    );
  });

  it('kill -9 of every node mid-load, then restart: every acknowledged write is still there', async function () {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    const load = new WriteLoad({
      ports: () => c.nodes.map((n) => n.port),
      writers: 4,
      maxWritesPerWriter: 3_000,
      maxDurationMs: 20_000,
      prefix: 'kill-all',
    });
    try {
      await waitForAcks(load, 500);
      // All three at once, while writes are in flight.
      await c.killAll();
    } finally {
      await load.stop();
    }
    const acked = load.acked();
    expect(acked.length).to.be.at.least(500);

    const restartedAt = Date.now();
    await Promise.all(c.nodes.map((n) => n.start()));
    const leader = await c.waitForLeader();
    console.log(`      restarted: ${leader.id} leader after ${Date.now() - restartedAt} ms`);
    const commit = await leader.raftNumber('raft_commit_index');
    await c.waitForApplied(commit, c.nodes);
    for (const node of c.nodes) {
      const violations = await verifyWrites(node.port, load.records);
      expect(violations, `violations on ${node.id}`).to.deep.equal([]);
    }
  });
});
