/**
 * The coherent cache's HOME: the replicated, durable copy of every cached key (value, the
 * version = state-machine index of its last write, optional expiry in leader time) plus the
 * update/invalidate policies. A StateFamily (snapshot section 4): every node applies the same
 * cache.* entries and holds the same home.
 *
 * Owns: home entries, policies, their expiry. Must never: know about near-caches, lines or
 * the directory (server/cache/ does), read the local clock, or change state in a read
 * (`peek`, `versionOf`, `policyOf` are pure).
 */
import assert from 'node:assert';
import type { ChunkReader, StateFamily } from '../family.js';
import { MinHeap } from '../heap.js';
import type { Result } from '../state-machine.js';
import type { CacheOperation, CachePolicy, CacheWritePolicy } from './operations.js';

export interface HomeEntry {
  readonly key: Buffer;
  readonly value: Buffer;
  /** State-machine index of the write that stored this value. */
  readonly version: number;
  /** Leader time (ms since epoch) the value expires at; Infinity: never. */
  readonly expireAtMs: number;
}

/** Per-key policies kept at most (each is a client's explicit choice). */
export const MAX_KEY_POLICIES = 100_000;
/**
 * 1: policy, entries, per-key policies. 2: the same, then the cluster-wide lease (f64, 0 =
 * none) and the largest lease ever set (f64). Both restore; capture writes 2 only when a lease
 * was ever set, else 1 (so a home that never saw `cache.lease` snapshots as it always did).
 */
const SNAPSHOT_FORMAT = 1;
const SNAPSHOT_FORMAT_LEASE = 2;
const POLICY_CODES: readonly CachePolicy[] = ['invalidate', 'update'];

interface Due {
  readonly atMs: number;
  readonly key: string;
  readonly version: number;
}

/** By expiry only: advanceTime takes every item due, so the order of equal ones never shows. */
function dueBefore(a: Due, b: Due): boolean {
  return a.atMs < b.atMs;
}

export class CacheStore implements StateFamily {
  readonly snapshotSection = 4;
  private entries = new Map<string, HomeEntry>();
  private policies = new Map<string, CachePolicy>();
  private defaultPolicy: CachePolicy = 'invalidate';
  /** The cluster-wide lease (CONFIG SET cache-lease-ms); null: each node's --cache-lease-ms. */
  private lease: number | null = null;
  /**
   * The largest lease ever set here (0: none). A new leader's grace must outlast any line an
   * earlier leader granted, and it cannot know when a shorter lease replaced a longer one in
   * real time (terms share no clock), so it waits at least this long (server/cache/agent.ts).
   */
  private maxLease = 0;
  /** Min-heap of expiries; stale items (overwritten or deleted) are skipped when popped. */
  private heap = new MinHeap<Due>(dueBefore);

  get size(): number {
    return this.entries.size;
  }

  /** The live entry of `key` at leader time `nowMs`, or null (absent or expired). Pure. */
  peek(key: Buffer, nowMs: number): HomeEntry | null {
    const e = this.entries.get(key.toString('latin1'));
    if (e === undefined || e.expireAtMs <= nowMs) return null;
    return e;
  }

  /** The version of the stored entry (expired or not), 0 when there is none. Pure. */
  versionOf(key: Buffer): number {
    return this.entries.get(key.toString('latin1'))?.version ?? 0;
  }

  /** The policy a write to `key` follows unless it names one. Pure. */
  policyOf(key: Buffer): CachePolicy {
    return this.policies.get(key.toString('latin1')) ?? this.defaultPolicy;
  }

  get clusterPolicy(): CachePolicy {
    return this.defaultPolicy;
  }

  /** The cluster-wide lease in ms, or null when none was set (each node uses its own flag). */
  get leaseMs(): number | null {
    return this.lease;
  }

  /** The largest cluster-wide lease ever set (0: none). */
  get maxLeaseMs(): number {
    return this.maxLease;
  }

