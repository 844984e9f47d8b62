/**
 * The replicated state machine: typed operations in, results out, deterministically.
 *
 * Owns: the Operation union (tags 'family.verb'), `apply(entry)`, `snapshot()`/`restore()`
 * and the families' stores (keys/store.ts). Raft (server/node.ts) applies committed entries
 * in index order on every node; the same entries must give the same results and the same
 * snapshot bytes everywhere.
 *
 * Must never: read the local clock (time comes only from `entry.timeMs`, stamped by the
 * leader, or from `nowMs` given to a read), use timers or randomness, change state in a read,
 * or see argv (commands parse into typed operations first).
 */
import assert from 'node:assert';
import type { ChunkReader, FamilyContext, StateFamily } from './family.js';
import { KeyStore } from './keys/store.js';
import type { LockOperation } from './locks/operations.js';
import { LockStore } from './locks/store.js';
import type { QueueOperation } from './queues/operations.js';
import { QueueStore } from './queues/store.js';
import type { CacheOperation } from './cache/operations.js';
import { CacheStore } from './cache/store.js';
import { OK_RESULT } from './results.js';

export type SetCondition = 'always' | 'nx' | 'xx';
export type ExpireMode = 'none' | 'ttl' | 'at' | 'keep';

/** A change to the state. Every variant has a codec tag in codec.ts; tags never change. */
export type Operation =
  | {
      readonly type: 'keys.set';
      readonly key: Buffer;
      readonly value: Buffer;
      /** 'nx': only if absent; 'xx': only if present. */
      readonly condition: SetCondition;
      /**
       * 'none': no expiry (clears any); 'ttl': expireMs from the entry's time (EX/PX);
       * 'at': expireMs is absolute ms since epoch (EXAT/PXAT); 'keep': keep the current one.
       */
      readonly expire: ExpireMode;
      /** Milliseconds for 'ttl' (> 0) and 'at' (> 0); 0 otherwise. */
      readonly expireMs: number;
      /** Return the previous value (SET ... GET). */
      readonly get: boolean;
    }
  | { readonly type: 'keys.del'; readonly keys: readonly Buffer[] }
  | { readonly type: 'keys.incrby'; readonly key: Buffer; readonly delta: bigint }
  | { readonly type: 'keys.mset'; readonly pairs: readonly (readonly [Buffer, Buffer])[] }
  /** FLUSHALL and FLUSHDB (Concord has one database). */
  | { readonly type: 'keys.flushall' }
  | { readonly type: 'keys.getdel'; readonly key: Buffer }
  | {
      readonly type: 'keys.expire';
      readonly key: Buffer;
      /** 'ttl': ms from the entry's time (may be <= 0: the key is deleted); 'at': absolute ms. */
      readonly mode: 'ttl' | 'at';
      readonly ms: number;
      readonly condition: ExpireCondition;
    }
  | { readonly type: 'keys.persist'; readonly key: Buffer }
  | LockOperation
  | QueueOperation
  | CacheOperation
  | SysOperation;

/**
 * Operations of the state machine itself, proposed by the leader (server/node.ts), never by
 * a client command.
 */
export type SysOperation =
  /**
   * Time passed: carries nothing but its leader-stamped time, proposed when the leader's clock
   * passes nextDeadlineMs(), so that leases, timeouts and TTLs run out at the same log index on
   * every node even when no client writes.
   */
  { readonly type: 'sys.tick' };

/** EXPIRE's NX/XX/GT/LT (Redis 7); a key without expiry counts as an infinite TTL. */
export type ExpireCondition = 'always' | 'nx' | 'xx' | 'gt' | 'lt';

export type SetOperation = Extract<Operation, { type: 'keys.set' }>;

export type OperationType = Operation['type'];

/** What applying an operation gives back (the command turns it into a Reply). */
export type Result =
  | { readonly type: 'ok' }
  | { readonly type: 'integer'; readonly value: number | bigint }
  /** SET: whether it wrote, and the previous value when the op asked for it. */
  | { readonly type: 'set'; readonly written: boolean; readonly previous: Buffer | null }
  /** A value read and removed (GETDEL); null when there was none. */
  | { readonly type: 'value'; readonly value: Buffer | null }
  /** A client error decided by the state (e.g. the stored value is not an integer). */
  | { readonly type: 'error'; readonly message: string }
  /**
   * Structured data for the families' commands (a lock's token, leased messages...); the
   * command turns it into a Reply. Keeps the result codec generic.
   */
  | { readonly type: 'tree'; readonly value: ResultTree }
  /**
   * The operation registered a waiter (its `waiterId`) that was not served at once: the final
   * Result comes through FamilyContext.wake (commands/waiters.ts).
   */
  | { readonly type: 'blocked' };

