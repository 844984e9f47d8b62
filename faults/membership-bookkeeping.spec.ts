/**
 * Regression (found by `npm run chaos`, seed 20261125): the suite's idea of the membership must
 * stay the cluster's. A disk fault's heal re-added (wiped, --join, RAFT.NODE ADD) a follower that
 * a membership overlay had removed meanwhile, without counting it as a member again; the overlay
 * later took it for a spare and wiped it while it was a live voter. With another node wiped, two
 * of four voters had empty logs and the cluster could never elect again. That is an operator
 * error the suite must never commit: Concord was right to stay unavailable.
 *
 * A user checks, on a real 3-node cluster plus a spare (loopback hosts):
 *   - a disk-fault victim removed meanwhile stays down as a spare, and the cluster's voters and
 *     learners are exactly the suite's members after the heal and after the next ADD;
 *   - the membership overlay refuses to wipe a "spare" the cluster still counts, reports it as
 *     an anomaly, and leaves that node running with its data.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FaultCluster } from './cluster.js';
import { runClock } from './history.js';
import { Hosts, type Host } from './hosts.js';
import { nemesisByName, type NemesisContext } from './nemeses.js';
import { Prng } from './prng.js';

describe('faults/nemeses: the suite keeps its membership in step with the cluster', function () {
  this.timeout(180_000);
  let dir: string;
  let hosts: Hosts;
  let cluster: FaultCluster;
  let anomalies: string[];
  let ctx: NemesisContext;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-bookkeeping-'));
    hosts = await Hosts.create({ slots: 4, runDir: dir, seed: 7, mode: 'loopback' });
    cluster = new FaultCluster(hosts, { size: 3, tickMs: 50, electionTicks: 10, snapshotEntries: 500 });
    anomalies = [];
    ctx = {
      cluster,
      hosts,
      prng: new Prng(7),
      now: runClock(),
      record: () => undefined,
      anomaly: (nemesis, detail) => anomalies.push(`${nemesis}: ${detail}`),
    };
    await cluster.start();
    await cluster.waitForLeader(20_000);
    await cluster.waitUntilServing(20_000);
    for (let i = 0; i < 20; i++) await cluster.admin(10_000, 'SET', `k${i}`, `v${i}`);
  });

  afterEach(async () => {
    await hosts.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  async function configured(): Promise<string[]> {
    const leader = await cluster.waitForLeader(20_000);
    const members = await cluster.configuredMembers(leader);
    if (members === undefined) throw new Error(`${leader.id} did not answer INFO raft`);
    return members.sort();
  }

  const ids = (list: Iterable<Host>): string[] => [...list].map((h) => h.id).sort();

  it('a disk-fault victim removed meanwhile stays down as a spare; the next ADD re-adds it', async () => {
    const fault = await nemesisByName('disk-bitflip-wal').start(ctx);
    const victim = hosts.hosts.find((h) => fault.detail.startsWith(`${h.id}:`))!;
    expect(victim, fault.detail).to.not.equal(undefined);
    // The membership overlay's REMOVE, while the victim is down and damaged.
    expect(await cluster.admin(15_000, 'RAFT.NODE', 'REMOVE', victim.id)).to.equal('OK');
    cluster.members.delete(victim);

    await fault.heal();
    expect(victim.isRunning(), 'the removed victim stays down').to.equal(false);
    expect(await configured()).to.deep.equal(ids(cluster.members));

    // The overlay adds a spare (wiped first): the cluster and the suite still agree.
    await nemesisByName('membership').start(ctx);
    expect(await configured()).to.deep.equal(ids(cluster.members));
    expect(cluster.members.size).to.equal(3);
    expect(anomalies).to.deep.equal([]);
  });

  it('the membership overlay never wipes a "spare" the cluster still counts', async () => {
    const leader = await cluster.waitForLeader(20_000);
    // Bookkeeping drift: a live voter the suite has lost track of (the first host in order, so
    // it is the spare the overlay picks).
    const voter = hosts.hosts.find((h) => h !== leader && cluster.members.has(h))!;
    cluster.members.delete(voter);
    expect(cluster.spares()[0]).to.equal(voter);

    await nemesisByName('membership').start(ctx);
    expect(anomalies.join('\n')).to.match(
      new RegExp(`suite bookkeeping: ${voter.id} is a spare to the suite but a member`),
    );
    expect(voter.isRunning(), 'not killed').to.equal(true);
    expect(existsSync(path.join(voter.dataDir, 'raft'))).to.equal(true);
    expect((await readdir(path.join(voter.dataDir, 'raft', 'wal'))).length).to.be.greaterThan(0);
    expect(cluster.members.has(voter)).to.equal(true);
    expect(await configured()).to.deep.equal(ids(cluster.members));
  });
});
