/**
 * The keyspace family's store: binary-safe string keys to string values with optional
 * absolute expiry, inside the state machine.
 *
 * Owns: the key map, the expiry index and its deterministic reclamation, and the family's
 * snapshot encoding. Must never read the clock (every method takes `nowMs` from the entry or
 * the read), keep a reference to a caller's Buffer (values are copied on write), or change
 * state in a read method (get/exists/size).
 *
 * Keys are Map keys as latin1 strings (one char per byte, so binary safe and exact).
 */
import assert from 'node:assert';
import { parseInt64 } from '../args.js';
import type { ExpireCondition, Result, SetOperation } from '../state-machine.js';

export interface StoredValue {
  value: Buffer;
  /** Absolute expiry in ms since epoch; 0 = never. */
  expireAtMs: number;
  /** This entry's place in the expiry heap, -1 when it has no expiry. */
  heapIndex: number;
}

/** An expiring key in the heap; ordered by (entry.expireAtMs, key). */
interface ExpiryMark {
  readonly key: string;
  readonly entry: StoredValue;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const SET_WRITTEN: Result = Object.freeze({ type: 'set', written: true, previous: null });
const SET_NOT_WRITTEN: Result = Object.freeze({ type: 'set', written: false, previous: null });

export class KeyStore {
  private map = new Map<string, StoredValue>();
  /** Number of keys with an expiry. */
  private expiring = 0;
  /**
   * Indexed min-heap of exactly the keys that have an expiry, by (expiry, key): an update or a
   * delete moves or removes its mark at once. No stale marks, so what a sweep reclaims depends
   * only on the keyspace, never on its history: a node restored from a snapshot reclaims the
   * same keys at the same entry as the node that wrote it.
   */
  private heap: ExpiryMark[] = [];

  // ---- reads (never change state) ----

  /** The live entry for `key` at `nowMs`, or undefined. */
  peek(key: Buffer, nowMs: number): StoredValue | undefined {
    const e = this.map.get(key.toString('latin1'));
    if (e === undefined) return undefined;
    if (e.expireAtMs !== 0 && e.expireAtMs <= nowMs) return undefined;
    return e;
  }

  get(key: Buffer, nowMs: number): Buffer | null {
    const e = this.peek(key, nowMs);
    return e === undefined ? null : e.value;
  }

  /** How many of `keys` exist (a key named twice counts twice, as in Redis). */
  exists(keys: readonly Buffer[], nowMs: number): number {
    let n = 0;
    for (const k of keys) if (this.peek(k, nowMs) !== undefined) n++;
    return n;
  }

  /** Milliseconds left before `key` expires; -1 without expiry, -2 when there is no key. */
  ttlMs(key: Buffer, nowMs: number): number {
    const e = this.peek(key, nowMs);
    if (e === undefined) return -2;
    return e.expireAtMs === 0 ? -1 : e.expireAtMs - nowMs;
  }

  /** Keys held, including expired ones not yet reclaimed (as Redis's DBSIZE). */
  get size(): number {
    return this.map.size;
  }

  /** Keys held that have an expiry. */
  get expires(): number {
    return this.expiring;
  }

  // ---- writes (called only from StateMachine.apply) ----

  set(op: SetOperation, nowMs: number): Result {
    const k = op.key.toString('latin1');
    let current = this.map.get(k);
    if (current !== undefined && current.expireAtMs !== 0 && current.expireAtMs <= nowMs) {
      this.remove(k, current);
      current = undefined;
    }
    const previous = op.get && current !== undefined ? current.value : null;
    if (
      (op.condition === 'nx' && current !== undefined) ||
      (op.condition === 'xx' && current === undefined)
    ) {
      return previous === null ? SET_NOT_WRITTEN : { type: 'set', written: false, previous };
    }
    let expireAtMs: number;
    switch (op.expire) {
      case 'none':
        expireAtMs = 0;
        break;
      case 'ttl':
        expireAtMs = nowMs + op.expireMs;
        break;
      case 'at':
        expireAtMs = op.expireMs;
        break;
      case 'keep':
        expireAtMs = current?.expireAtMs ?? 0;
        break;
      default: {
        const unknown: never = op.expire;
        throw new Error(`unknown expire mode ${String(unknown)}`);
      }
    }
    if (expireAtMs !== 0 && expireAtMs <= nowMs) {
      // An expiry already past deletes the key, as Redis 7 does.
      if (current !== undefined) this.remove(k, current);
    } else {
      this.put(k, current, Buffer.from(op.value), expireAtMs);
    }
    return previous === null ? SET_WRITTEN : { type: 'set', written: true, previous };
  }

