/**
 * Prometheus metrics of one node (prom-client), served on the HTTP endpoint (server/http.ts):
 * Raft (term, role, indexes, proposals, elections, fsync latency histogram), clients
 * (connections, commands by name, error replies by prefix, bytes), the keyspace and each command
 * family's figures (FAMILY_METRICS: the same numbers as their INFO sections), and the process
 * (prom-client's default set: event-loop lag, memory, heap, GC, CPU, file descriptors).
 *
 * Figures are read from their owners at scrape time (collect callbacks), so the request path
 * pays nothing for them but the counters it already keeps; only the fsync histogram is fed as
 * syncs happen (a histogram needs every observation). Every metric carries the label
 * `node="<node id>"`.
 *
 * Owns the Registry and the metric names (their meaning is documented in docs/operations.md).
 * Must never change state, block on consensus (the figures are this node's local view, like
 * INFO's), or invent a figure: a family without real figures registers nothing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { keyspaceFigures } from '../commands/admin/info.js';
import type { StateMachine } from '../commands/state-machine.js';
import type { CacheFigures } from '../commands/cache/service.js';
import type { ServerStats } from '../commands/context.js';
import type { RaftInfo } from './cluster-view.js';

/** One figure of a family's INFO section, exported as `concord_<field>` (counters `..._total`). */
export interface FamilyField {
  /** The INFO field name, e.g. `keys`; the metric is `concord_<section>_<field>`. */
  readonly field: string;
  readonly help: string;
  /** 'gauge' for a level (held now), 'counter' for a running total since start. */
  readonly type: 'gauge' | 'counter';
}

/**
 * The hook through which a command family (locks, queues, cache) adds its figures: ONE entry in
 * FAMILY_METRICS below. `read` must return the same numbers as the family's INFO section (use
 * the one function for both, so /metrics and INFO never disagree), must not change state, and
 * must be cheap (it runs at every scrape, on the event loop). Example, for a locks family:
 *
 *   { section: 'locks',
 *     fields: [{ field: 'held', help: 'Locks held now.', type: 'gauge' },
 *              { field: 'acquired', help: 'Locks granted since start.', type: 'counter' }],
 *     read: (sm) => ({ held: sm.locks.heldCount, acquired: sm.locks.acquiredTotal }) }
 *
 * gives `concord_locks_held` and `concord_locks_acquired_total`. A field missing from `read`'s
 * result is left out of the scrape (never reported as 0).
 */
export interface FamilyMetrics {
  /** The INFO section name, lower case (`keyspace`, `locks`, ...): the metric name prefix. */
  readonly section: string;
  readonly fields: readonly FamilyField[];
  /** `sources` gives node-local figures (the near-cache) that are not in the state machine. */
  read(sm: StateMachine, sources: MetricsSources): Readonly<Record<string, number>>;
}

/** The keyspace's figures: INFO keyspace's `db0:keys=N,expires=M`. */
export const KEYSPACE_METRICS: FamilyMetrics = {
  section: 'keyspace',
  fields: [
    {
      field: 'keys',
      help: "Keys held in the replicated keyspace (this node's applied state).",
      type: 'gauge',
    },
    { field: 'expires', help: 'Keys with a time to live.', type: 'gauge' },
  ],
  read: (sm) => {
    const { keys, expires } = keyspaceFigures(sm);
    return { keys, expires };
  },
};

/** The lock manager's figures: the same as INFO locks (commands/locks/store.ts figures()). */
export const LOCK_METRICS: FamilyMetrics = {
  section: 'locks',
  fields: [
    { field: 'locks', help: 'Locks with a holder or a waiter.', type: 'gauge' },
    { field: 'holders', help: 'Holds (owner, lock) granted and not released or expired.', type: 'gauge' },
    { field: 'waiters', help: 'Requests waiting in lock queues.', type: 'gauge' },
    { field: 'grants', help: 'Locks granted.', type: 'counter' },
    { field: 'expiries', help: 'Leases that ran out without renewal.', type: 'counter' },
    {
      field: 'deadlocks',
      help: 'Lock requests refused because they would close a wait-for cycle.',
      type: 'counter',
    },
    { field: 'wait_timeouts', help: 'Waits that ran out before a grant.', type: 'counter' },
    {
      field: 'forced_releases',
      help: 'Locks released by an administrator (LOCK.FORCERELEASE).',
      type: 'counter',
    },
  ],
  read: (sm) => {
    const l = keyspaceFigures(sm).locks;
    return {
      locks: l.locks,
      holders: l.holders,
      waiters: l.waiters,
      grants: l.grants,
      expiries: l.expiries,
      deadlocks: l.deadlocks,
      wait_timeouts: l.waitTimeouts,
      forced_releases: l.forcedReleases,
    };
  },
};

