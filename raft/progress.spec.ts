import { expect } from 'chai';
import { Inflights, Progress, ProgressState, ProgressTracker } from './progress.js';

describe('Inflights', () => {
  it('is a bounded ring: fills, frees acknowledged prefixes, wraps around', () => {
    const f = new Inflights(4);
    for (const i of [10, 20, 30, 40]) f.add(i);
    expect(f.full()).to.equal(true);
    expect(() => f.add(50)).to.throw(/overflow/);
    f.freeLE(25);
    expect(f.count).to.equal(2);
    f.add(50);
    f.add(60);
    expect(f.full()).to.equal(true);
    f.freeLE(5);
    expect(f.count).to.equal(4);
    f.freeLE(55);
    expect(f.count).to.equal(1);
    f.freeFirstOne();
    expect(f.count).to.equal(0);
    f.freeFirstOne();
    expect(f.count).to.equal(0);
  });
});

describe('Progress', () => {
  it('probe: one message at a time, backs off with the hint', () => {
    const pr = new Progress(11, 4, false);
    expect(pr.isPaused()).to.equal(false);
    pr.probeSent = true;
    expect(pr.isPaused()).to.equal(true);
    // A rejection of something else than next-1 is stale.
    expect(pr.maybeDecrTo(5, 2)).to.equal(false);
    expect(pr.maybeDecrTo(10, 4)).to.equal(true);
    expect(pr.next).to.equal(5);
    expect(pr.isPaused()).to.equal(false);
  });

  it('replicate: pipelines until the inflight window is full, stale rejections are ignored', () => {
    const pr = new Progress(1, 2, false);
    pr.maybeUpdate(5);
    pr.becomeReplicate();
    expect(pr.next).to.equal(6);
    pr.optimisticUpdate(8);
    pr.inflights.add(8);
    pr.optimisticUpdate(9);
    pr.inflights.add(9);
    expect(pr.isPaused()).to.equal(true);
    expect(pr.maybeDecrTo(4, 0)).to.equal(false);
    expect(pr.maybeDecrTo(8, 3)).to.equal(true);
    expect(pr.next).to.equal(6);
  });

  it('snapshot: paused until acknowledged; probe resumes after the snapshot', () => {
    const pr = new Progress(3, 2, false);
    pr.becomeSnapshot(100);
    expect(pr.isPaused()).to.equal(true);
    pr.becomeProbe();
    expect(pr.state).to.equal(ProgressState.Probe);
    expect(pr.next).to.equal(101);
  });
});

describe('ProgressTracker', () => {
  it('learners never count toward commit or elections', () => {
    const t = new ProgressTracker(4);
    t.setConfig({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] }, 1);
    for (const [id, m] of [
      ['a', 9],
      ['d', 9],
      ['e', 9],
      ['b', 2],
      ['c', 1],
    ] as const)
      t.progress.get(id)!.match = m;
    expect(t.committed()).to.equal(2);
    t.recordVote('d', true);
    t.recordVote('e', true);
    expect(t.recordVote('a', true)).to.equal('pending');
    expect(t.recordVote('b', true)).to.equal('won');
  });

  it('quorumActive needs a majority of voters heard from, then resets', () => {
    const t = new ProgressTracker(4);
    t.setConfig({ voters: ['a', 'b', 'c'], learners: ['d'] }, 1);
    t.progress.get('d')!.recentActive = true;
    expect(t.quorumActive('a')).to.equal(false);
    t.progress.get('b')!.recentActive = true;
    expect(t.quorumActive('a')).to.equal(true);
    expect(t.quorumActive('a')).to.equal(false);
  });

  it('setConfig keeps progress of staying members and promotes learners', () => {
    const t = new ProgressTracker(4);
    t.setConfig({ voters: ['a'], learners: ['b'] }, 5);
    t.progress.get('b')!.match = 4;
    t.setConfig({ voters: ['a', 'b'], learners: [] }, 9);
    expect(t.progress.get('b')!.match).to.equal(4);
    expect(t.progress.get('b')!.isLearner).to.equal(false);
    t.setConfig({ voters: ['b'], learners: [] }, 9);
    expect(t.progress.has('a')).to.equal(false);
  });
});
