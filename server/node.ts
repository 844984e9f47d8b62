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
 * Removal (as etcd's removed-member check, its "410 Gone"): a node removed by RAFT.NODE REMOVE
 * may never apply its own removal (the leader stops replicating to it) and would campaign
 * forever. So a member that receives a campaign (PreVote, Vote) from an id in the replicated
 * removed set sends that node a "you were removed" notice (transport FrameKind.Notice, at most
 * once a second per id). The message itself still goes to Raft, which judges it by term and log
 * as etcd-raft does: a member table restored from a snapshot can predate a re-add, and dropping
 * such a leader's messages left its follower unable ever to apply the re-add. A node told so - or that applies its own removal - logs it,
 * stops its Raft node and peer transport, and from then on answers every read and write with
 * `-ERR this node was removed from the cluster (by config index N)` (PING, INFO and the like
 * still answer, for operators). Restarted on the same data it is told again at its first
 * campaign. A removed id may be added again (RAFT.NODE ADD clears the mark): for a replacement
 * process that starts with an empty data directory once the removed one is gone.
 *
 * Owns the lifetime of those pieces (start in order, graceful stop in reverse: RESP listener,
 * executor, Raft node, transport, storage). Must never read argv/env (main.ts) or exit the
 * process (fatal errors go to `onFatal`).
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { decodeOperation, encodeOperation } from '../commands/codec.js';
import { Dispatcher } from '../commands/dispatch.js';
import { StateMachine, type Result } from '../commands/state-machine.js';
import { LostEntriesError, NodeStoppedError, NotLeaderError } from '../raft/errors.js';
import { FileStorage } from '../raft/file-storage.js';
import { ConfChangeType, EntryType, MessageType, Role } from '../raft/messages.js';
import type { ConfChange, Message, NodeId, Snapshot } from '../raft/messages.js';
import {
  RaftNode,
  readChunks,
  type AppliedEntry,
  type PeerTransport,
  type RaftApplication,
} from '../raft/node.js';
import { TcpTransport } from '../raft/tcp-transport.js';
import { CacheAgent } from './cache/agent.js';
import { defineCacheParameters } from './cache/config.js';
import { isCacheRequest } from './cache/messages.js';
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
  httpPortFor,
  isWildcardHost,
  parseMemberAddress,
  type Config,
} from './config.js';
import { encodeMembersHint, serveForwarded } from './forward.js';
import { HttpEndpoint, type Readiness } from './http.js';
import { RespServer } from './listener.js';
import { NodeMetrics } from './metrics.js';
import type { Logger } from './log.js';
import { OutcomeUnknownError, RaftExecutor, type ExecutorNode } from './raft-executor.js';

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
/** Version 2 adds the removed ids; version 1 snapshots (no removed ids) are still restored. */
const ENVELOPE_VERSION = 2;
/** A snapshot restore holds the event loop for about this long at a time. */
const RESTORE_SLICE_MS = 10;
/** Removed ids remembered, at most (the oldest removal is forgotten first). */
export const MAX_REMOVED_IDS = 1024;

/**
 * The replicated application: operations go to the StateMachine (its own index counts
 * operations only, as Empty and ConfChange entries carry none), membership entries to the
 * member table and the removed ids. A snapshot is [magic u32][version u8][members JSON length
 * u32][members JSON][removed JSON length u32][removed JSON][StateMachine snapshot], so a node
 * restored from a snapshot still knows every address and who was removed.
 */
/**
 * How often the leader checks whether a lease, timeout or TTL is due (LeaderTicker): the
 * granularity of every time-based rule in the state machine.
 */
const LEADER_TICK_INTERVAL_MS = 10;

export class ConcordApplication implements RaftApplication<Result | null> {
  readonly members = new Map<NodeId, MemberRecord>();
  /**
   * Ids removed from the cluster -> the index of the RemoveNode entry (etcd's removed-member
   * set): a message from one of them is answered with "you were removed" (ConcordNode), and
   * the id cannot be added again while remembered. Oldest first; at most MAX_REMOVED_IDS.
   */
  readonly removed = new Map<NodeId, number>();

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

