import { expect } from 'chai';
import { decodeOperation } from '../commands/codec.js';
import { LeaderTicker } from './leader-ticker.js';

function fakeNode(isLeader: boolean) {
  const proposals: { payload: Uint8Array; settle: (ok: boolean) => void }[] = [];
  return {
    isLeader,
    proposals,
    propose(payload: Uint8Array): Promise<unknown> {
      return new Promise((resolve, reject) =>
        proposals.push({ payload, settle: (ok) => (ok ? resolve(null) : reject(new Error('lost'))) }),
      );
    },
  };
}

describe('LeaderTicker', () => {
  it('proposes a sys.tick when something is due, one at a time', async () => {
    const node = fakeNode(true);
    let now = 1_000;
    const ticker = new LeaderTicker({ node, nextDeadlineMs: () => 1_500, intervalMs: 10, clock: () => now });
    ticker.check();
    expect(node.proposals).to.have.length(0);
    now = 1_500;
    ticker.check();
    ticker.check();
    expect(node.proposals).to.have.length(1);
    expect(decodeOperation(Buffer.from(node.proposals[0]!.payload))).to.deep.equal({ type: 'sys.tick' });
    node.proposals[0]!.settle(true);
    await Promise.resolve();
    await Promise.resolve();
    ticker.check();
    expect(node.proposals).to.have.length(2);
  });

  it('does nothing on a follower, and recovers after a failed proposal', async () => {
    const follower = fakeNode(false);
    new LeaderTicker({ node: follower, nextDeadlineMs: () => 0, intervalMs: 10 }).check();
    expect(follower.proposals).to.have.length(0);

    const leader = fakeNode(true);
    const errors: unknown[] = [];
    const ticker = new LeaderTicker({
      node: leader,
      nextDeadlineMs: () => 0,
      intervalMs: 10,
      onError: (e) => errors.push(e),
    });
    ticker.check();
    leader.proposals[0]!.settle(false);
    await Promise.resolve();
    await Promise.resolve();
    expect(errors).to.have.length(1);
    ticker.check();
    expect(leader.proposals).to.have.length(2);
    expect(ticker.proposed).to.equal(2);
  });
});
