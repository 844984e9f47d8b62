/**
 * Does scraping hurt clients? A three-node Concord cluster (fsync on) under RESP write load
 * (redis-benchmark SET on the leader), measured alone and while autocannon drives every node's
 * /metrics and /readyz, interleaved round by round so machine noise hits both.
 *
 * Run: `npm run bench:ops` (= build, then `node dist/bench/ops-scrape.js [--rounds 3]
 *       [--seconds 10] [--clients 50] [--scrape-rate 20] [--out bench/results/ops-scrape.json]`).
 *
 * Per round, three runs of the same RESP load (`redis-benchmark -t set -c C -P 1 -n N`, N
 * calibrated so one run lasts about --seconds):
 * - `baseline`: RESP load alone;
 * - `scrape-paced`: plus, on each node, autocannon alternating GET /metrics and GET /readyz at
 *   --scrape-rate requests/s (1 connection): far above a real Prometheus (1 scrape / 15 s) and
 *   readiness probes (1 / 5 s), yet a realistic "many dashboards" worst case;
 * - `scrape-flood`: plus autocannon as fast as it can (2 connections per node): an upper bound,
 *   where the load generator itself competes for the same 2 cores.
 * Reported: RESP ops/s, p50 and p99 (ms) per run, medians per mode, p99 ratios against the
 * baseline of the same rounds, the HTTP side (requests/s, p99, non-2xx, errors), and CPU: the
 * nodes' (per 10k SETs) and autocannon's own (it runs in this process, on the same 2 cores).
 *
 * Writes bench/results/ops-scrape.json. Owns the server processes it starts (stopped at the
 * end). Must never talk to anything but 127.0.0.1, or assert performance (only report it).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type Result } from 'autocannon';
import { HTTP_PORT_OFFSET } from '../server/config.js';
import { REPO_ROOT, stopAll } from '../compat-tests/harness.js';
import {
  REDIS_BENCHMARK_BIN,
  median,
  redisBenchmark,
  round,
  startConcordCluster,
  totalCpuSeconds,
  type ConcordCluster,
  type LoadResult,
} from './peers.js';

type Mode = 'baseline' | 'scrape-paced' | 'scrape-flood';
const MODES: readonly Mode[] = ['baseline', 'scrape-paced', 'scrape-flood'];

interface HttpSide {
  requestsPerSec: number;
  p99LatencyMs: number;
  non2xx: number;
  errors: number;
  total: number;
}

interface Run {
  round: number;
  mode: Mode;
  resp: LoadResult;
  http: HttpSide | null;
  /** CPU-seconds during the run: the three nodes together, and autocannon (this process). */
  nodesCpuSeconds: number;
  scraperCpuSeconds: number;
}

/** Starts a cluster whose nodes all answer /healthz on their derived HTTP port (retries a clash). */
async function startCluster(): Promise<ConcordCluster> {
  for (let attempt = 1; ; attempt++) {
    const cluster = await startConcordCluster(3);
    const up = await Promise.all(
      cluster.members.map((m) =>
        fetch(`http://127.0.0.1:${m.port + HTTP_PORT_OFFSET}/healthz`).then(
          (r) => r.status === 200,
          () => false,
        ),
      ),
    );
    if (up.every(Boolean)) return cluster;
    await cluster.stop();
    if (attempt === 3) throw new Error('no cluster with every HTTP endpoint up after 3 attempts');
  }
}

function scrape(port: number, mode: Exclude<Mode, 'baseline'>, seconds: number, rate: number) {
  let instance: ReturnType<typeof autocannon> | null = null;
  const done = new Promise<Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections: mode === 'scrape-flood' ? 2 : 1,
        duration: seconds * 3,
        timeout: 10,
        requests: [{ path: '/metrics' }, { path: '/readyz' }],
        ...(mode === 'scrape-paced' ? { overallRate: rate } : {}),
      },
      (err, result) => (err === null ? resolve(result) : reject(err)),
    );
  });
  return { stop: () => instance?.stop(), done };
}

