/**
 * Tests for the simulated cluster's driver: the Ready contract on a quiet network, what a crash
 * loses (an unpersisted Ready), snapshots with compaction and InstallSnapshot to a lagging node,
 * and membership changes (add learner, promote, remove and decommission).
 */
import { expect } from 'chai';
import { ConfChangeType, Role } from '../messages.js';
import { Cluster } from './cluster.js';
import type { ClusterOptions, SimNode } from './cluster.js';
import { Prng } from './prng.js';
import { elect, quietOptions } from './targeted.js';

function build(overrides: Partial<ClusterOptions> = {}): Cluster {
  return new Cluster(new Prng(11), {
    ...quietOptions(),
    maxSizePerMsg: 1024,
    maxInflightMsgs: 8,
    ...overrides,
  });
}

function node(cluster: Cluster, id: string): SimNode {
  const n = cluster.nodes.get(id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

/** Ticks (heartbeats carry commit indexes) and delivers until `done` or the bound. */
function runUntil(cluster: Cluster, done: () => boolean, maxTicks = 200): void {
  for (let t = 0; t < maxTicks && !done(); t++) {
    cluster.tick();
    cluster.settle();
  }
  expect(done(), cluster.describe()).to.equal(true);
}

describe('raft/sim/cluster', () => {
  it('elects a leader and applies writes everywhere, with identical state machines', () => {
    const c = build();
    elect(c, 'n1');
    const leader = node(c, 'n1');
    for (let i = 0; i < 10; i++) expect(c.propose(leader)).to.not.equal(undefined);
    c.settle();
    runUntil(c, () =>
      [...c.nodes.values()].every((n) => n.machine.index === leader.machine.index && n.machine.index >= 11),
    );
    const hashes = new Set([...c.nodes.values()].map((n) => n.machine.hash));
    expect(hashes.size).to.equal(1);
    expect(c.stats.proposalsAcked).to.equal(10);
    expect(c.checker.committedIndex).to.be.at.least(11);
  });

  it('a crash loses the Ready the node had not persisted, and the restart keeps the rest', () => {
    const c = build();
    elect(c, 'n1');
    const leader = node(c, 'n1');
    const persisted = leader.storage.lastIndex();
    const at = c.propose(leader);
    expect(at?.index).to.equal(persisted + 1);
    // No Ready processed: the entry is only in the core's memory.
    c.crash('n1');
    expect(c.network.inFlight).to.equal(0);
    c.restart('n1');
    expect(node(c, 'n1').storage.lastIndex()).to.equal(persisted);
    expect(node(c, 'n1').core?.status().lastIndex).to.equal(persisted);
    expect(node(c, 'n1').core?.status().commit).to.be.at.least(1);
  });

  it('snapshots and compacts, and a lagging node catches up through InstallSnapshot', () => {
    const c = build({ snapshotEvery: 5, compactKeep: 0 });
    elect(c, 'n1');
    const leader = node(c, 'n1');
    c.crash('n5');
    for (let i = 0; i < 30; i++) {
      c.propose(leader);
      c.settle();
    }
    runUntil(c, () => leader.storage.firstIndex() > 20);
    c.restart('n5');
    runUntil(c, () => node(c, 'n5').machine.index === leader.machine.index);
    expect(c.stats.snapshotsInstalled).to.be.at.least(1);
    expect(node(c, 'n5').machine.hash).to.equal(leader.machine.hash);
    expect(node(c, 'n5').machine.writes).to.equal(30);
  });

  it('adds a learner, promotes it, removes a voter and decommissions it once applied', () => {
    const c = build({ initialVoters: 3, maxNodes: 5 });
    elect(c, 'n1');
    const leader = node(c, 'n1');
    expect(c.proposeConfChange(leader, { type: ConfChangeType.AddLearner, node: 'n4' })).to.equal(true);
    runUntil(c, () => c.nodes.get('n4')?.confState.learners.includes('n4') ?? false);
    expect(node(c, 'n4').core?.status().role).to.equal(Role.Learner);
    expect(c.proposeConfChange(leader, { type: ConfChangeType.AddVoter, node: 'n4' })).to.equal(true);
    runUntil(c, () => node(c, 'n4').confState.voters.includes('n4'));
    expect(c.proposeConfChange(leader, { type: ConfChangeType.RemoveNode, node: 'n2' })).to.equal(true);
    runUntil(c, () => node(c, 'n2').decommissioned);
    expect(leader.confState.voters).to.deep.equal(['n1', 'n3', 'n4']);
    // The cluster still commits with n2 gone.
    const at = c.propose(leader);
    runUntil(c, () => ['n1', 'n3', 'n4'].every((id) => node(c, id).machine.index >= (at?.index ?? Infinity)));
  });
});