  /** Deletes the live keys among `keys`; returns how many existed. */
  del(keys: readonly Buffer[], nowMs: number): number {
    let n = 0;
    for (const key of keys) {
      const k = key.toString('latin1');
      const e = this.map.get(k);
      if (e === undefined) continue;
      if (e.expireAtMs === 0 || e.expireAtMs > nowMs) n++;
      this.remove(k, e);
    }
    return n;
  }

  incrBy(key: Buffer, delta: bigint, nowMs: number): Result {
    const k = key.toString('latin1');
    let current = this.map.get(k);
    if (current !== undefined && current.expireAtMs !== 0 && current.expireAtMs <= nowMs) {
      this.remove(k, current);
      current = undefined;
    }
    let base = 0n;
    if (current !== undefined) {
      const parsed = parseInt64(current.value);
      if (parsed === null) return { type: 'error', message: 'ERR value is not an integer or out of range' };
      base = parsed;
    }
    const next = base + delta;
    if (next < INT64_MIN || next > INT64_MAX) {
      return { type: 'error', message: 'ERR increment or decrement would overflow' };
    }
    this.put(k, current, Buffer.from(next.toString(), 'latin1'), current?.expireAtMs ?? 0);
    return { type: 'integer', value: next };
  }

  /** Removes `key` and returns its value (null when it did not exist). */
  getDel(key: Buffer, nowMs: number): Buffer | null {
    const k = key.toString('latin1');
    const e = this.map.get(k);
    if (e === undefined) return null;
    this.remove(k, e);
    return e.expireAtMs !== 0 && e.expireAtMs <= nowMs ? null : e.value;
  }

  /**
   * Sets `key` to expire at `atMs` if it exists and `condition` holds (a key without expiry
   * counts as an infinite TTL for GT/LT, as in Redis 7); a time already past deletes the key.
   * Returns whether the key was changed.
   */
  expire(key: Buffer, atMs: number, condition: ExpireCondition, nowMs: number): boolean {
    const k = key.toString('latin1');
    const e = this.map.get(k);
    if (e === undefined) return false;
    if (e.expireAtMs !== 0 && e.expireAtMs <= nowMs) {
      this.remove(k, e);
      return false;
    }
    const current = e.expireAtMs;
    switch (condition) {
      case 'always':
        break;
      case 'nx':
        if (current !== 0) return false;
        break;
      case 'xx':
        if (current === 0) return false;
        break;
      case 'gt':
        if (current === 0 || atMs <= current) return false;
        break;
      case 'lt':
        if (current !== 0 && atMs >= current) return false;
        break;
      default: {
        const unknown: never = condition;
        throw new Error(`unknown expire condition ${String(unknown)}`);
      }
    }
    if (atMs <= nowMs) this.remove(k, e);
    else this.put(k, e, e.value, atMs);
    return true;
  }

  /** Removes the expiry of `key`; returns whether it had one. */
  persist(key: Buffer, nowMs: number): boolean {
    const k = key.toString('latin1');
    const e = this.map.get(k);
    if (e === undefined || e.expireAtMs === 0) return false;
    if (e.expireAtMs <= nowMs) {
      this.remove(k, e);
      return false;
    }
    this.put(k, e, e.value, 0);
    return true;
  }

