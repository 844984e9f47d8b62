/**
 * A follower killed during 50,000 writes catches up by snapshot when restarted. The nodes run
 * with --snapshot-entries 1000, so the leader compacts its log far past the point where the
 * follower stopped and can only bring it up to date with InstallSnapshot. What a user checks:
 * INFO raft on the restarted follower reaches the leader's commit index, its snapshot index
 * is past where it stopped, it logged "snapshot installed", and it serves every acknowledged
 * write.
 */
import { expect } from 'chai';
import {
  Cluster,
  client,
  skipUnlessClusterSupported,
  verifyWrites,
  type WriteRecord,
} from './cluster-harness.js';

const WRITES = 50_000;
const PIPELINE = 1_000;
const PIPELINES_IN_FLIGHT = 2;
const LOAD_DEADLINE_MS = 60_000;

describe('cluster: follower catch-up by snapshot', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  afterEach(async function () {
    // A failure shows each node's last log lines: a crash (ECONNRESET) names its cause there.
    if (this.currentTest?.state === 'failed')
      for (const n of cluster?.nodes ?? []) console.log(`--- ${n.id} stderr:\n${n.stderr().slice(-3000)}`);
    await cluster?.destroy();
    cluster = undefined;
  });

  it(`a follower killed during ${WRITES} pipelined writes is brought up to date by InstallSnapshot`, async function () {
    const c = (cluster = await Cluster.start({
      size: 3,
      tickMs: 50,
      electionTicks: 10,
      snapshotEntries: 1_000,
    }));
    const leader = await c.waitForLeader();
    await c.waitUntilServing();
    const follower = c.nodes.find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');

    const records: WriteRecord[] = [];
    const redis = client(leader.port, 20_000);
    const started = Date.now();
    let next = 0;
    let stoppedAtIndex: number | undefined;
    try {
      const worker = async (): Promise<void> => {
        while (next < WRITES && Date.now() - started < LOAD_DEADLINE_MS) {
          const batch: WriteRecord[] = [];
          for (let i = 0; i < PIPELINE && next < WRITES; i++, next++) {
            batch.push({ key: `snap:${next}`, value: `v${next}`, outcome: 'unknown' });
          }
          records.push(...batch);
          const pipeline = redis.pipeline();
          for (const r of batch) pipeline.set(r.key, r.value);
          const replies = (await pipeline.exec()) ?? [];
          replies.forEach(([err, reply], i) => {
            const record = batch[i];
            if (record !== undefined && err === null && reply === 'OK') record.outcome = 'acked';
          });
          // The follower dies a fifth of the way in, mid-load.
          if (stoppedAtIndex === undefined && next >= WRITES / 5) {
            stoppedAtIndex = await follower.raftNumber('raft_applied_index');
            await follower.kill9();
          }
        }
      };
      await Promise.all(Array.from({ length: PIPELINES_IN_FLIGHT }, worker));
    } finally {
      redis.disconnect();
    }
    const loadMs = Date.now() - started;
    const acked = records.filter((r) => r.outcome === 'acked').length;
    console.log(
      `      ${acked}/${records.length} writes acked in ${loadMs} ms (${Math.round((acked * 1000) / loadMs)}/s)`,
    );
    expect(records.length, 'writes attempted within the deadline').to.equal(WRITES);
    expect(acked).to.be.at.least(WRITES * 0.99);
    expect(stoppedAtIndex).to.be.a('number');

    const leaderInfo = await leader.raftInfo();
    const leaderFirst = Number(leaderInfo.get('raft_log_first_index'));
    expect(leaderFirst, 'the leader compacted past the stopped follower').to.be.greaterThan(
      (stoppedAtIndex ?? 0) + 1,
    );

    const restartedAt = Date.now();
    await follower.start();
    const commit = await leader.raftNumber('raft_commit_index');
    await c.waitForApplied(commit, [follower], 30_000);
    const caughtUpMs = Date.now() - restartedAt;
    const info = await follower.raftInfo();
    console.log(
      `      follower ${follower.id} stopped at ${stoppedAtIndex}, caught up to ${commit} in ${caughtUpMs} ms ` +
        `(snapshot index ${info.get('raft_snapshot_last_index')}, log first ${info.get('raft_log_first_index')})`,
    );
    expect(Number(info.get('raft_snapshot_last_index'))).to.be.greaterThan(stoppedAtIndex ?? 0);
    expect(follower.stderr()).to.include('snapshot installed');
    const violations = await verifyWrites(follower.port, records);
    expect(violations).to.deep.equal([]);
  });
});
