/**
 * Coherent cache benchmark, all on loopback and in the same run:
 *
 * 1. Read throughput: a follower's local-hit `CGET` next to redis-server `GET` and next to the
 *    same cluster's linearizable `GET` on the same follower (ReadIndex through the leader), by
 *    `redis-benchmark -c 1 -P 1`, `-c 50 -P 1` and `-c 50 -P 16` on one hot key (the line stays
 *    valid: it is re-fetched once per lease). Concord's PING on the same follower is measured
 *    too: the RESP layer's own ceiling, which no command answered by that node can pass. Rounds
 *    rotate the order of the systems; medians are reported, with the ratios CGET/redis GET
 *    (target >= 0.6) and CGET/cluster GET (target >= 5).
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
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { REPO_ROOT, startRedisServer } from '../compat-tests/harness.js';
import { runBench } from './common.js';
import {
  REDIS_SERVER_BIN,
  checkTools,
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
}

async function bench(
  port: number,
  command: readonly string[],
  n: number,
  c: number,
  p: number,
): Promise<Throughput> {
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
  const row = [...parseCsv(out.stdout).values()][0];
  if (out.code !== 0 || row === undefined || /error/i.test(out.stderr))
    throw new Error(
      `redis-benchmark ${command.join(' ')} on ${port}: ${out.stderr.slice(-500)} ${out.stdout.slice(-500)}`,
    );
  return {
    opsPerSec: Number(row['rps']),
    p50Ms: Number(row['p50_latency_ms']),
    p99Ms: Number(row['p99_latency_ms']),
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

async function infoCache(r: Redis): Promise<Map<string, string>> {
  const text = String(await r.info('cache'));
  return parseInfo(text);
}

function parseInfo(text: string): Map<string, string> {
  return new Map(
    text
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)] as [string, string]),
  );
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
    const leaderInfo = await infoCache(sharers[0]!);
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
    const before = await infoCache(r);
    await run(warmup, warmup + reads);
    const after = await infoCache(r);
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
  const redis = await startRedisServer();
  const cluster = await startConcordCluster(3);
  try {
    const ports = await follower(cluster);
    const seed = client(ports.follower);
    await seed.call('CSET', HOT_KEY, HOT_VALUE);
    await seed.set(HOT_KEY, HOT_VALUE);
    await seed.call('CGET', HOT_KEY);
    seed.disconnect();
    const rs = client(redis.port);
    await rs.set(HOT_KEY, HOT_VALUE);
    rs.disconnect();

    const systems = [
      { name: 'redis GET', port: redis.port, command: ['GET', HOT_KEY], n: 200_000 },
      {
        name: 'concord CGET (follower, local hit)',
        port: ports.follower,
        command: ['CGET', HOT_KEY],
        n: 200_000,
      },
      {
        name: 'concord GET (follower, linearizable)',
        port: ports.follower,
        command: ['GET', HOT_KEY],
        n: 40_000,
      },
      { name: 'concord PING (follower, RESP ceiling)', port: ports.follower, command: ['PING'], n: 200_000 },
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
          const result = await bench(s.port, s.command, n, c.clients, c.pipeline);
          const key = `${s.name} -c ${c.clients} -P ${c.pipeline}`;
          samples.set(key, [...(samples.get(key) ?? []), result]);
          console.log(
            `round ${round_ + 1} ${key}: ${Math.round(result.opsPerSec)} ops/s p50 ${result.p50Ms} ms`,
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
      };
    }
    const ratios: Record<string, Record<string, number>> = {};
    for (const c of cases) {
      const suffix = ` -c ${c.clients} -P ${c.pipeline}`;
      const cget = throughput[systems[1]!.name + suffix]!.opsPerSec;
      ratios[`-c ${c.clients} -P ${c.pipeline}`] = {
        cgetOverRedisGet: round(cget / throughput[systems[0]!.name + suffix]!.opsPerSec, 3),
        cgetOverClusterGet: round(cget / throughput[systems[2]!.name + suffix]!.opsPerSec, 3),
        cgetOverConcordPing: round(cget / throughput[systems[3]!.name + suffix]!.opsPerSec, 3),
      };
    }
    console.log('ratios', JSON.stringify(ratios));
    const followerInfo = await infoCache(client(ports.follower));

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
        'Throughput: redis-benchmark -c 1 -P 1, -c 50 -P 1 and -c 50 -P 16 on one hot key, medians over rounds, systems rotated per round; all processes share this machine with the load generator. Hit ratio: one node per cache size (lease 600 s), Zipf(1) over 5000 keys, 10k warm-up then 30k measured CGETs one at a time; bareLruHitRatio is the same sequence through a bare lru-cache of the same size.',
      readThroughput: throughput,
      ratios,
      targets: { cgetOverRedisGet: 0.6, cgetOverClusterGet: 5 },
      followerCacheInfo: Object.fromEntries(followerInfo),
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