  /** Sets every pair, dropping any expiry (as Redis's MSET). Later pairs win. */
  mset(pairs: readonly (readonly [Buffer, Buffer])[]): void {
    for (const [key, value] of pairs) {
      const k = key.toString('latin1');
      this.put(k, this.map.get(k), Buffer.from(value), 0);
    }
  }

  clear(): void {
    this.map = new Map();
    this.expiring = 0;
    this.heap = [];
  }

  /** The earliest expiry of any key (ms), or Infinity. */
  nextExpiryMs(): number {
    return this.heap[0]?.entry.expireAtMs ?? Infinity;
  }

  /**
   * Reclaims up to `limit` keys whose expiry is at or before `nowMs`, earliest first (ties by
   * key), so every replica reclaims the same keys at the same entry.
   */
  sweepExpired(nowMs: number, limit: number): void {
    for (let reclaimed = 0; reclaimed < limit; reclaimed++) {
      const top = this.heap[0];
      if (top === undefined || top.entry.expireAtMs > nowMs) return;
      this.remove(top.key, top.entry);
    }
  }

  // ---- snapshot ----

  /** Entries in map order: key length, key, expiry, value length, value. */
  snapshot(): Buffer {
    const capture = this.capture();
    const chunks: Buffer[] = [];
    for (let chunk = capture.next(Infinity); chunk !== null; chunk = capture.next(Infinity))
      chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /**
   * Captures the keyspace as it is now, in O(keys) without serializing: the returned reader
   * writes the same bytes as snapshot() would have, in chunks, while later writes go on
   * (stored value Buffers are never mutated in place, so sharing them is safe).
   */
  capture(): KeySnapshotReader {
    const keys: string[] = new Array<string>(this.map.size);
    const values: Buffer[] = new Array<Buffer>(this.map.size);
    const expiries: number[] = new Array<number>(this.map.size);
    let i = 0;
    for (const [k, e] of this.map) {
      keys[i] = k;
      values[i] = e.value;
      expiries[i] = e.expireAtMs;
      i++;
    }
    return new KeySnapshotReader(keys, values, expiries);
  }

  static restore(data: Buffer): KeyStore {
    const slices = KeyStore.restoreInSlices(data, Infinity);
    for (let r = slices.next(); ; r = slices.next()) if (r.done === true) return r.value;
  }

  /**
   * restore() in slices of at most `sliceEntries` keys: the generator yields between slices
   * (so its driver can let the event loop run: a large keyspace parsed in one go stalls it)
   * and returns the store. The caller's state is untouched until it takes the result.
   */
  static *restoreInSlices(data: Buffer, sliceEntries = 4096): Generator<void, KeyStore, void> {
    const store = new KeyStore();
    if (data.length < 4) throw new Error('truncated keyspace snapshot');
    const count = data.readUInt32BE(0);
    let o = 4;
    for (let i = 0; i < count; i++) {
      if (i > 0 && i % sliceEntries === 0) yield;
      if (o + 4 > data.length) throw new Error('truncated keyspace snapshot');
      const klen = data.readUInt32BE(o);
      o += 4;
      if (o + klen + 12 > data.length) throw new Error('truncated keyspace snapshot');
      const k = data.toString('latin1', o, o + klen);
      o += klen;
      const expireAtMs = data.readDoubleBE(o);
      o += 8;
      const vlen = data.readUInt32BE(o);
      o += 4;
      if (o + vlen > data.length) throw new Error('truncated keyspace snapshot');
      const value = Buffer.from(data.subarray(o, o + vlen));
      o += vlen;
      store.put(k, store.map.get(k), value, expireAtMs);
    }
    if (o !== data.length) throw new Error('trailing bytes in keyspace snapshot');
    return store;
  }

  /** Takes over another store's contents (restore). */
  replaceWith(other: KeyStore): void {
    this.map = other.map;
    this.expiring = other.expiring;
    this.heap = other.heap;
  }

  // ---- internals ----

  private put(k: string, current: StoredValue | undefined, value: Buffer, expireAtMs: number): void {
    if (current === undefined) {
      const entry: StoredValue = { value, expireAtMs, heapIndex: -1 };
      this.map.set(k, entry);
      if (expireAtMs !== 0) {
        this.expiring++;
        this.heapInsert({ key: k, entry });
      }
      return;
    }
    const had = current.expireAtMs !== 0;
    current.value = value;
    current.expireAtMs = expireAtMs;
    if (had && expireAtMs === 0) {
      this.expiring--;
      this.heapDelete(current.heapIndex);
    } else if (!had && expireAtMs !== 0) {
      this.expiring++;
      this.heapInsert({ key: k, entry: current });
    } else if (had) {
      // A new expiry for an expiring key: its mark moves to its new place.
      this.heapFix(current.heapIndex);
    }
  }

  private remove(k: string, e: StoredValue): void {
    this.map.delete(k);
    if (e.expireAtMs !== 0) {
      this.expiring--;
      this.heapDelete(e.heapIndex);
    }
  }

  private heapInsert(mark: ExpiryMark): void {
    this.heap.push(mark);
    mark.entry.heapIndex = this.heap.length - 1;
    this.siftUp(this.heap.length - 1);
  }

  private heapDelete(i: number): void {
    const heap = this.heap;
    const gone = heap[i]!;
    gone.entry.heapIndex = -1;
    const last = heap.pop()!;
    if (i === heap.length) return;
    heap[i] = last;
    last.entry.heapIndex = i;
    this.heapFix(i);
  }

  /** Restores heap order around `i` after its mark's expiry changed. */
  private heapFix(i: number): void {
    if (!this.siftUp(i)) this.siftDown(i);
  }

  /** Returns whether the mark moved. */
  private siftUp(start: number): boolean {
    const heap = this.heap;
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      this.swap(i, parent);
      i = parent;
    }
    return i !== start;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(i: number, j: number): void {
    const heap = this.heap;
    const a = heap[i]!;
    const b = heap[j]!;
    heap[i] = b;
    heap[j] = a;
    b.entry.heapIndex = i;
    a.entry.heapIndex = j;
  }
}

function before(a: ExpiryMark, b: ExpiryMark): boolean {
  const x = a.entry.expireAtMs;
  const y = b.entry.expireAtMs;
  return x < y || (x === y && a.key < b.key);
}

/** Serializes a captured keyspace in chunks (see KeyStore.capture). */
export class KeySnapshotReader {
  private next_ = 0;
  private headerDone = false;