/** The queues' figures, summed over every queue: the same as INFO queues. */
export const QUEUE_METRICS: FamilyMetrics = {
  section: 'queues',
  fields: [
    { field: 'queues', help: 'Queues (dead-letter queues included).', type: 'gauge' },
    { field: 'ready', help: 'Messages ready for delivery.', type: 'gauge' },
    { field: 'leased', help: 'Messages delivered and not yet acked (in flight).', type: 'gauge' },
    { field: 'delayed', help: 'Messages waiting for their delivery delay.', type: 'gauge' },
    { field: 'waiting', help: 'Consumers blocked in QPOP.', type: 'gauge' },
    { field: 'pushed', help: 'Messages pushed.', type: 'counter' },
    { field: 'delivered', help: 'Deliveries (first and repeated).', type: 'counter' },
    { field: 'redelivered', help: 'Deliveries of a message delivered before.', type: 'counter' },
    { field: 'acked', help: 'Messages acked.', type: 'counter' },
    { field: 'expired', help: 'Leases that ran out (visibility timeouts).', type: 'counter' },
    { field: 'dead_lettered', help: 'Messages moved to a dead-letter queue.', type: 'counter' },
  ],
  read: (sm) => {
    const q = keyspaceFigures(sm, true).queues;
    if (q === null) return {};
    const c = q.counters;
    return {
      queues: q.queues,
      ready: q.ready,
      leased: q.leased,
      delayed: q.delayed,
      waiting: q.waiting,
      pushed: c.pushed,
      delivered: c.delivered,
      redelivered: c.redelivered,
      acked: c.acked,
      expired: c.expired,
      dead_lettered: c.deadLettered,
    };
  },
};

/** The near-cache's figures on this node (not replicated): the same object as INFO cache prints. */
export const CACHE_METRICS: FamilyMetrics = {
  section: 'cache',
  fields: [
    { field: 'hits', help: 'CGETs answered from a valid local line.', type: 'counter' },
    { field: 'misses', help: 'CGETs that fetched from home (the leader).', type: 'counter' },
    {
      field: 'misses_joined',
      help: 'CGET misses that waited for a fetch of the same key already in flight.',
      type: 'counter',
    },
    { field: 'fetches', help: 'Fetches sent to the leader (misses and renewals).', type: 'counter' },
    { field: 'refreshes', help: 'Hot lines renewed before their lease ran out.', type: 'counter' },
    { field: 'lease_expiries', help: 'Lines found past their lease by a CGET.', type: 'counter' },
    { field: 'writes', help: 'CSET/CDEL sent by this node.', type: 'counter' },
    { field: 'invalidations_sent', help: 'Invalidations this node sent as leader.', type: 'counter' },
    { field: 'invalidations_received', help: 'Invalidations of local lines received.', type: 'counter' },
    {
      field: 'invalidations_timed_out',
      help: 'Holders that did not ack; the write waited out their lease.',
      type: 'counter',
    },
    { field: 'updates_sent', help: 'New values pushed to holders (update policy).', type: 'counter' },
    { field: 'downgrades_sent', help: 'E/M holders told to downgrade to S.', type: 'counter' },
    { field: 'evictions', help: 'Lines evicted by the LRU bounds.', type: 'counter' },
    { field: 'data_flushes', help: 'FLUSHALL rounds run by this node as leader.', type: 'counter' },
    { field: 'lines', help: 'Lines held by this node.', type: 'gauge' },
    { field: 'lines_m', help: 'Valid lines in state M.', type: 'gauge' },
    { field: 'lines_e', help: 'Valid lines in state E.', type: 'gauge' },
    { field: 'lines_s', help: 'Valid lines in state S.', type: 'gauge' },
    {
      field: 'bytes',
      help: 'Bytes held by the near-cache (keys, values, per-line overhead).',
      type: 'gauge',
    },
    { field: 'lease_ms', help: 'The lease granted now, in ms.', type: 'gauge' },
  ],
  read: (_sm, sources) => {
    const f = sources.cacheFigures?.();
    if (f === undefined) return {};
    return {
      hits: f.hits,
      misses: f.misses,
      misses_joined: f.missesJoined,
      fetches: f.fetches,
      refreshes: f.refreshes,
      lease_expiries: f.leaseExpiries,
      writes: f.writes,
      invalidations_sent: f.invalidationsSent,
      invalidations_received: f.invalidationsReceived,
      invalidations_timed_out: f.invalidationsTimedOut,
      updates_sent: f.updatesSent,
      downgrades_sent: f.downgradesSent,
      evictions: f.evictions,
      data_flushes: f.dataFlushes,
      lines: f.lines,
      lines_m: f.linesM,
      lines_e: f.linesE,
      lines_s: f.linesS,
      bytes: f.bytes,
      lease_ms: f.leaseMs,
    };
  },
};

