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
import { KeyStore } from './keys/store.js';

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
  | { readonly type: 'keys.persist'; readonly key: Buffer };

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
  | { readonly type: 'error'; readonly message: string };

export const OK_RESULT: Result = Object.freeze({ type: 'ok' });

/** One committed log entry as the state machine sees it. */
export interface Entry {
  /** Raft log index; strictly increasing across apply calls. */
  readonly index: number;
  /** Leader-stamped wall time (ms since epoch): the only clock the state machine uses. */
  readonly timeMs: number;
  readonly op: Operation;
}

/** Expired keys reclaimed per applied entry, so one apply stays short. */
const EXPIRE_SWEEP_PER_APPLY = 16;

const SNAPSHOT_MAGIC = 0x43434e53; // "CCNS"
const SNAPSHOT_VERSION = 1;
/** Magic u32, version u8, applied index f64, clock f64. */
const SNAPSHOT_HEADER_BYTES = 21;

/** A captured snapshot, read out in chunks (StateMachine.captureSnapshot). */
export interface SnapshotReader {
  /** The last applied index the snapshot reflects. */
  readonly index: number;
  /** The next chunk of about `maxBytes`, or null at the end. */
  next(maxBytes: number): Buffer | null;
}

export class StateMachine {
  readonly keys = new KeyStore();
  private appliedIndex = 0;
  /** Greatest entry time applied so far: time never goes back inside the state machine. */
  private clockMs = 0;

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
    this.keys.sweepExpired(now, EXPIRE_SWEEP_PER_APPLY);
    const op = entry.op;
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
    const keys = this.keys.capture();
    let headerSent = false;
    return {
      index: this.appliedIndex,
      next(maxBytes: number): Buffer | null {
        if (!headerSent) {
          headerSent = true;
          return header;
        }
        return keys.next(maxBytes);
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
   * timeout). The state is replaced only when the generator completes; a malformed snapshot
   * throws from next() and leaves the state as it was.
   */
  *restoreInSlices(data: Buffer): Generator<void, void, void> {
    if (data.length < 21 || data.readUInt32BE(0) !== SNAPSHOT_MAGIC)
      throw new Error('not a Concord snapshot');
    const version = data.readUInt8(4);
    if (version !== SNAPSHOT_VERSION) throw new Error(`unsupported snapshot version ${version}`);
    const keys = yield* KeyStore.restoreInSlices(data.subarray(SNAPSHOT_HEADER_BYTES));
    this.appliedIndex = data.readDoubleBE(5);
    this.clockMs = data.readDoubleBE(13);
    this.keys.replaceWith(keys);
  }
}
