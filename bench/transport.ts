/**
 * Benchmark of the TCP peer transport on loopback: a sender transport in the main thread and a
 * receiver transport in a worker thread (each with its own event loop, as two nodes would have),
 * over one authenticated connection. Measures Raft messages/s and MB/s for several message
 * shapes (heartbeat-sized, one small entry, 64 x 1 KiB entries, a 4 MiB snapshot), and
 * request/response latency (sequential) and throughput (64 in flight).
 *
 * The sender keeps its queue under half the bound (no drops: the figure is throughput, not
 * loss); "bytes" are frame bytes on the wire. Not a test: the only assertions are that every
 * message arrived and none was dropped.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/transport.js [scale]` (scale 1 = default
 * counts). Writes bench/results/transport.json and prints it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { decodeMessage, encodeMessage } from '../raft/codec.js';
import { EntryType, MessageType, message } from '../raft/messages.js';
import type { Message } from '../raft/messages.js';
import { TcpTransport } from '../raft/tcp-transport.js';

const SECRET = 'benchmark secret, 32 bytes long!';
const CLUSTER = 'bench';
const MAX_QUEUE = 4096;

type ToWorker = { expect: number } | { stop: true };
type FromWorker = { address: string } | { done: number; bytes: number; seconds: number };

async function receiver(): Promise<void> {
  const port = parentPort!;
  const t = await TcpTransport.listen({
    id: 'b',
    clusterId: CLUSTER,
    secret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    idleTimeoutMs: 5000,
    heartbeatIntervalMs: 1000,
  });
  let expected = 0;
  let count = 0;
  let firstAt = 0n;
  t.onMessage(() => {
    if (count === 0) firstAt = process.hrtime.bigint();
    count++;
    if (count === expected) {
      const seconds = Number(process.hrtime.bigint() - firstAt) / 1e9;
      port.postMessage({ done: count, bytes: t.stats().bytesReceived, seconds } satisfies FromWorker);
    }
  });
  t.onRequest((_from, payload) => Promise.resolve(payload));
  port.on('message', (m: ToWorker) => {
    if ('stop' in m) {
      void t.close().then(() => port.close());
      return;
    }
    expected = m.expect;
    count = 0;
  });
  port.postMessage({ address: t.address() } satisfies FromWorker);
}

function nextFromWorker(worker: Worker): Promise<FromWorker> {
  return new Promise((resolve) => worker.once('message', resolve));
}

async function main(): Promise<void> {
  const scale = Number(process.argv[2] ?? 1);
  const worker = new Worker(fileURLToPath(import.meta.url));
  const hello = await nextFromWorker(worker);
  assert.ok('address' in hello);
  const a = await TcpTransport.listen({
    id: 'a',
    clusterId: CLUSTER,
    secret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    idleTimeoutMs: 5000,
    heartbeatIntervalMs: 1000,
    maxQueueMessages: MAX_QUEUE,
    maxQueueBytes: 64 * 1024 * 1024,
  });
  a.addPeer('b', hello.address);
  while (!a.isConnected('b')) await new Promise((resolve) => setTimeout(resolve, 5));

  const shapes: { name: string; count: number; make: (i: number) => Message }[] = [
    {
      name: 'heartbeat (no entries)',
      count: Math.round(400_000 * scale),
      make: (i) => message({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 3, commit: i }),
    },
    {
      name: 'App, 1 entry x 100 B',
      count: Math.round(300_000 * scale),
      make: (i) =>
        message({
          type: MessageType.App,
          from: 'a',
          to: 'b',
          term: 3,
          index: i,
          logTerm: 3,
          commit: i,
          entries: [{ term: 3, index: i + 1, type: EntryType.Normal, data: new Uint8Array(100) }],
        }),
    },
    {
      name: 'App, 64 entries x 1 KiB',
      count: Math.round(4_000 * scale),
      make: (i) =>
        message({
          type: MessageType.App,
          from: 'a',
          to: 'b',
          term: 3,
          index: i * 64,
          logTerm: 3,
          commit: i,
          entries: Array.from({ length: 64 }, (_, k) => ({
            term: 3,
            index: i * 64 + k + 1,
            type: EntryType.Normal,
            data: new Uint8Array(1024),
          })),
        }),
    },
    {
      name: 'Snap, 4 MiB',
      count: Math.max(1, Math.round(60 * scale)),
      make: (i) =>
        message({
          type: MessageType.Snap,
          from: 'a',
          to: 'b',
          term: 3,
          snapshot: {
            metadata: { index: i, term: 3, confState: { voters: ['a', 'b', 'c'], learners: [] } },
            data: new Uint8Array(4 * 1024 * 1024),
          },
        }),
    },
  ];

  const messages: object[] = [];
  for (const shape of shapes) {
    const bytesBefore = a.stats().bytesSent;
    const droppedBefore = a.stats().dropped;
    worker.postMessage({ expect: shape.count } satisfies ToWorker);
    const done = nextFromWorker(worker);
    const start = process.hrtime.bigint();
    let sent = 0;
    // Keep the queue under half its bounds so nothing is dropped.
    while (sent < shape.count) {
      while (
        sent < shape.count &&
        a.queueDepth('b').messages < MAX_QUEUE / 2 &&
        a.queueDepth('b').bytes < 32 << 20
      ) {
        a.send(shape.make(++sent));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const result = await done;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    assert.ok('done' in result && result.done === shape.count);
    assert.equal(a.stats().dropped, droppedBefore, 'no message may be dropped');
    const bytes = a.stats().bytesSent - bytesBefore;
    messages.push({
      shape: shape.name,
      messages: shape.count,
      frameBytes: Math.round(bytes / shape.count),
      seconds: Number(seconds.toFixed(3)),
      messagesPerSecond: Math.round(shape.count / seconds),
      megabytesPerSecond: Number((bytes / seconds / 1e6).toFixed(1)),
    });
  }

  // The codec alone, in this thread: encode and decode of each shape but the snapshot.
  const codec: object[] = [];
  for (const shape of shapes.slice(0, 3)) {
    const n = Math.max(1, Math.round(shape.count / 4));
    const sample = shape.make(1);
    const bytes = encodeMessage(sample);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) encodeMessage(sample);
    const encodeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const t2 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) decodeMessage(bytes);
    const decodeSeconds = Number(process.hrtime.bigint() - t2) / 1e9;
    codec.push({
      shape: shape.name,
      messageBytes: bytes.length,
      encodesPerSecond: Math.round(n / encodeSeconds),
      decodesPerSecond: Math.round(n / decodeSeconds),
    });
  }

  // Requests: sequential round trips (latency), then 64 in flight (throughput).
  const payload = new Uint8Array(128);
  const latencies: number[] = [];
  const sequential = Math.round(5_000 * scale);
  for (let i = 0; i < sequential; i++) {
    const t0 = process.hrtime.bigint();
    await a.request('b', payload, 5000);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  latencies.sort((x, y) => x - y);
  const pct = (p: number): number =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1));
  const concurrent = Math.round(100_000 * scale);
  const inFlight = 64;
  let issued = 0;
  const t1 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (issued < concurrent) {
        issued++;
        await a.request('b', payload, 5000);
      }
    }),
  );
  const concurrentSeconds = Number(process.hrtime.bigint() - t1) / 1e9;

  worker.postMessage({ stop: true } satisfies ToWorker);
  await a.close();
  await new Promise((resolve) => worker.once('exit', resolve));

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    setup:
      'sender in the main thread, receiver in a worker thread, one loopback TCP connection, HMAC handshake done',
    messages,
    codec,
    requests: {
      payloadBytes: payload.byteLength,
      sequential: { count: sequential, p50Us: pct(0.5), p99Us: pct(0.99), maxUs: pct(1) },
      concurrent: {
        count: concurrent,
        inFlight,
        seconds: Number(concurrentSeconds.toFixed(3)),
        requestsPerSecond: Math.round(concurrent / concurrentSeconds),
      },
    },
  };
  const here = dirname(fileURLToPath(import.meta.url));
  const out = join(here, '..', '..', 'bench', 'results', 'transport.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
}

if (isMainThread) await main();
else await receiver();
