/**
 * Coherent cache benchmark, all on loopback and in the same run:
 *
 * 1. Read throughput on one hot key, by `redis-benchmark -c 1 -P 1`, `-c 50 -P 1` and
 *    `-c 50 -P 16`, measured on the LEADER and on a FOLLOWER of a 3-node cluster, next to
 *    redis-server `GET`: on each node a local-hit `CGET` (the line stays valid: hot lines are
 *    renewed before their lease ends), the cluster's linearizable `GET` (on the leader a
 *    ReadIndex round; on a follower a ReadIndex request to the leader, then a local read), `PING`
 *    (the RESP layer's own ceiling) and `ECHO` of a value as long as the cached one (the same
 *    reply bytes as the CGET: what a hit costs beyond RESP). For every run the server process's
 *    CPU time (utime + stime) per request is recorded too: on a 2-core machine shared with the
 *    load generator, CPU per request is the steadier figure of what a command costs. Rounds
 *    rotate the order of the systems; medians are reported, with each node's ratios
 *    CGET/redis GET (target >= 0.6) and CGET/that node's GET (target >= 5), separately.
 * 2. CSET latency through a follower, one client, with no sharer (the writer's line is M: no
 *    invalidation round) and with the two other nodes holding the key in S before every write
 *    (a round of two invalidations).
 * 3. Hit ratio against near-cache size: a Zipf(s = 1) CGET workload over 5,000 keys on one
 *    node started with each --cache-max-entries, next to a bare lru-cache fed the same sequence;
 *    plotted to a PNG (bench/png-plot.ts: drawn
 *    and deflated in-process, no dependency).
 *
 * Run: `npm run bench:cache [-- --rounds 3 --out bench/results/cache.json]`.
 * Writes bench/results/cache.json and bench/results/cache-hit-ratio.png.
 * Owns: the processes it starts (stopped at the end). Must never: assert performance, or talk to
 * anything but 127.0.0.1.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { REPO_ROOT, startRedisServer } from '../compat-tests/harness.js';
import { runBench } from './common.js';
import {
  REDIS_SERVER_BIN,
  checkTools,
  cpuSeconds,
  median,
  parseCsv,
  round,
  runRedisBenchmark,
  startConcordCluster,
  toolVersion,
  type ConcordCluster,
} from './peers.js';
import { linePlotPng } from './png-plot.js';

const HOT_KEY = 'bench:hot';
const HOT_VALUE = 'x'.repeat(32);

interface Throughput {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** The server process's CPU time per request, in µs (utime + stime over the run). */
  serverCpuUsPerOp: number;
}

async function bench(
  port: number,
  pid: number,
  command: readonly string[],
  n: number,
  c: number,
  p: number,
): Promise<Throughput> {
  const cpuBefore = cpuSeconds(pid);
  const out = await runRedisBenchmark(port, [
    '-n',
    String(n),
    '-c',
    String(c),
    '-P',
    String(p),
    '--csv',
    ...command,
  ]);
  const cpu = cpuSeconds(pid) - cpuBefore;
  const row = [...parseCsv(out.stdout).values()][0];
  if (out.code !== 0 || row === undefined || /error/i.test(out.stderr))
    throw new Error(
      `redis-benchmark ${command.join(' ')} on ${port}: ${out.stderr.slice(-500)} ${out.stdout.slice(-500)}`,
    );
  return {
    opsPerSec: Number(row['rps']),
    p50Ms: Number(row['p50_latency_ms']),
    p99Ms: Number(row['p99_latency_ms']),
    serverCpuUsPerOp: round((cpu * 1e6) / n, 3),
  };
}

function client(port: number): Redis {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, commandTimeout: 10_000 });
  r.on('error', () => undefined);
  return r;
}

function summary(samples: number[]): { p50Ms: number; p99Ms: number; meanMs: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
  return {
    p50Ms: round(at(0.5), 3),
    p99Ms: round(at(0.99), 3),
    meanMs: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, 3),
    n: sorted.length,
  };
}

