/**
 * Cluster benchmark: a three-node Concord cluster (fsync on) next to a single redis-server with
 * `appendonly yes` + `appendfsync always` and a three-node etcd cluster, all on loopback and
 * measured in the same run.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/cluster-vs-peers.js [--rounds 3]
 *       [--requests 100000] [--clients 50] [--single-client-requests 10000] [--no-follower]
 *       [--profile] [--profile-pipeline 16] [--systems redis,concord,etcd] [--out bench/results/cluster-vs-peers.json]`
 * Needs /usr/bin/redis-server, /usr/bin/redis-benchmark and /usr/bin/etcd (the script says how
 * to install what is missing) and a built dist/.
 *
 * Cases: SET and GET at -c 50 -P 1 and -P 16, and SET at -c 1 -P 1 (single-client round trip).
 * Redis and Concord are driven by `redis-benchmark -t set|get -n N -c C -P P --csv` (one key,
 * `key:__rand_int__`, 3-byte value, as redis-benchmark does without -r). etcd is driven through
 * its JSON gateway (`POST /v3/kv/put` / `POST /v3/kv/range`, base64 key and value, the same key
 * and value) by a keep-alive HTTP/1.1 generator with C connections, one request in flight per
 * connection (so only at -P 1). Concord and etcd get the load on their leader (Concord's found
 * with `INFO raft`); Concord is also measured through a follower, which forwards writes to the
 * leader and serves reads after a ReadIndex barrier. Every case runs once per system per round,
 * the systems back to back in an order that rotates each round, so machine noise hits all.
 *
 * Measured per run: ops/s, p50/p99 latency, and server CPU-seconds (utime+stime from
 * /proc/<pid>/stat, summed over every server process of the system: 1 for redis, 3 for Concord
 * and etcd; the load generator is not counted). Reported per case and system: medians over
 * rounds, CPU-seconds per 1,000 ops (total CPU over total ops) and ops per CPU-second. Targets
 * (reported, never asserted): SET -c 50 -P 1 Concord >= 2x etcd's puts/s with a lower p99 and
 * >= 3x etcd's ops per CPU-second; SET -P 16 well over 100,000/s; SET -c 1 p50 near 0.5 ms.
 *
 * With --profile, after the rounds a fresh Concord cluster runs with `node --cpu-prof` under SET
 * load on its leader (-P 1, or --profile-pipeline N), and the top self-time functions of the leader and of a follower are
 * reported (file:line function, % of samples).
 *
 * Writes bench/results/cluster-vs-peers.json and prints a table; exits 1 if any run failed.
 * Owns: the server processes it starts (stopped at the end, killed on exit).
 * Must never: talk to anything but 127.0.0.1, or assert performance (only report it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, rawConnection, startRedisServer } from '../compat-tests/harness.js';
import { runBench } from './common.js';
import type { ServerHandle } from '../compat-tests/harness.js';
import {
  ETCD_BIN,
  REDIS_SERVER_BIN,
  checkTools,
  etcdPutBody,
  etcdRangeBody,
  httpLoad,
  median,
  redisBenchmark,
  round,
  startConcordCluster,
  startEtcdCluster,
  cpuSeconds,
  toolVersion,
  cpuProfileHotspots,
} from './peers.js';
import type { ConcordCluster, EtcdCluster, LoadResult, ProfileSummary } from './peers.js';

/** The key and value redis-benchmark uses for SET/GET without -r and with the default -d 3. */
const BENCH_KEY = 'key:__rand_int__';
const BENCH_VALUE = 'xxx';
const WARMUP_REQUESTS = 20_000;

type SystemName = 'redis' | 'concord' | 'concord-follower' | 'etcd';
type Op = 'set' | 'get';

interface Case {
  name: string;
  op: Op;
  clients: number;
  pipeline: number;
  /** Requests per run (-n). */
  requests: number;
  systems: SystemName[];
}

interface RunSample extends LoadResult {
  cpuSeconds: number;
  cpuSecondsPer1000Ops: number;
  /** Server CPU split over the system's processes (member id, `leader` marked). */
  cpuSecondsByProcess: Record<string, number>;
  /** Which member got the load (Concord/etcd). */
  target: string;
}

