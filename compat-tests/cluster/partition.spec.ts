/**
 * A network partition isolating the leader from the other two nodes, made with iptables on
 * loopback by compat-tests/cluster/iptables.ts: each node runs as its own uid and the rules
 * drop the isolated node's peer traffic only (client RESP ports are untouched). The rules carry
 * a comment naming this test run and are deleted one by one (exactly those added) after the
 * test, even when it fails. Skipped with a message when iptables is not usable (not root, not
 * installed).
 *
 * What a user checks: the old leader stops acknowledging writes (each fails with an error,
 * never OK, and never hangs) within its election timeout; once it knows it cannot reach a
 * majority it says so at once (`-CLUSTERDOWN no quorum ...`) instead of waiting for a leader;
 * the majority elects a new leader and keeps serving, and after healing the old leader follows
 * the new one with the same data as everyone else.
 */
import { expect } from 'chai';
import { waitFor } from '../harness.js';
import {
  Cluster,
  WriteLoad,
  client,
  skipUnlessClusterSupported,
  verifyWrites,
  type WriteRecord,
} from './cluster-harness.js';
import { Partition, skipUnlessIptablesUsable } from './iptables.js';

const TICK_MS = 50;
const ELECTION_TICKS = 10;
const ELECTION_TIMEOUT_MS = TICK_MS * ELECTION_TICKS;
/** How long a node waits for a leader before -CLUSTERDOWN (server/node.ts: 3 election timeouts). */
const LEADER_WAIT_MS = 3 * ELECTION_TIMEOUT_MS;
const UIDS = [41001, 41002, 41003];
const COMMENT = `concord-partition-test-${process.pid}`;

describe('cluster: partition isolating the leader (iptables)', function () {
  this.timeout(90_000);
  let cluster: Cluster | undefined;
  const partition = new Partition(COMMENT);

  before(async function () {
    await skipUnlessClusterSupported(this);
    await skipUnlessIptablesUsable(this);
  });

  afterEach(async function () {
    try {
      await partition.heal();
    } finally {
      await cluster?.destroy();
      cluster = undefined;
    }
  });

  it('the isolated leader stops acknowledging writes, the majority elects a leader, healing leaves no divergence', async function () {
    const c = (cluster = await Cluster.start({
      size: 3,
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      uids: UIDS,
    }));
    const oldLeader = await c.waitForLeader();
    await c.waitUntilServing();
    const majority = c.nodes.filter((n) => n !== oldLeader);

    // Writes through the majority's nodes run through the whole test.
    const load = new WriteLoad({
      ports: () => majority.map((n) => n.port),
      writers: 2,
      maxWritesPerWriter: 30_000,
      maxDurationMs: 40_000,
      prefix: 'part-majority',
    });
    const isolatedWrites: WriteRecord[] = [];
    const oldLeaderClient = client(oldLeader.port, 5_000);
    try {
      await partition.isolate(oldLeader, majority);
      const cutAt = Date.now();

      // The old leader steps down (CheckQuorum) within about its election timeout.
      const stepDownMs = await waitFor(
        `${oldLeader.id} to stop being leader`,
        async () =>
          (await oldLeader.raftInfo()).get('raft_role') !== 'leader' ? Date.now() - cutAt : undefined,
        10_000,
      );
      const newLeader = await c.waitForLeader(10_000, majority);
      const electedMs = Date.now() - cutAt;
      console.log(
        `      ${oldLeader.id} isolated: stepped down after ${stepDownMs} ms; ${newLeader.id} elected after ${electedMs} ms`,
      );
      expect(stepDownMs, 'ms until the isolated leader steps down').to.be.below(
        3 * ELECTION_TIMEOUT_MS + 1_000,
      );

      // Every write and read sent to the isolated node fails with an error, never OK, never
      // hangs: it stepped down because CheckQuorum failed, so it knows it has no quorum and
      // answers at once, where it used to wait its whole leader wait (LEADER_WAIT_MS) first.
      for (let i = 0; i < 5; i++) {
        const record: WriteRecord = {
          key: `part-isolated:${i}`,
          value: `iso-${i}-${Date.now()}`,
          outcome: 'unknown',
        };
        isolatedWrites.push(record);
        const sent = Date.now();
        const reply = await oldLeaderClient.set(record.key, record.value).then(
          (ok) => `reply ${ok}`,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
        const tookMs = Date.now() - sent;
        expect(reply, `SET on the isolated node`).to.not.equal('reply OK');
        expect(
          reply,
          `running: ${String(oldLeader.isRunning())}; stderr: ${oldLeader.stderr().slice(-1500)}`,
        ).to.match(
          /^CLUSTERDOWN no quorum: this node cannot reach a majority \(last leader contact \d+ ms ago\)$/,
        );
        // The fast path, not the end of a leader wait: the reply came before that wait could end.
        expect(tookMs, `ms for the isolated node's SET to fail`).to.be.below(LEADER_WAIT_MS);
        if (i === 0) console.log(`      SET on the isolated node: "${reply}" after ${tookMs} ms`);
      }
      const read = await oldLeaderClient.get('part-isolated:0').then(
        (v) => `value ${String(v)}`,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      expect(read, 'GET on the isolated node').to.match(/^CLUSTERDOWN no quorum: /);

      // The majority keeps serving.
      const acksBefore = load.ackCount();
      await waitFor(
        `the majority to acknowledge writes (${acksBefore} so far)`,
        () => (load.ackCount() >= acksBefore + 100 ? true : undefined),
        15_000,
      );
    } finally {
      oldLeaderClient.disconnect();
      await partition.heal();
    }

    // Healed: the old leader follows the new leader and has the same data.
    const leader = await c.waitForLeader(15_000, c.nodes);
    await load.stop();
    expect(load.acked().length).to.be.greaterThan(100);
    const commit = await leader.raftNumber('raft_commit_index');
    await c.waitForApplied(commit, c.nodes);
    expect((await oldLeader.raftInfo()).get('raft_role')).to.equal(
      leader === oldLeader ? 'leader' : 'follower',
    );
    const all = [...load.records, ...isolatedWrites];
    const seen: (string | null)[][] = [];
    for (const node of c.nodes) {
      expect(await verifyWrites(node.port, all), `violations on ${node.id}`).to.deep.equal([]);
      const redis = client(node.port);
      try {
        seen.push(await redis.mget(...isolatedWrites.map((r) => r.key)));
      } finally {
        redis.disconnect();
      }
    }
    // The writes refused during the partition have one outcome, the same on every node.
    expect(seen[1]).to.deep.equal(seen[0]);
    expect(seen[2]).to.deep.equal(seen[0]);
  });
});