  /**
   * Applies a cache operation at `index` (its state-machine index: the new version) and leader
   * time `nowMs`. cache.set -> tree [version, policy]; cache.del -> tree [version, policy,
   * deleted 0|1]; cache.policy -> ok or an error; cache.flushall -> tree [version] (the
   * keyspace is the state machine's to clear); cache.lease -> ok.
   */
  apply(op: CacheOperation, nowMs: number, index: number): Result {
    switch (op.type) {
      case 'cache.set': {
        const k = op.key.toString('latin1');
        const expireAtMs = op.ttlMs > 0 ? nowMs + op.ttlMs : Infinity;
        this.entries.delete(k); // re-insert: map order is write order, the same on every node
        this.entries.set(k, { key: op.key, value: op.value, version: index, expireAtMs });
        if (expireAtMs !== Infinity) this.heap.push({ atMs: expireAtMs, key: k, version: index });
        this.compactHeap();
        return { type: 'tree', value: [index, this.effective(op.key, op.policy)] };
      }
      case 'cache.del': {
        const k = op.key.toString('latin1');
        const e = this.entries.get(k);
        const live = e !== undefined && e.expireAtMs > nowMs;
        if (e !== undefined) this.entries.delete(k);
        return { type: 'tree', value: [index, this.policyOf(op.key), live ? 1 : 0] };
      }
      case 'cache.policy': {
        if (op.key === null) {
          if (op.policy === 'default')
            return { type: 'error', message: 'ERR the cluster-wide policy must be INVALIDATE or UPDATE' };
          this.defaultPolicy = op.policy;
          return { type: 'ok' };
        }
        const k = op.key.toString('latin1');
        if (op.policy === 'default') {
          this.policies.delete(k);
          return { type: 'ok' };
        }
        if (!this.policies.has(k) && this.policies.size >= MAX_KEY_POLICIES)
          return {
            type: 'error',
            message: `ERR too many per-key cache policies (at most ${MAX_KEY_POLICIES})`,
          };
        this.policies.set(k, op.policy);
        return { type: 'ok' };
      }
      case 'cache.flushall':
        this.entries = new Map();
        this.heap = new MinHeap<Due>(dueBefore);
        return { type: 'tree', value: [index] };
      case 'cache.lease':
        this.lease = op.leaseMs;
        if (op.leaseMs !== null && op.leaseMs > this.maxLease) this.maxLease = op.leaseMs;
        return { type: 'ok' };
      default: {
        const unknown: never = op;
        throw new Error(`unknown cache operation ${JSON.stringify(unknown)}`);
      }
    }
  }

  private effective(key: Buffer, policy: CacheWritePolicy): CachePolicy {
    return policy === 'default' ? this.policyOf(key) : policy;
  }

  // ---------------------------------------------------------------- StateFamily

  nextDeadlineMs(): number {
    return this.heap.peek()?.atMs ?? Infinity;
  }

