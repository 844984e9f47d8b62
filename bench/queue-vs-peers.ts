/**
 * Queue benchmark: Concord's QPUSH and a produce/consume/ack loop on a three-node cluster
 * (fsync on), next to one redis-server with `appendonly yes` + `appendfsync always` (LPUSH,
 * RPOP, and the same loop over LPUSH/BLMPOP) and a three-node etcd (puts), in the same run.
 *
 * Run: `npm run bench:queue -- [--rounds 3] [--requests 50000] [--clients 50]
 *       [--loop-messages 100000] [--paced-rate 10000] [--out bench/results/queue.json]`
 * Needs /usr/bin/redis-server, /usr/bin/redis-benchmark, /usr/bin/etcd and a built dist/.
 *
 * Cases (each once per system per round, the order of systems rotating each round):
 * - `QPUSH -c50 -P1` and `-P16`: `redis-benchmark -n N -c 50 -P P -r 100000 QPUSH q
 *   __rand_int__` on the Concord leader; redis `-t lpush` and `-t rpop` (same -c/-P); etcd
 *   `PUT` through its JSON gateway at -c 50, one request in flight per connection (-P 1 only).
 * - `SET -c50 -P1` and `-P16` on the Concord leader (`-r 100000 SET key:__rand_int__
 *   __rand_int__`: like QPUSH, it grows the replicated state, so snapshots cost alike): the
 *   reference QPUSH is compared with in the same run (the machine is shared; ratios carry over).
 * - loops: 4 producers and 4 consumers (ioredis, each on its own connection, spread over the
 *   three Concord nodes) move `--loop-messages` messages; a consumer loops QPOP COUNT 100
 *   BLOCK 100, then QACK of what it got, pipelined with its next QPOP. "full speed": each
 *   producer sends QPUSH batches of 50 payloads, one in flight: messages/s (first send to last
 *   ack). "paced": producers send 10 payloads every 4 ms each (`--paced-rate`, 10,000 msg/s in
 *   all) on a fixed schedule: end-to-end latency per message from its scheduled send to
 *   delivery to a consumer, and to its QACK answered, p50/p99. redis runs the same loops with
 *   LPUSH and `BLMPOP 0.1 1 q RIGHT COUNT 100` (no ack: Redis lists have none).
 * - After each QPUSH and SET case the queue is drained (QPOP/QACK 10,000 at a time) and the
 *   keyspace flushed, so the state they built does not weigh on the cases after them.
 *
 * Targets (reported, never asserted): QPUSH -P1 >= 2x etcd puts/s; the full-speed loop >=
 * 10,000 messages/s; the paced loop's end-to-end p99 (to delivery) under 20 ms.
 * Writes bench/results/queue.json and prints a table; exits 1 if any run failed.
 * Owns: the server processes it starts. Must never talk to anything but 127.0.0.1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { rawConnection, startRedisServer } from '../compat-tests/harness.js';
import { runBench } from './common.js';
import type { ServerHandle } from '../compat-tests/harness.js';
import {
  ETCD_BIN,
  REDIS_SERVER_BIN,
  checkTools,
  cpuSeconds,
  etcdPutBody,
  httpLoad,
  loadResultFromCsv,
  median,
  parseCsv,
  percentile,
  redisBenchmark,
  round,
  runRedisBenchmark,
  startConcordCluster,
  startEtcdCluster,
  toolVersion,
} from './peers.js';
import type { ConcordCluster, EtcdCluster, LoadResult } from './peers.js';

const HOST = '127.0.0.1';
const PRODUCERS = 4;
const CONSUMERS = 4;
const PUSH_BATCH = 50;
const POP_COUNT = 100;
/** Messages per QPUSH in the paced loop: 4 producers x 10 every 4 ms = 10,000/s. */
const PACED_BATCH = 10;

type System = 'concord' | 'redis' | 'etcd';

interface Sample extends LoadResult {
  system: System;
  what: string;
  serverCpuSeconds: number;
}

interface LoopResult {
  messages: number;
  seconds: number;
  messagesPerSec: number;
  deliveredP50Ms: number;
  deliveredP99Ms: number;
  ackedP50Ms: number | null;
  ackedP99Ms: number | null;
  duplicates: number;
}

