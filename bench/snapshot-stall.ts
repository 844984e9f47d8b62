/**
 * Benchmark: how long a snapshot holds the event loop, on each step of its life, for a keyspace
 * of 50,000 and 500,000 keys (64-byte values). A stall longer than about a quarter of an
 * election timeout (default 10 ticks x 100 ms = 1 s, so ~250 ms) risks a missed heartbeat and
 * a needless election. Steps, each measured with perf_hooks `monitorEventLoopDelay` (the
 * longest delay of the loop while the step runs) and, for synchronous calls, their own time:
 *
 *   take       ConcordApplication.snapshot(): capture the state, serialize it in chunks
 *   persist    FileStorage.prepareSnapshot (the file, off the Ready loop), then createSnapshot +
 *              sync() (the driver's installCaptured); `readyLoopSyncMs` is how long that sync
 *              holds the Ready loop (group commits wait behind it), and `syncWithoutPrepareMs`
 *              the same sync when the file is written inside it (as before prepareSnapshot)
 *   send       the leader's Snap to a follower through a real TcpTransport on loopback
 *              (encode, frames, decode at the receiver; one frame or chunks, as implemented)
 *   install    the follower's InstallSnapshot: storage.applySnapshot + sync, then restore()
 *
 * Run: `npm run build && node dist/bench/snapshot-stall.js [keys,keys...]`. Writes
 * bench/results/snapshot-stall.json and prints it. Not a test; figures vary with the load
 * (the JSON records the load average).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { StateMachine } from '../commands/state-machine.js';
import { FileStorage } from '../raft/file-storage.js';
import { EntryType, message, MessageType } from '../raft/messages.js';
import type { Message, Snapshot } from '../raft/messages.js';
import { TcpTransport } from '../raft/tcp-transport.js';
import { ConcordApplication } from '../server/node.js';

const SIZES = (process.argv[2] ?? '50000,500000').split(',').map(Number);
const VALUE_BYTES = 64;
const ELECTION_TIMEOUT_MS = 1000;

interface Step {
  /** Longest event-loop delay seen while the step ran (ms). */
  maxStallMs: number;
  /** Wall time of the whole step (ms). */
  wallMs: number;
}

async function measure(run: () => Promise<void>): Promise<Step> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // A timer keeps the loop turning, so the monitor samples throughout.
  const keepAlive = setInterval(() => undefined, 1);
  h.enable();
  const started = performance.now();
  await run();
  // Let the monitor observe the end of the last synchronous block.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const wallMs = performance.now() - started;
  h.disable();
  clearInterval(keepAlive);
  return { maxStallMs: Math.round((h.max / 1e6) * 10) / 10, wallMs: Math.round(wallMs) };
}

function buildState(keys: number): ConcordApplication {
  const sm = new StateMachine();
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  for (let i = 0; i < keys; i++) {
    sm.apply({
      index: i + 1,
      timeMs: 1_000,
      op: {
        type: 'keys.set',
        key: Buffer.from(`key:${String(i).padStart(8, '0')}`),
        value,
        condition: 'always',
        expire: 'none',
        expireMs: 0,
        get: false,
      },
    });
  }
  return new ConcordApplication(sm);
}

async function sendThroughTransport(snapshot: Snapshot): Promise<Snapshot> {
  const secret = 'snapshot-stall bench secret, long enough';
  const a = await TcpTransport.listen({
    id: 'a',
    clusterId: 'bench',
    secret,
    listen: { host: '127.0.0.1', port: 0 },
  });
  const b = await TcpTransport.listen({
    id: 'b',
    clusterId: 'bench',
    secret,
    listen: { host: '127.0.0.1', port: 0 },
  });
  try {
    const got = new Promise<Message>((resolve) => b.onMessage(resolve));
    a.addPeer('b', b.address());
    b.addPeer('a', a.address());
    for (let i = 0; i < 500 && !a.isConnected('b'); i++) await new Promise((r) => setTimeout(r, 10));
    a.send(message({ type: MessageType.Snap, from: 'a', to: 'b', term: 1, snapshot }));
    const m = await got;
    if (m.snapshot === null) throw new Error('no snapshot received');
    return m.snapshot;
  } finally {
    await a.close();
    await b.close();
  }
}

