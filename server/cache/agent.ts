/**
 * The node-side coherence agent of the MESI near-cache (docs/cache.md). One per node; it plays
 * two roles:
 *
 * - Every node: the near-cache (an LRU bounded by entries and bytes, lines with a MESI state
 *   and a lease) and the CacheService the commands use. A CGET whose line is valid and leased
 *   is answered from memory; otherwise it FETCHes from the leader. A CSET/CDEL drops the local
 *   line, sends a WRITE to the leader and installs the new value as M when the leader says so.
 *   It obeys INVALIDATE / DOWNGRADE / FLUSH from the leader.
 * - The leader: the directory (server/cache/directory.ts). A FETCH is a linearizable read of
 *   home (ReadIndex, then home and directory in the same turn); a WRITE is proposed to Raft,
 *   then every other holder is invalidated (or updated) and the write answers only once each
 *   has acked or its lease has run out. A new leader first FLUSHes every node and waits for
 *   their acks or one lease (grace) before it completes any write.
 *
 * Safety rests on: leases counted by the holder from when it SENT its request (so they end
 * before the leader's view of them, which adds a drift margin), versions (state-machine
 * indexes) that forbid installing a line older than an invalidation already seen, and terms
 * that forbid installing a grant from a leader older than the last FLUSH seen.
 *
 * Owns: lines, pending per-key requests, the directory of its term, the cache statistics.
 * Must never: serve a line whose lease or value expiry has passed, complete a write before
 * every other holder is invalidated or out of lease, or change replicated state except by
 * proposing cache operations through Raft.
 */
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import { decodeOperation, decodeResult, encodeOperation, encodeResult } from '../../commands/codec.js';
import {
  INVALID_LINE,
  exclusiveMiss,
  isHit,
  localWrite,
  remoteRead,
  remoteUpdate,
  remoteWrite,
  sharedMiss,
  type Line,
  type LineState,
} from '../../commands/cache/near-cache.js';
import type { CacheOperation, CacheWritePolicy } from '../../commands/cache/operations.js';
import type { CacheFigures, CacheService } from '../../commands/cache/service.js';
import { withFence, type Fence } from '../../commands/locks/fence.js';
import type { FencedOperation } from '../../commands/locks/operations.js';
import type { Result, ResultTree, StateMachine } from '../../commands/state-machine.js';
import { NotLeaderError, ProposalDroppedError } from '../../raft/errors.js';
import { PeerUnreachableError } from '../../raft/transport.js';
import { ForwardKind, ForwardStatus, decodeForwardResponse, encodeForwardResponse } from '../forward.js';
import type { Logger } from '../log.js';
import { ClusterDownError, OutcomeUnknownError } from '../raft-executor.js';
import { Directory } from './directory.js';
import { Writer, type Reader } from '../../commands/bytes.js';
import {
  cacheRequest,
  decodeState,
  messageReader,
  readResponseBody,
  requestBody,
  responseBody,
  stateCode,
} from './messages.js';

/** What the agent needs of its node. */
export interface CacheHost {
  readonly id: string;
  isLeader(): boolean;
  leaderId(): string | null;
  /** The current Raft term. */
  term(): number;
  /** Every other member. */
  peers(): readonly string[];
  /** On the leader: a ReadIndex barrier (resolves once local state is linearizable). */
  readBarrier(): Promise<void>;
  /**
   * On the leader: proposes `op` (never forwards); rejects NotLeaderError when not leader.
   * A fenced cache write ('lock.fenced' around 'cache.set' / 'cache.del') resolves with the
   * -FENCED error result when the fence refused it.
   */
  propose(op: CacheOperation | FencedOperation): Promise<Result>;
  readonly stateMachine: StateMachine;
  /** The leader's clock for expiry (never below applied time). */
  leaderTimeMs(): number;
  request(peer: string, payload: Buffer, timeoutMs: number): Promise<Buffer>;
  isConnected(peer: string): boolean;
}

export interface CacheAgentOptions {
  host: CacheHost;
  /** Lease of a line, from the holder's request (default 2000 ms). */
  leaseMs?: number;
  /** Added to every lease on the leader's side, for clock drift (default max(50, lease/10)). */
  driftMarginMs?: number;
  /** Near-cache bounds: lines and bytes (key + value + overhead). */
  maxEntries?: number;
  maxBytes?: number;
  /** Largest directory (holder registrations) on the leader. */
  maxDirectoryHolders?: number;
  /** How long a request to the leader may take. */
  requestTimeoutMs?: number;
  /** How long a command waits for a reachable leader. */
  leaderWaitMs?: number;
  pollMs?: number;
  /** Monotonic ms (default performance.now). */
  clock?: () => number;
  log?: Logger;
}

/** Per-line overhead counted against maxBytes (object, LRU node, strings). */
const LINE_OVERHEAD_BYTES = 96;
const INSTALL_NONE = 0;
const INSTALL_E = 1;
const INSTALL_S = 2;
const INSTALL_M = 3;
const MAX_EVICT_QUEUE = 10_000;
const EVICT_BATCH = 1_000;
const LATENCY_SAMPLES = 1_024;