/** Every family's figures; a family built later appends its entry here (see FamilyMetrics). */
export const FAMILY_METRICS: readonly FamilyMetrics[] = [
  KEYSPACE_METRICS,
  LOCK_METRICS,
  QUEUE_METRICS,
  CACHE_METRICS,
];

/** Raft counters the driver keeps besides RaftInfo (raft/node.ts NodeStatus). */
export interface RaftCounters {
  readonly proposals: number;
  readonly elections: number;
  readonly leaderChanges: number;
}

/** Where the figures come from; every callback is synchronous, cheap and side-effect free. */
export interface MetricsSources {
  readonly nodeId: string;
  /** Null before Raft runs. */
  raft(): { info: RaftInfo; counters: RaftCounters; member: boolean } | null;
  server(): ServerStats;
  /** Error replies sent, by Redis prefix (ERR, WRONGTYPE, NOQUORUM, ...). */
  errors(): ReadonlyMap<string, number>;
  /** Calls per command since start, by command name (`get`, `client|list`). */
  commands(): Iterable<readonly [string, number]>;
  stateMachine(): StateMachine;
  /** The near-cache's figures (those INFO cache prints); absent where no near-cache runs. */
  cacheFigures?(): CacheFigures;
  families?: readonly FamilyMetrics[];
}

/** The roles exported by `concord_raft_role` (one series each, 1 on the current role). */
const ROLES = ['leader', 'follower', 'candidate', 'pre-candidate'] as const;

/** Sync latency buckets (seconds): 100 µs (page cache) to 1 s (a stalled disk). */
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * Leaves an unlabelled metric without a sample for this scrape (prom-client's reset() would
 * put a 0 there, a figure nobody measured).
 */
function clear(metric: Gauge | Counter): void {
  metric.reset();
  metric.remove({});
}

/** A counter whose value is read from its owner at scrape time (prom-client has no setter). */
function setCounter(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}

/** The figures one scrape reads, gathered once per scrape however many metrics use them. */
interface ScrapeView {
  readonly raft: ReturnType<MetricsSources['raft']>;
  readonly server: ServerStats;
}

/**
 * Scrapes closer together than this share one rendering: a client hammering /metrics costs the
 * node one rendering per interval plus HTTP parsing, not one rendering per request (scraping
 * must not take the event loop from clients). Prometheus scrapes every 15 s or so.
 */