  /** Records a membership change (called by the node on each applied ConfChange at `index`). */
  applyConfChange(cc: ConfChange, index: number): void {
    const known = this.members.get(cc.node);
    const parsed = cc.context === undefined ? null : parseMemberAddress(cc.context);
    const address = parsed ?? known?.address ?? null;
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        this.members.set(cc.node, { address, voter: true });
        this.removed.delete(cc.node);
        break;
      case ConfChangeType.AddLearner:
        this.members.set(cc.node, { address, voter: false });
        this.removed.delete(cc.node);
        break;
      case ConfChangeType.RemoveNode:
        this.members.delete(cc.node);
        this.removed.delete(cc.node);
        this.removed.set(cc.node, index);
        for (const id of this.removed.keys()) {
          if (this.removed.size <= MAX_REMOVED_IDS) break;
          this.removed.delete(id);
        }
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
    const removed = Buffer.from(JSON.stringify([...this.removed]), 'utf8');
    const header = Buffer.alloc(9);
    header.writeUInt32BE(ENVELOPE_MAGIC, 0);
    header.writeUInt8(ENVELOPE_VERSION, 4);
    header.writeUInt32BE(members.length, 5);
    const removedLength = Buffer.alloc(4);
    removedLength.writeUInt32BE(removed.length, 0);
    const capture = this.stateMachine.captureSnapshot();
    return readChunks((maxBytes) => capture.next(maxBytes)).then((state) =>
      Buffer.concat([header, members, removedLength, removed, state]),
    );
  }