/** One redis-benchmark run of an arbitrary command line (the CSV's only row). */
async function benchmarkCommand(
  port: number,
  n: number,
  clients: number,
  pipeline: number,
  command: string[],
): Promise<LoadResult> {
  const out = await runRedisBenchmark(port, [
    '-n',
    String(n),
    '-c',
    String(clients),
    '-P',
    String(pipeline),
    '-r',
    '100000',
    '--csv',
    ...command,
  ]);
  const row = [...parseCsv(out.stdout).values()][0];
  if (out.code !== 0 || row === undefined || /error/i.test(out.stderr))
    throw new Error(
      `redis-benchmark ${command.join(' ')}: code ${String(out.code)} ${out.stderr.slice(-500)} ${out.stdout.slice(-500)}`,
    );
  return loadResultFromCsv(n, row);
}

function sortedPercentiles(values: number[]): { p50: number; p99: number } {
  const sorted = Float64Array.from(values).sort();
  return { p50: round(percentile(sorted, 50), 3), p99: round(percentile(sorted, 99), 3) };
}

/**
 * Pops and acks everything in `queue` (10,000 at a time), so that a QPUSH case does not leave
 * hundreds of thousands of messages that every later snapshot must write (that would weigh on
 * the loops measured after it, and is not what they measure).
 */
async function drainQueue(port: number, queue: string): Promise<number> {
  const r = new Redis({ host: HOST, port, maxRetriesPerRequest: 0 });
  let drained = 0;
  try {
    for (;;) {
      const got = (await r.call('QPOP', queue, 'COUNT', 10_000)) as [number, string, number, string][] | null;
      if (got === null) return drained;
      drained += (await r.call('QACK', queue, ...got.map((m) => m[3]))) as number;
    }
  } finally {
    r.disconnect();
  }
}

/** FLUSHALL after a SET case, for the same reason as drainQueue. */
async function flushKeys(port: number): Promise<void> {
  const r = new Redis({ host: HOST, port, maxRetriesPerRequest: 0 });
  try {
    await r.flushall();
  } finally {
    r.disconnect();
  }
}

/** The produce/consume(/ack) loop; `kind` picks the commands. */
/**
 * `pace` null: producers push as fast as they can (throughput; latency then includes the
 * backlog). Else producers send `batch` messages every batch/rate s each, on a fixed schedule,
 * and latency counts from the SCHEDULED send time (a producer that falls behind does not hide
 * the delay: no coordinated omission), up to 4 pushes in flight per producer.
 */
