/**
 * Benchmark of the durable Raft storage (raft/file-storage.ts) on the machine's real disk:
 * batches of 1, 16 and 256 small entries, each batch appended and made durable by one sync()
 * (one write + one fdatasync: group commit). Reports batches (syncs) per second, entries per
 * second and the sync latency distribution; then the same with 64 callers syncing concurrently
 * (coalesced into shared flushes), the CRC-32C throughput, and the time to reopen a log of
 * 500,000 entries (every record validated, the in-memory mirror rebuilt).
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/file-storage.js [secondsPerCase] [dir]`.
 * The directory defaults to a temp dir under the OS temp dir (put it on the disk you care
 * about). Writes bench/results/file-storage.json and prints it. Not a test. Figures depend on
 * the disk's write cache (a VM disk that acknowledges fdatasync from the host's cache shows
 * sub-millisecond syncs) and on the load: the JSON records the load average.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c } from '../raft/crc32c.js';
import { FileStorage } from '../raft/file-storage.js';
import { EntryType } from '../raft/messages.js';
import type { Entry } from '../raft/messages.js';

const SECONDS = Number(process.argv[2] ?? 3);
const BASE = process.argv[3] ?? tmpdir();
const ENTRY_BYTES = 64;
const COMPACT_KEEP = 10_000;

interface CaseResult {
  batch: number;
  concurrency: number;
  syncs: number;
  flushes: number | null;
  syncsPerSecond: number;
  entriesPerSecond: number;
  megabytesPerSecond: number;
  syncLatencyMs: { p50: number; p99: number; max: number };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function batchOf(from: number, n: number, data: Uint8Array): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) out.push({ term: 1, index: from + i, type: EntryType.Normal, data });
  return out;
}

/** Appends keep the log bounded: snapshot + compact every COMPACT_KEEP entries. */
function maybeCompact(s: FileStorage): void {
  const last = s.lastIndex();
  if (last - s.firstIndex() > 2 * COMPACT_KEEP) {
    const at = last - COMPACT_KEEP;
    s.createSnapshot(at, { voters: ['n1'], learners: [] }, new Uint8Array(16));
    s.compact(at);
  }
}

async function sequential(batch: number): Promise<CaseResult> {
  const dir = await mkdtemp(join(BASE, 'concord-bench-fs-'));
  const s = await FileStorage.open(dir, { peers: { voters: ['n1'] } });
  const data = new Uint8Array(ENTRY_BYTES).fill(7);
  const lat: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  let syncs = 0;
  while (performance.now() < deadline) {
    s.append(batchOf(s.lastIndex() + 1, batch, data));
    s.setHardState({ term: 1, vote: 'n1', commit: s.lastIndex() });
    maybeCompact(s);
    const a = performance.now();
    await s.sync();
    lat.push(performance.now() - a);
    syncs++;
  }
  const secs = (performance.now() - t0) / 1000;
  await s.close();
  await rm(dir, { recursive: true, force: true });
  lat.sort((x, y) => x - y);
  return {
    batch,
    concurrency: 1,
    syncs,
    flushes: syncs,
    syncsPerSecond: Math.round(syncs / secs),
    entriesPerSecond: Math.round((syncs * batch) / secs),
    megabytesPerSecond: Math.round(((syncs * batch * ENTRY_BYTES) / secs / 1e6) * 100) / 100,
    syncLatencyMs: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] ?? 0 },
  };
}

/** `callers` loops each append one entry and await sync(): flushes are shared (group commit). */
async function concurrent(callers: number): Promise<CaseResult> {
  const dir = await mkdtemp(join(BASE, 'concord-bench-fs-'));
  const s = await FileStorage.open(dir, { peers: { voters: ['n1'] } });
  const data = new Uint8Array(ENTRY_BYTES).fill(7);
  const lat: number[] = [];
  const flushes = new Set<Promise<void>>();
  const deadline = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  let syncs = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      s.append(batchOf(s.lastIndex() + 1, 1, data));
      maybeCompact(s);
      const a = performance.now();
      const p = s.sync();
      if (flushes.size < 1_000_000) flushes.add(p);
      await p;
      lat.push(performance.now() - a);
      syncs++;
    }
  };
  await Promise.all(Array.from({ length: callers }, loop));
  const secs = (performance.now() - t0) / 1000;
  await s.close();
  await rm(dir, { recursive: true, force: true });
  lat.sort((x, y) => x - y);
  return {
    batch: 1,
    concurrency: callers,
    syncs,
    flushes: flushes.size,
    syncsPerSecond: Math.round(syncs / secs),
    entriesPerSecond: Math.round(syncs / secs),
    megabytesPerSecond: Math.round(((syncs * ENTRY_BYTES) / secs / 1e6) * 100) / 100,
    syncLatencyMs: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] ?? 0 },
  };
}

/** Time to reopen (validate every record and rebuild the in-memory mirror of) a log of `n` entries. */
async function recovery(
  n: number,
): Promise<{ entries: number; segments: number; megabytes: number; openMs: number }> {
  const dir = await mkdtemp(join(BASE, 'concord-bench-fs-'));
  const s = await FileStorage.open(dir, { peers: { voters: ['n1'] }, maxSegmentBytes: 16 * 1024 * 1024 });
  const data = new Uint8Array(ENTRY_BYTES).fill(7);
  for (let i = 1; i <= n; i += 1000) {
    s.append(batchOf(i, Math.min(1000, n - i + 1), data));
    await s.sync();
  }
  await s.close();
  const t = performance.now();
  const r = await FileStorage.open(dir);
  const openMs = Math.round(performance.now() - t);
  assert.equal(r.lastIndex(), n);
  const segments = r.segmentFiles().length;
  await r.close();
  await rm(dir, { recursive: true, force: true });
  return { entries: n, segments, megabytes: Math.round((n * (ENTRY_BYTES + 30)) / 1e6), openMs };
}

function crcThroughput(): number {
  const buf = new Uint8Array(16 * 1024 * 1024).fill(0x5a);
  crc32c(buf);
  const t = performance.now();
  for (let i = 0; i < 4; i++) crc32c(buf);
  return Math.round((4 * 16 * 1.048576) / ((performance.now() - t) / 1000));
}

const loadBefore = Math.round(loadavg()[0]! * 100) / 100;
const cases: CaseResult[] = [];
for (const batch of [1, 16, 256]) cases.push(await sequential(batch));
cases.push(await concurrent(64));
for (const c of cases) assert.ok(c.syncs > 0);
const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  /** 1-minute load average before and after: the disk and CPUs may be shared. */
  loadAverage: { before: loadBefore, after: Math.round(loadavg()[0]! * 100) / 100 },
  dir: BASE,
  secondsPerCase: SECONDS,
  entryBytes: ENTRY_BYTES,
  crc32cMegabytesPerSecond: crcThroughput(),
  cases,
  recovery: await recovery(500_000),
};
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', 'bench', 'results', 'file-storage.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
