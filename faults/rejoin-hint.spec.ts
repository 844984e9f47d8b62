/**
 * Regression (found by the fault suite, wipe-restart after a membership change): a leader that
 * was itself started with --join sent learners a members hint naming itself by its --bind host
 * and bound peer port (0.0.0.0:<port> when bound to every interface) instead of the address the
 * cluster was given, so a learner dialled itself and never caught up. Needs nodes bound to
 * 0.0.0.0 with an advertised address, which the namespace hosts give (skipped without them).
 *
 * A user checks: after n4 joins and becomes leader, a wiped and re-added n2 catches up and
 * serves a key written before, within a bound.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { adminCall, FaultCluster, ownRead, pollUntil } from './cluster.js';
import { Hosts, netnsUnusable, type Host } from './hosts.js';

describe('faults: a --join leader gives learners the right peer addresses', function () {
  this.timeout(120_000);
  let hosts: Hosts | undefined;
  let dir: string | undefined;

  before(async function () {
    const why = await netnsUnusable();
    if (why !== undefined) {
      console.log(`      skipped: needs network namespaces (${why})`);
      this.skip();
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-rejoin-'));
  });

  after(async () => {
    await hosts?.cleanup();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a wiped node re-added while a joined node leads catches up', async () => {
    const h = (hosts = await Hosts.create({ slots: 4, runDir: dir!, seed: 1, mode: 'netns' }));
    const c = new FaultCluster(h, { size: 3, tickMs: 50, electionTicks: 10, snapshotEntries: 100 });
    await c.start();
    await c.waitUntilServing(20_000);
    const [, n2, , n4] = h.hosts as [Host, Host, Host, Host];
    for (let i = 0; i < 50; i++) expect(await adminCall(n2, 2_000, 'SET', `k${i}`, `v${i}`)).to.equal('OK');

    // n4 joins and takes the lead.
    await c.startNode(n4, 'join');
    expect(await c.admin(20_000, 'RAFT.NODE', 'ADD', n4.id, n4.address)).to.equal('OK');
    c.members.add(n4);
    await pollUntil(
      'n4 to be promoted to voter',
      async () => ((await c.raftInfo(n4)).get('raft_voters')?.split(',').includes('n4') === true ? true : undefined),
      20_000,
    );
    await c.admin(20_000, 'RAFT.TRANSFER-LEADER', n4.id);
    expect((await c.waitForLeader(20_000)).id).to.equal('n4');

    // n2 is wiped and re-added: it learns the peers from n4's hint.
    await c.kill9(n2);
    expect(await c.admin(20_000, 'RAFT.NODE', 'REMOVE', n2.id)).to.equal('OK');
    await c.wipe(n2);
    await c.startNode(n2, 'join');
    expect(await c.admin(20_000, 'RAFT.NODE', 'ADD', n2.id, n2.address)).to.equal('OK');
    const caughtUpMs = Date.now();
    await pollUntil(
      'n2 to serve k7 from its own state machine',
      async () => ((await ownRead(n2, 'k7')) === 'v7' ? true : undefined),
      15_000,
    );
    console.log(`      re-added n2 serves reads ${Date.now() - caughtUpMs} ms after RAFT.NODE ADD`);
    expect(n2.node?.stderr() ?? '').to.not.include('this node is not');
  });
});
