/**
 * One Concord node: wires FileStorage (in `<dataDir>/raft`), the TCP peer transport (on the
 * peer port), the RaftNode driver, the replicated application (the StateMachine plus the
 * member addresses recorded in the log), the RaftExecutor, the Dispatcher and the RESP
 * listener; and implements ClusterView (server/cluster-view.ts) for the admin commands.
 *
 * Membership: `--bootstrap` founds a cluster (only when the data directory is empty): its
 * members become AddVoter entries 1..n whose ConfChange context is each member's
 * `host:port@peerPort`, so every node (and every node added later) learns every member's
 * addresses from the log. `--join` starts empty and waits to be added by the leader. Neither:
 * a one-voter cluster of this node, which elects itself at once (plain `concord server`).
 * A learner is promoted to voter by the leader once its log has caught up.
 *
 * Owns the lifetime of those pieces (start in order, graceful stop in reverse: RESP listener,
 * executor, Raft node, transport, storage). Must never read argv/env (main.ts) or exit the
 * process (fatal errors go to `onFatal`).
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { decodeOperation } from '../commands/codec.js';
import { Dispatcher } from '../commands/dispatch.js';
import { StateMachine, type Result } from '../commands/state-machine.js';
import { NodeStoppedError, NotLeaderError } from '../raft/errors.js';
import { FileStorage } from '../raft/file-storage.js';
import { ConfChangeType, EntryType, Role } from '../raft/messages.js';
import type { ConfChange, Message, NodeId, Snapshot } from '../raft/messages.js';
import {
  RaftNode,
  readChunks,
  type AppliedEntry,
  type PeerTransport,
  type RaftApplication,
} from '../raft/node.js';
import { TcpTransport } from '../raft/tcp-transport.js';
import { LeaderTicker } from './leader-ticker.js';
import {
  ClusterAdminError,
  type ClusterView,
  type MemberAddress,
  type MemberInfo,
  type RaftInfo,
  type RaftRole,
} from './cluster-view.js';
import {
  PEER_PORT_OFFSET,
  ServerConfig,
  formatMemberAddress,
  parseMemberAddress,
  type Config,
} from './config.js';
import { encodeMembersHint, serveForwarded } from './forward.js';
import { RespServer } from './listener.js';
import type { Logger } from './log.js';
import { RaftExecutor, type ExecutorNode } from './raft-executor.js';

export interface NodeOptions {
  config: Config;
  log: Logger;
  /** Called when a client sends SHUTDOWN; defaults to stopping this node. */
  onShutdown?: (reason: string) => void;
  /** The Raft node failed (storage error, broken invariant); default: log and stop. */
  onFatal?: (error: unknown) => void;
  shutdownGraceMs?: number;
}

/** The RESP listener as the commands see it, with the cluster view attached. */
class ClusterRespServer extends RespServer {
  cluster?: ClusterView;
}

interface MemberRecord {
  readonly address: MemberAddress | null;
  readonly voter: boolean;
}

// ------------------------------------------------------------------ the application

const ENVELOPE_MAGIC = 0x43434d42; // "CCMB"
const ENVELOPE_VERSION = 1;

/**
 * The replicated application: operations go to the StateMachine (its own index counts
 * operations only, as Empty and ConfChange entries carry none), membership entries to the
 * member table. A snapshot is [magic u32][version u8][members JSON length u32][members JSON]
 * [StateMachine snapshot], so a node restored from a snapshot still knows every address.
 */
/**
 * How often the leader checks whether a lease, timeout or TTL is due (LeaderTicker): the
 * granularity of every time-based rule in the state machine.
 */
const LEADER_TICK_INTERVAL_MS = 10;

export class ConcordApplication implements RaftApplication<Result | null> {
  readonly members = new Map<NodeId, MemberRecord>();

  constructor(
    readonly stateMachine: StateMachine,
    /** Called after the member table changed (apply or restore). */
    private readonly membersChanged: () => void = () => undefined,
  ) {}