/** Requests in flight for one key on this node (exists only while something is in flight). */
interface Pending {
  fetches: number;
  writes: number;
  /** Bumped when this node starts or fails a write: fetches sent before must not install. */
  poison: number;
  /** Greatest write version announced while requests were in flight: older grants are stale. */
  minVersion: number;
  /** Reads waiting for this node's writes of the key (pipelined CSET then CGET). */
  waiters: (() => void)[];
  /**
   * The registering fetch in flight, if any: misses that arrive meanwhile wait for it and then
   * read the line it installed (as a hit, clock checked then) instead of each sending a FETCH.
   */
  inflight: Promise<unknown> | null;
}

/**
 * Buffer's own latin1 decoder, without toString()'s argument handling: the key string is the
 * one allocation of a local hit (same result as `toString('latin1')`).
 */
interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}
function latin1(b: Buffer): string {
  return (b as unknown as Latin1Slicer).latin1Slice(0, b.length);
}

/** lru-cache's get() allocates an options object per call unless given one: share one. */
const LOOKUP: LRUCache.GetOptions<string, Line, unknown> = {};

class Latencies {
  private readonly samples: number[] = [];
  private next = 0;
  count = 0;
  add(ms: number): void {
    this.count++;
    if (this.samples.length < LATENCY_SAMPLES) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % LATENCY_SAMPLES;
  }
  percentile(p: number): number {
    if (this.samples.length === 0) return 0;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
  }
}