  /**
   * Replaces the state with the snapshot's, parsing it in slices of about RESTORE_SLICE_MS with
   * the event loop free in between (500,000 keys parsed at once held it for over half a
   * second: bench/snapshot-stall.ts). The state is swapped in at the end, in one step.
   */
  async restore(snapshot: Snapshot): Promise<void> {
    const d = snapshot.data;
    const data = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    if (data.length < 9 || data.readUInt32BE(0) !== ENVELOPE_MAGIC)
      throw new Error('not a Concord node snapshot');
    const version = data.readUInt8(4);
    if (version !== 1 && version !== 2) throw new Error(`unsupported node snapshot version ${version}`);
    const length = data.readUInt32BE(5);
    const json = JSON.parse(data.subarray(9, 9 + length).toString('utf8')) as {
      id: string;
      address: MemberAddress | null;
      voter: boolean;
    }[];
    let at = 9 + length;
    let removed: [NodeId, number][] = [];
    if (version >= 2) {
      const removedLength = data.readUInt32BE(at);
      removed = JSON.parse(data.subarray(at + 4, at + 4 + removedLength).toString('utf8')) as [
        NodeId,
        number,
      ][];
      at += 4 + removedLength;
    }
    const slices = this.stateMachine.restoreInSlices(data.subarray(at));
    let sliceStart = performance.now();
    while (slices.next().done !== true) {
      if (performance.now() - sliceStart < RESTORE_SLICE_MS) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    this.members.clear();
    for (const m of json) this.members.set(m.id, { address: m.address, voter: m.voter });
    this.removed.clear();
    for (const [id, index] of removed) this.removed.set(id, index);
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
  /** The coherent near-cache's agent (server/cache/agent.ts): CGET/CSET and the directory. */
  readonly cache: CacheAgent;
  /** The term of the last role change seen (the directory is per leader term). */
  private raftTerm = 0;
  readonly dispatcher: Dispatcher;
  readonly server: RespServer;
  readonly metrics: NodeMetrics;
  private readonly log: Logger;
  private http: HttpEndpoint | null = null;
  private httpBound: AddressInfo | null = null;
  private leaderChanges = 0;
  private readonly onFatal: (error: unknown) => void;
  private readonly application: ConcordApplication;
  private raft: RaftNode<Result | null> | null = null;
  private storage: FileStorage | null = null;
  private transport: TcpTransport | null = null;
  /**
   * This node's own addresses, known once listening: what it calls itself before the member
   * table names it: --advertise, else its --bootstrap entry, else --bind (a local interface
   * address when --bind is a wildcard); ports as advertised, else as listed, else as bound.
   * See selfAddress().
   */
  private self: MemberAddress | null = null;
  private readonly peerAddresses = new Map<NodeId, string>();
  private promoteTimer: NodeJS.Timeout | null = null;
  private ticker: LeaderTicker | null = null;
  /** On the leader: where each learner's AddLearner entry applied (it must catch up past it). */
  private readonly learnerAddedAt = new Map<NodeId, number>();
  /** On the leader: when each lagging learner was last sent the members' addresses. */
  private readonly hintSentAt = new Map<NodeId, number>();
  private stopping: Promise<void> | null = null;
  /** Set once this node knows it was removed: the config index of its removal. */
  private removedAt: number | null = null;
  /** Set while this node applied its own removal and waits to see whether it is added back. */
  private pendingRemoval: NodeJS.Timeout | null = null;
  /** Log entries this node was founded with (its bootstrap members); 0 when it joined. */
  private foundingEntries = 0;
  /** When each removed id was last sent a removal notice (bounded by the removed set). */
  private readonly noticeSentAt = new Map<NodeId, number>();

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
      noQuorumForMs: () => raftOf()?.noQuorumForMs() ?? null,
    };
    this.executor = new RaftExecutor({
      node: executorNode,
      stateMachine: this.stateMachine,
      leaderClock: () => this.raft?.timeMs() ?? Date.now(),
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
    this.cache = new CacheAgent({
      host: {
        id: config.current.nodeId,
        isLeader: () => raftOf()?.isLeader ?? false,
        leaderId: () => raftOf()?.leaderId ?? null,
        term: () => this.raftTerm,
        peers: () => [...this.application.members.keys()].filter((id) => id !== config.current.nodeId),
        readBarrier: () =>
          this.raft === null ? Promise.reject(new NotLeaderError(null)) : this.raft.readIndex(),
        propose: async (op) => {
          if (this.raft === null) throw new NodeStoppedError('not started');
          const result = await this.raft.propose(encodeOperation(op));
          if (result === null) throw new OutcomeUnknownError('cache entry applied without a result');
          return result;
        },
        stateMachine: this.stateMachine,
        leaderTimeMs: () => this.stateMachine.readTime(this.raft?.timeMs() ?? Date.now()),
        request: (peer, payload, timeoutMs) =>
          this.transport === null
            ? Promise.reject(new NodeStoppedError('no peer transport'))
            : this.transport.request(peer, payload, timeoutMs),
        isConnected: (peer) => this.transport?.isConnected(peer) ?? false,
      },
      leaseMs: config.current.cacheLeaseMs,
      maxEntries: config.current.cacheMaxEntries,
      maxBytes: config.current.cacheMaxBytes,
      leaderWaitMs: 3 * electionMs,
      requestTimeoutMs: 4 * electionMs,
      pollMs: Math.max(10, Math.floor(config.current.tickMs / 2)),
      log: this.log,
    });
    defineCacheParameters(config, this.cache, this.stateMachine);
    this.dispatcher = new Dispatcher({
      executor: this.executor,
      requirePass: () => config.current.requirePass,
      cache: this.cache,
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
    this.metrics = new NodeMetrics({
      nodeId: config.current.nodeId,
      raft: () => {
        const raft = this.raft;
        if (raft === null) return null;
        const status = raft.status();
        const me = this.myId();
        return {
          info: this.raftInfo(),
          counters: {
            proposals: status.proposals,
            elections: status.elections,
            leaderChanges: this.leaderChanges,
          },
          member: status.confState.voters.includes(me) || status.confState.learners.includes(me),
        };
      },
      server: () => server.stats(),
      cacheFigures: () => this.cache.figures(),
      errors: () => server.errorReplies(),
      commands: () => this.dispatcher.commandCalls(),
      stateMachine: () => this.stateMachine,
    });
  }

  /** Term and role for every log line (main.ts's pino mixin); cheap, no allocation of status. */
  logContext(): { term: number; role: string } {
    const raft = this.raft;
    if (raft === null) return { term: 0, role: 'starting' };
    return { term: raft.currentTerm, role: roleName(raft.currentRole) };
  }

  /** /readyz: a member of the configuration this node knows, with a known leader. */
  readiness(): Readiness {
    const raft = this.raft;
    if (raft === null || this.stopping !== null) {
      return {
        ready: false,
        reason: this.stopping !== null ? 'stopping' : 'starting',
        leader: null,
        role: 'starting',
        term: 0,
      };
    }
    const role = roleName(raft.currentRole);
    const term = raft.currentTerm;
    const leader = raft.leaderId;
    // The member table follows every applied ConfChange and snapshot, as the core's ConfState
    // does, without copying the node's status for each probe.
    if (!this.application.members.has(this.myId())) {
      return { ready: false, reason: 'not a member of the cluster (yet)', leader, role, term };
    }
    if (leader === null) return { ready: false, reason: 'no known leader', leader, role, term };
    return { ready: true, reason: 'ok', leader, role, term };
  }

  /** The HTTP endpoint's address, or null when it is off. */
  httpAddress(): AddressInfo | null {
    return this.httpBound;
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
      await this.startHttp();
    } catch (error) {
      if (error instanceof LostEntriesError) await this.recordLostEntries(storage, error);
      await this.stop('start failed');
      throw error;
    }
    this.log.info(
      { node: c.nodeId, address: address.address, port: address.port, peerPort: this.self?.peerPort },
      'listening',
    );
    return address;
  }

  /**
   * Starts the operations endpoint (server/http.ts) unless it is off. A port given explicitly
   * must bind (failing the start); the derived default (RESP port + 1000) may be taken by
   * something else on a shared host: then the node runs without it and says so.
   */
  private async startHttp(): Promise<void> {
    const c = this.config.current;
    const http = httpPortFor(c);
    if (http === null) return;
    const endpoint = new HttpEndpoint({
      host: c.bind,
      port: http.port,
      log: this.log,
      readiness: () => this.readiness(),
      metrics: () => this.metrics.scrape(),
      metricsContentType: this.metrics.contentType,
    });
    try {
      this.httpBound = await endpoint.listen();
      this.http = endpoint;
      this.log.info({ port: this.httpBound.port }, 'http endpoint listening (/healthz, /readyz, /metrics)');
    } catch (error) {
      if (!http.derived) throw error;
      this.log.warn(
        { port: http.port, err: error },
        'the default HTTP port is unavailable: running without /healthz, /readyz, /metrics (set --http-port)',
      );
    }
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
      // A removed member that campaigns is told so (a removal notice); every message still
      // reaches Raft, which judges it by term and log. Dropping them, as this once did, broke a
      // node whose member table came from a snapshot older than its leader's re-add: it said
      // "removed" to its own leader and never applied the entry that re-added it.
      transport = {
        send: (m) => tcp.send(m),
        flush: () => tcp.flush(),
        onMessage: (handler) =>
          tcp.onMessage((m) => {
            if (m.type === MessageType.PreVote || m.type === MessageType.Vote) this.noticeIfRemoved(m.from);
            handler(m);
          }),
        onUnreachable: (handler) => tcp.onUnreachable(handler),
      };
      boundPeerPort = Number(tcp.address().split(':').pop());
      tcp.onRequest((from, payload) =>
        isCacheRequest(payload)
          ? this.cache.serve(from, payload)
          : serveForwarded(this.forwardTarget(), payload),
      );
      tcp.onNotice((from, body) => this.onNotice(from, body));
    } else if (multi) {
      throw new Error(
        'a cluster of several nodes needs a cluster secret (--cluster-secret or --cluster-secret-file)',
      );
    }
    const adv = c.advertise;
    let host = adv?.host ?? listed?.host ?? c.bind;
    if (isWildcardHost(host)) {
      // Nobody can dial 0.0.0.0: until the member table names this node (a --join node gets
      // its entry from RAFT.NODE ADD), use an address of this machine.
      host = localAddress();
      const alone = !c.join && c.bootstrap === null;
      this.log[alone ? 'warn' : 'info'](
        { bind: c.bind, advertised: host },
        alone
          ? `--bind ${c.bind} is a wildcard and no --advertise is set: this node records itself as ${host} (set --advertise to the address clients and peers reach it at)`
          : `--bind ${c.bind} is a wildcard and no --advertise is set: this node names itself ${host} until the member table has its address`,
      );
    }
    this.self = {
      host,
      port: adv?.port ?? listed?.port ?? address.port,
      peerPort: adv?.peerPort ?? listed?.peerPort ?? boundPeerPort,
    };
    const bootstrap = c.join
      ? undefined
      : (c.bootstrap ?? [
          { id: c.nodeId, host: this.self.host, port: this.self.port, peerPort: this.self.peerPort },
        ]);
    this.foundingEntries = bootstrap?.length ?? 0;
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
      onSyncMs: (ms) => this.metrics.observeFsyncMs(ms),
      proposalTimeoutMs: 3 * electionMs,
      // One election timeout: a lost ReadIndex is asked again within the executor's bound.
      readTimeoutMs: electionMs,
      ...(bootstrap === undefined
        ? {}
        : {
            bootstrap: bootstrap.map((m) => m.id),
            bootstrapContexts: new Map(bootstrap.map((m) => [m.id, formatMemberAddress(m)])),
          }),
      onFatal: (error) => {
        // The loss is recorded in the data directory first, so a restart refuses at once
        // instead of serving until the leader's next heartbeat reveals it again.
        if (error instanceof LostEntriesError) {
          void this.recordLostEntries(storage, error).then(() => this.onFatal(error));
        } else {
          this.onFatal(error);
        }
      },
    });
    this.raft = raft;
    raft.onEvent((e) => {
      switch (e.type) {
        case 'conf-changed':
          this.application.applyConfChange(e.change, e.index);
          if (e.change.type === ConfChangeType.AddLearner) {
            this.learnerAddedAt.set(e.change.node, raft.appliedIndex + 1);
          } else {
            this.learnerAddedAt.delete(e.change.node);
            this.hintSentAt.delete(e.change.node);
          }
          if (e.change.type !== ConfChangeType.RemoveNode && e.change.node === c.nodeId) {
            this.readdedToCluster();
          }
          if (e.change.type === ConfChangeType.RemoveNode && e.change.node === c.nodeId) {
            const index = e.index;
            // After this Ready turn: a removed leader's TimeoutNow to its successor goes out first.
            setImmediate(() => this.removedByOwnLog(index));
          }
          // After the Ready turn that applied it (the core campaigns only with no conf change unapplied).
          setImmediate(() => this.campaignIfAlone());
          break;
        case 'leader-changed':
          this.leaderChanges++;
          this.log.info({ leader: e.leader, term: e.term }, 'leader changed');
          this.raftTerm = Math.max(this.raftTerm, e.term);
          this.cache.leadershipChanged();
          break;
        case 'role-changed':
          this.log.info({ role: e.role, term: e.term }, 'role changed');
          this.raftTerm = Math.max(this.raftTerm, e.term);
          this.cache.leadershipChanged();
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
    this.cache.start();
  }

  /**
   * A campaign from `from`: if `from` was removed from the cluster (and is not a member again in
   * this node's view), tell it so, at most once a second (its campaign repeats). A removed node
   * that learns it stops campaigning and refuses its clients; a member re-added since (this
   * node's view may be older, restored from a snapshot) ignores the notice.
   */
  private noticeIfRemoved(from: NodeId): void {
    const index = this.application.removed.get(from);
    if (index === undefined || this.application.members.has(from)) return;
    const now = Date.now();
    if (now - (this.noticeSentAt.get(from) ?? -Infinity) >= 1000) {
      const body = Buffer.from(JSON.stringify({ removed: index }), 'utf8');
      if (this.transport?.notice(from, body) === true) {
        this.noticeSentAt.set(from, now);
        this.log.info({ node: from, configIndex: index }, 'told a removed node it was removed');
      }
      // Bounded by the removed set: forget ids no longer in it.
      for (const id of this.noticeSentAt.keys()) {
        if (!this.application.removed.has(id)) this.noticeSentAt.delete(id);
      }
    }
  }

  /** A notice from a peer (FrameKind.Notice): today only "you were removed". */
  private onNotice(from: NodeId, body: Buffer): void {
    let index: unknown;
    try {
      index = (JSON.parse(body.toString('utf8')) as { removed?: unknown }).removed;
    } catch {
      index = undefined;
    }
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 1) {
      this.log.warn({ peer: from }, 'ignored a malformed notice from a peer');
      return;
    }
    const applied = this.raft?.appliedIndex ?? 0;
    if (applied >= index && this.isMember()) {
      // This node applied past that removal and is a member again (re-added): the peer lags.
      return;
    }
    if (applied <= this.foundingEntries) {
      // Nothing applied beyond its own founding entries: a replacement started under a removed
      // id (empty data dir), waiting for RAFT.NODE ADD to clear the mark - not the removed
      // process. With an empty log it cannot win a vote, so it disturbs nothing meanwhile.
      this.log.warn(
        { peer: from, configIndex: index },
        'a peer says this node id was removed; this node has applied nothing yet, so it waits to be added again (RAFT.NODE ADD)',
      );
      return;
    }
    this.markRemoved(index, from);
  }

  /**
   * This node was removed from the cluster at config `index`: stop the Raft node (no more
   * campaigns) and the peer transport; every read and write is refused from now on.
   */
  /**
   * This node applied its own RemoveNode. It refuses clients at once, but it stops for good
   * only if no later entry adds it back: a replacement started under a removed id (empty data
   * dir) applies the old removal while it catches up, then the AddLearner that re-added it.
   */
  private removedByOwnLog(index: number): void {
    if (this.removedAt !== null || this.stopping !== null) return;
    // Called a turn after the removal applied: the AddLearner that re-added this node may have
    // applied in the same Ready turn (a restart replays both), when readdedToCluster found no
    // pending removal to undo. Marking it removed now would refuse every client for good.
    if (this.isMember()) return;
    this.executor.markRemoved(index);
    if (this.pendingRemoval !== null) clearTimeout(this.pendingRemoval);
    const c = this.config.current;
    this.pendingRemoval = setTimeout(
      () => {
        this.pendingRemoval = null;
        if (this.isMember()) {
          // Added back without a conf change event (a snapshot installed with this node in its
          // configuration): never leave the executor refusing a member.
          this.executor.clearRemoved();
          return;
        }
        this.markRemoved(index, 'its own log');
      },
      2 * c.tickMs * c.electionTicks,
    );
    this.pendingRemoval.unref();
  }

  /** Whether this node is a voter or learner in the configuration it has applied. */
  private isMember(): boolean {
    const conf = this.raft?.status().confState;
    const id = this.config.current.nodeId;
    return conf !== undefined && (conf.voters.includes(id) || conf.learners.includes(id));
  }

  /** A conf change added this node (back): undo a removal learned from its own log. */
  private readdedToCluster(): void {
    if (this.pendingRemoval === null) return;
    clearTimeout(this.pendingRemoval);
    this.pendingRemoval = null;
    this.executor.clearRemoved();
    this.log.info({ node: this.myId() }, 'this node was added back to the cluster after an earlier removal');
  }

  private markRemoved(index: number, by: NodeId): void {
    if (this.removedAt !== null || this.stopping !== null) return;
    this.removedAt = index;
    this.executor.markRemoved(index);
    this.log.error(
      { node: this.myId(), configIndex: index, by },
      `this node was removed from the cluster (by config index ${index}, learned from ${by}): its Raft node stops and every read and write is refused; start it again only with a new id and an empty data directory`,
    );
    if (this.promoteTimer !== null) clearInterval(this.promoteTimer);
    this.promoteTimer = null;
    const raft = this.raft;
    const transport = this.transport;
    void (async () => {
      await raft?.stop();
      await transport?.close();
    })();
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
      // The member table holds the address the cluster was told (--bootstrap or RAFT.NODE ADD);
      // for this node, selfAddress() (--advertise first). Never the --bind host and bound port:
      // on a node started with --join that is e.g. 0.0.0.0 and a learner given it would dial
      // itself.
      const address = member === this.myId() ? this.selfAddress() : record.address;
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
      leaderTimeMs: () => sm.readTime(this.raft?.timeMs() ?? Date.now()),
      learnPeers: (peers) => this.learnPeers(peers),
    };
  }

  /** Writes the LOST-ENTRIES marker; a failure to write it is logged, never hides the error itself. */
  private async recordLostEntries(storage: FileStorage, error: LostEntriesError): Promise<void> {
    try {
      await storage.recordLostEntries(error);
    } catch (writeError) {
      this.log.error({ err: writeError }, 'could not record the lost entries in the data directory');
    }
  }

  /** Graceful stop (idempotent): clients first, then Raft, the transport and the storage. */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.stopAll(reason);
    return this.stopping;
  }