export const DEFAULT_METRICS_MIN_INTERVAL_MS = 1000;

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly fsync: Histogram;
  private readonly sources: MetricsSources;
  private view: ScrapeView | null = null;
  /**
   * Each family's figures, read once per scrape: its fields are separate metrics, and a
   * family's read may sum over all its state (queues), so it must not run once per field.
   */
  private readonly familyFigures = new Map<FamilyMetrics, Readonly<Record<string, number>>>();
  /** The last rendering (or the one in progress) and when it started. */
  private last: { atMs: number; text: Promise<string> } | null = null;

  constructor(
    input: MetricsSources,
    private readonly minIntervalMs: number = DEFAULT_METRICS_MIN_INTERVAL_MS,
  ) {
    // Every collector reads through `current()`: one raft.status() and one stats() per scrape.
    const current = (): ScrapeView => (this.view ??= { raft: input.raft(), server: input.server() });
    this.sources = { ...input, raft: () => current().raft, server: () => current().server };
    const sources = this.sources;
    const registry = this.registry;
    registry.setDefaultLabels({ node: sources.nodeId });
    // Event-loop lag (nodejs_eventloop_lag_*), heap, RSS, GC, CPU, handles: the process figures.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
    this.fsync = new Histogram({
      name: 'concord_raft_fsync_duration_seconds',
      help: 'Raft log storage sync (fsync) duration; one sync per group-committed batch.',
      buckets: FSYNC_BUCKETS,
      registers: [registry],
    });
    this.raftMetrics();
    this.clientMetrics();
    for (const family of sources.families ?? FAMILY_METRICS) this.familyMetrics(family);
  }

  /** One storage sync took `ms` (fed by the Raft driver's onSyncMs). */
  observeFsyncMs(ms: number): void {
    this.fsync.observe(ms / 1000);
  }

  /**
   * The Prometheus text exposition of every metric, figures read once at the start of the
   * rendering. Within `minIntervalMs` of the previous rendering (or during it), that one is
   * returned again.
   */
  scrape(): Promise<string> {
    const now = performance.now();
    if (this.last !== null && now - this.last.atMs < this.minIntervalMs) return this.last.text;
    const text = this.render();
    this.last = { atMs: now, text };
    // A failed rendering is not reused.
    text.catch(() => {
      if (this.last?.text === text) this.last = null;
    });
    return text;
  }

  private async render(): Promise<string> {
    this.view = null;
    this.familyFigures.clear();
    try {
      return await this.registry.metrics();
    } finally {
      this.view = null;
      this.familyFigures.clear();
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private raftMetrics(): void {
    const { registry, sources } = this;
    const registers = [registry];
    const raftGauge = (name: string, help: string, value: (r: RaftInfo) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const raft = sources.raft();
          if (raft === null) clear(this);
          else this.set(value(raft.info));
        },
      });
    };
    raftGauge('concord_raft_term', 'Current Raft term.', (r) => r.term);
    raftGauge('concord_raft_commit_index', 'Highest log index known committed.', (r) => r.commitIndex);
    raftGauge(
      'concord_raft_applied_index',
      'Highest log index applied to the state machine.',
      (r) => r.appliedIndex,
    );
    raftGauge('concord_raft_last_index', "Last index in this node's log.", (r) => r.lastIndex);
    raftGauge('concord_raft_snapshot_index', 'Index of the latest snapshot.', (r) => r.snapshotIndex);
    raftGauge('concord_raft_voters', 'Voting members in the current configuration.', (r) => r.voters.length);
    raftGauge(
      'concord_raft_learners',
      'Learners (non-voting members catching up).',
      (r) => r.learners.length,
    );
    raftGauge(
      'concord_raft_pending_proposals',
      'Proposals appended but not yet applied.',
      (r) => r.pendingProposals,
    );
    raftGauge(
      'concord_raft_pending_reads',
      'Linearizable reads waiting for their ReadIndex barrier.',
      (r) => r.pendingReads,
    );
    raftGauge(
      'concord_executor_writes_in_flight',
      'Writes called on this node and not yet answered (proposed, forwarded or waiting to be).',
      (r) => r.executor.writesInFlight,
    );
    raftGauge(
      'concord_executor_oldest_write_seconds',
      'Age of the oldest write in flight on this node (0 when none): past the leader wait, a stall.',
      (r) => (r.executor.oldestWriteMs ?? 0) / 1000,
    );
    raftGauge('concord_raft_leader_known', '1 while this node knows a leader, else 0.', (r) =>
      r.leader === null ? 0 : 1,
    );
    new Gauge({
      name: 'concord_raft_role',
      help: '1 for the role this node has now (leader, follower, candidate, pre-candidate), 0 for the others.',
      labelNames: ['role'],
      registers,
      collect() {
        const raft = sources.raft();
        this.reset();
        if (raft === null) return;
        for (const role of ROLES) this.set({ role }, raft.info.role === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'concord_raft_member',
      help: '1 while this node is a voter or learner of the configuration it knows, else 0.',
      registers,
      collect() {
        const raft = sources.raft();
        this.set(raft?.member === true ? 1 : 0);
      },
    });
    new Gauge({
      name: 'concord_raft_peer_reachable',
      help: '1 while this node holds a live, authenticated peer connection to the member.',
      labelNames: ['peer'],
      registers,
      collect() {
        const raft = sources.raft();
        this.reset();
        if (raft === null) return;
        for (const p of raft.info.peers) this.set({ peer: p.id }, p.reachable ? 1 : 0);
      },
    });
    new Gauge({
      name: 'concord_raft_peer_lag_entries',
      help: "On the leader: entries each member is behind the leader's last index (absent elsewhere).",
      labelNames: ['peer'],
      registers,
      collect() {
        const raft = sources.raft();
        this.reset();
        if (raft === null) return;
        for (const p of raft.info.peers) if (p.lag !== null) this.set({ peer: p.id }, p.lag);
      },
    });
    const raftCounter = (name: string, help: string, value: (c: RaftCounters) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          const raft = sources.raft();
          if (raft === null) clear(this);
          else setCounter(this, value(raft.counters));
        },
      });
    };
    raftCounter(
      'concord_raft_proposals_total',
      'Proposals this node appended as leader since start.',
      (c) => c.proposals,
    );
    raftCounter(
      'concord_raft_elections_total',
      'Elections this node started (became candidate) since start.',
      (c) => c.elections,
    );
    raftCounter(
      'concord_raft_leader_changes_total',
      'Times the leader this node knows changed since start.',
      (c) => c.leaderChanges,
    );
    new Counter({
      name: 'concord_raft_fsyncs_total',
      help: 'Storage syncs since start (same count as the fsync histogram, kept for INFO parity).',
      registers,
      collect() {
        const raft = sources.raft();
        if (raft === null) clear(this);
        else setCounter(this, raft.info.fsync.count);
      },
    });
  }

  private clientMetrics(): void {
    const { registry, sources } = this;
    const registers = [registry];
    new Gauge({
      name: 'concord_connected_clients',
      help: 'Client connections open now (INFO connected_clients).',
      registers,
      collect() {
        this.set(sources.server().connectedClients);
      },
    });
    const statCounter = (name: string, help: string, value: (s: ServerStats) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          setCounter(this, value(sources.server()));
        },
      });
    };
    statCounter(
      'concord_connections_received_total',
      'Client connections accepted since start.',
      (s) => s.totalConnectionsReceived,
    );
    statCounter(
      'concord_rejected_connections_total',
      'Client connections refused (maxclients, protected mode).',
      (s) => s.rejectedConnections,
    );
    statCounter(
      'concord_commands_processed_total',
      'Requests processed since start (INFO total_commands_processed).',
      (s) => s.totalCommandsProcessed,
    );
    statCounter('concord_net_input_bytes_total', 'Bytes read from clients.', (s) => s.totalNetInputBytes);
    statCounter('concord_net_output_bytes_total', 'Bytes written to clients.', (s) => s.totalNetOutputBytes);
    new Counter({
      name: 'concord_commands_total',
      help: 'Calls per command since start (rate() gives commands per second by command).',
      labelNames: ['command'],
      registers,
      collect() {
        this.reset();
        for (const [command, n] of sources.commands()) if (n > 0) this.inc({ command }, n);
      },
    });
    new Counter({
      name: 'concord_error_replies_total',
      help: 'Error replies sent to clients, by Redis error prefix (ERR, WRONGTYPE, NOAUTH, ...).',
      labelNames: ['prefix'],
      registers,
      collect() {
        this.reset();
        for (const [prefix, n] of sources.errors()) this.inc({ prefix }, n);
      },
    });
  }

  private familyMetrics(family: FamilyMetrics): void {
    const { registry, sources } = this;
    for (const f of family.fields) {
      const base = `concord_${family.section}_${f.field}`;
      const figures = this.familyFigures;
      const read = (): number | undefined => {
        let all = figures.get(family);
        if (all === undefined) {
          all = family.read(sources.stateMachine(), sources);
          figures.set(family, all);
        }
        return all[f.field];
      };
      if (f.type === 'gauge') {
        new Gauge({
          name: base,
          help: f.help,
          registers: [registry],
          collect() {
            const v = read();
            if (v === undefined) clear(this);
            else this.set(v);
          },
        });
      } else {
        new Counter({
          name: `${base}_total`,
          help: f.help,
          registers: [registry],
          collect() {
            const v = read();
            if (v === undefined) clear(this);
            else setCounter(this, v);
          },
        });
      }
    }
  }
}
