/**
 * INFO: server figures in Redis's text format ("# Section" headers, "field:value" lines, CRLF,
 * a blank line between sections). Only real figures: a field Concord cannot measure is left
 * out rather than invented.
 *
 * Format:
 *   INFO [section [section ...]]
 *
 * Reply:
 *   Bulk string (verbatim "txt" in RESP3). Sections: server, clients, memory, persistence,
 *   stats, replication, cpu, cluster, raft, locks, queues, keyspace; "default" (or no section)
 *   gives all but the families' sections (locks, queues: queues sums over every queue,
 *   docs/queues.md), "all"/"everything" all of them; unknown sections are ignored (empty
 *   reply if nothing matches), as in Redis.
 *   cluster and raft exist only on a node running Raft (ServerContext.cluster): cluster has
 *   cluster_enabled:1, raft is RAFT.INFO's text (commands/cluster/raft-info.ts); replication
 *   then tells the Raft role (master on the leader, slave with the leader's address on a
 *   follower).
 */
import { arch, machine, release, type } from 'node:os';
import type { CommandContext } from '../context.js';
import type { CacheService } from '../cache/service.js';
import { cacheInfoLines } from '../cache/common.js';
import { verbatim, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import type { StateMachine } from '../state-machine.js';
import type { LockFigures } from '../locks/store.js';
import { CONCORD_VERSION, REDIS_VERSION } from '../version.js';
import { raftInfoLines } from '../cluster/raft-info.js';
import { topology } from '../cluster/topology.js';
import type { QueueTotals } from '../queues/store.js';

export const SECTIONS = [
  'server',
  'clients',
  'memory',
  'persistence',
  'stats',
  'replication',
  'cpu',
  'cache',
  'cluster',
  'raft',
  'locks',
  'keyspace',
  'queues',
] as const;
type Section = (typeof SECTIONS)[number];
/**
 * The families' sections (locks, queues) are not in the default set, as Redis keeps
 * commandstats out of it (ioredis sends INFO as its ready check on every connect: it should not
 * sum over every queue): asked by name, or with "all"/"everything".
 */
const FAMILY_SECTIONS: ReadonlySet<Section> = new Set<Section>(['locks', 'queues']);
const DEFAULT_SECTIONS: Section[] = SECTIONS.filter((s) => !FAMILY_SECTIONS.has(s));

/** Figures of the replicated state (this node's local view): keyspace, locks and queues. */
export interface KeyspaceFigures {
  readonly keys: number;
  readonly expires: number;
  readonly locks: LockFigures;
  /** Only when the queues section is asked for (it sums over every queue). */
  readonly queues: QueueTotals | null;
}

/** INFO keyspace's (and the families') figures; /metrics reads the same function (server/metrics.ts). */
export function keyspaceFigures(sm: StateMachine, withQueues = false): KeyspaceFigures {
  return {
    keys: sm.keys.size,
    expires: sm.keys.expires,
    locks: sm.locks.figures(),
    queues: withQueues ? sm.queues.totals() : null,
  };
}

/** Bytes as Redis's bytesToHuman: "1.23M". */
export function bytesToHuman(n: number): string {
  const units = ['K', 'M', 'G', 'T', 'P'];
  if (n < 1024) return `${n}B`;
  let d = n / 1024;
  for (const unit of units) {
    if (d < 1024) return `${d.toFixed(2)}${unit}`;
    d /= 1024;
  }
  return `${n}B`;
}

function cpuSeconds(micros: number): string {
  return (micros / 1e6).toFixed(6);
}

function configValue(ctx: CommandContext, name: string): string | undefined {
  for (const [k, v] of ctx.server.config.get(name)) if (k === name) return v;
  return undefined;
}

function section(
  ctx: CommandContext,
  name: Section,
  keyspace: KeyspaceFigures | null,
  blockedClients: number,
  cache: CacheService | undefined,
): string[] {
  const server = ctx.server;
  switch (name) {
    case 'server': {
      const nowMs = Date.now();
      const uptimeS = Math.floor((nowMs - server.startedAtMs) / 1000);
      return [
        `redis_version:${REDIS_VERSION}`,
        `concord_version:${CONCORD_VERSION}`,
        'redis_mode:standalone',
        `os:${type()} ${release()} ${machine()}`,
        `arch_bits:${arch().endsWith('64') ? 64 : 32}`,
        `process_id:${process.pid}`,
        `run_id:${server.runId}`,
        `tcp_port:${server.tcpPort}`,
        `server_time_usec:${nowMs * 1000}`,
        `uptime_in_seconds:${uptimeS}`,
        `uptime_in_days:${Math.floor(uptimeS / 86400)}`,
        `executable:${process.execPath}`,
        `node_version:${process.versions.node}`,
      ];
    }
    case 'clients': {
      const stats = server.stats();
      const lines = [`connected_clients:${stats.connectedClients}`];
      const maxClients = configValue(ctx, 'maxclients');
      if (maxClients !== undefined) lines.push(`maxclients:${maxClients}`);
      // Requests blocked on this node (LOCK ... WAIT), from the executor's waiter registry.
      lines.push(`blocked_clients:${blockedClients}`);
      return lines;
    }
    case 'memory': {
      const mem = process.memoryUsage();
      const used = mem.heapUsed + mem.external;
      const lines = [
        `used_memory:${used}`,
        `used_memory_human:${bytesToHuman(used)}`,
        `used_memory_rss:${mem.rss}`,
        `used_memory_rss_human:${bytesToHuman(mem.rss)}`,
        `used_memory_heap_total:${mem.heapTotal}`,
        `used_memory_external:${mem.external}`,
      ];
      const maxMemory = configValue(ctx, 'maxmemory');
      if (maxMemory !== undefined) lines.push(`maxmemory:${maxMemory}`);
      return lines;
    }
    case 'persistence':
      return ['loading:0', 'async_loading:0'];
    case 'stats': {
      const stats = server.stats();
      return [
        `total_connections_received:${stats.totalConnectionsReceived}`,
        `total_commands_processed:${stats.totalCommandsProcessed}`,
        `total_net_input_bytes:${stats.totalNetInputBytes}`,
        `total_net_output_bytes:${stats.totalNetOutputBytes}`,
        `rejected_connections:${stats.rejectedConnections}`,
      ];
    }
    case 'replication': {
      const cluster = server.cluster;
      if (cluster === undefined) return ['role:master', 'connected_slaves:0'];
      const t = topology(cluster);
      if (t.leaderKnown && t.master?.self === true) {
        return ['role:master', `connected_slaves:${t.replicas.length}`];
      }
      const lines = ['role:slave'];
      if (t.leaderKnown && t.master !== null) {
        lines.push(
          `master_host:${t.master.host}`,
          `master_port:${t.master.port}`,
          `master_link_status:${t.master.reachable ? 'up' : 'down'}`,
        );
      } else {
        lines.push('master_link_status:down');
      }
      return lines;
    }
    case 'cluster':
      return server.cluster === undefined ? [] : ['cluster_enabled:1'];
    case 'raft':
      return server.cluster === undefined ? [] : raftInfoLines(server.cluster);
    case 'cpu': {
      const cpu = process.cpuUsage();
      return [`used_cpu_sys:${cpuSeconds(cpu.system)}`, `used_cpu_user:${cpuSeconds(cpu.user)}`];
    }
    case 'locks': {
      // The lock manager's replicated figures (commands/locks/store.ts), as this node applied them.
      if (keyspace === null) return [];
      const l = keyspace.locks;
      return [
        `locks:${l.locks}`,
        `lock_holders:${l.holders}`,
        `lock_waiters:${l.waiters}`,
        `lock_grants:${l.grants}`,
        `lock_expiries:${l.expiries}`,
        `lock_wait_timeouts:${l.waitTimeouts}`,
        `lock_deadlocks:${l.deadlocks}`,
        `lock_forced_releases:${l.forcedReleases}`,
        `lock_last_token:${l.lastToken}`,
        `lock_retired_tokens:${l.retired}`,
      ];
    }
    case 'cache':
      return cache === undefined ? [] : cacheInfoLines(cache.figures());
    case 'keyspace':
      if (keyspace === null || keyspace.keys === 0) return [];
      return [`db0:keys=${keyspace.keys},expires=${keyspace.expires},avg_ttl=0`];
    case 'queues': {
      const q = keyspace?.queues ?? null;
      if (q === null) return [];
      const c = q.counters;
      return [
        `queues:${q.queues}`,
        `queue_messages_ready:${q.ready}`,
        `queue_messages_leased:${q.leased}`,
        `queue_messages_delayed:${q.delayed}`,
        `queue_waiting_consumers:${q.waiting}`,
        `queue_idempotency_keys:${q.idempotencyKeys}`,
        `queue_pushed_total:${c.pushed}`,
        `queue_delivered_total:${c.delivered}`,
        `queue_redelivered_total:${c.redelivered}`,
        `queue_acked_total:${c.acked}`,
        `queue_nacked_total:${c.nacked}`,
        `queue_leases_expired_total:${c.expired}`,
        `queue_dead_lettered_total:${c.deadLettered}`,
        `queue_replayed_total:${c.replayed}`,
        `queue_duplicate_pushes_total:${c.duplicatePushes}`,
      ];
    }
    default: {
      const unknown: never = name;
      throw new Error(`unknown INFO section ${String(unknown)}`);
    }
  }
}

const HEADERS: Record<Section, string> = {
  server: 'Server',
  clients: 'Clients',
  memory: 'Memory',
  persistence: 'Persistence',
  stats: 'Stats',
  replication: 'Replication',
  cpu: 'CPU',
  cache: 'Cache',
  cluster: 'Cluster',
  raft: 'Raft',
  locks: 'Locks',
  keyspace: 'Keyspace',
  queues: 'Queues',
};

/** The INFO text for the requested sections (already resolved and in order). */
export function infoText(
  ctx: CommandContext,
  sections: readonly Section[],
  keyspace: KeyspaceFigures | null,
  blockedClients = 0,
  cache?: CacheService,
): string {
  const parts: string[] = [];
  for (const name of sections) {
    // The cluster and raft sections exist only where a Raft node runs, cache where a cache does.
    if ((name === 'cluster' || name === 'raft') && ctx.server.cluster === undefined) continue;
    if (name === 'cache' && cache === undefined) continue;
    const lines = section(ctx, name, keyspace, blockedClients, cache);
    parts.push(`# ${HEADERS[name]}\r\n` + lines.map((l) => l + '\r\n').join(''));
  }
  return parts.join('\r\n');
}

/** Requested names -> sections in Redis's order; unknown names are ignored. */
export function resolveSections(requested: readonly string[]): Section[] {
  if (requested.length === 0) return DEFAULT_SECTIONS;
  const wanted = new Set<string>();
  for (const r of requested) {
    const name = r.toLowerCase();
    if (name === 'default') return DEFAULT_SECTIONS;
    if (name === 'all' || name === 'everything') return [...SECTIONS];
    wanted.add(name);
  }
  return SECTIONS.filter((s) => wanted.has(s));
}

export const info: CommandSpec = {
  name: 'info',
  arity: -1,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow', '@dangerous'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output', 'request_policy:all_shards', 'response_policy:special'],
  docs: {
    summary: 'Returns information and statistics about the server.',
    since: '1.0.0',
    group: 'server',
    complexity: 'O(1)',
    arguments: [{ name: 'section', type: 'string', optional: true, multiple: true }],
    format: 'INFO [section [section ...]]',
    reply: 'Bulk string (verbatim in RESP3): "# Section" headers and "field:value" lines, CRLF-separated.',
  },
  handler: {
    kind: 'local',
    run(ctx, args, runtime): Reply {
      const sections = resolveSections(args.rest().map((a) => a.toString()));
      const blocked = runtime.executor.waiters.size;
      if (!sections.includes('keyspace') && !sections.includes('locks') && !sections.includes('queues'))
        return verbatim(infoText(ctx, sections, null, blocked, runtime.cache));
      // A local view, like Redis's INFO on a replica: INFO answers on a node with no leader
      // (ioredis sends it as its ready check).
      return verbatim(
        infoText(
          ctx,
          sections,
          runtime.executor.readLocal(keyspaceFigures, sections.includes('queues')),
          blocked,
          runtime.cache,
        ),
      );
    },
  },
};