  apply(entry: AppliedEntry): Result | null {
    switch (entry.type) {
      case EntryType.Normal: {
        const p = entry.payload;
        const op = decodeOperation(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
        const sm = this.stateMachine;
        return sm.apply({ index: sm.lastAppliedIndex + 1, timeMs: entry.timeMs, term: entry.term, op });
      }
      case EntryType.ConfChange:
        return null;
      case EntryType.Empty:
        return null;
      default: {
        const never: never = entry.type;
        throw new Error(`unknown entry type ${String(never)}`);
      }
    }
  }

  /** Records a membership change (called by the node on each applied ConfChange). */
  applyConfChange(cc: ConfChange): void {
    const known = this.members.get(cc.node);
    const parsed = cc.context === undefined ? null : parseMemberAddress(cc.context);
    const address = parsed ?? known?.address ?? null;
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        this.members.set(cc.node, { address, voter: true });
        break;
      case ConfChangeType.AddLearner:
        this.members.set(cc.node, { address, voter: false });
        break;
      case ConfChangeType.RemoveNode:
        this.members.delete(cc.node);
        break;
      default: {
        const never: never = cc.type;
        throw new Error(`unknown conf change ${String(never)}`);
      }
    }
    this.membersChanged();
  }

  snapshot(): Promise<Uint8Array> {
    const members = Buffer.from(JSON.stringify(this.membersJson()), 'utf8');
    const header = Buffer.alloc(9);
    header.writeUInt32BE(ENVELOPE_MAGIC, 0);
    header.writeUInt8(ENVELOPE_VERSION, 4);
    header.writeUInt32BE(members.length, 5);
    const capture = this.stateMachine.captureSnapshot();
    return readChunks((maxBytes) => capture.next(maxBytes)).then((state) =>
      Buffer.concat([header, members, state]),
    );
  }

  restore(snapshot: Snapshot): void {
    const d = snapshot.data;
    const data = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    if (data.length < 9 || data.readUInt32BE(0) !== ENVELOPE_MAGIC)
      throw new Error('not a Concord node snapshot');
    const version = data.readUInt8(4);
    if (version !== ENVELOPE_VERSION) throw new Error(`unsupported node snapshot version ${version}`);
    const length = data.readUInt32BE(5);
    const json = JSON.parse(data.subarray(9, 9 + length).toString('utf8')) as {
      id: string;
      address: MemberAddress | null;
      voter: boolean;
    }[];
    this.stateMachine.restore(data.subarray(9 + length));
    this.members.clear();
    for (const m of json) this.members.set(m.id, { address: m.address, voter: m.voter });
    this.membersChanged();
  }

  appliedTimeMs(): number {
    return this.stateMachine.lastTimeMs;
  }

  private membersJson(): { id: string; address: MemberAddress | null; voter: boolean }[] {
    return [...this.members]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, m]) => ({
        id,
        address: m.address,
        voter: m.voter,
      }));
  }
}

/** A single node without a cluster secret has no peers: nothing is ever sent. */
const NO_PEERS: PeerTransport = {
  send: (_m: Message) => undefined,
  onMessage: () => undefined,
  onUnreachable: () => undefined,
};

