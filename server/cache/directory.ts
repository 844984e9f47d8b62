/**
 * The leader's directory of one term: for each key, which nodes hold a line, in which state,
 * until when (the lease, in the leader's monotonic clock, margin included), and which
 * invalidations of the key are still in flight.
 *
 * It lives only in the leader's memory (docs/cache.md: replicating it would make every miss a
 * Raft write); a new leader starts an empty one and covers what it cannot know with a grace
 * period (server/cache/agent.ts). It may list a node that holds nothing (over-approximation
 * costs a message); it must never miss a node that may serve a line (that would be a stale
 * read). So entries leave only when their lease has run out, when an invalidation round takes
 * them (the round then waits for the ack or the lease), or on an eviction notice that names
 * the very registration it evicts.
 *
 * Owns: holders and in-flight invalidations per key, the registration sequence. Must never:
 * send messages or read a clock (the agent passes times in).
 */
import type { LineState } from '../../commands/cache/near-cache.js';

export type HeldState = Exclude<LineState, 'I'>;

export interface Holder {
  state: HeldState;
  /** Leader-monotonic ms after which the holder can no longer serve the line. */
  leaseEnd: number;
  /** Registration order (Directory.nextSeq): tells a write whether the line predates it. */
  seq: number;
  /**
   * The state-machine index the holder's value is current at (the leader's applied index at
   * the fetch's read; the write's own version for a writer): a write at a version <= asOf is
   * already reflected in the line, so its round must leave this holder alone.
   */
  asOf: number;
  /** Names this registration in eviction notices. */
  regId: number;
}

interface KeyEntry {
  readonly holders: Map<string, Holder>;
  /** Invalidations (or updates) of this key not yet acked nor timed out. */
  readonly inflight: Set<Promise<void>>;
}

export interface Registration {
  readonly state: HeldState;
  readonly regId: number;
  /** E/M holders that must be told they now share the key (M/E -> S). */
  readonly downgrade: readonly string[];
}

export class Directory {
  private readonly keys = new Map<string, KeyEntry>();
  private seq = 0;
  private holderCount = 0;
  /** Resolves once no line granted by an earlier leader can still be served (set by the agent). */
  grace: Promise<void> = Promise.resolve();

  constructor(
    readonly term: number,
    private readonly maxHolders: number,
  ) {}

  get holders(): number {
    return this.holderCount;
  }

  get keyCount(): number {
    return this.keys.size;
  }

  /** The next registration sequence number (a write takes one on arrival). */
  nextSeq(): number {
    return ++this.seq;
  }

  /**
   * `node` fetched `k` (after a linearizable read of home, in the same turn): registers it
   * with a lease ending at `leaseEnd`, E when no one else holds a live line, else S with the
   * E/M holders downgraded. Null when the directory is full (the fetch is served uncached).
   */
  registerRead(k: string, node: string, nowMs: number, leaseEnd: number, asOf: number): Registration | null {
    const entry = this.entry(k, nowMs);
    const others = [...entry.holders].filter(([id]) => id !== node);
    const state: HeldState = others.length === 0 ? 'E' : 'S';
    return this.register(entry, node, state, leaseEnd, asOf, others);
  }

  /**
   * After a write's round: `node` (the writer) holds the new value: M when it is alone, else
   * S (the update policy kept others, or they fetched since) with E/M holders downgraded.
   */
  registerWrite(
    k: string,
    node: string,
    nowMs: number,
    leaseEnd: number,
    version: number,
  ): Registration | null {
    const entry = this.entry(k, nowMs);
    const others = [...entry.holders].filter(([id]) => id !== node);
    return this.register(entry, node, others.length === 0 ? 'M' : 'S', leaseEnd, version, others);
  }

  private register(
    entry: KeyEntry,
    node: string,
    state: HeldState,
    leaseEnd: number,
    asOf: number,
    others: readonly [string, Holder][],
  ): Registration | null {
    const existing = entry.holders.get(node);
    if (existing === undefined && this.holderCount >= this.maxHolders) return null;
    const downgrade: string[] = [];
    if (state === 'S') {
      for (const [id, h] of others) {
        if (h.state === 'E' || h.state === 'M') {
          h.state = 'S';
          downgrade.push(id);
        }
      }
    }
    const seq = this.nextSeq();
    if (existing === undefined) this.holderCount++;
    entry.holders.set(node, { state, leaseEnd, seq, regId: seq, asOf });
    return { state, regId: seq, downgrade };
  }

