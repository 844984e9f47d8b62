/**
 * RESP benchmark: Concord against Debian's redis-server with redis-benchmark, on loopback.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/resp-vs-redis.js [--rounds 5] [--requests 100000]
 *       [--clients 50] [--out bench/results/resp-vs-redis.json]`
 *
 * For each pipeline depth (-P 1, -P 16) and each test (PING_INLINE, PING_MBULK, SET, GET) it runs
 * `redis-benchmark -t <test> -n N -c C -P <p> --csv` once against each server per round, the two
 * servers back to back and in alternating order from round to round, so machine noise hits both.
 * Around every run it reads the server's CPU time (utime+stime of /proc/<pid>/stat, in clock
 * ticks of `getconf CLK_TCK`). It reports the median ops/s per server, the ratio Concord/Redis
 * (median over rounds of the same round's ratio; the ratio of the medians too), and the server
 * CPU-seconds per 1,000 operations (all rounds' CPU over all rounds' operations); it checks that redis-benchmark exited 0
 * without an error (redis-benchmark 7 exits on the first error reply). Targets (reported, not
 * asserted): ratio >= 0.6 at -P 1 and >= 0.35 at -P 16.
 *
 * Writes bench/results/resp-vs-redis.json {date, node, machine, redis, params, results, errors}
 * and prints a table; exits 1 if any redis-benchmark run failed.
 *
 * Owns: the two server processes it starts (through the harness; stopped at the end, killed on
 * exit). Must never: talk to anything but 127.0.0.1, or assert performance (only report it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, startRedisServer, startServer } from '../compat-tests/harness.js';
import { runBench } from './common.js';
import type { ServerHandle } from '../compat-tests/harness.js';
import { cpuSeconds, median, redisBenchmark, round } from './peers.js';

const TESTS = ['ping_inline', 'ping_mbulk', 'set', 'get'] as const;
type Test = (typeof TESTS)[number];
const PIPELINES = [1, 16] as const;
const TARGET_RATIO: Record<(typeof PIPELINES)[number], number> = { 1: 0.6, 16: 0.35 };
const WARMUP_REQUESTS = 20_000;

type ServerName = 'redis' | 'concord';

interface RunSample {
  opsPerSec: number;
  p50LatencyMs: number;
  avgLatencyMs: number;
  cpuSeconds: number;
  cpuSecondsPer1000Ops: number;
}

interface ServerSummary {
  /** Median over rounds. */
  opsPerSec: number;
  /** Total CPU over total operations of all rounds (finer than one run's clock ticks). */
  cpuSecondsPer1000Ops: number;
  p50LatencyMs: number;
  samples: RunSample[];
}

interface ResultRow {
  test: string;
  pipeline: number;
  redis: ServerSummary;
  concord: ServerSummary;
  /**
   * Median over rounds of concord/redis ops/s of the same round (the two runs of a round are back
   * to back, so a burst of machine noise mostly hits both and cancels out).
   */
  ratio: number;
  /** concord.opsPerSec / redis.opsPerSec (ratio of the medians). */
  ratioOfMedians: number;
  /** Per round: concord/redis ops/s. */
  pairedRatios: number[];
  /**
   * redis CPU-s per op / concord CPU-s per op: the throughput ratio to expect where both servers
   * are CPU-bound, and much less sensitive than ops/s to other load on a shared machine.
   */
  cpuEfficiencyRatio: number;
  targetRatio: number;
  meetsTarget: boolean;
}

// ---------------------------------------------------------------------------------------------
// Measuring.

// cpuSeconds, redisBenchmark, median and round are shared with the cluster bench: bench/peers.ts.

interface RunParams {
  requests: number;
  clients: number;
}

/** One redis-benchmark run of one test against one server; throws on any error. */
async function runOne(
  server: ServerHandle,
  test: Test,
  pipeline: number,
  params: RunParams,
): Promise<RunSample> {
  const cpuBefore = cpuSeconds(server.pid);
  const result = await redisBenchmark(server.port, {
    test,
    requests: params.requests,
    clients: params.clients,
    pipeline,
  });
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  return {
    opsPerSec: result.opsPerSec,
    p50LatencyMs: result.p50LatencyMs,
    avgLatencyMs: result.avgLatencyMs,
    cpuSeconds: round(cpu, 3),
    cpuSecondsPer1000Ops: round(cpu / (params.requests / 1000), 5),
  };
}

function summarize(samples: RunSample[], requests: number): ServerSummary {
  const totalCpu = samples.reduce((sum, s) => sum + s.cpuSeconds, 0);
  return {
    opsPerSec: round(median(samples.map((s) => s.opsPerSec)), 2),
    cpuSecondsPer1000Ops: round(totalCpu / ((samples.length * requests) / 1000), 5),
    p50LatencyMs: round(median(samples.map((s) => s.p50LatencyMs)), 3),
    samples,
  };
}

// ---------------------------------------------------------------------------------------------

