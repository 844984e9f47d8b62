/**
 * Benchmark of the pure Raft core: three RaftCore instances in one process, wired directly
 * (messages handed from one core's Ready to the others' step, no simulated delays), each with
 * a MemoryStorage. A leader proposes small entries in batches; we measure entries committed
 * AND applied on all three nodes per second. Storage is compacted behind the applied index so
 * memory stays bounded.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/raft-core.js [entries] [batch]`.
 * Writes bench/results/raft-core.json and prints it. Not a test: no assertions beyond a
 * final consistency check (every node applied the same count, in order).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftCore } from '../raft/core.js';
import type { RaftConfig } from '../raft/core.js';
import { EntryType, Role } from '../raft/messages.js';
import type { Message, NodeId } from '../raft/messages.js';
import { MemoryStorage } from '../raft/storage.js';

const ENTRIES = Number(process.argv[2] ?? 2_000_000);
const BATCH = Number(process.argv[3] ?? 4096);
const ENTRY_BYTES = 16;
const COMPACT_EVERY = 100_000;

interface Node {
  id: NodeId;
  storage: MemoryStorage;
  core: RaftCore;
  appliedNormal: number;
  lastApplied: number;
  lastSnapshot: number;
}

/** A small deterministic PRNG (mulberry32): the core must not use Math.random. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ids = ['n1', 'n2', 'n3'];
const config: Omit<RaftConfig, 'id' | 'storage' | 'random'> = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflightMsgs: 256,
  maxSizePerMsg: 1024 * 1024,
  maxUncommittedBytes: 64 * 1024 * 1024,
  preVote: true,
  checkQuorum: true,
};

const nodes = new Map<NodeId, Node>();
ids.forEach((id, i) => {
  const storage = new MemoryStorage({ voters: ids });
  const core = new RaftCore({ ...config, id, storage, random: mulberry32(i + 1) });
  nodes.set(id, { id, storage, core, appliedNormal: 0, lastApplied: 0, lastSnapshot: 0 });
});

let queue: Message[] = [];

/** Runs every node's Ready loop and delivers messages until nothing is left to do. */
function pump(): void {
  for (let round = 0; round < 100_000; round++) {
    for (const n of nodes.values()) {
      while (n.core.hasReady()) {
        const rd = n.core.ready();
        if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
        if (rd.snapshot !== null) n.storage.applySnapshot(rd.snapshot);
        n.storage.append(rd.entries);
        for (const m of rd.messages) queue.push(m);
        const committed = rd.committedEntries;
        for (let i = 0; i < committed.length; i++) {
          const e = committed[i]!;
          assert.equal(e.index, n.lastApplied + 1, `${n.id}: applied out of order`);
          n.lastApplied = e.index;
          if (e.type === EntryType.Normal) n.appliedNormal++;
        }
        if (rd.snapshot !== null) n.lastApplied = rd.snapshot.metadata.index;
        n.core.advance();
        if (n.lastApplied - n.lastSnapshot >= COMPACT_EVERY) {
          n.storage.createSnapshot(n.lastApplied, n.core.status().confState, new Uint8Array(0));
          n.storage.compact(n.lastApplied);
          n.lastSnapshot = n.lastApplied;
        }
      }
    }
    if (queue.length === 0) return;
    const q = queue;
    queue = [];
    for (const m of q) nodes.get(m.to)!.core.step(m);
  }
  throw new Error('bench: cluster did not quiesce');
}

const leader = nodes.get('n1')!;
leader.core.campaign();
pump();
assert.equal(leader.core.status().role, Role.Leader);

// Payloads: a pool of distinct 16-byte buffers, reused cyclically (the core never mutates data).
const pool: Uint8Array[] = [];
for (let i = 0; i < 8192; i++) {
  const b = new Uint8Array(ENTRY_BYTES);
  b.fill(i & 0xff);
  pool.push(b);
}

const start = process.hrtime.bigint();
let proposed = 0;
while (proposed < ENTRIES) {
  const n = Math.min(BATCH, ENTRIES - proposed);
  for (let i = 0; i < n; i++) leader.core.propose(pool[(proposed + i) & 8191]!);
  proposed += n;
  pump();
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;

for (const n of nodes.values()) {
  assert.equal(n.appliedNormal, ENTRIES, `${n.id} applied ${n.appliedNormal} of ${ENTRIES}`);
}

const result = {
  date: new Date().toISOString(),
  node: process.version,
  entries: ENTRIES,
  seconds: Number(seconds.toFixed(3)),
  entriesPerSecond: Math.round(ENTRIES / seconds),
  config: {
    ...config,
    nodes: ids.length,
    batch: BATCH,
    entryBytes: ENTRY_BYTES,
    compactEvery: COMPACT_EVERY,
  },
};
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', 'bench', 'results', 'raft-core.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
