/**
 * Regression (fault-suite finding 3, docs/faults.md): a follower whose disk lost the tail of its
 * log after it had fsynced and acknowledged it (the `disk-truncate-wal-tail` nemesis) used to
 * start, cut the "torn" record, and crash on the leader's first heartbeat with an assertion
 * (`raft log: commit N beyond last index N-1`), again on every restart.
 *
 * Real processes with file storage on loopback hosts (runs anywhere). A user checks:
 * - the damaged follower stops with ONE message naming its data directory and the lost range,
 *   and the distinct exit code (65), no assertion;
 * - restarted, it refuses at once (never prints "Concord listening on", never serves);
 * - the documented procedure (remove, wipe, --join, RAFT.NODE ADD) brings it back with the data.
 */
import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { truncateFile } from '../raft/failpoints.js';
import { decodeEntry, RecordType, scanSegment } from '../raft/segment.js';
import { EXIT_LOST_ENTRIES } from '../server/exit-codes.js';
import { adminCall, FaultCluster, ownRead, pollUntil, StartFailed } from './cluster.js';
import { Hosts, type Host } from './hosts.js';

const WIPE_ADVICE =
  "this node's log is behind what it acknowledged; wipe its data directory and re-add it to the cluster (docs/operations.md#replace-a-node)";

/** Cuts the newest WAL segment inside its last entry record; returns that entry's index. */
async function cutLastEntry(host: Host): Promise<number> {
  const walDir = path.join(host.dataDir, 'raft', 'wal');
  const names = (await readdir(walDir)).filter((n) => n.endsWith('.wal')).sort();
  const file = path.join(walDir, names[names.length - 1]!);
  const scan = scanSegment(await readFile(file), file, true);
  const last = scan.records.filter((r) => r.type === RecordType.Entry).pop();
  if (last === undefined) throw new Error(`no entry record in ${file}`);
  // Inside the record, as a torn write would leave it: the node cannot tell it from one.
  await truncateFile(file, last.offset + 7);
  return decodeEntry(last.payload).index;
}

/** The plain `concord: ...` lines of a process's stderr (the JSON log lines start with `{`). */
function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('concord: '));
}

describe('faults: a follower that lost acknowledged log entries', function () {
  this.timeout(120_000);
  let hosts: Hosts | undefined;
  let dir: string | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-lost-tail-'));
  });

  after(async () => {
    await hosts?.cleanup();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('stops with one message and exit code 65, refuses on restart, and comes back wiped and re-added', async () => {
    const h = (hosts = await Hosts.create({ slots: 3, runDir: dir!, seed: 1, mode: 'loopback' }));
    const c = new FaultCluster(h, { size: 3, tickMs: 50, electionTicks: 10, snapshotEntries: 100_000 });
    await c.start();
    await c.waitUntilServing(20_000);
    const leader = await c.waitForLeader(20_000);
    for (let i = 0; i < 30; i++)
      expect(await adminCall(leader, 2_000, 'SET', `k${i}`, `v${i}`)).to.equal('OK');
    await c.waitConverged(20_000);
    const victim = c.runningMembers().find((m) => m !== leader)!;

    // The victim applied everything, so it acknowledged every entry it holds; its disk then
    // loses the tail of the newest segment from inside the last entry record on.
    await c.kill9(victim);
    const lostIndex = await cutLastEntry(victim);

    // It starts (nothing on disk tells the cut from a torn write), then the leader's heartbeat
    // says it acknowledged more than it holds. startNode may see it exit before or after it
    // printed the listening line.
    await c.startNode(victim, 'bootstrap').catch((err: unknown) => {
      if (!(err instanceof StartFailed)) throw err;
    });
    const first = victim.node!;
    const status = await Promise.race([
      first.exited,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`${victim.id} did not stop: ${first.stderr().slice(-2000)}`)),
          20_000,
        ),
      ),
    ]);
    const stderr = first.stderr();
    expect(status.code, stderr.slice(-2000)).to.equal(EXIT_LOST_ENTRIES);
    const lines = plainLines(stderr);
    expect(lines, stderr.slice(-2000)).to.have.length(1);
    const m = /^concord: (.*): lost acknowledged entries (\d+)\.\.(\d+): (.*)$/.exec(lines[0]!);
    expect(m, lines[0]).to.not.equal(null);
    expect(m![1]).to.equal(victim.dataDir);
    expect(Number(m![2])).to.equal(lostIndex);
    expect(Number(m![3])).to.be.at.least(lostIndex);
    expect(m![4]).to.equal(WIPE_ADVICE);
    expect(stderr).to.not.match(/AssertionError|beyond last index/);
    console.log(`      ${victim.id} stopped: ${lines[0]}`);

    // Restarted (a supervisor would): refuses at once, before listening, with the same message.
    const refused = await c.startNode(victim, 'bootstrap').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).to.be.instanceOf(StartFailed);
    const again = victim.node!;
    expect((await again.exited).code).to.equal(EXIT_LOST_ENTRIES);
    expect(again.stdout()).to.not.include('Concord listening on');
    expect(plainLines(again.stderr())).to.deep.equal(lines);

    // The documented procedure: remove, wipe, start empty with --join, add; it catches up.
    expect(await c.admin(20_000, 'RAFT.NODE', 'REMOVE', victim.id)).to.equal('OK');
    await c.wipe(victim);
    await c.startNode(victim, 'join');
    expect(await c.admin(20_000, 'RAFT.NODE', 'ADD', victim.id, victim.address)).to.equal('OK');
    await pollUntil(
      `${victim.id} to serve k29 from its own state machine`,
      async () => ((await ownRead(victim, 'k29')) === 'v29' ? true : undefined),
      20_000,
    );
  });
});
