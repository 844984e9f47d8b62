/**
 * The pure Raft core (skeleton: public API first so raft/sim can compile; bodies follow).
 */
import type { ConfChange, ConfState, Message, NodeId, Ready } from './messages.js';
import { Role } from './messages.js';
import type { Storage } from './storage.js';
import { NotLeaderError, ProposalDroppedError } from './errors.js';

export { NotLeaderError, ProposalDroppedError };

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Election timeout randomized in [electionTicks, 2*electionTicks). */
  electionTicks: number;
  /** Heartbeat interval, < electionTicks. */
  heartbeatTicks: number;
  /** Bound on unacknowledged App messages per follower in replicate state. */
  maxInflightMsgs: number;
  /** Bytes of entries per App message (batching). */
  maxSizePerMsg: number;
  /** Bound on bytes of proposals not yet committed (propose throws ProposalDroppedError when over). */
  maxUncommittedBytes?: number;
  /** Bound on bytes of committed entries handed out in one Ready (default 64 MiB). */
  maxCommittedBytesPerReady?: number;
  /** Bound on pending ReadIndex requests at the leader (default 4096); more are dropped. */
  maxPendingReads?: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Injected seeded PRNG in [0,1): the ONLY source of randomness. */
  random: () => number;
  /** Index already applied by the application on restart. */
  applied?: number;
  /** Deliberate faults to prove the simulation catches them; tests only. */
  bugs?: BugFlags;
}

export interface BugFlags {
  commitOldTermEntries?: boolean;
  voteWithoutLogCheck?: boolean;
  forgetVote?: boolean;
  skipPrevLogCheck?: boolean;
  readIndexWithoutQuorumCheck?: boolean;
  commitRegression?: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  commit: number;
  applied: number;
  role: Role;
  leader: NodeId | null;
  confState: ConfState;
  lastIndex: number;
}

export class RaftCore {
  private readonly config: RaftConfig;
  constructor(config: RaftConfig) {
    this.config = config;
  }
  tick(): void {}
  step(_m: Message): void {}
  campaign(): void {}
  propose(_data: Uint8Array): { index: number; term: number } {
    throw new NotLeaderError(null);
  }
  proposeConfChange(_cc: ConfChange): { index: number; term: number } {
    throw new ProposalDroppedError('not implemented');
  }
  applyConfChange(_cc: ConfChange): ConfState {
    return this.config.storage.initialState().confState;
  }
  readIndex(_context: Uint8Array): void {}
  transferLeadership(_to: NodeId): void {}
  hasReady(): boolean {
    return false;
  }
  ready(): Ready {
    return { softState: null, hardState: null, entries: [], snapshot: null, committedEntries: [], messages: [], readStates: [] };
  }
  advance(): void {}
  status(): RaftStatus {
    const { hardState, confState } = this.config.storage.initialState();
    return {
      id: this.config.id,
      term: hardState.term,
      vote: hardState.vote,
      commit: hardState.commit,
      applied: 0,
      role: Role.Follower,
      leader: null,
      confState,
      lastIndex: this.config.storage.lastIndex(),
    };
  }
}