export class CacheAgent implements CacheService {
  /** This node's own lease (--cache-lease-ms): used until a cluster-wide one is set. */
  private readonly configuredLeaseMs: number;
  private readonly fixedMarginMs: number | undefined;
  private readonly host: CacheHost;
  private readonly clock: () => number;
  private readonly requestTimeoutMs: number;
  private readonly leaderWaitMs: number;
  private readonly pollMs: number;
  private readonly maxDirectoryHolders: number;
  private readonly log: Logger | undefined;
  private lines: LRUCache<string, Line>;
  private readonly pending = new Map<string, Pending>();
  /** Grants from a leader of an older term than the last FLUSH are refused. */
  private minTerm = 0;
  /** Bumped by every FLUSH: requests sent before it must not install. */
  private flushGen = 0;
  private directory: Directory | null = null;
  /** FLUSHALLs this node sent and not yet answered: its reads wait for them (read your flush). */
  private ownFlushes = 0;
  private afterOwnFlush: (() => void)[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;
  private evictQueue: [Buffer, number][] = [];
  private evictTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly stats = {
    hits: 0,
    misses: 0,
    leaseExpiries: 0,
    fetches: 0,
    writes: 0,
    invalidationsSent: 0,
    invalidationsReceived: 0,
    invalidationsTimedOut: 0,
    updatesSent: 0,
    updatesReceived: 0,
    downgradesSent: 0,
    downgradesReceived: 0,
    evictions: 0,
    flushesSent: 0,
    flushesReceived: 0,
    writesWithoutRound: 0,
    writesFenced: 0,
    dataFlushes: 0,
    refreshes: 0,
    joined: 0,
  };
  private readonly writeLatency = new Latencies();
  private readonly invalidationWait = new Latencies();

  constructor(options: CacheAgentOptions) {
    this.host = options.host;
    this.configuredLeaseMs = options.leaseMs ?? 2_000;
    this.fixedMarginMs = options.driftMarginMs;
    this.refreshAheadMs = this.configuredLeaseMs / 4;
    this.clock = options.clock ?? (() => performance.now());
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.leaderWaitMs = options.leaderWaitMs ?? 3_000;
    this.pollMs = options.pollMs ?? 20;
    this.maxDirectoryHolders = options.maxDirectoryHolders ?? 1_000_000;
    this.log = options.log;
    this.lines = this.newLines(options.maxEntries ?? 100_000, options.maxBytes ?? 64 * 1024 * 1024);
  }

  private newLines(maxEntries: number, maxBytes: number): LRUCache<string, Line> {
    return new LRUCache<string, Line>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (line, k) => k.length + (line.value?.length ?? 0) + LINE_OVERHEAD_BYTES,
      dispose: (line, k, reason) => {
        if (reason !== 'evict') return;
        this.stats.evictions++;
        if (line.regId > 0 && this.evictQueue.length < MAX_EVICT_QUEUE)
          this.evictQueue.push([Buffer.from(k, 'latin1'), line.regId]);
        this.scheduleEvictNotice();
      },
    });
  }

  /**
   * The lease the leader grants now: the cluster-wide one (CONFIG SET cache-lease-ms, in home)
   * or else this node's --cache-lease-ms. A holder always counts the lease its grant names.
   */
  get leaseMs(): number {
    return this.host.stateMachine.cache.leaseMs ?? this.configuredLeaseMs;
  }

  /** Added to a lease on the leader's side for clock drift: max(50 ms, lease / 10). */
  get marginMs(): number {
    return this.marginFor(this.leaseMs);
  }

  private marginFor(leaseMs: number): number {
    return this.fixedMarginMs ?? Math.max(50, Math.ceil(leaseMs / 10));
  }

  /**
   * How long a line granted by an earlier leader (or before a FLUSHALL) may still be served, at
   * most: the longest lease any leader may have granted — this node's own, the cluster-wide one
   * and the largest cluster-wide one ever set (a shorter lease set later does not shorten lines
   * already granted, and a new leader cannot tell when the change happened) — plus its margin.
   */
  get graceMs(): number {
    const longest = Math.max(this.leaseMs, this.configuredLeaseMs, this.host.stateMachine.cache.maxLeaseMs);
    return longest + this.marginFor(longest);
  }

  /**
   * CONFIG SET cache-max-entries / cache-max-bytes: new bounds at once. lru-cache fixes its
   * bounds at construction, so the lines move to a new LRU, least recent first (recency is
   * kept); what does not fit is evicted as any LRU eviction (counted, reported to the leader).
   */
  resize(maxEntries: number, maxBytes: number): void {
    const old = this.lines;
    if (old.max === maxEntries && old.maxSize === maxBytes) return;
    const lines = this.newLines(maxEntries, maxBytes);
    for (const k of old.rkeys()) {
      const line = old.peek(k);
      if (line !== undefined) lines.set(k, line);
    }
    this.lines = lines;
  }

  start(): void {
    if (this.sweepTimer !== null) return;
    this.sweepTimer = setInterval(() => this.directory?.sweep(this.clock()), this.configuredLeaseMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    if (this.evictTimer !== null) clearTimeout(this.evictTimer);
    this.sweepTimer = null;
    this.evictTimer = null;
  }

  /**
   * A hit on a line with less than this left of its lease also renews it in the background: a
   * quarter of the lease (the last one granted to this node), so a hot line is renewed about
   * once per 3/4 lease and never lapses. A field, not derived per hit: the hit path reads it.
   */
  refreshAheadMs: number;

  /** The node's Raft role or term changed: a new leader flushes at once (not at its first write). */
  leadershipChanged(): void {
    if (this.host.isLeader()) this.ensureDirectory();
  }

  // ================================================================ node side: CacheService

  get(key: Buffer): Buffer | null | Promise<Buffer | null> {
    if (this.ownFlushes !== 0) {
      // A pipeline FLUSHALL then CGET reads the flushed home, as CSET then CGET reads the write.
      const copy = Buffer.from(key);
      return new Promise<void>((resolve) => this.afterOwnFlush.push(resolve)).then(() => this.get(copy));
    }
    const k = latin1(key);
    const line = this.lines.get(k, LOOKUP);
    if (line !== undefined) {
      const now = this.clock();
      if (isHit(line, now)) {
        this.stats.hits++;
        // A hot line is renewed before its lease runs out, so its readers never stall on a miss.
        if (line.leaseUntil - now < this.refreshAheadMs && line.expiresAt > line.leaseUntil)
          this.refresh(key, k);
        return line.value;
      }
      this.lines.delete(k);
      this.stats.leaseExpiries++;
    }
    return this.miss(key, k, true);
  }

  private miss(key: Buffer, k: string, mayJoin: boolean): Buffer | null | Promise<Buffer | null> {
    const rec = this.pending.get(k);
    if (rec !== undefined && rec.writes > 0) {
      // A read after this node's own write of the key (a pipeline): it waits for the write.
      return new Promise<void>((resolve) => rec.waiters.push(resolve)).then(() => this.get(key));
    }
    if (mayJoin && rec !== undefined && rec.inflight !== null) {
      // A fetch of the key is on its way: wait for it, then look again. What it installed is
      // served only if it is a valid line by then (the hit rule); otherwise this read fetches
      // on its own (it joins at most once, so a line that never installs cannot starve it).
      this.stats.joined++;
      const copy = Buffer.from(key);
      return rec.inflight.then(
        () => this.lookupAfterJoin(copy),
        () => this.lookupAfterJoin(copy),
      );
    }
    this.stats.misses++;
    return this.fetch(key, k);
  }

  private lookupAfterJoin(key: Buffer): Buffer | null | Promise<Buffer | null> {
    const k = latin1(key);
    const line = this.lines.get(k, LOOKUP);
    if (line !== undefined && isHit(line, this.clock())) {
      this.stats.hits++;
      return line.value;
    }
    return this.miss(key, k, false);
  }

  /** Renews a line still valid (refresh-ahead): a background fetch, one per key at a time. */
  private refresh(key: Buffer, k: string): void {
    const rec = this.pending.get(k);
    if (rec !== undefined && (rec.fetches > 0 || rec.writes > 0)) return;
    this.stats.refreshes++;
    this.fetch(Buffer.from(key), k).catch(() => undefined);
  }

  private fetch(key: Buffer, k: string): Promise<Buffer | null> {
    const rec = this.pendingOf(k);
    const done = this.fetchOnce(key, k, rec);
    if (rec.writes === 0 && rec.inflight === null) {
      rec.inflight = done;
      const clear = (): void => {
        if (rec.inflight === done) rec.inflight = null;
      };
      done.then(clear, clear);
    }
    return done;
  }

  private async fetchOnce(key: Buffer, k: string, rec: Pending): Promise<Buffer | null> {
    rec.fetches++;
    this.stats.fetches++;
    const register = rec.writes === 0;
    const poison = rec.poison;
    const gen = this.flushGen;
    const sentAt = this.clock();
    try {
      const r = await this.toLeader(
        ForwardKind.CacheFetch,
        new Writer().bytes(key).u8(register ? 1 : 0),
        false,
      );
      const term = r.f64();
      const asOf = r.f64();
      const version = r.f64();
      const install = r.u8();
      const leaseMs = r.f64();
      const ttlMs = r.f64();
      const regId = r.f64();
      const value = r.u8() === 1 ? r.bytes() : null;
      r.end();
      if (
        install !== INSTALL_NONE &&
        register &&
        rec.poison === poison &&
        gen === this.flushGen &&
        term >= this.minTerm &&
        asOf >= rec.minVersion &&
        !this.stopped
      ) {
        this.refreshAheadMs = leaseMs / 4;
        const grant = {
          value,
          asOf,
          version,
          leaseUntil: sentAt + leaseMs,
          expiresAt: ttlMs >= 0 ? sentAt + ttlMs : Infinity,
          regId,
        };
        const current = this.lines.peek(k) ?? INVALID_LINE;
        const next = install === INSTALL_E ? exclusiveMiss(current, grant) : sharedMiss(current, grant);
        if (next !== current) this.lines.set(k, next);
      }
      return value;
    } finally {
      rec.fetches--;
      this.release(k, rec);
    }
  }

  set(
    key: Buffer,
    value: Buffer,
    ttlMs: number,
    policy: CacheWritePolicy,
    fence: Fence | null = null,
  ): Promise<Result> {
    return this.write(
      key,
      withFence<CacheOperation>({ type: 'cache.set', key, value, ttlMs, policy }, fence),
      value,
      ttlMs,
    );
  }

  del(key: Buffer, fence: Fence | null = null): Promise<Result> {
    return this.write(key, withFence<CacheOperation>({ type: 'cache.del', key }, fence), null, 0);
  }

  async setPolicy(key: Buffer | null, policy: CacheWritePolicy): Promise<Result> {
    return this.setting({ type: 'cache.policy', key, policy });
  }

  /** CONFIG SET cache-lease-ms: the cluster-wide lease (null: back to each node's flag). */
  async setLease(leaseMs: number | null): Promise<Result> {
    return this.setting({ type: 'cache.lease', leaseMs });
  }

  private async setting(op: CacheOperation): Promise<Result> {
    const r = await this.toLeader(ForwardKind.CacheWrite, new Writer().bytes(encodeOperation(op)), true);
    r.f64();
    return decodeResult(r.bytes());
  }

  /**
   * FLUSHALL / FLUSHDB: the leader applies `cache.flushall` (keyspace and cache home), then
   * makes every node drop every line; resolves once each has (or one grace passed). Like any
   * write, an error with an unknown outcome may or may not have flushed.
   */
  async flushAll(): Promise<Result> {
    this.ownFlushes++;
    try {
      const r = await this.toLeader(
        ForwardKind.CacheWrite,
        new Writer().bytes(encodeOperation({ type: 'cache.flushall' })),
        true,
      );
      r.f64();
      const result = decodeResult(r.bytes());
      r.f64();
      r.u8();
      r.f64();
      r.f64();
      r.end();
      return result;
    } finally {
      if (--this.ownFlushes === 0 && this.afterOwnFlush.length > 0) {
        const waiters = this.afterOwnFlush;
        this.afterOwnFlush = [];
        for (const w of waiters) w();
      }
    }
  }

  private async write(
    key: Buffer,
    op: CacheOperation | FencedOperation,
    value: Buffer | null,
    ttlMs: number,
  ): Promise<Result> {
    const k = key.toString('latin1');
    const rec = this.pendingOf(k);
    rec.writes++;
    rec.poison++;
    // The old line may be superseded the moment the write applies: never serve it again.
    this.lines.delete(k);
    const gen = this.flushGen;
    const sentAt = this.clock();
    this.stats.writes++;
    try {
      const r = await this.toLeader(ForwardKind.CacheWrite, new Writer().bytes(encodeOperation(op)), true);
      const term = r.f64();
      const result = decodeResult(r.bytes());
      const version = r.f64();
      const install = r.u8();
      const leaseMs = r.f64();
      const regId = r.f64();
      r.end();
      // version 0: nothing was written (a fence refused the write; the result is its -FENCED
      // error): no line to install, and the line dropped above stays dropped (conservative).
      if (version > 0) {
        if (version > rec.minVersion) rec.minVersion = version;
        const current = this.lines.peek(k);
        if (current !== undefined && current.asOf < version) this.lines.delete(k);
        if (
          install !== INSTALL_NONE &&
          value !== null &&
          term >= this.minTerm &&
          gen === this.flushGen &&
          version >= rec.minVersion &&
          !this.stopped
        ) {
          const grant = {
            value,
            asOf: version,
            version,
            leaseUntil: sentAt + leaseMs,
            expiresAt: ttlMs > 0 ? sentAt + ttlMs : Infinity,
            regId,
          };
          const before = this.lines.peek(k) ?? INVALID_LINE;
          const next = localWrite(before, grant, install === INSTALL_S);
          if (next !== before) this.lines.set(k, next);
        }
      }
      this.writeLatency.add(this.clock() - sentAt);
      return result;
    } catch (error) {
      // Outcome unknown: fetches in flight may predate the write; none of them may install.
      rec.poison++;
      throw error;
    } finally {
      rec.writes--;
      this.release(k, rec);
    }
  }

  private pendingOf(k: string): Pending {
    let rec = this.pending.get(k);
    if (rec === undefined) {
      rec = { fetches: 0, writes: 0, poison: 0, minVersion: 0, waiters: [], inflight: null };
      this.pending.set(k, rec);
    }
    return rec;
  }

  private release(k: string, rec: Pending): void {
    if (rec.writes === 0 && rec.waiters.length > 0) {
      const waiters = rec.waiters;
      rec.waiters = [];
      for (const w of waiters) w();
    }
    if (rec.fetches === 0 && rec.writes === 0 && this.pending.get(k) === rec) this.pending.delete(k);
  }

  /**
   * Sends a cache request to the leader (or serves it here when this node leads); resolves
   * with the OK body. Retries while nothing was done (no leader yet, not the leader, peer
   * unreachable), within leaderWaitMs. A write whose request may have reached the leader and
   * got no answer fails with OutcomeUnknownError.
   */
  private async toLeader(kind: number, body: Writer, isWrite: boolean): Promise<Reader> {
    const payload = cacheRequest(kind, body);
    const deadline = this.clock() + this.leaderWaitMs;
    let why = 'no leader elected';
    for (;;) {
      if (this.stopped) throw new ClusterDownError('node stopping');
      if (this.clock() >= deadline) throw new ClusterDownError(`${why} within ${this.leaderWaitMs} ms`);
      const leader = this.host.leaderId();
      if (leader === null) {
        why = 'no leader elected';
        await delay(this.pollMs);
        continue;
      }
      if (leader !== this.host.id && !this.host.isConnected(leader)) {
        why = `leader ${leader} not reachable`;
        await delay(this.pollMs);
        continue;
      }
      let raw: Buffer;
      try {
        raw =
          leader === this.host.id
            ? await this.serve(this.host.id, payload)
            : await this.host.request(leader, payload, this.requestTimeoutMs);
      } catch (error) {
        if (!isWrite || error instanceof PeerUnreachableError) {
          why = `leader ${leader} unreachable`;
          await delay(this.pollMs);
          continue;
        }
        const message = error instanceof Error ? error.message : String(error);
        throw new OutcomeUnknownError(`cache write sent to ${leader}: ${message}`);
      }
      const response = decodeForwardResponse(raw);
      switch (response.status) {
        case ForwardStatus.Ok:
          return readResponseBody(response.body);
        case ForwardStatus.NotLeader:
          why = `${leader} is no longer the leader`;
          await delay(this.pollMs);
          continue;
        case ForwardStatus.Dropped:
          throw new ProposalDroppedError(`at leader ${leader}: ${response.body.toString('utf8')}`);
        case ForwardStatus.Unknown:
          throw new OutcomeUnknownError(`at leader ${leader}: ${response.body.toString('utf8')}`);
        case ForwardStatus.BadRequest:
          throw new Error(`leader ${leader} refused a cache request: ${response.body.toString('utf8')}`);
        default: {
          const never: never = response.status;
          throw new Error(`unknown forward status ${String(never)}`);
        }
      }
    }
  }

  // ================================================================ inbound requests

  /** Serves one cache request from `from` (TcpTransport.onRequest). Never rejects. */
  async serve(from: string, payload: Buffer): Promise<Buffer> {
    try {
      const kind = payload[1] ?? 0;
      const r = requestBody(payload);
      switch (kind) {
        case ForwardKind.CacheFetch:
          return await this.serveFetch(from, r);
        case ForwardKind.CacheWrite:
          return await this.serveWrite(from, r);
        case ForwardKind.CacheInvalidate:
          return this.onInvalidate(r);
        case ForwardKind.CacheDowngrade:
          return this.onDowngrade(r);
        case ForwardKind.CacheFlush:
          return this.onFlush(r.f64());
        case ForwardKind.CacheEvict:
          return this.onEvict(from, r);
        case ForwardKind.CacheState:
          return this.onState(r);
        default:
          return encodeForwardResponse(ForwardStatus.BadRequest, Buffer.from(`unknown cache kind ${kind}`));
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return encodeForwardResponse(ForwardStatus.BadRequest, Buffer.from(message, 'utf8'));
    }
  }

  private notLeader(): Buffer {
    return encodeForwardResponse(ForwardStatus.NotLeader, Buffer.from(this.host.leaderId() ?? '', 'utf8'));
  }

  private ok(w: Writer | null): Buffer {
    return encodeForwardResponse(ForwardStatus.Ok, responseBody(w));
  }

  // ---------------------------------------------------------------- leader: fetch

  private async serveFetch(from: string, r: Reader): Promise<Buffer> {
    const key = r.bytes();
    const register = r.u8() === 1;
    r.end();
    if (!this.host.isLeader()) return this.notLeader();
    const dir = this.ensureDirectory();
    try {
      await this.host.readBarrier();
    } catch (error) {
      if (error instanceof ProposalDroppedError)
        return encodeForwardResponse(ForwardStatus.Dropped, Buffer.from(error.message, 'utf8'));
      return this.notLeader();
    }
    // From here to the reply: one synchronous turn. Home is read and the holder registered
    // together, so any write applied later finds the holder in the directory.
    if (!this.host.isLeader() || this.directory !== dir) return this.notLeader();
    const sm = this.host.stateMachine;
    const leaderNow = this.host.leaderTimeMs();
    const entry = sm.cache.peek(key, leaderNow);
    const asOf = sm.lastAppliedIndex;
    let install = INSTALL_NONE;
    let regId = 0;
    if (register) {
      const now = this.clock();
      const reg = dir.registerRead(
        key.toString('latin1'),
        from,
        now,
        now + this.leaseMs + this.marginMs,
        asOf,
      );
      if (reg !== null) {
        install = reg.state === 'E' ? INSTALL_E : INSTALL_S;
        regId = reg.regId;
        for (const node of reg.downgrade) this.sendDowngrade(node, key);
      }
    }
    const w = new Writer()
      .f64(dir.term)
      .f64(asOf)
      .f64(entry?.version ?? 0)
      .u8(install)
      .f64(this.leaseMs)
      .f64(entry === null || entry.expireAtMs === Infinity ? -1 : entry.expireAtMs - leaderNow)
      .f64(regId);
    if (entry === null) w.u8(0);
    else w.u8(1).bytes(entry.value);
    return this.ok(w);
  }

  private sendDowngrade(node: string, key: Buffer): void {
    this.stats.downgradesSent++;
    if (node === this.host.id) {
      this.onDowngrade(messageReader(new Writer().bytes(key).finish()));
      return;
    }
    // Best effort: E/M on the holder changes nothing the leader relies on (writes always
    // come through it); it only keeps CSTATE and the figures honest.
    this.host
      .request(node, cacheRequest(ForwardKind.CacheDowngrade, new Writer().bytes(key)), this.requestTimeoutMs)
      .catch(() => undefined);
  }

  // ---------------------------------------------------------------- leader: write

  private async serveWrite(from: string, r: Reader): Promise<Buffer> {
    const op = decodeOperation(r.bytes());
    r.end();
    // A fenced write proposes the wrapper; everything after the proposal is about the cache
    // operation inside it (its key, value, policy).
    const inner = op.type === 'lock.fenced' ? op.op : op;
    // Settings (policy, lease) and FLUSHALL are never fenced; only a key write may be.
    const unkeyed =
      inner.type === 'cache.policy' || inner.type === 'cache.lease' || inner.type === 'cache.flushall';
    if ((inner.type !== 'cache.set' && inner.type !== 'cache.del' && !unkeyed) || (op !== inner && unkeyed))
      return encodeForwardResponse(
        ForwardStatus.BadRequest,
        Buffer.from(`not a cache write: ${op === inner ? '' : 'fenced '}${inner.type}`),
      );
    const proposed: CacheOperation | FencedOperation = op.type === 'lock.fenced' ? op : inner;
    if (!this.host.isLeader()) return this.notLeader();
    const dir = this.ensureDirectory();
    const arrival = dir.nextSeq();
    let result: Result;
    try {
      result = await this.host.propose(proposed);
    } catch (error) {
      if (error instanceof NotLeaderError) return this.notLeader();
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ProposalDroppedError)
        return encodeForwardResponse(ForwardStatus.Dropped, Buffer.from(message, 'utf8'));
      return encodeForwardResponse(ForwardStatus.Unknown, Buffer.from(message, 'utf8'));
    }
    let version = 0;
    let install = INSTALL_NONE;
    let regId = 0;
    if (inner.type === 'cache.flushall' && result.type === 'tree' && Array.isArray(result.value)) {
      // Every home value is gone: every line anywhere is stale. Not a per-key round (the
      // directory may not list every key a node holds after a leader change): every node is
      // told to drop every line, and the FLUSHALL completes once each acked or one grace
      // passed. Directory entries stay (over-approximation only costs messages; a holder that
      // fetched after the flush applied holds a valid line and must stay known).
      await dir.grace;
      const roundStart = this.clock();
      this.stats.dataFlushes++;
      this.flushLocal(dir.term);
      await this.flushPeers(dir.term);
      this.invalidationWait.add(this.clock() - roundStart);
      const v = (result.value as readonly ResultTree[])[0];
      version = typeof v === 'number' ? v : 0;
      return this.ok(
        new Writer().f64(dir.term).bytes(encodeResult(result)).f64(version).u8(install).f64(0).f64(regId),
      );
    }
    // Only a write that applied returns home's tree. An error result (a fence's -FENCED) wrote
    // nothing: no invalidation round, no version, no M line for the writer.
    if (
      (inner.type === 'cache.set' || inner.type === 'cache.del') &&
      result.type === 'tree' &&
      Array.isArray(result.value)
    ) {
      const [v, policy] = result.value as readonly ResultTree[];
      version = typeof v === 'number' ? v : 0;
      // Until no line of an earlier leader can be served, no write completes.
      await dir.grace;
      const update = policy === 'update' && inner.type === 'cache.set' && inner.ttlMs === 0;
      const k = inner.key.toString('latin1');
      const roundStart = this.clock();
      const sent = await this.round(
        dir,
        k,
        inner.key,
        version,
        from,
        arrival,
        update && inner.type === 'cache.set' ? inner.value : null,
      );
      if (sent === 0) this.stats.writesWithoutRound++;
      this.invalidationWait.add(this.clock() - roundStart);
      const sm = this.host.stateMachine;
      // The writer holds the value only if no later write of the key has applied meanwhile.
      if (
        inner.type === 'cache.set' &&
        this.directory === dir &&
        this.host.isLeader() &&
        sm.cache.versionOf(inner.key) === version
      ) {
        const now = this.clock();
        const reg = dir.registerWrite(k, from, now, now + this.leaseMs + this.marginMs, version);
        if (reg !== null) {
          install = reg.state === 'M' ? INSTALL_M : INSTALL_S;
          regId = reg.regId;
          for (const node of reg.downgrade) this.sendDowngrade(node, inner.key);
        }
      }
    } else if (result.type === 'error' && op !== inner) {
      this.stats.writesFenced++;
    }
    const w = new Writer()
      .f64(dir.term)
      .bytes(encodeResult(result))
      .f64(version)
      .u8(install)
      .f64(this.leaseMs)
      .f64(regId);
    return this.ok(w);
  }

  /**
   * The invalidation (or update) round of a write of `k` at `version`: every target is told
   * and awaited until it acks or its lease runs out; earlier rounds of `k` are awaited too.
   * Resolves with the number of messages sent. Never rejects.
   */
  private async round(
    dir: Directory,
    k: string,
    key: Buffer,
    version: number,
    writer: string,
    arrival: number,
    updateValue: Buffer | null,
  ): Promise<number> {
    const now = this.clock();
    const { targets, earlier } = dir.takeForWrite(k, writer, arrival, now, updateValue !== null, version);
    const waits = [...earlier];
    for (const [node, holder] of targets) {
      const done = this.invalidateOne(node, holder.leaseEnd, key, version, updateValue, dir.term);
      dir.addInflight(k, done);
      waits.push(done);
    }
    await Promise.all(waits);
    return targets.length;
  }

  /** Tells one holder; resolves on its ack or when its lease has run out, whichever is first. */
  private invalidateOne(
    node: string,
    leaseEnd: number,
    key: Buffer,
    version: number,
    updateValue: Buffer | null,
    term: number,
  ): Promise<void> {
    if (updateValue === null) this.stats.invalidationsSent++;
    else this.stats.updatesSent++;
    const w = new Writer().f64(term).bytes(key).f64(version);
    if (updateValue === null) w.u8(0);
    else w.u8(1).bytes(updateValue);
    if (node === this.host.id) {
      this.onInvalidate(messageReader(w.finish()));
      return Promise.resolve();
    }
    const left = leaseEnd - this.clock();
    if (left <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let settled = false;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.stats.invalidationsTimedOut++;
        finish();
      }, Math.ceil(left));
      this.host.request(node, cacheRequest(ForwardKind.CacheInvalidate, w), Math.ceil(left)).then(
        (raw) => {
          // Only an OK is an ack; anything else leaves the lease to run out.
          if (decodeForwardResponse(raw).status === ForwardStatus.Ok) finish();
        },
        () => undefined,
      );
    });
  }

  // ---------------------------------------------------------------- leader: term start

  /** The directory of the current term; a new term starts an empty one behind a FLUSH. */
  private ensureDirectory(): Directory {
    const term = this.host.term();
    const current = this.directory;
    if (current !== null && current.term === term) return current;
    const dir = new Directory(term, this.maxDirectoryHolders);
    this.directory = dir;
    // This node's own lines came from an earlier leader: gone, as everyone else's.
    this.flushLocal(term);
    dir.grace = this.flushPeers(term);
    this.log?.info({ term, graceMs: this.graceMs }, 'cache: new directory, flushing near-caches');
    return dir;
  }

  /**
   * FLUSH to every other node; resolves when each has acked or one lease (+ margin) has passed
   * since now (a node that cannot be reached holds no line past that: its leases were counted
   * from requests it sent before this leader took office).
   */
  private flushPeers(term: number): Promise<void> {
    const graceMs = this.graceMs;
    const payload = cacheRequest(ForwardKind.CacheFlush, new Writer().f64(term));
    const acks = this.host.peers().map(
      (peer) =>
        new Promise<void>((resolve) => {
          this.stats.flushesSent++;
          const timer = setTimeout(resolve, graceMs);
          this.host.request(peer, payload, graceMs).then(
            (raw) => {
              if (decodeForwardResponse(raw).status === ForwardStatus.Ok) {
                clearTimeout(timer);
                resolve();
              }
            },
            () => undefined,
          );
        }),
    );
    return Promise.all(acks).then(() => undefined);
  }

  // ---------------------------------------------------------------- holder side

  private onInvalidate(r: Reader): Buffer {
    r.f64(); // term: an invalidation is always safe to obey, whoever sent it
    const key = r.bytes();
    const version = r.f64();
    const update = r.u8() === 1 ? r.bytes() : null;
    r.end();
    const k = key.toString('latin1');
    if (update === null) this.stats.invalidationsReceived++;
    else this.stats.updatesReceived++;
    const current = this.lines.peek(k);
    if (current !== undefined) {
      const next = update === null ? remoteWrite(current, version) : remoteUpdate(current, update, version);
      if (next.state === 'I') this.lines.delete(k);
      else if (next !== current) this.lines.set(k, next);
    }
    const rec = this.pending.get(k);
    if (rec !== undefined && version > rec.minVersion) rec.minVersion = version;
    return this.ok(null);
  }

  private onDowngrade(r: Reader): Buffer {
    const key = r.bytes();
    r.end();
    this.stats.downgradesReceived++;
    const k = key.toString('latin1');
    const current = this.lines.peek(k);
    if (current !== undefined) {
      const next = remoteRead(current);
      if (next !== current) this.lines.set(k, next);
    }
    return this.ok(null);
  }

  private onFlush(term: number): Buffer {
    this.stats.flushesReceived++;
    this.flushLocal(term);
    return this.ok(null);
  }

  private flushLocal(term: number): void {
    if (term > this.minTerm) this.minTerm = term;
    this.flushGen++;
    this.lines.clear();
  }

  private onEvict(from: string, r: Reader): Buffer {
    const n = r.count(12);
    const items: [string, number][] = [];
    for (let i = 0; i < n; i++) items.push([r.bytes().toString('latin1'), r.f64()]);
    r.end();
    const dir = this.directory;
    if (dir !== null && this.host.isLeader()) for (const [k, regId] of items) dir.evict(k, from, regId);
    return this.ok(null);
  }

  /** Best effort: tells the leader which registrations this node evicted. */
  private scheduleEvictNotice(): void {
    if (this.evictTimer !== null || this.stopped) return;
    this.evictTimer = setTimeout(() => {
      this.evictTimer = null;
      const batch = this.evictQueue.splice(0, EVICT_BATCH);
      if (this.evictQueue.length > 0) this.scheduleEvictNotice();
      const leader = this.host.leaderId();
      if (batch.length === 0 || leader === null) return;
      const w = new Writer().u32(batch.length);
      for (const [key, regId] of batch) w.bytes(key).f64(regId);
      const payload = cacheRequest(ForwardKind.CacheEvict, w);
      const sent =
        leader === this.host.id
          ? this.serve(this.host.id, payload)
          : this.host.request(leader, payload, this.requestTimeoutMs);
      sent.catch(() => undefined);
    }, 50);
    this.evictTimer.unref();
  }

  // ---------------------------------------------------------------- introspection

  /** This node's line of `key`, and the directory's view when this node leads. */
  private onState(r: Reader): Buffer {
    const key = r.bytes();
    r.end();
    const k = key.toString('latin1');
    const now = this.clock();
    const line = this.lines.peek(k);
    const state: LineState = line === undefined || !isHit(line, now) ? 'I' : line.state;
    const w = new Writer()
      .u8(stateCode(state))
      .f64(state === 'I' ? 0 : line!.version)
      .f64(state === 'I' ? 0 : Math.round(line!.leaseUntil - now));
    const dir = this.directory;
    if (dir !== null && this.host.isLeader() && dir.term === this.host.term()) {
      const view = dir.view(k, now);
      w.u8(1).u32(view.inflight).u32(view.holders.length);
      for (const [node, s, left] of view.holders) w.text(node).u8(stateCode(s)).f64(left);
    } else {
      w.u8(0);
    }
    return this.ok(w);
  }

  async state(key: Buffer): Promise<ResultTree> {
    const nodes = [this.host.id, ...this.host.peers()].sort();
    const payload = cacheRequest(ForwardKind.CacheState, new Writer().bytes(key));
    const answers = await Promise.all(
      nodes.map(async (node): Promise<[string, Buffer | null]> => {
        try {
          const raw =
            node === this.host.id
              ? await this.serve(node, payload)
              : await this.host.request(node, payload, 1_000);
          const response = decodeForwardResponse(raw);
          return [node, response.status === ForwardStatus.Ok ? response.body : null];
        } catch {
          return [node, null];
        }
      }),
    );
    const lines: ResultTree[] = [];
    let directory: ResultTree = ['directory', null];
    for (const [node, body] of answers) {
      if (body === null) {
        lines.push([node, 'unreachable']);
        continue;
      }
      const r = readResponseBody(body);
      const state = decodeState(r.u8());
      const version = r.f64();
      const leaseLeft = r.f64();
      lines.push([node, state, version, Math.max(0, leaseLeft)]);
      if (r.u8() === 1) {
        const inflight = r.u32();
        const n = r.count(13);
        const holders: ResultTree[] = [];
        // Lenient UTF-8, as before the Reader was shared: a holder's id is only displayed here.
        for (let i = 0; i < n; i++) holders.push([r.bytes().toString('utf8'), decodeState(r.u8()), r.f64()]);
        directory = ['directory', node, 'invalidations-in-flight', inflight, 'holders', holders];
      }
    }
    return [...lines, directory];
  }

  /** This node's figures (INFO cache and /metrics both print these). Reads only. */
  figures(): CacheFigures {
    const s = this.stats;
    const perState = { M: 0, E: 0, S: 0 };
    const now = this.clock();
    for (const line of this.lines.values())
      if (line.state !== 'I' && isHit(line, now)) perState[line.state]++;
    const lookups = s.hits + s.misses;
    const dir = this.directory;
    const leading = dir !== null && this.host.isLeader();
    return {
      hits: s.hits,
      misses: s.misses,
      hitRatio: lookups === 0 ? 0 : s.hits / lookups,
      leaseExpiries: s.leaseExpiries,
      fetches: s.fetches,
      refreshes: s.refreshes,
      missesJoined: s.joined,
      writes: s.writes,
      writesWithoutRound: s.writesWithoutRound,
      writesFenced: s.writesFenced,
      invalidationsSent: s.invalidationsSent,
      invalidationsReceived: s.invalidationsReceived,
      invalidationsTimedOut: s.invalidationsTimedOut,
      updatesSent: s.updatesSent,
      updatesReceived: s.updatesReceived,
      downgradesSent: s.downgradesSent,
      downgradesReceived: s.downgradesReceived,
      evictions: s.evictions,
      flushesSent: s.flushesSent,
      flushesReceived: s.flushesReceived,
      dataFlushes: s.dataFlushes,
      lines: this.lines.size,
      linesM: perState.M,
      linesE: perState.E,
      linesS: perState.S,
      bytes: this.lines.calculatedSize,
      maxLines: this.lines.max,
      maxBytes: this.lines.maxSize,
      leaseMs: this.leaseMs,
      writeLatencyP50Ms: this.writeLatency.percentile(50),
      writeLatencyP99Ms: this.writeLatency.percentile(99),
      invalidationWaitP50Ms: this.invalidationWait.percentile(50),
      invalidationWaitP99Ms: this.invalidationWait.percentile(99),
      directoryLeader: leading,
      directoryKeys: leading ? dir.keyCount : 0,
      directoryHolders: leading ? dir.holders : 0,
    };
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
