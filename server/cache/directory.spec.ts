/**
 * The leader's directory: which holders a write's round takes. Regression for a stale read the
 * fault suite's cache family found (faults/families/cache.ts, seed 11, kill-leader): a fetch
 * served between a write's apply and its round registered a holder whose line already had the
 * write's value; the round took it out of the directory anyway (its invalidation then changed
 * nothing on the holder), the writer was registered M, and the next write ran no round, so the
 * holder served the older value for the rest of its lease.
 */
import { expect } from 'chai';
import { Directory } from './directory.js';

describe('server/cache/directory: write rounds', () => {
  it('leaves alone a holder registered after the write applied, so the next write still reaches it', () => {
    const dir = new Directory(1, 100);
    const arrival = dir.nextSeq(); // a write from n2 arrives; it applies at version 10
    // Before the leader runs the round, n1's fetch reads home at index 10 and registers.
    expect(dir.registerRead('k', 'n1', 0, 1_000, 10)?.state).to.equal('E');
    expect(dir.takeForWrite('k', 'n2', arrival, 1, false, 10).targets).to.deep.equal([]);
    // The writer shares the key with n1 now: S, not M.
    expect(dir.registerWrite('k', 'n2', 2, 1_000, 10)?.state).to.equal('S');
    const next = dir.nextSeq(); // the next write of n2, version 11: n1 is a target
    expect(dir.takeForWrite('k', 'n2', next, 3, false, 11).targets.map(([id]) => id)).to.deep.equal(['n1']);
  });

  it('takes a holder whose line predates the write, and the writer only if registered after the arrival', () => {
    const dir = new Directory(1, 100);
    dir.registerRead('k', 'n1', 0, 1_000, 5);
    dir.registerRead('k', 'n2', 0, 1_000, 5);
    const arrival = dir.nextSeq();
    const round = dir.takeForWrite('k', 'n2', arrival, 1, false, 10);
    expect(round.targets.map(([id]) => id)).to.deep.equal(['n1']);
    expect(dir.view('k', 1).holders.map(([id]) => id)).to.deep.equal(['n2']);
    // Expired holders leave without a message.
    dir.registerRead('k', 'n3', 0, 5, 5);
    expect(dir.takeForWrite('k', 'n1', dir.nextSeq(), 10, false, 11).targets.map(([id]) => id)).to.deep.equal(
      ['n2'],
    );
  });
});
