/**
 * Majority arithmetic (modeled on etcd-io/raft `quorum/majority.go`): the commit index a
 * majority of voters has reached (Raft §5.3-§5.4.2) and the outcome of a vote (§5.2).
 *
 * Owns nothing but functions. Must never: count learners (thesis §4.2.1: non-voting members
 * do not take part in quorums), allocate per call more than one scratch array, or import I/O.
 */
import type { NodeId } from './messages.js';

/** Votes needed out of `voters`: a strict majority. */
export function quorumSize(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

let scratch = new Float64Array(16);

/**
 * The largest index that at least a majority of `voters` have acknowledged (`acked(id)`,
 * undefined counting as 0). 0 for an empty voter set.
 */
export function majorityCommitIndex(
  voters: readonly NodeId[],
  acked: (id: NodeId) => number | undefined,
): number {
  const n = voters.length;
  if (n === 0) return 0;
  if (n === 1) return acked(voters[0]!) ?? 0;
  if (scratch.length < n) scratch = new Float64Array(n * 2);
  const a = scratch.subarray(0, n);
  for (let i = 0; i < n; i++) a[i] = acked(voters[i]!) ?? 0;
  a.sort();
  // Ascending: the quorumSize-th largest is at n - quorumSize.
  return a[n - quorumSize(n)]!;
}

export enum VoteResult {
  Pending = 'pending',
  Won = 'won',
  Lost = 'lost',
}

/** The outcome of an election among `voters` given the votes received (true = granted). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const q = quorumSize(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= q) return VoteResult.Won;
  if (voters.length - rejected < q) return VoteResult.Lost;
  return VoteResult.Pending;
}