/** INFO cache of the node on `port`, by a client of its own (closed before returning). */
async function infoCache(port: number): Promise<Map<string, string>> {
  const r = client(port);
  try {
    const text = String(await r.info('cache'));
    return new Map(
      text
        .split('\r\n')
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)] as [string, string]),
    );
  } finally {
    r.disconnect();
  }
}

async function follower(
  cluster: ConcordCluster,
): Promise<{ leader: number; follower: number; other: number }> {
  const leader = await cluster.leader();
  const others = cluster.members.filter((m) => m.id !== leader.id);
  return { leader: leader.port, follower: others[0]!.port, other: others[1]!.port };
}

async function csetLatency(cluster: ConcordCluster, iterations: number): Promise<Record<string, unknown>> {
  const { leader, follower: writerPort, other } = await follower(cluster);
  const writer = client(writerPort);
  const sharers = [client(leader), client(other)];
  try {
    const solo: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const t = performance.now();
      await writer.call('CSET', 'lat:solo', `v${i}`);
      solo.push(performance.now() - t);
    }
    const shared: number[] = [];
    for (let i = 0; i < iterations; i++) {
      for (const s of sharers) await s.call('CGET', 'lat:shared');
      const t = performance.now();
      await writer.call('CSET', 'lat:shared', `v${i}`);
      shared.push(performance.now() - t);
    }
    const leaderInfo = await infoCache(leader);
    return {
      noSharers: summary(solo),
      twoSharers: summary(shared),
      leaderInvalidationWaitP50Ms: Number(leaderInfo.get('cache_invalidation_wait_p50_ms')),
      leaderInvalidationWaitP99Ms: Number(leaderInfo.get('cache_invalidation_wait_p99_ms')),
      leaderInvalidationsSent: Number(leaderInfo.get('cache_invalidations_sent')),
    };
  } finally {
    for (const r of [writer, ...sharers]) r.disconnect();
  }
}

/** Zipf(s = 1) ranks by inverse CDF over a seeded LCG: the same sequence every run. */
function zipfSequence(keys: number, count: number, seed: number): number[] {
  const cumulative = new Float64Array(keys);
  let total = 0;
  for (let r = 0; r < keys; r++) total += 1 / (r + 1);
  let acc = 0;
  for (let r = 0; r < keys; r++) cumulative[r] = acc += 1 / (r + 1) / total;
  let s = seed;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    // 32-bit LCG in integer arithmetic (a double product would lose the low bits and cycle).
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    let lo = 0;
    let hi = keys - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    out.push(lo);
  }
  return out;
}