  private async stopAll(reason: string): Promise<void> {
    if (this.promoteTimer !== null) clearInterval(this.promoteTimer);
    this.ticker?.stop();
    if (this.pendingRemoval !== null) clearTimeout(this.pendingRemoval);
    // First, so probes and scrapers see the node go away before its clients are closed.
    await this.http?.close();
    this.cache.stop();
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
    if (id === this.myId()) return this.selfAddress();
    return this.application.members.get(id)?.address ?? null;
  }

  /**
   * The address this node tells clients (CLUSTER SLOTS, CLUSTER NODES, -MOVED) and learners to
   * reach it at: --advertise when set (the operator's word); else the address the cluster's
   * member table has for it (what its peers dial: --bootstrap or RAFT.NODE ADD); else `self`
   * (the bind address, or a local address when bound to a wildcard). Never a wildcard.
   */
  private selfAddress(): MemberAddress | null {
    if (this.config.current.advertise !== null) return this.self;
    return this.application.members.get(this.myId())?.address ?? this.self;
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
      executor: this.executor.status(),
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
      executor: this.executor.status(),
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
    // A removed id may be added again (a replacement node in a compose file keeps its
    // service's id); the AddLearner clears its removed mark. The operator's part: the removed
    // process is gone and the new one starts with an empty data directory (docs/operations.md).
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

/**
 * An address of this machine others can likely dial, for a node bound to a wildcard with
 * nothing better known: the first non-internal IPv4 address (interfaces by name, so the choice
 * is stable), else the first non-internal IPv6 one, else 127.0.0.1.
 */
function localAddress(): string {
  const interfaces = os.networkInterfaces();
  const names = Object.keys(interfaces).sort();
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const name of names) {
      for (const a of interfaces[name] ?? []) {
        if (
          !a.internal &&
          a.family === family &&
          !(family === 'IPv6' && a.scopeid !== undefined && a.scopeid !== 0)
        )
          return a.address;
      }
    }
  }
  return '127.0.0.1';
}