interface SystemSummary {
  runs: number;
  /** Medians over rounds. */
  opsPerSec: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** Total server CPU over total ops of all rounds. */
  cpuSecondsPer1000Ops: number;
  opsPerCpuSecond: number;
  samples: RunSample[];
}

interface CaseResult {
  case: string;
  op: Op;
  clients: number;
  pipeline: number;
  requests: number;
  systems: Partial<Record<SystemName, SystemSummary>>;
}

// ---------------------------------------------------------------------------------------------

/** The systems under test; one left out with --systems is undefined. */
interface Systems {
  redis?: ServerHandle | undefined;
  concord?: ConcordCluster | undefined;
  etcd?: EtcdCluster | undefined;
}

function need<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`${name} is not running (see --systems)`);
  return value;
}

async function runCase(
  systems: Systems,
  system: SystemName,
  c: Case,
  requests = c.requests,
): Promise<RunSample> {
  /** The system's server processes: pid and a label (member, leader or not). */
  let procs: { pid: number; label: string }[];
  let target: string;
  let load: () => Promise<LoadResult>;
  const rb = { test: c.op, requests, clients: c.clients, pipeline: c.pipeline };
  switch (system) {
    case 'redis': {
      const redis = need(systems.redis, 'redis');
      procs = [{ pid: redis.pid, label: 'redis-server' }];
      target = `redis:${redis.port}`;
      const port = redis.port;
      load = () => redisBenchmark(port, rb);
      break;
    }
    case 'concord':
    case 'concord-follower': {
      const concord = need(systems.concord, 'concord');
      const leader = await concord.leader();
      procs = concord.members.map((m) => ({
        pid: m.proc.pid,
        label: m.id === leader.id ? `${m.id} leader` : m.id,
      }));
      const member = system === 'concord' ? leader : concord.members.find((m) => m.id !== leader.id);
      if (member === undefined) throw new Error('concord: no follower');
      target = `${member.id}:${member.port}${member === leader ? ' (leader)' : ' (follower)'}`;
      load = () => redisBenchmark(member.port, rb);
      break;
    }
    case 'etcd': {
      if (c.pipeline !== 1) throw new Error('etcd is driven only at -P 1');
      const etcd = need(systems.etcd, 'etcd');
      const leader = await etcd.leader();
      procs = etcd.members.map((m) => ({
        pid: m.proc.pid,
        label: m === leader ? `${m.name} leader` : m.name,
      }));
      target = `${leader.name}:${leader.clientPort} (leader)`;
      const body = c.op === 'set' ? etcdPutBody(BENCH_KEY, BENCH_VALUE) : etcdRangeBody(BENCH_KEY);
      const urlPath = c.op === 'set' ? '/v3/kv/put' : '/v3/kv/range';
      load = () =>
        httpLoad({
          port: leader.clientPort,
          method: 'POST',
          path: urlPath,
          body,
          connections: c.clients,
          requests,
        });
      break;
    }
    default: {
      const never: never = system;
      throw new Error(`unknown system ${String(never)}`);
    }
  }
  const cpuBefore = procs.map((p) => cpuSeconds(p.pid));
  const result = await load();
  const cpuByProcess = procs.map((p, i) => cpuSeconds(p.pid) - cpuBefore[i]!);
  const cpu = cpuByProcess.reduce((a, b) => a + b, 0);
  return {
    ...result,
    cpuSeconds: round(cpu, 3),
    cpuSecondsByProcess: Object.fromEntries(procs.map((p, i) => [p.label, round(cpuByProcess[i]!, 3)])),
    cpuSecondsPer1000Ops: round(cpu / (requests / 1000), 5),
    target,
  };
}