/** Data in a 'tree' result: a string is UTF-8 text, a Buffer is binary. */
export type ResultTree = null | boolean | number | bigint | string | Buffer | readonly ResultTree[];

export { BLOCKED_RESULT, OK_RESULT } from './results.js';

/** One committed log entry as the state machine sees it. */
export interface Entry {
  /** Raft log index; strictly increasing across apply calls. */
  readonly index: number;
  /** Leader-stamped wall time (ms since epoch): the only clock the state machine uses. */
  readonly timeMs: number;
  /**
   * The Raft term the entry was proposed in. The first entry of a greater term tells the
   * families a new leader took office (StateFamily.onTermStart). Absent: same term as before.
   */
  readonly term?: number;
  readonly op: Operation;
}

/** Expired keys reclaimed per applied entry, so one apply stays short. */
const EXPIRE_SWEEP_PER_APPLY = 16;
/** Expired keys reclaimed by one sys.tick (proposed only when keys are due). */
const EXPIRE_SWEEP_PER_TICK = 1_000;

const SNAPSHOT_MAGIC = 0x43434e53; // "CCNS"
/**
 * 1: header (magic u32, version u8, applied index f64, clock f64) + keyspace.
 * 2: header, term f64, then sections (section tag u16, chunk length u32, chunk)..., tag 0 ends.
 */
const SNAPSHOT_VERSION = 2;
const SNAPSHOT_V1_HEADER_BYTES = 21;
const SNAPSHOT_HEADER_BYTES = 29;
/** Snapshot section of the keyspace; the other families carry their own (StateFamily). */
const KEYS_SECTION = 1;
const END_SECTION = 0;
/** A section's bytes are framed in pieces of about this size (the framing is part of the format). */
const SECTION_PIECE_BYTES = 256 * 1024;

/** A captured snapshot, read out in chunks (StateMachine.captureSnapshot). */
export interface SnapshotReader {
  /** The last applied index the snapshot reflects. */
  readonly index: number;
  /** The next chunk of about `maxBytes`, or null at the end. */
  next(maxBytes: number): Buffer | null;
}

/** Receives every wake-up the families emit during apply (the node's WaiterRegistry). */
export type WakeUpListener = (waiterId: string, result: Result) => void;

export class StateMachine {
  readonly keys = new KeyStore();
  /** The coherent cache's home (commands/cache/store.ts); its directory is not replicated. */
  readonly cache = new CacheStore();
  private wakeUpListener: WakeUpListener = () => undefined;
  /** What the families may do to the world outside the replicated state: wake waiters. */
  protected readonly familyContext: FamilyContext = {
    wake: (waiterId, result) => this.wakeUpListener(waiterId, result),
  };
  readonly locks = new LockStore(this.familyContext);
  /**
   * Every family but the keyspace, in a fixed order (time advances and snapshots go through
   * them in this order). Each family's snapshot section tag is permanent.
   */
  readonly queues = new QueueStore(this.familyContext);
  readonly families: readonly StateFamily[] = [this.locks, this.queues, this.cache];
  private appliedIndex = 0;
  /** Greatest entry time applied so far: time never goes back inside the state machine. */
  private clockMs = 0;
  /** Greatest entry term applied so far. */
  private termSeen = 0;

  /** Sets who hears wake-ups (one listener: the node's WaiterRegistry). */
  onWakeUp(listener: WakeUpListener): void {
    this.wakeUpListener = listener;
  }

  /**
   * The earliest leader time at which state changes on its own (a key's TTL, a lease, a
   * timeout), or Infinity. The leader proposes sys.tick once its clock passes it.
   */
  nextDeadlineMs(): number {
    let next = this.keys.nextExpiryMs();
    for (const family of this.families) {
      const d = family.nextDeadlineMs();
      if (d < next) next = d;
    }
    return next;
  }

  get lastAppliedIndex(): number {
    return this.appliedIndex;
  }

  /** The state machine's own notion of now: monotonic leader time. */
  get lastTimeMs(): number {
    return this.clockMs;
  }