  /**
   * Reclaims every entry due at `nowMs`. All of them, not a bounded batch: which entries a
   * bounded batch took would depend on the heap's shape for equal expiry times, and a node
   * restored from a snapshot builds a different heap; the home must stay byte-identical.
   */
  advanceTime(nowMs: number): void {
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || top.atMs > nowMs) return;
      this.heap.pop();
      const e = this.entries.get(top.key);
      if (e !== undefined && e.version === top.version && e.expireAtMs === top.atMs)
        this.entries.delete(top.key);
    }
  }

  /** Expiry is by leader time already; a new leader changes nothing here. */
  onTermStart(_nowMs: number): void {
    return;
  }

  capture(): ChunkReader {
    const entries = [...this.entries.values()];
    const policies = [...this.policies];
    const defaultPolicy = this.defaultPolicy;
    const lease = this.maxLease === 0 ? null : { leaseMs: this.lease ?? 0, maxLeaseMs: this.maxLease };
    // An empty home writes no section at all (restore(empty) gives the same empty home).
    let done =
      entries.length === 0 && policies.length === 0 && defaultPolicy === 'invalidate' && lease === null;
    return {
      next: (): Buffer | null => {
        if (done) return null;
        done = true;
        return encodeSnapshot(defaultPolicy, entries, policies, lease);
      },
    };
  }

  restore(data: Buffer): void {
    this.entries = new Map();
    this.policies = new Map();
    this.defaultPolicy = 'invalidate';
    this.lease = null;
    this.maxLease = 0;
    this.heap = new MinHeap<Due>(dueBefore);
    if (data.length === 0) return;
    let o = 0;
    const need = (n: number): void => {
      if (o + n > data.length) throw new Error('truncated cache snapshot');
    };
    const bytes = (): Buffer => {
      need(4);
      const n = data.readUInt32BE(o);
      o += 4;
      need(n);
      const b = Buffer.from(data.subarray(o, o + n));
      o += n;
      return b;
    };
    need(6);
    const format = data.readUInt8(0);
    if (format !== SNAPSHOT_FORMAT && format !== SNAPSHOT_FORMAT_LEASE)
      throw new Error(`unknown cache snapshot format ${format}`);
    const dp = POLICY_CODES[data.readUInt8(1)];
    if (dp === undefined) throw new Error('bad cache snapshot policy');
    this.defaultPolicy = dp;
    const count = data.readUInt32BE(2);
    o = 6;
    for (let i = 0; i < count; i++) {
      const key = bytes();
      const value = bytes();
      need(16);
      const version = data.readDoubleBE(o);
      const expireAtMs = data.readDoubleBE(o + 8);
      o += 16;
      const k = key.toString('latin1');
      this.entries.set(k, { key, value, version, expireAtMs });
      if (expireAtMs !== Infinity) this.heap.push({ atMs: expireAtMs, key: k, version });
    }
    need(4);
    const policyCount = data.readUInt32BE(o);
    o += 4;
    for (let i = 0; i < policyCount; i++) {
      const key = bytes();
      need(1);
      const p = POLICY_CODES[data.readUInt8(o++)];
      if (p === undefined) throw new Error('bad cache snapshot policy');
      this.policies.set(key.toString('latin1'), p);
    }
    if (format === SNAPSHOT_FORMAT_LEASE) {
      need(16);
      const leaseMs = data.readDoubleBE(o);
      this.lease = leaseMs === 0 ? null : leaseMs;
      this.maxLease = data.readDoubleBE(o + 8);
      o += 16;
    }
    if (o !== data.length) throw new Error('trailing bytes in cache snapshot');
  }

  // ---------------------------------------------------------------- heap

  /** Drops stale heap items once they outnumber live ones, so overwrites cannot grow it. */
  private compactHeap(): void {
    if (this.heap.size <= 2 * this.entries.size + 64) return;
    this.heap.retain((d) => {
      const e = this.entries.get(d.key);
      return e !== undefined && e.version === d.version && e.expireAtMs === d.atMs;
    });
  }
}

function encodeSnapshot(
  defaultPolicy: CachePolicy,
  entries: readonly HomeEntry[],
  policies: readonly (readonly [string, CachePolicy])[],
  lease: { leaseMs: number; maxLeaseMs: number } | null,
): Buffer {
  let size = 6 + 4 + (lease === null ? 0 : 16);
  for (const e of entries) size += 8 + e.key.length + e.value.length + 16;
  for (const [k] of policies) size += 4 + k.length + 1;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt8(lease === null ? SNAPSHOT_FORMAT : SNAPSHOT_FORMAT_LEASE, 0);
  out.writeUInt8(POLICY_CODES.indexOf(defaultPolicy), 1);
  out.writeUInt32BE(entries.length, 2);
  let o = 6;
  for (const e of entries) {
    o = out.writeUInt32BE(e.key.length, o);
    o += e.key.copy(out, o);
    o = out.writeUInt32BE(e.value.length, o);
    o += e.value.copy(out, o);
    o = out.writeDoubleBE(e.version, o);
    o = out.writeDoubleBE(e.expireAtMs, o);
  }
  o = out.writeUInt32BE(policies.length, o);
  for (const [k, p] of policies) {
    o = out.writeUInt32BE(k.length, o);
    o += out.write(k, o, 'latin1');
    o = out.writeUInt8(POLICY_CODES.indexOf(p), o);
  }
  if (lease !== null) {
    o = out.writeDoubleBE(lease.leaseMs, o);
    o = out.writeDoubleBE(lease.maxLeaseMs, o);
  }
  assert.equal(o, size);
  return out;
}