interface SizeResult {
  keys: number;
  snapshotBytes: number;
  take: Step;
  persist: Step;
  send: Step;
  install: Step;
  installRestoreSyncMs: number;
  readyLoopSyncMs: number;
  syncWithoutPrepareMs: number;
}

async function runSize(keys: number): Promise<SizeResult> {
  const app = buildState(keys);
  const dir = await mkdtemp(join(tmpdir(), 'concord-snapstall-'));
  try {
    const storage = await FileStorage.open(join(dir, 'leader'), { peers: { voters: ['a', 'b'] } });
    storage.append([{ term: 1, index: 1, type: EntryType.Empty, data: new Uint8Array(0) }]);
    await storage.sync();
    let data: Uint8Array = new Uint8Array(0);
    const take = await measure(async () => {
      data = await app.snapshot();
    });
    const confState = { voters: ['a', 'b'], learners: [] };
    let snapshot: Snapshot | null = null;
    let readyLoopSyncMs = 0;
    const persist = await measure(async () => {
      await storage.prepareSnapshot(1, confState, data);
      const t0 = performance.now();
      snapshot = storage.createSnapshot(1, confState, data);
      await storage.sync();
      readyLoopSyncMs = Math.round(performance.now() - t0);
    });
    const other = await FileStorage.open(join(dir, 'other'), { peers: { voters: ['a', 'b'] } });
    other.append([{ term: 1, index: 1, type: EntryType.Empty, data: new Uint8Array(0) }]);
    await other.sync();
    const t1 = performance.now();
    other.createSnapshot(1, confState, data);
    await other.sync();
    const syncWithoutPrepareMs = Math.round(performance.now() - t1);
    await other.close();
    if (snapshot === null) throw new Error('no snapshot');
    let received: Snapshot | null = null;
    const sent: Snapshot = snapshot;
    const send = await measure(async () => {
      received = await sendThroughTransport(sent);
    });
    if (received === null) throw new Error('nothing received');
    const got: Snapshot = received;
    const follower = await FileStorage.open(join(dir, 'follower'), { peers: { voters: ['a', 'b'] } });
    const target = new ConcordApplication(new StateMachine());
    let installRestoreSyncMs = 0;
    const install = await measure(async () => {
      follower.applySnapshot(got);
      await follower.sync();
      const t0 = performance.now();
      await Promise.resolve(target.restore(got));
      installRestoreSyncMs = Math.round(performance.now() - t0);
    });
    if (!target.stateMachine.snapshot().equals(app.stateMachine.snapshot())) {
      throw new Error('restored state differs');
    }
    await storage.close();
    await follower.close();
    return {
      keys,
      snapshotBytes: data.byteLength,
      take,
      persist,
      send,
      install,
      installRestoreSyncMs,
      readyLoopSyncMs,
      syncWithoutPrepareMs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const results: SizeResult[] = [];
for (const keys of SIZES) {
  const r = await runSize(keys);
  results.push(r);
  console.log(
    `${keys} keys (${(r.snapshotBytes / 1e6).toFixed(1)} MB): longest stall take ${r.take.maxStallMs} ms, persist ${r.persist.maxStallMs} ms, send ${r.send.maxStallMs} ms, install ${r.install.maxStallMs} ms (restore() alone ${r.installRestoreSyncMs} ms); Ready loop held by the snapshot sync ${r.readyLoopSyncMs} ms (${r.syncWithoutPrepareMs} ms writing the file inside it)`,
  );
}
const out = {
  bench: 'snapshot-stall',
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  electionTimeoutMs: ELECTION_TIMEOUT_MS,
  stallBudgetMs: ELECTION_TIMEOUT_MS / 4,
  valueBytes: VALUE_BYTES,
  results,
};
const here = dirname(fileURLToPath(import.meta.url));
const file = join(here, '..', '..', 'bench', 'results', 'snapshot-stall.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
