/**
 * Test support for the cluster command specs: an in-memory ClusterView with real (if simple)
 * membership behaviour — admin actions change the members it reports, and are refused on a
 * non-leader with raft/errors.ts NotLeaderError as the real node refuses them — and a
 * ServerContext carrying it. Used only by *.spec.ts files.
 */
import type {
  ClusterView,
  FsyncStats,
  MemberAddress,
  MemberInfo,
  RaftInfo,
  RaftRole,
} from '../../server/cluster-view.js';
import { ClusterAdminError } from '../../server/cluster-view.js';
import type { ExecutorStatus } from '../../server/raft-executor.js';
import { NotLeaderError } from '../../raft/errors.js';
import type { ConfigStore } from '../context.js';
import { TestServer } from '../testing.js';

export interface FakeMember {
  id: string;
  host: string;
  port: number;
  peerPort: number;
  voter: boolean;
  reachable: boolean;
  matchIndex: number;
}

/** A cluster seen from node `self`, with `leader` (or none) and a log of `lastIndex` entries. */
export class FakeCluster implements ClusterView {
  readonly members_: FakeMember[] = [];
  leader: string | null;
  term = 7;
  lastIndex = 120;
  snapshotIndex = 100;
  fsync: FsyncStats = { count: 42, lastMs: 0.2, p50Ms: 0.15, p99Ms: 0.9, maxMs: 1.5 };
  executor: ExecutorStatus = {
    handOffIdle: false,
    writesInFlight: 3,
    oldestWriteMs: 1_250,
    readGroupPending: 2,
    forwardQueued: 0,
    forwardBatchesInFlight: 1,
    timeWaiters: 0,
    timeInFlight: false,
  };
  readonly actions: string[] = [];

  constructor(
    readonly self: string,
    ids: readonly string[],
    leader: string | null,
  ) {
    ids.forEach((id, i) => {
      this.members_.push({
        id,
        host: '127.0.0.1',
        port: 7001 + i,
        peerPort: 17001 + i,
        voter: true,
        reachable: true,
        matchIndex: this.lastIndex - i,
      });
    });
    this.leader = leader;
  }

  private isLeader(): boolean {
    return this.leader === this.self;
  }

  myId(): string {
    return this.self;
  }
  leaderId(): string | null {
    return this.leader;
  }
  leaderAddress(): MemberAddress | null {
    const m = this.members_.find((x) => x.id === this.leader);
    return m === undefined ? null : { host: m.host, port: m.port, peerPort: m.peerPort };
  }
  members(): readonly MemberInfo[] {
    return [...this.members_]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => ({
        id: m.id,
        host: m.host,
        port: m.port,
        peerPort: m.peerPort,
        voter: m.voter,
        leader: m.id === this.leader,
        self: m.id === this.self,
        matchIndex: this.isLeader() ? m.matchIndex : null,
        lag: this.isLeader() ? this.lastIndex - m.matchIndex : null,
        reachable: m.id === this.self || m.reachable,
      }));
  }
  raftInfo(): RaftInfo {
    const role: RaftRole = this.isLeader() ? 'leader' : 'follower';
    return {
      id: this.self,
      role,
      term: this.term,
      leader: this.leader,
      commitIndex: this.lastIndex,
      appliedIndex: this.lastIndex - 1,
      firstIndex: this.snapshotIndex + 1,
      lastIndex: this.lastIndex,
      snapshotIndex: this.snapshotIndex,
      voters: this.members_.filter((m) => m.voter).map((m) => m.id),
      learners: this.members_.filter((m) => !m.voter).map((m) => m.id),
      pendingProposals: 0,
      pendingReads: 0,
      fsync: this.fsync,
      executor: this.executor,
      peers: this.members()
        .filter((m) => !m.self)
        .map((m) => ({ id: m.id, matchIndex: m.matchIndex, lag: m.lag, reachable: m.reachable })),
    };
  }
  addNode(id: string, address: string): Promise<void> {
    if (!this.isLeader()) return Promise.reject(new NotLeaderError(this.leader));
    const m = /^(.+):(\d+)(?:@(\d+))?$/.exec(address);
    if (m === null) return Promise.reject(new ClusterAdminError(`ERR bad address ${address}`));
    const port = Number(m[2]);
    this.members_.push({
      id,
      host: m[1]!,
      port,
      peerPort: m[3] === undefined ? port + 10000 : Number(m[3]),
      voter: false,
      reachable: true,
      matchIndex: 0,
    });
    this.actions.push(`add ${id} ${address}`);
    return Promise.resolve();
  }
  removeNode(id: string): Promise<void> {
    if (!this.isLeader()) return Promise.reject(new NotLeaderError(this.leader));
    const i = this.members_.findIndex((m) => m.id === id);
    if (i >= 0) this.members_.splice(i, 1);
    this.actions.push(`remove ${id}`);
    return Promise.resolve();
  }
  transferLeader(id: string): Promise<void> {
    if (!this.isLeader()) return Promise.reject(new NotLeaderError(this.leader));
    this.leader = id;
    this.term++;
    this.actions.push(`transfer ${id}`);
    return Promise.resolve();
  }
  snapshotNow(): Promise<number> {
    this.snapshotIndex = this.lastIndex - 1;
    this.actions.push('snapshot');
    return Promise.resolve(this.snapshotIndex);
  }
}

/** A TestServer whose ServerContext carries a cluster view. */
export class ClusterTestServer extends TestServer {
  constructor(
    readonly cluster: ClusterView,
    config?: ConfigStore,
  ) {
    super(config);
  }
}