function roleName(role: Role): RaftRole | 'learner' {
  switch (role) {
    case Role.Leader:
      return 'leader';
    case Role.Follower:
      return 'follower';
    case Role.Candidate:
      return 'candidate';
    case Role.PreCandidate:
      return 'pre-candidate';
    case Role.Learner:
      return 'learner';
    default: {
      const never: never = role;
      throw new Error(`unknown role ${String(never)}`);
    }
  }
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** A member's Raft peer address as the transport takes it: `host:peerPort`. */
function peerAddress(a: MemberAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.peerPort}`;
}

/** Largest operation replicated to peers (the peer transport's frames are at most 64 MiB). */
const MAX_REPLICATED_ENTRY_BYTES = 32 * 1024 * 1024;

/** A learner within this many entries of the leader's last index is caught up and promoted. */
const PROMOTE_LAG_ENTRIES = 100;

export class ConcordNode implements ClusterView {
  readonly config: ServerConfig;
  readonly stateMachine = new StateMachine();
  readonly executor: RaftExecutor;
  readonly dispatcher: Dispatcher;
  readonly server: RespServer;
  private readonly log: Logger;
  private readonly onFatal: (error: unknown) => void;
  private readonly application: ConcordApplication;
  private raft: RaftNode<Result | null> | null = null;
  private storage: FileStorage | null = null;
  private transport: TcpTransport | null = null;
  /** This node's own addresses (known once listening). */
  private self: MemberAddress | null = null;
  private readonly peerAddresses = new Map<NodeId, string>();
  private promoteTimer: NodeJS.Timeout | null = null;
  private ticker: LeaderTicker | null = null;
  /** On the leader: where each learner's AddLearner entry applied (it must catch up past it). */
  private readonly learnerAddedAt = new Map<NodeId, number>();
  /** On the leader: when each lagging learner was last sent the members' addresses. */
  private readonly hintSentAt = new Map<NodeId, number>();
  private stopping: Promise<void> | null = null;

  constructor(options: NodeOptions) {
    this.log = options.log;
    this.config = new ServerConfig(options.config);
    const config = this.config;
    this.onFatal =
      options.onFatal ??
      ((error: unknown) => {
        this.log.fatal({ err: error }, 'raft node failed');
        void this.stop('raft node failed');
      });
    this.application = new ConcordApplication(this.stateMachine, () => this.syncPeers());
    const electionMs = config.current.tickMs * config.current.electionTicks;
    const raftOf = (): RaftNode<Result | null> | null => this.raft;
    const executorNode: ExecutorNode = {
      id: config.current.nodeId,
      get isLeader() {
        return raftOf()?.isLeader ?? false;
      },
      get leaderId() {
        return raftOf()?.leaderId ?? null;
      },
      propose: (payload) =>
        this.raft === null ? Promise.reject(new NodeStoppedError('not started')) : this.raft.propose(payload),
      readIndex: () =>
        this.raft === null ? Promise.reject(new NotLeaderError(null)) : this.raft.readIndex(),
    };
    this.executor = new RaftExecutor({
      node: executorNode,
      stateMachine: this.stateMachine,
      transport: {
        request: (peer, payload, timeoutMs) =>
          this.transport === null
            ? Promise.reject(new NodeStoppedError('no peer transport'))
            : this.transport.request(peer, payload, timeoutMs),
      },
      // Failover takes up to two (randomized) election timeouts to notice, then a vote.
      leaderWaitMs: 3 * electionMs,
      isConnected: (peer) => this.transport?.isConnected(peer) ?? false,
      // A peer frame is at most 64 MiB (TcpTransport default): leave room for the message around it.
      maxEntryBytes: config.current.clusterSecret === null ? Infinity : MAX_REPLICATED_ENTRY_BYTES,
      forwardTimeoutMs: 4 * electionMs,
      pollMs: Math.max(10, Math.floor(config.current.tickMs / 2)),
    });
    this.dispatcher = new Dispatcher({
      executor: this.executor,
      requirePass: () => config.current.requirePass,
    });
    const server = new ClusterRespServer({
      config,
      handler: this.dispatcher,
      log: options.log,
      onShutdown: options.onShutdown ?? ((reason) => void this.stop(reason)),
      ...(options.shutdownGraceMs !== undefined ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
    });
    server.cluster = this;
    this.server = server;
  }

  /**
   * Listens for clients, opens the storage, starts the peer transport and the Raft node;
   * resolves with the RESP address. Requests that arrive before Raft runs wait for a leader
   * (bounded) like any other.
   */
  async start(): Promise<AddressInfo> {
    const c = this.config.current;
    if (c.join && c.bootstrap !== null) throw new Error('--join and --bootstrap exclude each other');
    if (c.bootstrap !== null && !c.bootstrap.some((m) => m.id === c.nodeId)) {
      throw new Error(`node id '${c.nodeId}' is not in --bootstrap (use --join to add a node)`);
    }
    await mkdir(c.dataDir, { recursive: true });
    const address = await this.server.listen();
    const storage = await FileStorage.open(path.join(c.dataDir, 'raft'));
    this.storage = storage;
    try {
      await this.startRaft(address, storage);
    } catch (error) {
      await this.stop('start failed');
      throw error;
    }
    this.log.info(
      { node: c.nodeId, address: address.address, port: address.port, peerPort: this.self?.peerPort },
      'listening',
    );
    return address;
  }

  private async startRaft(address: AddressInfo, storage: FileStorage): Promise<void> {
    const c = this.config.current;
    const listed = c.bootstrap?.find((m) => m.id === c.nodeId);
    const peerPort =
      c.peerPort ?? listed?.peerPort ?? (address.port === 0 ? 0 : address.port + PEER_PORT_OFFSET);
    const stored = storage.initialState().confState;
    const others = [...stored.voters, ...stored.learners].filter((id) => id !== c.nodeId);
    const multi = c.join || (c.bootstrap !== null && c.bootstrap.length > 1) || others.length > 0;
    let transport: PeerTransport = NO_PEERS;
    let boundPeerPort = peerPort;
    if (c.clusterSecret !== null) {
      const tcp = await TcpTransport.listen({
        id: c.nodeId,
        clusterId: c.clusterId,
        secret: c.clusterSecret,
        listen: { host: c.bind, port: peerPort },
        log: this.log,
      });
      this.transport = tcp;
      transport = tcp;
      boundPeerPort = Number(tcp.address().split(':').pop());
      tcp.onRequest((_from, payload) => serveForwarded(this.forwardTarget(), payload));
    } else if (multi) {
      throw new Error(
        'a cluster of several nodes needs a cluster secret (--cluster-secret or --cluster-secret-file)',
      );
    }
    this.self = { host: listed?.host ?? c.bind, port: address.port, peerPort: boundPeerPort };
    const bootstrap = c.join
      ? undefined
      : (c.bootstrap ?? [
          { id: c.nodeId, host: this.self.host, port: this.self.port, peerPort: boundPeerPort },
        ]);
    const electionMs = c.tickMs * c.electionTicks;
    const raft = await RaftNode.start<Result | null>({
      id: c.nodeId,
      storage,
      transport,
      application: this.application,
      tickMs: c.tickMs,
      electionTicks: c.electionTicks,
      heartbeatTicks: c.heartbeatTicks,
      snapshotEntries: c.snapshotEntries,
      proposalTimeoutMs: 3 * electionMs,
      // One election timeout: a lost ReadIndex is asked again within the executor's bound.
      readTimeoutMs: electionMs,
      ...(bootstrap === undefined
        ? {}
        : {
            bootstrap: bootstrap.map((m) => m.id),
            bootstrapContexts: new Map(bootstrap.map((m) => [m.id, formatMemberAddress(m)])),
          }),
      onFatal: (error) => this.onFatal(error),
    });
    this.raft = raft;
    raft.onEvent((e) => {
      switch (e.type) {
        case 'conf-changed':
          this.application.applyConfChange(e.change);
          if (e.change.type === ConfChangeType.AddLearner) {
            this.learnerAddedAt.set(e.change.node, raft.appliedIndex + 1);
          } else {
            this.learnerAddedAt.delete(e.change.node);
            this.hintSentAt.delete(e.change.node);
          }
          if (e.change.type === ConfChangeType.RemoveNode && e.change.node === c.nodeId) {
            this.log.warn(
              { node: c.nodeId },
              'this node was removed from the cluster: it no longer votes or serves writes',
            );
          }
          // After the Ready turn that applied it (the core campaigns only with no conf change unapplied).
          setImmediate(() => this.campaignIfAlone());
          break;
        case 'leader-changed':
          this.log.info({ leader: e.leader, term: e.term }, 'leader changed');
          break;
        case 'role-changed':
          this.log.info({ role: e.role, term: e.term }, 'role changed');
          break;
        case 'snapshot-taken':
          this.log.info({ index: e.index, bytes: e.bytes }, 'snapshot taken');
          break;
        case 'snapshot-installed':
          this.log.info({ index: e.index }, 'snapshot installed');
          break;
        case 'snapshot-failed':
          this.log.error({ index: e.index, err: e.error }, 'snapshot failed');
          break;
        default: {
          const never: never = e;
          throw new Error(`unknown node event ${JSON.stringify(never)}`);
        }
      }
    });
    this.campaignIfAlone();
    this.promoteTimer = setInterval(
      () => {
        this.campaignIfAlone();
        this.promoteCaughtUpLearners();
      },
      Math.max(50, electionMs / 4),
    );
    this.promoteTimer.unref();
    this.ticker = new LeaderTicker({
      node: raft,
      nextDeadlineMs: () => this.application.stateMachine.nextDeadlineMs(),
      intervalMs: LEADER_TICK_INTERVAL_MS,
      onError: (err: unknown) => this.log.debug({ err }, 'time tick not committed'),
    });
    this.ticker.start();
  }

  /** A sole voter need not wait an election timeout: it elects itself at once. */
  private campaignIfAlone(): void {
    const raft = this.raft;
    if (raft === null || this.stopping !== null) return;
    const { confState, role } = raft.status();
    const id = this.config.current.nodeId;
    if (confState.voters.length === 1 && confState.voters[0] === id && role !== Role.Leader) raft.campaign();
  }

  /** Wires the transport's peers to the member table (added, re-addressed, removed). */
  private syncPeers(): void {
    const transport = this.transport;
    if (transport === null) return;
    const self = this.config.current.nodeId;
    for (const [id, m] of this.application.members) {
      if (id === self || m.address === null) continue;
      const address = peerAddress(m.address);
      if (this.peerAddresses.get(id) === address) continue;
      this.peerAddresses.set(id, address);
      transport.addPeer(id, address);
    }
    for (const id of [...this.peerAddresses.keys()]) {
      if (this.application.members.has(id)) continue;
      this.peerAddresses.delete(id);
      transport.removePeer(id);
    }
  }

  /**
   * On the leader: a learner whose log caught up (past its own AddLearner entry, and within
   * PROMOTE_LAG_ENTRIES of the commit index) becomes a voter, one change at a time. A learner
   * that has not answered yet is sent the members' peer addresses (at most once per election
   * timeout): a --join node knows no one until it has replayed the log.
   */
  private promoteCaughtUpLearners(): void {
    const raft = this.raft;
    if (raft === null || !raft.isLeader) return;
    const status = raft.status();
    for (const id of status.confState.learners) {
      const pr = raft.progressOf(id);
      if (pr === undefined) continue;
      if (pr.match === 0) this.sendMembersHint(id);
      const addedAt = this.learnerAddedAt.get(id) ?? status.commit;
      if (pr.match < addedAt || status.commit - pr.match > PROMOTE_LAG_ENTRIES) continue;
      const address = this.application.members.get(id)?.address;
      const cc: ConfChange =
        address === undefined || address === null
          ? { type: ConfChangeType.AddVoter, node: id }
          : { type: ConfChangeType.AddVoter, node: id, context: formatMemberAddress(address) };
      raft.proposeConfChange(cc).then(
        () => this.log.info({ node: id }, 'learner promoted to voter'),
        (error: unknown) => this.log.debug({ node: id, err: error }, 'learner promotion not done yet'),
      );
      return;
    }
  }

  private sendMembersHint(id: NodeId): void {
    const transport = this.transport;
    if (transport === null) return;
    const c = this.config.current;
    const now = Date.now();
    if (now - (this.hintSentAt.get(id) ?? 0) < c.tickMs * c.electionTicks) return;
    this.hintSentAt.set(id, now);
    const peers: { id: string; address: string }[] = [];
    for (const [member, record] of this.application.members) {
      // The member table holds the address the cluster was told (--bootstrap or RAFT.NODE ADD).
      // `this.self` is only the fallback: on a node started with --join it is the --bind host
      // (e.g. 0.0.0.0) and the port bound, not what peers must dial, and a learner given it
      // would dial itself.
      const address = record.address ?? (member === this.myId() ? this.self : null);
      if (address === null) continue;
      peers.push({ id: member, address: peerAddress(address) });
    }
    transport.request(id, encodeMembersHint(peers), c.tickMs * c.electionTicks).then(
      () => this.log.debug({ node: id }, 'sent the members to a learner'),
      (error: unknown) => this.log.debug({ node: id, err: error }, 'could not send the members to a learner'),
    );
  }

  /** A members hint from the leader: connect to peers this node does not know yet. */
  private learnPeers(peers: readonly { id: string; address: string }[]): void {
    const transport = this.transport;
    if (transport === null) return;
    for (const { id, address } of peers) {
      if (id === this.myId() || this.peerAddresses.has(id)) continue;
      if (!/^(\[[^\]]+\]|[^:\s[\]]+):\d{1,5}$/.test(address)) continue;
      this.peerAddresses.set(id, address);
      transport.addPeer(id, address);
    }
  }

  private forwardTarget(): Parameters<typeof serveForwarded>[0] {
    const raft = this.raft;
    const sm = this.stateMachine;
    return {
      isLeader: raft?.isLeader ?? false,
      leaderId: raft?.leaderId ?? null,
      propose: (payload) =>
        raft === null ? Promise.reject(new NodeStoppedError('not started')) : raft.propose(payload),
      leaderTimeMs: () => sm.readTime(Date.now()),
      learnPeers: (peers) => this.learnPeers(peers),
    };
  }

  /** Graceful stop (idempotent): clients first, then Raft, the transport and the storage. */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.stopAll(reason);
    return this.stopping;
  }

  private async stopAll(reason: string): Promise<void> {
    if (this.promoteTimer !== null) clearInterval(this.promoteTimer);
    this.ticker?.stop();
    await this.server.close(reason);
    this.executor.stop();
    await this.raft?.stop();
    await this.transport?.close();
    await this.storage?.close();
  }

  // ---------------------------------------------------------------- ClusterView

  myId(): NodeId {
    return this.config.current.nodeId;
  }

  leaderId(): NodeId | null {
    return this.raft?.leaderId ?? null;
  }

  leaderAddress(): MemberAddress | null {
    const leader = this.leaderId();
    return leader === null ? null : this.addressOf(leader);
  }

  private addressOf(id: NodeId): MemberAddress | null {
    if (id === this.myId() && this.self !== null) return this.self;
    return this.application.members.get(id)?.address ?? null;
  }

  members(): readonly MemberInfo[] {
    const raft = this.raft;
    if (raft === null) return [];
    const status = raft.status();
    const me = this.myId();
    const leader = status.leader;
    const ids = [...status.confState.voters, ...status.confState.learners].sort();
    const voters = new Set(status.confState.voters);
    return ids.map((id) => {
      const address = this.addressOf(id) ?? { host: '', port: 0, peerPort: 0 };
      const pr = raft.isLeader ? (id === me ? { match: status.lastIndex } : raft.progressOf(id)) : undefined;
      return {
        id,
        host: address.host,
        port: address.port,
        peerPort: address.peerPort,
        voter: voters.has(id),
        leader: id === leader,
        self: id === me,
        matchIndex: pr?.match ?? null,
        lag: pr === undefined ? null : Math.max(0, status.lastIndex - pr.match),
        reachable: id === me || (this.transport?.isConnected(id) ?? false),
      };
    });
  }

  raftInfo(): RaftInfo {
    const raft = this.raft;
    // RESP listens before Raft runs (the peer port may derive from the RESP port): answer
    // queries in that moment with an empty state rather than failing them.
    if (raft === null) return this.notStartedInfo();
    const s = raft.status();
    const syncs = [...s.recentSyncMs].sort((a, b) => a - b);
    const role = roleName(s.role);
    const peers = this.members()
      .filter((m) => !m.self)
      .map((m) => ({ id: m.id, matchIndex: m.matchIndex, lag: m.lag, reachable: m.reachable }));
    return {
      id: s.id,
      role: role === 'learner' ? 'follower' : role,
      term: s.term,
      leader: s.leader,
      commitIndex: s.commit,
      appliedIndex: raft.appliedIndex,
      firstIndex: s.firstIndex,
      lastIndex: s.lastIndex,
      snapshotIndex: s.snapshotIndex,
      voters: s.confState.voters,
      learners: s.confState.learners,
      pendingProposals: s.pendingProposals,
      pendingReads: s.pendingReads,
      fsync: {
        count: s.syncs,
        lastMs: s.recentSyncMs.at(-1) ?? null,
        p50Ms: percentile(syncs, 50),
        p99Ms: percentile(syncs, 99),
        maxMs: syncs.at(-1) ?? null,
      },
      peers,
    };
  }

  private notStartedInfo(): RaftInfo {
    return {
      id: this.myId(),
      role: 'follower',
      term: 0,
      leader: null,
      commitIndex: 0,
      appliedIndex: 0,
      firstIndex: 0,
      lastIndex: 0,
      snapshotIndex: 0,
      voters: [],
      learners: [],
      pendingProposals: 0,
      pendingReads: 0,
      fsync: { count: 0, lastMs: null, p50Ms: null, p99Ms: null, maxMs: null },
      peers: [],
    };
  }

  private leaderRaft(): RaftNode<Result | null> {
    const raft = this.raft;
    if (raft === null) throw new NodeStoppedError('not started');
    if (!raft.isLeader) throw new NotLeaderError(raft.leaderId);
    return raft;
  }

  async addNode(id: NodeId, address: string): Promise<void> {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new ClusterAdminError(`ERR Invalid node id '${id}'`);
    const parsed = parseMemberAddress(address);
    if (parsed === null) {
      throw new ClusterAdminError(
        `ERR Invalid node address '${address}' (expected host:port or host:port@peerport)`,
      );
    }
    if (this.transport === null) {
      throw new ClusterAdminError('ERR this node runs without a cluster secret: it cannot have peers');
    }
    const raft = this.leaderRaft();
    const { confState } = raft.status();
    if (confState.voters.includes(id) || confState.learners.includes(id)) {
      throw new ClusterAdminError(`ERR Node ${id} is already a member`);
    }
    await raft.proposeConfChange({
      type: ConfChangeType.AddLearner,
      node: id,
      context: formatMemberAddress(parsed),
    });
  }

  async removeNode(id: NodeId): Promise<void> {
    const raft = this.leaderRaft();
    const { confState } = raft.status();
    if (!confState.voters.includes(id) && !confState.learners.includes(id)) {
      throw new ClusterAdminError(`ERR Unknown node ${id}`);
    }
    await raft.proposeConfChange({ type: ConfChangeType.RemoveNode, node: id });
  }

  async transferLeader(id: NodeId): Promise<void> {
    const raft = this.leaderRaft();
    if (!raft.status().confState.voters.includes(id))
      throw new ClusterAdminError(`ERR Node ${id} is not a voter`);
    if (id === raft.id) return;
    raft.transferLeadership(id);
    const c = this.config.current;
    const deadline = Date.now() + 2 * c.tickMs * c.electionTicks;
    while (raft.leaderId !== id) {
      if (Date.now() >= deadline) {
        throw new ClusterAdminError(`ERR Leadership transfer to ${id} did not complete in time`);
      }
      await new Promise((resolve) => setTimeout(resolve, c.tickMs));
    }
  }

  snapshotNow(): Promise<number> {
    const raft = this.raft;
    if (raft === null) return Promise.reject(new NodeStoppedError('not started'));
    return raft.snapshotNow();
  }
}