function summarize(samples: RunSample[]): SystemSummary {
  const cpu = samples.reduce((sum, s) => sum + s.cpuSeconds, 0);
  const ops = samples.reduce((sum, s) => sum + s.requests, 0);
  return {
    runs: samples.length,
    opsPerSec: round(median(samples.map((s) => s.opsPerSec)), 0),
    p50LatencyMs: round(median(samples.map((s) => s.p50LatencyMs)), 3),
    p99LatencyMs: round(median(samples.map((s) => s.p99LatencyMs)), 3),
    cpuSecondsPer1000Ops: round(cpu / (ops / 1000), 5),
    opsPerCpuSecond: cpu > 0 ? round(ops / cpu, 0) : Number.NaN,
    samples,
  };
}

/**
 * Reads the benchmark key on every Concord node and through etcd: the writes must be there, the
 * same on every Concord node (redis-benchmark writes a 3-byte payload of its own choosing).
 */
async function checkWrites(systems: Systems): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const member of systems.concord?.members ?? []) {
    const conn = await rawConnection(member.port);
    try {
      const reply = await conn.call('GET', BENCH_KEY);
      seen.add(reply.raw.toString());
      if (typeof reply.value !== 'string' || reply.value.length !== BENCH_VALUE.length) {
        problems.push(`concord ${member.id}: GET ${BENCH_KEY} = ${reply.raw.toString()}`);
      }
    } finally {
      conn.close();
    }
  }
  if (seen.size > 1) problems.push(`concord nodes disagree on ${BENCH_KEY}: ${[...seen].join(' | ')}`);
  if (systems.etcd === undefined) return problems;
  const leader = await systems.etcd.leader();
  const response = await fetch(`http://127.0.0.1:${leader.clientPort}/v3/kv/range`, {
    method: 'POST',
    body: etcdRangeBody(BENCH_KEY),
    signal: AbortSignal.timeout(5_000),
  });
  const range = (await response.json()) as { kvs?: { value?: string }[] };
  const value = range.kvs?.[0]?.value;
  if (value === undefined || Buffer.from(value, 'base64').toString() !== BENCH_VALUE) {
    problems.push(`etcd: range ${BENCH_KEY} = ${JSON.stringify(range)}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// CPU profile of Concord nodes under SET load.

async function profileConcord(params: {
  requests: number;
  clients: number;
  pipeline: number;
}): Promise<Record<string, ProfileSummary>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'concord-bench-prof-'));
  const previous = process.env.CONCORD_BENCH_NODE_ARGS;
  process.env.CONCORD_BENCH_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`;
  let cluster: ConcordCluster | undefined;
  try {
    cluster = await startConcordCluster(3);
    const leader = await cluster.leader();
    await redisBenchmark(leader.port, {
      test: 'set',
      requests: WARMUP_REQUESTS,
      clients: params.clients,
      pipeline: 1,
    });
    await redisBenchmark(leader.port, {
      test: 'set',
      requests: params.requests,
      clients: params.clients,
      pipeline: params.pipeline,
    });
    const pidRole = new Map(
      cluster.members.map((m) => [m.proc.pid, m.id === leader.id ? `leader ${m.id}` : `follower ${m.id}`]),
    );
    await cluster.stop();
    cluster = undefined;
    const result: Record<string, ProfileSummary> = {};
    for (const file of readdirSync(dir)) {
      // CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile
      const pid = Number(file.split('.')[3]);
      const role = pidRole.get(pid);
      if (role === undefined || !file.endsWith('.cpuprofile')) continue;
      result[role] = cpuProfileHotspots(readFileSync(path.join(dir, file), 'utf8'), 25, REPO_ROOT);
    }
    if (Object.keys(result).length === 0)
      throw new Error(`no .cpuprofile written in ${dir} (did the nodes exit cleanly on SIGTERM?)`);
    return result;
  } finally {
    if (previous === undefined) delete process.env.CONCORD_BENCH_NODE_ARGS;
    else process.env.CONCORD_BENCH_NODE_ARGS = previous;
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

/** HEAD and the files of the Concord server that differ from it (a benchmark of a dirty tree says so). */
function gitRevision(): { head: string; uncommittedFiles: string[] } {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
    // Porcelain lines are `XY path`: the status columns may start with a space, so no trim().
    const dirty = git('status', '--porcelain', '--', 'server', 'commands', 'raft');
    return {
      head: git('rev-parse', 'HEAD').trim(),
      uncommittedFiles: dirty
        .split('\n')
        .filter((line) => line.length > 3)
        .map((line) => line.slice(3)),
    };
  } catch (err) {
    return { head: `unknown (${err instanceof Error ? err.message : String(err)})`, uncommittedFiles: [] };
  }
}

function fmt(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

function printTable(results: readonly CaseResult[]): void {
  const header = [
    'case'.padEnd(16),
    'system'.padEnd(17),
    'ops/s'.padStart(9),
    'p50 ms'.padStart(8),
    'p99 ms'.padStart(8),
    'cpu-s/1k'.padStart(9),
    'ops/cpu-s'.padStart(10),
  ].join(' ');
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const r of results) {
    for (const [name, s] of Object.entries(r.systems)) {
      console.log(
        [
          r.case.padEnd(16),
          name.padEnd(17),
          fmt(s.opsPerSec, 0).padStart(9),
          fmt(s.p50LatencyMs, 3).padStart(8),
          fmt(s.p99LatencyMs, 3).padStart(8),
          fmt(s.cpuSecondsPer1000Ops, 4).padStart(9),
          fmt(s.opsPerCpuSecond, 0).padStart(10),
        ].join(' '),
      );
    }
  }
}

interface Targets {
  setThroughputVsEtcd: { ratio: number; target: 2; met: boolean };
  setP99VsEtcd: { concordMs: number; etcdMs: number; met: boolean };
  setOpsPerCpuSecondVsEtcd: { ratio: number; target: 3; met: boolean };
  setPipelinedOpsPerSec: { opsPerSec: number; target: 100000; met: boolean };
  singleClientSetP50Ms: { p50LatencyMs: number; physicalFloorMs: 0.5 };
}

function targets(results: readonly CaseResult[]): Partial<Targets> {
  const find = (name: string): CaseResult | undefined => results.find((r) => r.case === name);
  const out: Partial<Targets> = {};
  const p1 = find('SET -c50 -P1');
  const concord = p1?.systems.concord;
  const etcd = p1?.systems.etcd;
  if (concord !== undefined && etcd !== undefined) {
    const ratio = round(concord.opsPerSec / etcd.opsPerSec, 2);
    out.setThroughputVsEtcd = { ratio, target: 2, met: ratio >= 2 };
    out.setP99VsEtcd = {
      concordMs: concord.p99LatencyMs,
      etcdMs: etcd.p99LatencyMs,
      met: concord.p99LatencyMs < etcd.p99LatencyMs,
    };
    const cpuRatio = round(concord.opsPerCpuSecond / etcd.opsPerCpuSecond, 2);
    out.setOpsPerCpuSecondVsEtcd = { ratio: cpuRatio, target: 3, met: cpuRatio >= 3 };
  }
  const p16 = find('SET -c50 -P16')?.systems.concord;
  if (p16 !== undefined)
    out.setPipelinedOpsPerSec = { opsPerSec: p16.opsPerSec, target: 100000, met: p16.opsPerSec > 100000 };
  const c1 = find('SET -c1 -P1')?.systems.concord;
  if (c1 !== undefined) out.singleClientSetP50Ms = { p50LatencyMs: c1.p50LatencyMs, physicalFloorMs: 0.5 };
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      requests: { type: 'string', default: '100000' },
      clients: { type: 'string', default: '50' },
      'single-client-requests': { type: 'string', default: '10000' },
      'no-follower': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'profile-pipeline': { type: 'string', default: '1' },
      systems: { type: 'string', default: 'redis,concord,etcd' },
      out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results', 'cluster-vs-peers.json') },
    },
  });
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const clients = Number(values.clients);
  const singleRequests = Number(values['single-client-requests']);
  if (![rounds, requests, clients, singleRequests].every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error('--rounds, --requests, --clients and --single-client-requests must be positive integers');
  }
  try {
    checkTools();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }

  const selected = new Set(values.systems.split(',').map((name) => name.trim()));
  for (const name of selected) {
    if (!['redis', 'concord', 'etcd'].includes(name)) throw new Error(`--systems: unknown system ${name}`);
  }
  const follower: SystemName[] = values['no-follower'] ? [] : ['concord-follower'];
  const allCases: Case[] = [
    {
      name: 'SET -c50 -P1',
      op: 'set',
      clients,
      pipeline: 1,
      requests,
      systems: ['redis', 'concord', 'etcd', ...follower],
    },
    {
      name: 'GET -c50 -P1',
      op: 'get',
      clients,
      pipeline: 1,
      requests,
      systems: ['redis', 'concord', 'etcd', ...follower],
    },
    {
      name: 'SET -c50 -P16',
      op: 'set',
      clients,
      pipeline: 16,
      requests,
      systems: ['redis', 'concord', ...follower],
    },
    {
      name: 'GET -c50 -P16',
      op: 'get',
      clients,
      pipeline: 16,
      requests,
      systems: ['redis', 'concord', ...follower],
    },
    {
      name: 'SET -c1 -P1',
      op: 'set',
      clients: 1,
      pipeline: 1,
      requests: singleRequests,
      systems: ['redis', 'concord', 'etcd'],
    },
  ];
  const running = (system: SystemName): boolean =>
    selected.has(system === 'concord-follower' ? 'concord' : system);
  const cases = allCases
    .map((c) => ({ ...c, systems: c.systems.filter(running) }))
    .filter((c) => c.systems.length > 0);

  const [redis, concord, etcd] = await Promise.all([
    selected.has('redis')
      ? startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
      : undefined,
    selected.has('concord') ? startConcordCluster(3) : undefined,
    selected.has('etcd') ? startEtcdCluster(3) : undefined,
  ]);
  const systems: Systems = { redis, concord, etcd };
  const stopSystems = (): Promise<unknown> => Promise.all([redis?.stop(), concord?.stop(), etcd?.stop()]);
  const errors: string[] = [];
  const loadAverageAtStart = round(os.loadavg()[0] ?? 0, 2);
  try {
    if (redis !== undefined) {
      // redis-server must really fsync every write: check the settings took.
      const conn = await rawConnection(redis.port);
      const aof = (await conn.call('CONFIG', 'GET', 'append*')).raw.toString();
      conn.close();
      if (!/appendfsync\r\n\$6\r\nalways/.test(aof) || !/appendonly\r\n\$3\r\nyes/.test(aof)) {
        throw new Error(`redis-server is not appendonly yes + appendfsync always: ${aof}`);
      }
    }
    console.log(
      `redis pid ${redis?.pid ?? '-'}; concord pids ${concord?.pids().join(',') ?? '-'}; ` +
        `etcd pids ${etcd?.pids().join(',') ?? '-'}; ${rounds} rounds; ${os.cpus().length} cores`,
    );

    // Warm-up, not recorded: V8 compiles Concord's hot paths, etcd and redis grow their buffers.
    for (const c of cases.slice(0, 2)) {
      for (const system of c.systems)
        await runCase(systems, system, c, Math.min(WARMUP_REQUESTS, c.requests));
    }

    const samples = new Map<string, Map<SystemName, RunSample[]>>();
    for (let r = 0; r < rounds; r++) {
      for (const c of cases) {
        const perSystem = samples.get(c.name) ?? new Map<SystemName, RunSample[]>();
        samples.set(c.name, perSystem);
        const order = c.systems.map((_, i) => c.systems[(i + r) % c.systems.length]!);
        for (const system of order) {
          try {
            const sample = await runCase(systems, system, c);
            const list = perSystem.get(system) ?? [];
            list.push(sample);
            perSystem.set(system, list);
            console.log(
              `round ${r + 1} ${c.name} ${system} [${sample.target}]: ${sample.opsPerSec.toFixed(0)} ops/s, ` +
                `p50 ${sample.p50LatencyMs} ms, p99 ${sample.p99LatencyMs} ms, ${sample.cpuSeconds} server cpu-s` +
                (sample.loadGeneratorCpuSeconds !== undefined
                  ? `, generator ${sample.loadGeneratorCpuSeconds} cpu-s`
                  : ''),
            );
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            errors.push(`round ${r + 1} ${c.name} ${system}: ${message}`);
            console.error(`round ${r + 1} ${c.name} ${system}: ERROR ${message}`);
          }
          if (redis?.hasExited() === true || concord?.anyExited() === true || etcd?.anyExited() === true) {
            throw new Error('a server process exited during the benchmark');
          }
        }
      }
    }
    const writeProblems = await checkWrites(systems);
    errors.push(...writeProblems);

    const results: CaseResult[] = cases.map((c) => {
      const perSystem = samples.get(c.name);
      const summaries: Partial<Record<SystemName, SystemSummary>> = {};
      for (const system of c.systems) {
        const list = perSystem?.get(system);
        if (list !== undefined && list.length > 0) summaries[system] = summarize(list);
      }
      return {
        case: c.name,
        op: c.op,
        clients: c.clients,
        pipeline: c.pipeline,
        requests: c.requests,
        systems: summaries,
      };
    });

    let profile: Record<string, ProfileSummary> | undefined;
    if (values.profile) {
      await stopSystems();
      try {
        profile = await profileConcord({ requests, clients, pipeline: Number(values['profile-pipeline']) });
      } catch (err) {
        errors.push(`profile: ${err instanceof Error ? err.message : String(err)}`);
      }
    }

    const report = {
      date: new Date().toISOString(),
      concordRevision: gitRevision(),
      node: process.version,
      machine: {
        cores: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        platform: `${os.type()} ${os.release()} ${os.arch()}`,
        loadAverage1mAtStart: loadAverageAtStart,
        loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2),
      },
      versions: {
        redis: toolVersion(REDIS_SERVER_BIN, ['--version']),
        etcd: toolVersion(ETCD_BIN, ['--version']),
      },
      setup: {
        redis: 'one redis-server, appendonly yes, appendfsync always',
        concord:
          '3 node processes, FileStorage (fsync per group commit), load on the leader; concord-follower = load on a follower',
        etcd: '3 etcd processes, load on the leader through the JSON gateway (keep-alive HTTP/1.1, one request in flight per connection)',
        key: BENCH_KEY,
        valueBytes: BENCH_VALUE.length,
        cpu: 'utime+stime summed over all server processes of a system; load generators not counted',
      },
      params: {
        systems: [...selected],
        rounds,
        requests,
        clients,
        singleClientRequests: singleRequests,
        warmupRequests: WARMUP_REQUESTS,
      },
      targets: targets(results),
      results,
      ...(profile !== undefined
        ? {
            concordCpuProfile: {
              load: `SET -c ${clients} -P 1 -n ${requests} on the leader`,
              selfTime: profile,
            },
          }
        : {}),
      errors,
    };
    mkdirSync(path.dirname(values.out), { recursive: true });
    writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
    console.log('');
    printTable(results);
    console.log('\ntargets:', JSON.stringify(report.targets, null, 2));
    if (profile !== undefined) {
      for (const [role, summary] of Object.entries(profile)) {
        console.log(
          `\nconcord ${role}: top self time under SET load, % of busy samples ` +
            `(busy ${summary.busyPercent}% of ${summary.durationSeconds} s)`,
        );
        for (const spot of summary.hotspots.slice(0, 15)) {
          const by = (spot.callers ?? []).map((c) => `${c.where} ${c.percentOfBusy}%`).join('; ');
          console.log(
            `  ${spot.selfPercentOfBusy.toFixed(2).padStart(6)}%  ${spot.where}${by !== '' ? `  <- ${by}` : ''}`,
          );
        }
      }
    }
    console.log(`\nwrote ${values.out}${errors.length > 0 ? ` (${errors.length} errors)` : ''}`);
    return errors.length === 0 ? 0 : 1;
  } finally {
    await stopSystems();
  }
}

runBench(main);
