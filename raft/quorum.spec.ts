import { expect } from 'chai';
import fc from 'fast-check';
import type { NodeId } from './messages.js';
import { majorityCommitIndex, quorumSize, voteResult, VoteResult } from './quorum.js';

/** Naive model: the largest index i such that a strict majority acknowledged >= i. */
function naiveCommitIndex(voters: readonly NodeId[], acked: ReadonlyMap<NodeId, number>): number {
  if (voters.length === 0) return 0;
  let best = 0;
  const candidates = new Set<number>([0, ...voters.map((v) => acked.get(v) ?? 0)]);
  for (const i of candidates) {
    const count = voters.filter((v) => (acked.get(v) ?? 0) >= i).length;
    if (count * 2 > voters.length && i > best) best = i;
  }
  return best;
}

/** Naive model of an election: won if granted is a majority, lost if that became impossible. */
function naiveVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const granted = voters.filter((v) => votes.get(v) === true).length;
  const missing = voters.filter((v) => !votes.has(v)).length;
  if (granted * 2 > voters.length) return VoteResult.Won;
  if ((granted + missing) * 2 > voters.length) return VoteResult.Pending;
  return VoteResult.Lost;
}

const votersArb = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), {
  minLength: 0,
  maxLength: 7,
});

describe('quorum', () => {
  it('quorumSize is a strict majority', () => {
    expect([1, 2, 3, 4, 5].map(quorumSize)).to.deep.equal([1, 2, 2, 3, 3]);
  });

  it('majorityCommitIndex agrees with the naive model (fast-check)', () => {
    fc.assert(
      fc.property(
        votersArb,
        fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'x'), fc.nat(20)),
        (voters, ackedObj) => {
          const acked = new Map(Object.entries(ackedObj));
          // 'x' is a learner/unknown node: it must never matter.
          expect(majorityCommitIndex(voters, (id) => acked.get(id))).to.equal(
            naiveCommitIndex(voters, acked),
          );
        },
      ),
      { numRuns: 2000, seed: 42 },
    );
  });

  it('voteResult agrees with the naive model (fast-check)', () => {
    fc.assert(
      fc.property(
        votersArb,
        fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'x'), fc.boolean()),
        (voters, v) => {
          const votes = new Map(Object.entries(v));
          expect(voteResult(voters, votes)).to.equal(naiveVote(voters, votes));
        },
      ),
      { numRuns: 2000, seed: 42 },
    );
  });

  it('examples', () => {
    const m = new Map([
      ['a', 5],
      ['b', 3],
      ['c', 1],
    ]);
    expect(majorityCommitIndex(['a', 'b', 'c'], (id) => m.get(id))).to.equal(3);
    expect(majorityCommitIndex(['a', 'b', 'c', 'd'], (id) => m.get(id))).to.equal(1);
    expect(
      voteResult(
        ['a', 'b', 'c'],
        new Map([
          ['a', true],
          ['b', false],
        ]),
      ),
    ).to.equal(VoteResult.Pending);
    expect(
      voteResult(
        ['a', 'b', 'c'],
        new Map([
          ['a', false],
          ['b', false],
        ]),
      ),
    ).to.equal(VoteResult.Lost);
  });
});