async function runOnce(
  cluster: ConcordCluster,
  mode: Mode,
  requests: number,
  clients: number,
  seconds: number,
  rate: number,
): Promise<{ resp: LoadResult; http: HttpSide | null; nodesCpuSeconds: number; scraperCpuSeconds: number }> {
  const leader = await cluster.leader();
  const nodesBefore = totalCpuSeconds(cluster.pids());
  const selfBefore = process.cpuUsage();
  const scrapers =
    mode === 'baseline'
      ? []
      : cluster.members.map((m) => scrape(m.port + HTTP_PORT_OFFSET, mode, seconds, rate));
  const resp = await redisBenchmark(leader.port, { test: 'set', requests, clients, pipeline: 1 });
  for (const s of scrapers) s.stop();
  const results = await Promise.all(scrapers.map((s) => s.done));
  const nodesCpuSeconds = round(totalCpuSeconds(cluster.pids()) - nodesBefore, 2);
  const self = process.cpuUsage(selfBefore);
  const scraperCpuSeconds = round((self.user + self.system) / 1e6, 2);
  if (results.length === 0) return { resp, http: null, nodesCpuSeconds, scraperCpuSeconds };
  const duration = Math.max(...results.map((r) => r.duration));
  const total = results.reduce((a, r) => a + r.requests.total, 0);
  return {
    resp,
    nodesCpuSeconds,
    scraperCpuSeconds,
    http: {
      requestsPerSec: round(total / duration, 1),
      p99LatencyMs: Math.max(...results.map((r) => r.latency.p99)),
      non2xx: results.reduce((a, r) => a + r.non2xx, 0),
      errors: results.reduce((a, r) => a + r.errors + r.timeouts, 0),
      total,
    },
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '10' },
      clients: { type: 'string', default: '50' },
      'scrape-rate': { type: 'string', default: '20' },
      out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results', 'ops-scrape.json') },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  const rate = Number(values['scrape-rate']);
  accessSync(REDIS_BENCHMARK_BIN, constants.X_OK);

  const cluster = await startCluster();
  const runs: Run[] = [];
  try {
    // Warm up, then size N so that one run lasts about `seconds` at the baseline rate.
    const warm = await redisBenchmark((await cluster.leader()).port, {
      test: 'set',
      requests: 20_000,
      clients,
      pipeline: 1,
    });
    const requests = Math.max(10_000, Math.round(warm.opsPerSec * seconds));
    console.log(`warm-up ${Math.round(warm.opsPerSec)} SET/s -> ${requests} requests per run`);
    for (let r = 1; r <= rounds; r++) {
      // Rotate the order each round so drift over time does not favour one mode.
      const order = MODES.map((_, i) => MODES[(i + r - 1) % MODES.length]!);
      for (const mode of order) {
        const { resp, http, nodesCpuSeconds, scraperCpuSeconds } = await runOnce(
          cluster,
          mode,
          requests,
          clients,
          seconds,
          rate,
        );
        runs.push({ round: r, mode, resp, http, nodesCpuSeconds, scraperCpuSeconds });
        console.log(
          `round ${r} ${mode.padEnd(13)} ${Math.round(resp.opsPerSec)} SET/s p50 ${resp.p50LatencyMs} ms p99 ${resp.p99LatencyMs} ms` +
            ` cpu nodes ${nodesCpuSeconds}s scraper ${scraperCpuSeconds}s` +
            (http === null
              ? ''
              : `  | http ${http.requestsPerSec} req/s p99 ${http.p99LatencyMs} ms non2xx ${http.non2xx} errors ${http.errors}`),
        );
      }
    }
    if (cluster.anyExited()) throw new Error('a node exited during the benchmark');
  } finally {
    await cluster.stop();
    await stopAll();
  }

  const summary = Object.fromEntries(
    MODES.map((mode) => {
      const mine = runs.filter((x) => x.mode === mode);
      const http = mine.map((x) => x.http).filter((h): h is HttpSide => h !== null);
      return [
        mode,
        {
          opsPerSec: round(median(mine.map((x) => x.resp.opsPerSec)), 0),
          p50LatencyMs: round(median(mine.map((x) => x.resp.p50LatencyMs)), 3),
          p99LatencyMs: round(median(mine.map((x) => x.resp.p99LatencyMs)), 3),
          nodesCpuSecondsPer10kOps: round(
            (mine.reduce((a, x) => a + x.nodesCpuSeconds, 0) /
              mine.reduce((a, x) => a + x.resp.requests, 0)) *
              10_000,
            3,
          ),
          scraperCpuSeconds: round(median(mine.map((x) => x.scraperCpuSeconds)), 2),
          ...(http.length === 0
            ? {}
            : {
                httpRequestsPerSec: round(median(http.map((h) => h.requestsPerSec)), 1),
                httpP99LatencyMs: median(http.map((h) => h.p99LatencyMs)),
                httpNon2xx: http.reduce((a, h) => a + h.non2xx, 0),
                httpErrors: http.reduce((a, h) => a + h.errors, 0),
              }),
        },
      ];
    }),
  ) as unknown as Record<Mode, { opsPerSec: number; p99LatencyMs: number }>;
  const base = summary.baseline;
  // Paired by round (the same minute of machine noise): median over rounds of mode / baseline.
  const paired = (mode: Mode, pick: (x: Run) => number): number => {
    const ratios: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const b = runs.find((x) => x.round === r && x.mode === 'baseline');
      const m = runs.find((x) => x.round === r && x.mode === mode);
      if (b !== undefined && m !== undefined) ratios.push(pick(m) / pick(b));
    }
    return round(median(ratios), 3);
  };
  const ratios = {
    pacedP99VsBaseline: round(summary['scrape-paced'].p99LatencyMs / base.p99LatencyMs, 3),
    floodP99VsBaseline: round(summary['scrape-flood'].p99LatencyMs / base.p99LatencyMs, 3),
    pacedOpsVsBaseline: round(summary['scrape-paced'].opsPerSec / base.opsPerSec, 3),
    floodOpsVsBaseline: round(summary['scrape-flood'].opsPerSec / base.opsPerSec, 3),
    pairedByRound: {
      pacedP99: paired('scrape-paced', (x) => x.resp.p99LatencyMs),
      pacedOps: paired('scrape-paced', (x) => x.resp.opsPerSec),
      pacedNodesCpuPerOp: paired('scrape-paced', (x) => x.nodesCpuSeconds / x.resp.requests),
      floodP99: paired('scrape-flood', (x) => x.resp.p99LatencyMs),
      floodOps: paired('scrape-flood', (x) => x.resp.opsPerSec),
      floodNodesCpuPerOp: paired('scrape-flood', (x) => x.nodesCpuSeconds / x.resp.requests),
    },
  };
  let head = 'unknown';
  try {
    head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    // Not a git checkout: the revision stays unknown.
  }
  const report = {
    date: new Date().toISOString(),
    concordRevision: head,
    node: process.version,
    machine: { cpus: os.cpus().length, loadAverage: os.loadavg().map((l) => round(l, 2)) },
    params: {
      rounds,
      seconds,
      clients,
      scrapeRatePerNode: rate,
      load: 'redis-benchmark -t set -P 1 on the leader',
    },
    summary,
    ratios,
    runs,
  };
  mkdirSync(path.dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify({ summary, ratios }, null, 2));
  console.log(`wrote ${values.out}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