function printTable(rows: readonly ResultRow[]): void {
  const header = [
    'test'.padEnd(12),
    'P'.padStart(3),
    'redis ops/s'.padStart(12),
    'concord ops/s'.padStart(14),
    'ratio'.padStart(6),
    'of medians'.padStart(11),
    'target'.padStart(7),
    'redis cpu-s/1k'.padStart(15),
    'concord cpu-s/1k'.padStart(17),
    'cpu ratio'.padStart(10),
  ].join(' ');
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const row of rows) {
    console.log(
      [
        row.test.padEnd(12),
        String(row.pipeline).padStart(3),
        row.redis.opsPerSec.toFixed(0).padStart(12),
        row.concord.opsPerSec.toFixed(0).padStart(14),
        row.ratio.toFixed(3).padStart(6),
        row.ratioOfMedians.toFixed(3).padStart(11),
        `${row.meetsTarget ? '>=' : '< '}${row.targetRatio}`.padStart(7),
        row.redis.cpuSecondsPer1000Ops.toFixed(4).padStart(15),
        row.concord.cpuSecondsPer1000Ops.toFixed(4).padStart(17),
        row.cpuEfficiencyRatio.toFixed(2).padStart(10),
      ].join(' '),
    );
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      requests: { type: 'string', default: '100000' },
      clients: { type: 'string', default: '50' },
      out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results', 'resp-vs-redis.json') },
    },
  });
  const rounds = Number(values.rounds);
  const params: RunParams = { requests: Number(values.requests), clients: Number(values.clients) };
  if (![rounds, params.requests, params.clients].every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error('--rounds, --requests and --clients must be positive integers');
  }

  const [redis, concord] = await Promise.all([startRedisServer(), startServer()]);
  const servers: Record<ServerName, ServerHandle> = { redis, concord };
  const redisVersion = execFileSync('/usr/bin/redis-server', ['--version'], { encoding: 'utf8' }).trim();
  console.log(
    `redis-server pid ${redis.pid} port ${redis.port}; concord pid ${concord.pid} port ${concord.port}`,
  );
  console.log(`${rounds} rounds of -n ${params.requests} -c ${params.clients}; ${os.cpus().length} cores`);

  const errors: string[] = [];
  try {
    // Warm-up, not recorded: lets V8 compile Concord's hot paths before the measured runs.
    for (const server of [redis, concord]) {
      for (const test of TESTS) await runOne(server, test, 16, { ...params, requests: WARMUP_REQUESTS });
    }

    const samples = new Map<string, Record<ServerName, RunSample[]>>();
    const key = (test: Test, pipeline: number): string => `${test}/${pipeline}`;
    for (let round = 0; round < rounds; round++) {
      const order: ServerName[] = round % 2 === 0 ? ['redis', 'concord'] : ['concord', 'redis'];
      for (const pipeline of PIPELINES) {
        for (const test of TESTS) {
          const entry = samples.get(key(test, pipeline)) ?? { redis: [], concord: [] };
          samples.set(key(test, pipeline), entry);
          for (const name of order) {
            try {
              const sample = await runOne(servers[name], test, pipeline, params);
              entry[name].push(sample);
              console.log(
                `round ${round + 1} ${test} -P ${pipeline} ${name}: ${sample.opsPerSec.toFixed(0)} ops/s, ` +
                  `${sample.cpuSeconds} cpu-s`,
              );
            } catch (err) {
              const message = err instanceof Error ? err.message : String(err);
              errors.push(`${name}: ${message}`);
              console.error(`round ${round + 1} ${test} -P ${pipeline} ${name}: ERROR ${message}`);
            }
            if (servers[name].hasExited()) throw new Error(`${name} exited during the benchmark`);
          }
        }
      }
    }

    const results: ResultRow[] = [];
    for (const pipeline of PIPELINES) {
      for (const test of TESTS) {
        const entry = samples.get(key(test, pipeline));
        if (entry === undefined || entry.redis.length === 0 || entry.concord.length === 0) continue;
        const redisSummary = summarize(entry.redis, params.requests);
        const concordSummary = summarize(entry.concord, params.requests);
        const pairedRatios = entry.concord
          .slice(0, entry.redis.length)
          .map((sample, i) => round(sample.opsPerSec / entry.redis[i]!.opsPerSec, 3));
        const ratio = round(median(pairedRatios), 3);
        results.push({
          test: test.toUpperCase(),
          pipeline,
          redis: redisSummary,
          concord: concordSummary,
          ratio,
          ratioOfMedians: round(concordSummary.opsPerSec / redisSummary.opsPerSec, 3),
          pairedRatios,
          cpuEfficiencyRatio:
            concordSummary.cpuSecondsPer1000Ops > 0
              ? round(redisSummary.cpuSecondsPer1000Ops / concordSummary.cpuSecondsPer1000Ops, 3)
              : Number.NaN,
          targetRatio: TARGET_RATIO[pipeline],
          meetsTarget: ratio >= TARGET_RATIO[pipeline],
        });
      }
    }

    const report = {
      date: new Date().toISOString(),
      node: process.version,
      machine: {
        cores: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        platform: `${os.type()} ${os.release()} ${os.arch()}`,
        loadAverage1m: round(os.loadavg()[0] ?? 0, 2),
      },
      redis: redisVersion,
      params: {
        ...params,
        rounds,
        pipelines: [...PIPELINES],
        tests: [...TESTS],
        warmupRequests: WARMUP_REQUESTS,
      },
      targets: { '-P 1': TARGET_RATIO[1], '-P 16': TARGET_RATIO[16] },
      results,
      errors,
    };
    mkdirSync(path.dirname(values.out), { recursive: true });
    writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
    console.log('');
    printTable(results);
    console.log(`\nwrote ${values.out}${errors.length > 0 ? ` (${errors.length} errors)` : ''}`);
    return errors.length === 0 ? 0 : 1;
  } finally {
    await Promise.all([redis.stop(), concord.stop()]);
  }
}

runBench(main);