async function hitRatio(
  size: number,
  keys: number,
  warmup: number,
  reads: number,
): Promise<Record<string, number>> {
  // A long lease: what is measured is the LRU, not lease renewals of hot lines.
  const node = await startConcordCluster(1, [
    '--cache-max-entries',
    String(size),
    '--cache-lease-ms',
    '600000',
  ]);
  const r = client(node.members[0]!.port);
  try {
    for (let start = 0; start < keys; start += 500) {
      const p = r.pipeline();
      for (let k = start; k < Math.min(keys, start + 500); k++) p.call('CSET', `z:${k}`, `value-${k}`);
      await p.exec();
    }
    const sequence = zipfSequence(keys, warmup + reads, 7);
    // One CGET at a time: pipelined misses of one key would all miss before the first installs.
    const run = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) await r.call('CGET', `z:${sequence[i]!}`);
    };
    await run(0, warmup);
    const port = node.members[0]!.port;
    const before = await infoCache(port);
    await run(warmup, warmup + reads);
    const after = await infoCache(port);
    const hits = Number(after.get('cache_hits')) - Number(before.get('cache_hits'));
    const misses = Number(after.get('cache_misses')) - Number(before.get('cache_misses'));
    // The same sequence through a bare lru-cache of the same size: what an ideal LRU gives.
    const model = new LRUCache<number, true>({ max: size });
    for (let k = 0; k < keys; k++) model.set(k, true);
    let modelHits = 0;
    sequence.forEach((k, i) => {
      const hit = model.get(k) !== undefined;
      if (!hit) model.set(k, true);
      if (hit && i >= warmup) modelHits++;
    });
    return {
      cacheLines: size,
      hitRatio: round(hits / (hits + misses), 4),
      bareLruHitRatio: round(modelHits / reads, 4),
      linesHeld: Number(after.get('cache_lines')),
      bytesHeld: Number(after.get('cache_bytes')),
      evictions: Number(after.get('cache_evictions')),
    };
  } finally {
    r.disconnect();
    await node.stop();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      out: { type: 'string', default: path.join(REPO_ROOT, 'bench/results/cache.json') },
      plot: { type: 'string', default: path.join(REPO_ROOT, 'bench/results/cache-hit-ratio.png') },
    },
  });
  checkTools();
  const rounds = Number(values.rounds);
  const loadBefore = loadavg();
  const redis = await startRedisServer();
  const cluster = await startConcordCluster(3);
  try {
    const leaderMember = await cluster.leader();
    const followerMember = cluster.members.find((m) => m.id !== leaderMember.id)!;
    const nodes = [
      { role: 'leader', member: leaderMember },
      { role: 'follower', member: followerMember },
    ];
    const seed = client(followerMember.port);
    await seed.call('CSET', HOT_KEY, HOT_VALUE);
    await seed.set(HOT_KEY, HOT_VALUE);
    seed.disconnect();
    // Each node's first CGET installs its line; from then on hot lines are renewed ahead.
    for (const { member } of nodes) {
      const r = client(member.port);
      await r.call('CGET', HOT_KEY);
      r.disconnect();
    }
    const rs = client(redis.port);
    await rs.set(HOT_KEY, HOT_VALUE);
    rs.disconnect();

    const systems = [
      { name: 'redis GET', port: redis.port, pid: redis.pid, command: ['GET', HOT_KEY], n: 200_000 },
      ...nodes.flatMap(({ role, member }) => [
        {
          name: `concord CGET (${role}, local hit)`,
          port: member.port,
          pid: member.proc.pid,
          command: ['CGET', HOT_KEY],
          n: 200_000,
        },
        {
          name: `concord GET (${role}, linearizable)`,
          port: member.port,
          pid: member.proc.pid,
          command: ['GET', HOT_KEY],
          n: 40_000,
        },
        {
          name: `concord PING (${role}, RESP ceiling)`,
          port: member.port,
          pid: member.proc.pid,
          command: ['PING'],
          n: 200_000,
        },
        {
          name: `concord ECHO of the value (${role}, same reply bytes)`,
          port: member.port,
          pid: member.proc.pid,
          command: ['ECHO', HOT_VALUE],
          n: 200_000,
        },
      ]),
    ];
    const cases = [
      { clients: 1, pipeline: 1 },
      { clients: 50, pipeline: 1 },
      { clients: 50, pipeline: 16 },
    ];
    const samples = new Map<string, Throughput[]>();
    for (let round_ = 0; round_ < rounds; round_++) {
      for (const c of cases) {
        for (let i = 0; i < systems.length; i++) {
          const s = systems[(i + round_) % systems.length]!;
          const n = c.pipeline > 1 ? s.n * 2 : c.clients === 1 ? Math.ceil(s.n / 10) : s.n;
          const result = await bench(s.port, s.pid, s.command, n, c.clients, c.pipeline);
          const key = `${s.name} -c ${c.clients} -P ${c.pipeline}`;
          samples.set(key, [...(samples.get(key) ?? []), result]);
          console.log(
            `round ${round_ + 1} ${key}: ${Math.round(result.opsPerSec)} ops/s p50 ${result.p50Ms} ms, server ${result.serverCpuUsPerOp} µs CPU/op`,
          );
        }
      }
    }
    const throughput: Record<string, Throughput> = {};
    for (const [key, list] of samples) {
      throughput[key] = {
        opsPerSec: Math.round(median(list.map((x) => x.opsPerSec))),
        p50Ms: median(list.map((x) => x.p50Ms)),
        p99Ms: median(list.map((x) => x.p99Ms)),
        serverCpuUsPerOp: median(list.map((x) => x.serverCpuUsPerOp)),
      };
    }
    const ratios: Record<string, Record<string, Record<string, number>>> = {};
    for (const { role } of nodes) {
      ratios[role] = {};
      for (const c of cases) {
        const suffix = ` -c ${c.clients} -P ${c.pipeline}`;
        const at = (name: string): Throughput => throughput[name + suffix]!;
        const cget = at(`concord CGET (${role}, local hit)`);
        const get = at(`concord GET (${role}, linearizable)`);
        const ping = at(`concord PING (${role}, RESP ceiling)`);
        const echo = at(`concord ECHO of the value (${role}, same reply bytes)`);
        const redisGet = at('redis GET');
        ratios[role][`-c ${c.clients} -P ${c.pipeline}`] = {
          cgetOverRedisGet: round(cget.opsPerSec / redisGet.opsPerSec, 3),
          cgetOverClusterGet: round(cget.opsPerSec / get.opsPerSec, 3),
          cgetOverConcordPing: round(cget.opsPerSec / ping.opsPerSec, 3),
          cgetOverConcordEcho: round(cget.opsPerSec / echo.opsPerSec, 3),
          cgetCpuOverPingCpu: round(cget.serverCpuUsPerOp / ping.serverCpuUsPerOp, 3),
          cgetCpuOverEchoCpu: round(cget.serverCpuUsPerOp / echo.serverCpuUsPerOp, 3),
          cgetCpuOverRedisGetCpu: round(cget.serverCpuUsPerOp / redisGet.serverCpuUsPerOp, 3),
        };
      }
    }
    console.log('ratios', JSON.stringify(ratios));
    const cacheInfo: Record<string, Record<string, string>> = {};
    for (const { role, member } of nodes) cacheInfo[role] = Object.fromEntries(await infoCache(member.port));

    const latency = await csetLatency(cluster, 300);
    console.log('CSET latency', JSON.stringify(latency));

    const sizes = [50, 100, 250, 500, 1_000, 2_500, 5_000];
    const hit: Record<string, number>[] = [];
    for (const size of sizes) {
      const h = await hitRatio(size, 5_000, 10_000, 30_000);
      console.log(`hit ratio with ${size} lines: ${h['hitRatio']}`);
      hit.push(h);
    }
    const png = linePlotPng({
      title: 'CGET hit ratio vs near-cache size (Zipf s=1, 5000 keys)',
      xLabel: 'near-cache size (lines, log scale)',
      yLabel: 'hit ratio',
      yMax: 1,
      series: [
        {
          label: 'bare LRU (model)',
          color: [255, 127, 14],
          points: hit.map((h) => [h['cacheLines']!, h['bareLruHitRatio']!]),
        },
        {
          label: 'LRU near-cache',
          color: [31, 119, 180],
          points: hit.map((h) => [h['cacheLines']!, h['hitRatio']!]),
        },
      ],
    });
    writeFileSync(values.plot, png);

    const result = {
      generatedAt: new Date().toISOString(),
      command: 'npm run bench:cache',
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      redisVersion: toolVersion(REDIS_SERVER_BIN, ['--version']),
      rounds,
      notes:
        'Throughput: redis-benchmark -c 1 -P 1, -c 50 -P 1 and -c 50 -P 16 on one hot key, on the leader and on a follower, medians over rounds, systems rotated per round; serverCpuUsPerOp is the server process CPU time (utime+stime) over the run divided by the requests; all processes share this 2-core machine with the load generator (and with other work: see loadAverage, 1/5/15-minute load before and after). Ratios are per node (a follower CGET against that follower GET, and so on). Hit ratio: one node per cache size (lease 600 s), Zipf(1) over 5000 keys, 10k warm-up then 30k measured CGETs one at a time; bareLruHitRatio is the same sequence through a bare lru-cache of the same size.',
      loadAverage: { before: loadBefore.map((x) => round(x, 2)), after: loadavg().map((x) => round(x, 2)) },
      readThroughput: throughput,
      ratios,
      targets: { cgetOverRedisGet: 0.6, cgetOverClusterGet: 5 },
      cacheInfo,
      csetLatency: latency,
      hitRatioVsCacheSize: hit,
      plot: path.relative(REPO_ROOT, values.plot),
    };
    writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
    console.log(`wrote ${values.out} and ${values.plot}`);
    return 0;
  } finally {
    await cluster.stop();
    await redis.stop();
  }
}

runBench(main);