  constructor(
    private readonly keys: readonly string[],
    private readonly values: readonly Buffer[],
    private readonly expiries: readonly number[],
  ) {}

  /**
   * The next chunk of about `maxBytes` (at least one entry, so one large value may exceed it),
   * or null when everything was written.
   */
  next(maxBytes: number): Buffer | null {
    const count = this.keys.length;
    if (this.headerDone && this.next_ >= count) return null;
    let bytes = this.headerDone ? 0 : 4;
    let end = this.next_;
    while (end < count) {
      const entryBytes = 4 + this.keys[end]!.length + 8 + 4 + this.values[end]!.length;
      if (end > this.next_ && bytes + entryBytes > maxBytes) break;
      bytes += entryBytes;
      end++;
    }
    const out = Buffer.allocUnsafe(bytes);
    let o = 0;
    if (!this.headerDone) {
      o = out.writeUInt32BE(count, 0);
      this.headerDone = true;
    }
    for (let i = this.next_; i < end; i++) {
      const k = this.keys[i]!;
      const v = this.values[i]!;
      o = out.writeUInt32BE(k.length, o);
      o += out.write(k, o, 'latin1');
      o = out.writeDoubleBE(this.expiries[i]!, o);
      o = out.writeUInt32BE(v.length, o);
      o += v.copy(out, o);
    }
    assert(o === bytes);
    this.next_ = end;
    return out;
  }
}