  /** The time a read taken at `nowMs` is evaluated at (never before applied time). */
  readTime(nowMs: number): number {
    return nowMs > this.clockMs ? nowMs : this.clockMs;
  }

  /**
   * Applies one committed entry. Entries must come in index order without gaps (a broken
   * invariant otherwise: the node crashes). Client errors are results, never thrown.
   */
  apply(entry: Entry): Result {
    if (entry.index !== this.appliedIndex + 1)
      assert.fail(`apply out of order: ${entry.index} after ${this.appliedIndex}`);
    this.appliedIndex = entry.index;
    if (entry.timeMs > this.clockMs) this.clockMs = entry.timeMs;
    const now = this.clockMs;
    if (entry.term !== undefined && entry.term > this.termSeen) {
      // A new leader's first entry: before any lease is judged by its clock.
      this.termSeen = entry.term;
      for (const family of this.families) family.onTermStart(now);
    }
    const op = entry.op;
    this.keys.sweepExpired(now, op.type === 'sys.tick' ? EXPIRE_SWEEP_PER_TICK : EXPIRE_SWEEP_PER_APPLY);
    for (const family of this.families) if (family.nextDeadlineMs() <= now) family.advanceTime(now);
    return this.applyOperation(op, now);
  }

  /** One operation at time `now` (also the inner operation of a fenced one). */
  private applyOperation(op: Operation, now: number): Result {
    switch (op.type) {
      case 'keys.set':
        return this.keys.set(op, now);
      case 'keys.del':
        return { type: 'integer', value: this.keys.del(op.keys, now) };
      case 'keys.incrby':
        return this.keys.incrBy(op.key, op.delta, now);
      case 'keys.mset':
        this.keys.mset(op.pairs);
        return OK_RESULT;
      case 'keys.flushall':
        this.keys.clear();
        return OK_RESULT;
      case 'keys.getdel':
        return { type: 'value', value: this.keys.getDel(op.key, now) };
      case 'keys.expire': {
        const atMs = op.mode === 'ttl' ? now + op.ms : op.ms;
        return { type: 'integer', value: this.keys.expire(op.key, atMs, op.condition, now) ? 1 : 0 };
      }
      case 'keys.persist':
        return { type: 'integer', value: this.keys.persist(op.key, now) ? 1 : 0 };
      case 'lock.acquire':
      case 'lock.release':
      case 'lock.renew':
      case 'lock.cancel':
      case 'lock.force-release':
        return this.locks.apply(op, now);
      case 'lock.fenced':
        return this.locks.checkFence(op.name, op.token) ?? this.applyOperation(op.op, now);
      case 'queues.push':
      case 'queues.pop':
      case 'queues.ack':
      case 'queues.nack':
      case 'queues.touch':
      case 'queues.cancel':
      case 'queues.config':
      case 'queues.replay':
        return this.queues.apply(op, now);
      case 'cache.set':
      case 'cache.del':
      case 'cache.policy':
      case 'cache.lease':
        return this.cache.apply(op, now, this.appliedIndex);
      case 'cache.flushall':
        this.keys.clear();
        return this.cache.apply(op, now, this.appliedIndex);
      case 'sys.tick':
        return OK_RESULT;
      default: {
        const unknown: never = op;
        throw new Error(`unknown operation ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** The whole state as bytes; the same state gives the same bytes. Does not change state. */
  snapshot(): Buffer {
    const capture = this.captureSnapshot();
    const chunks: Buffer[] = [];
    for (let chunk = capture.next(Infinity); chunk !== null; chunk = capture.next(Infinity))
      chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /**
   * Captures the state at the last applied index quickly (no serialization), for a snapshot
   * written in chunks while entries keep being applied: the chunks concatenated are exactly
   * what snapshot() returned at capture time. Does not change state.
   */
  captureSnapshot(): SnapshotReader {
    const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
    header.writeUInt32BE(SNAPSHOT_MAGIC, 0);
    header.writeUInt8(SNAPSHOT_VERSION, 4);
    header.writeDoubleBE(this.appliedIndex, 5);
    header.writeDoubleBE(this.clockMs, 13);
    header.writeDoubleBE(this.termSeen, 21);
    const sections: [number, ChunkReader][] = [[KEYS_SECTION, this.keys.capture()]];
    for (const family of this.families) sections.push([family.snapshotSection, family.capture()]);
    let current = 0;
    // The framed stream is canonical (sections are read in fixed-size pieces, whatever the
    // caller asks for), and next(maxBytes) hands out slices of it: so the bytes never depend
    // on how the caller chunks its reads.
    let pending: Buffer = header;
    const nextFrame = (): Buffer | null => {
      while (current < sections.length) {
        const [tag, reader] = sections[current]!;
        const chunk = reader.next(SECTION_PIECE_BYTES);
        if (chunk === null) {
          current++;
          continue;
        }
        if (chunk.length === 0) continue;
        if (chunk.length > 0xffffffff) assert.fail(`snapshot chunk of ${chunk.length} bytes`);
        const frame = Buffer.allocUnsafe(6);
        frame.writeUInt16BE(tag, 0);
        frame.writeUInt32BE(chunk.length, 2);
        return Buffer.concat([frame, chunk]);
      }
      if (current === sections.length) {
        current++;
        const end = Buffer.alloc(2);
        end.writeUInt16BE(END_SECTION, 0);
        return end;
      }
      return null;
    };
    return {
      index: this.appliedIndex,
      next(maxBytes: number): Buffer | null {
        if (pending.length === 0) {
          const frame = nextFrame();
          if (frame === null) return null;
          pending = frame;
        }
        const out = pending.length <= maxBytes ? pending : pending.subarray(0, Math.max(1, maxBytes));
        pending = pending.subarray(out.length);
        return out;
      },
    };
  }

  /** Replaces the whole state with a snapshot's. Throws on a malformed snapshot. */
  restore(data: Buffer): void {
    const slices = this.restoreInSlices(data);
    while (slices.next().done !== true);
  }

  /**
   * restore() in slices: the generator yields between bounded parts of the parse, so a driver
   * can let the event loop run (a large state parsed at once stalls it past an election
   * timeout). The keyspace is replaced only when the generator completes; a malformed
   * snapshot throws from next() (the node then refuses it).
   */
  *restoreInSlices(data: Buffer): Generator<void, void, void> {
    if (data.length < SNAPSHOT_V1_HEADER_BYTES || data.readUInt32BE(0) !== SNAPSHOT_MAGIC)
      throw new Error('not a Concord snapshot');
    const version = data.readUInt8(4);
    const sections = new Map<number, Buffer[]>();
    let term = 0;
    if (version === 1) {
      sections.set(KEYS_SECTION, [data.subarray(SNAPSHOT_V1_HEADER_BYTES)]);
    } else if (version === 2) {
      if (data.length < SNAPSHOT_HEADER_BYTES) throw new Error('snapshot header is truncated');
      term = data.readDoubleBE(21);
      let pos = SNAPSHOT_HEADER_BYTES;
      for (;;) {
        if (pos + 2 > data.length) throw new Error('snapshot is truncated inside a section header');
        const tag = data.readUInt16BE(pos);
        pos += 2;
        if (tag === END_SECTION) break;
        if (pos + 4 > data.length) throw new Error('snapshot is truncated inside a section header');
        const length = data.readUInt32BE(pos);
        pos += 4;
        if (pos + length > data.length) throw new Error(`snapshot section ${tag} is truncated`);
        const chunks = sections.get(tag) ?? [];
        chunks.push(data.subarray(pos, pos + length));
        sections.set(tag, chunks);
        pos += length;
      }
      if (pos !== data.length) throw new Error('trailing bytes after the snapshot');
      const known = new Set([KEYS_SECTION, ...this.families.map((f) => f.snapshotSection)]);
      for (const tag of sections.keys())
        if (!known.has(tag))
          throw new Error(`snapshot has unknown section ${tag} (written by a newer version?)`);
    } else {
      throw new Error(`unsupported snapshot version ${version}`);
    }
    const sectionBytes = (tag: number): Buffer => Buffer.concat(sections.get(tag) ?? []);
    const keys = sections.has(KEYS_SECTION)
      ? yield* KeyStore.restoreInSlices(sectionBytes(KEYS_SECTION))
      : new KeyStore();
    for (const family of this.families) family.restore(sectionBytes(family.snapshotSection));
    this.appliedIndex = data.readDoubleBE(5);
    this.clockMs = data.readDoubleBE(13);
    this.termSeen = term;
    this.keys.replaceWith(keys);
  }
}