  /**
   * A write of `k` applied: the holders it must reach, and the earlier rounds of `k` still in
   * flight (the write must not complete before them either). Every holder but the writer's own
   * registration from BEFORE the write arrived (`arrivalSeq`: the writer dropped that line when
   * it sent the write) is a target; with `keep` (update policy) targets stay registered (as S),
   * otherwise they leave the directory now (the round waits for their ack or lease). Holders
   * whose lease has run out leave without a message. A holder registered after the write
   * applied (its fetch read home at `asOf >= version`: between the apply and this call, which
   * the leader makes after awaiting the proposal) already has this write's value or a later
   * one: it is no target and stays registered, so the next write still finds it. (Taking it
   * would leave a live line the directory no longer knows: its invalidation at `version`
   * changes nothing on the holder, and later writes would skip it: a stale read.)
   */
  takeForWrite(
    k: string,
    writer: string,
    arrivalSeq: number,
    nowMs: number,
    keep: boolean,
    version: number,
  ): { targets: [string, Holder][]; earlier: Promise<void>[] } {
    const entry = this.keys.get(k);
    if (entry === undefined) return { targets: [], earlier: [] };
    this.prune(entry, nowMs);
    const targets: [string, Holder][] = [];
    for (const [id, h] of entry.holders) {
      if (id === writer && h.seq < arrivalSeq) continue;
      if (h.asOf >= version) continue;
      targets.push([id, { ...h }]);
      if (keep) h.state = 'S';
    }
    if (!keep) {
      for (const [id] of targets) entry.holders.delete(id);
      this.holderCount -= targets.length;
    }
    const earlier = [...entry.inflight];
    this.dropIfEmpty(k, entry);
    return { targets, earlier };
  }

  /** Tracks an invalidation of `k` until it settles. */
  addInflight(k: string, done: Promise<void>): void {
    let entry = this.keys.get(k);
    if (entry === undefined) {
      entry = { holders: new Map(), inflight: new Set() };
      this.keys.set(k, entry);
    }
    const e = entry;
    e.inflight.add(done);
    void done.then(() => {
      e.inflight.delete(done);
      this.dropIfEmpty(k, e);
    });
  }

  /** An eviction notice: forgets `node`'s registration `regId` of `k` (not a newer one). */
  evict(k: string, node: string, regId: number): boolean {
    const entry = this.keys.get(k);
    const h = entry?.holders.get(node);
    if (entry === undefined || h === undefined || h.regId !== regId) return false;
    entry.holders.delete(node);
    this.holderCount--;
    this.dropIfEmpty(k, entry);
    return true;
  }

  /** CSTATE: live holders of `k` as [node, state, lease ms left], and invalidations in flight. */
  view(k: string, nowMs: number): { holders: [string, HeldState, number][]; inflight: number } {
    const entry = this.keys.get(k);
    if (entry === undefined) return { holders: [], inflight: 0 };
    const holders: [string, HeldState, number][] = [];
    for (const [id, h] of entry.holders)
      if (h.leaseEnd > nowMs) holders.push([id, h.state, Math.round(h.leaseEnd - nowMs)]);
    holders.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return { holders, inflight: entry.inflight.size };
  }

  /** Drops every holder whose lease has run out (bounded work per call). */
  sweep(nowMs: number, maxKeys = 100_000): void {
    let seen = 0;
    for (const [k, entry] of this.keys) {
      if (++seen > maxKeys) return;
      this.prune(entry, nowMs);
      this.dropIfEmpty(k, entry);
    }
  }

  private entry(k: string, nowMs: number): KeyEntry {
    let entry = this.keys.get(k);
    if (entry === undefined) {
      entry = { holders: new Map(), inflight: new Set() };
      this.keys.set(k, entry);
    } else {
      this.prune(entry, nowMs);
    }
    return entry;
  }

  private prune(entry: KeyEntry, nowMs: number): void {
    for (const [id, h] of entry.holders) {
      if (h.leaseEnd <= nowMs) {
        entry.holders.delete(id);
        this.holderCount--;
      }
    }
  }

  private dropIfEmpty(k: string, entry: KeyEntry): void {
    if (entry.holders.size === 0 && entry.inflight.size === 0 && this.keys.get(k) === entry)
      this.keys.delete(k);
  }
}