async function runLoop(
  kind: 'concord' | 'redis',
  ports: readonly number[],
  messages: number,
  queue: string,
  pace: { ratePerSec: number; batch: number } | null,
): Promise<LoopResult> {
  const connect = (i: number): Redis =>
    new Redis({
      host: HOST,
      port: ports[i % ports.length]!,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
    });
  const conns: Redis[] = [];
  const delivered: number[] = [];
  const acked: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let received = 0;
  const perProducer = Math.ceil(messages / PRODUCERS);
  const total = perProducer * PRODUCERS;
  const started = performance.now();
  let finished = started;
  const push = (r: Redis, payloads: string[]): Promise<unknown> =>
    kind === 'concord' ? r.call('QPUSH', queue, ...payloads) : r.lpush(queue, ...payloads);
  const produce = async (p: number): Promise<void> => {
    const r = connect(p);
    conns.push(r);
    const batch = pace?.batch ?? PUSH_BATCH;
    const intervalMs = pace === null ? 0 : (1000 * batch * PRODUCERS) / pace.ratePerSec;
    const inFlight = new Set<Promise<unknown>>();
    for (let sent = 0, k = 0; sent < perProducer; sent += batch, k++) {
      const n = Math.min(batch, perProducer - sent);
      let t = performance.now();
      if (pace !== null) {
        const scheduled = started + k * intervalMs;
        if (scheduled > t) await new Promise((resolve) => setTimeout(resolve, scheduled - t));
        t = scheduled;
        while (inFlight.size >= 4) await Promise.race(inFlight);
      }
      const stamp = t.toFixed(3);
      const payloads = Array.from({ length: n }, (_, i) => `${stamp}:${p}:${sent + i}`);
      const done = push(r, payloads);
      if (pace === null) {
        await done;
        continue;
      }
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
    }
    await Promise.all(inFlight);
  };
  const consume = async (c: number): Promise<void> => {
    const r = connect(c + 1);
    const acks: Promise<void>[] = [];
    conns.push(r);
    while (received < total) {
      let payloads: string[];
      let receipts: string[] = [];
      if (kind === 'concord') {
        const got = (await r.call('QPOP', queue, 'COUNT', POP_COUNT, 'BLOCK', 100)) as
          [number, string, number, string][] | null;
        if (got === null) continue;
        payloads = got.map((m) => m[1]);
        receipts = got.map((m) => m[3]);
      } else {
        const got = (await r.call('BLMPOP', '0.1', '1', queue, 'RIGHT', 'COUNT', POP_COUNT)) as
          [string, string[]] | null;
        if (got === null) continue;
        payloads = got[1];
      }
      const now = performance.now();
      for (const payload of payloads) {
        if (seen.has(payload)) duplicates++;
        seen.add(payload);
        delivered.push(now - Number(payload.slice(0, payload.indexOf(':'))));
      }
      received += payloads.length;
      if (kind === 'concord') {
        // The ack is pipelined with the next QPOP (same connection: applied in order), as a
        // throughput-minded consumer does; its latency is taken when its answer arrives.
        acks.push(
          r.call('QACK', queue, ...receipts).then(() => {
            const ackNow = performance.now();
            for (const payload of payloads)
              acked.push(ackNow - Number(payload.slice(0, payload.indexOf(':'))));
            finished = ackNow;
          }),
        );
      } else {
        finished = performance.now();
      }
    }
    await Promise.all(acks);
  };
  try {
    await Promise.all([
      ...Array.from({ length: PRODUCERS }, (_, p) => produce(p)),
      ...Array.from({ length: CONSUMERS }, (_, c) => consume(c)),
    ]);
  } finally {
    for (const r of conns) r.disconnect();
  }
  const seconds = (finished - started) / 1000;
  const d = sortedPercentiles(delivered);
  const a = acked.length > 0 ? sortedPercentiles(acked) : null;
  return {
    messages: total,
    seconds: round(seconds, 3),
    messagesPerSec: round(total / seconds, 0),
    deliveredP50Ms: d.p50,
    deliveredP99Ms: d.p99,
    ackedP50Ms: a?.p50 ?? null,
    ackedP99Ms: a?.p99 ?? null,
    duplicates,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      requests: { type: 'string', default: '50000' },
      clients: { type: 'string', default: '50' },
      'loop-messages': { type: 'string', default: '100000' },
      'paced-rate': { type: 'string', default: '10000' },
      out: { type: 'string', default: 'bench/results/queue.json' },
    },
  });
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const clients = Number(values.clients);
  const loopMessages = Number(values['loop-messages']);
  const pacedRate = Number(values['paced-rate']);
  checkTools();
  const [redis, concord, etcd]: [ServerHandle, ConcordCluster, EtcdCluster] = await Promise.all([
    startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] }),
    startConcordCluster(3),
    startEtcdCluster(3),
  ]);
  const errors: string[] = [];
  const samples: Sample[] = [];
  const loops: Record<'max' | 'paced', Record<'concord' | 'redis', LoopResult[]>> = {
    max: { concord: [], redis: [] },
    paced: { concord: [], redis: [] },
  };
  const loadAverageAtStart = round(os.loadavg()[0] ?? 0, 2);
  try {
    const conn = await rawConnection(redis.port);
    const aof = (await conn.call('CONFIG', 'GET', 'append*')).raw.toString();
    conn.close();
    if (!/appendfsync\r\n\$6\r\nalways/.test(aof))
      throw new Error(`redis-server is not appendfsync always: ${aof}`);
    const measure = async (
      system: System,
      what: string,
      pids: number[],
      run: () => Promise<LoadResult>,
    ): Promise<void> => {
      const before = pids.map(cpuSeconds);
      try {
        const result = await run();
        const cpu = pids.reduce((s, pid, i) => s + cpuSeconds(pid) - before[i]!, 0);
        samples.push({ ...result, system, what, serverCpuSeconds: round(cpu, 3) });
        console.log(
          `${what} ${system}: ${result.opsPerSec.toFixed(0)} ops/s, p50 ${result.p50LatencyMs} ms, p99 ${result.p99LatencyMs} ms`,
        );
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        errors.push(`${what} ${system}: ${message}`);
        console.error(`${what} ${system}: ERROR ${message}`);
      }
    };
    // Warm-up (not recorded).
    const warmLeader = await concord.leader();
    await benchmarkCommand(warmLeader.port, 10_000, clients, 1, ['QPUSH', 'warm', '__rand_int__']);
    await drainQueue(warmLeader.port, 'warm');
    await redisBenchmark(redis.port, { test: 'set', requests: 10_000, clients, pipeline: 1 });

    for (let r = 0; r < rounds; r++) {
      const leader = await concord.leader();
      const etcdLeader = await etcd.leader();
      const cases: (() => Promise<void>)[] = [
        async () => {
          await measure('concord', 'QPUSH -c50 -P1', concord.pids(), () =>
            benchmarkCommand(leader.port, requests, clients, 1, ['QPUSH', `q${r}`, '__rand_int__']),
          );
          await drainQueue(leader.port, `q${r}`);
        },
        async () => {
          await measure('concord', 'QPUSH -c50 -P16', concord.pids(), () =>
            benchmarkCommand(leader.port, requests * 2, clients, 16, ['QPUSH', `q${r}p`, '__rand_int__']),
          );
          await drainQueue(leader.port, `q${r}p`);
        },
        () =>
          measure('redis', 'LPUSH -c50 -P1', [redis.pid], () =>
            redisBenchmark(redis.port, { test: 'lpush', requests, clients, pipeline: 1 }),
          ),
        () =>
          measure('redis', 'LPUSH -c50 -P16', [redis.pid], () =>
            redisBenchmark(redis.port, { test: 'lpush', requests: requests * 2, clients, pipeline: 16 }),
          ),
        () =>
          measure('redis', 'RPOP -c50 -P1', [redis.pid], () =>
            redisBenchmark(redis.port, { test: 'rpop', requests, clients, pipeline: 1 }),
          ),
        () =>
          measure('etcd', 'PUT -c50 -P1', etcd.pids(), () =>
            httpLoad({
              port: etcdLeader.clientPort,
              method: 'POST',
              path: '/v3/kv/put',
              body: etcdPutBody('key:__rand_int__', 'xxx'),
              connections: clients,
              requests,
            }),
          ),
        async () => {
          await measure('concord', 'SET -c50 -P1', concord.pids(), () =>
            benchmarkCommand(leader.port, requests, clients, 1, ['SET', 'key:__rand_int__', '__rand_int__']),
          );
          await flushKeys(leader.port);
        },
        async () => {
          await measure('concord', 'SET -c50 -P16', concord.pids(), () =>
            benchmarkCommand(leader.port, requests * 2, clients, 16, [
              'SET',
              'key:__rand_int__',
              '__rand_int__',
            ]),
          );
          await flushKeys(leader.port);
        },
        ...(['max', 'paced'] as const).flatMap((mode) =>
          (['concord', 'redis'] as const).map((system) => async () => {
            const ports = system === 'concord' ? concord.members.map((m) => m.port) : [redis.port];
            const pace = mode === 'paced' ? { ratePerSec: pacedRate, batch: PACED_BATCH } : null;
            try {
              const result = await runLoop(system, ports, loopMessages, `loop-${mode}-${r}`, pace);
              loops[mode][system].push(result);
              console.log(`loop ${mode} ${system}: ${JSON.stringify(result)}`);
            } catch (err) {
              errors.push(`loop ${mode} ${system}: ${err instanceof Error ? err.message : String(err)}`);
            }
          }),
        ),
      ];
      // Rotate so that machine noise does not always hit the same system.
      for (let i = 0; i < cases.length; i++) await cases[(i + r) % cases.length]!();
      if (redis.hasExited() || concord.anyExited() || etcd.anyExited())
        throw new Error('a server process exited');
    }
    const summary = (system: System, what: string): Record<string, number> | null => {
      const list = samples.filter((s) => s.system === system && s.what === what);
      if (list.length === 0) return null;
      const cpu = list.reduce((s, x) => s + x.serverCpuSeconds, 0);
      const ops = list.reduce((s, x) => s + x.requests, 0);
      return {
        runs: list.length,
        opsPerSec: round(median(list.map((s) => s.opsPerSec)), 0),
        p50LatencyMs: round(median(list.map((s) => s.p50LatencyMs)), 3),
        p99LatencyMs: round(median(list.map((s) => s.p99LatencyMs)), 3),
        serverCpuSecondsPer1000Ops: round(cpu / (ops / 1000), 4),
      };
    };
    const loopSummary = (list: LoopResult[]): Record<string, number | null> | null =>
      list.length === 0
        ? null
        : {
            runs: list.length,
            messagesPerSec: round(median(list.map((l) => l.messagesPerSec)), 0),
            deliveredP50Ms: round(median(list.map((l) => l.deliveredP50Ms)), 3),
            deliveredP99Ms: round(median(list.map((l) => l.deliveredP99Ms)), 3),
            ackedP50Ms:
              list[0]!.ackedP50Ms === null ? null : round(median(list.map((l) => l.ackedP50Ms ?? 0)), 3),
            ackedP99Ms:
              list[0]!.ackedP99Ms === null ? null : round(median(list.map((l) => l.ackedP99Ms ?? 0)), 3),
            duplicates: list.reduce((s, l) => s + l.duplicates, 0),
          };
    const results = {
      'QPUSH -c50 -P1': {
        concord: summary('concord', 'QPUSH -c50 -P1'),
        etcdPut: summary('etcd', 'PUT -c50 -P1'),
        redisLpush: summary('redis', 'LPUSH -c50 -P1'),
        redisRpop: summary('redis', 'RPOP -c50 -P1'),
      },
      'QPUSH -c50 -P16': {
        concord: summary('concord', 'QPUSH -c50 -P16'),
        redisLpush: summary('redis', 'LPUSH -c50 -P16'),
      },
      'SET -c50 -P1 (reference)': { concord: summary('concord', 'SET -c50 -P1') },
      'SET -c50 -P16 (reference)': { concord: summary('concord', 'SET -c50 -P16') },
      'loop, producers at full speed': {
        concord: loopSummary(loops.max.concord),
        redisLpushBlmpop: loopSummary(loops.max.redis),
      },
      [`loop, producers paced at ${pacedRate} msg/s`]: {
        concord: loopSummary(loops.paced.concord),
        redisLpushBlmpop: loopSummary(loops.paced.redis),
      },
    };
    const qpush = results['QPUSH -c50 -P1'].concord?.opsPerSec ?? NaN;
    const etcdPut = results['QPUSH -c50 -P1'].etcdPut?.opsPerSec ?? NaN;
    const loop = loopSummary(loops.max.concord);
    const paced = loopSummary(loops.paced.concord);
    const targets = {
      qpushVsEtcdPut: { ratio: round(qpush / etcdPut, 2), target: '>= 2', met: qpush / etcdPut >= 2 },
      loopMessagesPerSec: {
        value: loop?.messagesPerSec ?? null,
        target: '>= 10000',
        met: (loop?.messagesPerSec ?? 0) >= 10_000,
      },
      pacedLoopDeliveredP99Ms: {
        value: paced?.deliveredP99Ms ?? null,
        target: '< 20',
        met: (paced?.deliveredP99Ms ?? Infinity) < 20,
      },
      pacedLoopAckedP99Ms: { value: paced?.ackedP99Ms ?? null },
      qpushVsConcordSet: {
        ratioP1: round(qpush / (results['SET -c50 -P1 (reference)'].concord?.opsPerSec ?? NaN), 2),
        ratioP16: round(
          (results['QPUSH -c50 -P16'].concord?.opsPerSec ?? NaN) /
            (results['SET -c50 -P16 (reference)'].concord?.opsPerSec ?? NaN),
          2,
        ),
      },
    };
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      machine: {
        cores: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        loadAverage1mAtStart: loadAverageAtStart,
        loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2),
      },
      versions: {
        redis: toolVersion(REDIS_SERVER_BIN, ['--version']),
        etcd: toolVersion(ETCD_BIN, ['--version']),
      },
      setup: {
        concord:
          '3 node processes, fsync per group commit; redis-benchmark on the leader; loop clients spread over the 3 nodes',
        redis: 'one redis-server, appendonly yes, appendfsync always',
        etcd: '3 etcd processes, puts on the leader through the JSON gateway, one request in flight per connection',
        loop: `${PRODUCERS} producers (full speed: QPUSH batches of ${PUSH_BATCH}, one in flight; paced: ${PACED_BATCH} per QPUSH on a fixed schedule, up to 4 in flight), ${CONSUMERS} consumers (QPOP COUNT ${POP_COUNT} BLOCK 100, then QACK pipelined with the next QPOP); latency = scheduled send -> delivery (and -> QACK answered)`,
      },
      params: { rounds, requests, clients, loopMessages, pacedRate, pacedBatch: PACED_BATCH },
      targets,
      results,
      samples,
      loops,
      errors,
    };
    mkdirSync(path.dirname(values.out), { recursive: true });
    writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
    console.log(JSON.stringify({ targets, results }, null, 2));
    console.log(`wrote ${values.out}${errors.length > 0 ? ` (${errors.length} errors)` : ''}`);
    return errors.length === 0 ? 0 : 1;
  } finally {
    await Promise.all([redis.stop(), concord.stop(), etcd.stop()]);
  }
}

runBench(main);
