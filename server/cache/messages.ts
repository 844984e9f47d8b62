/**
 * Wire format of the coherence protocol's peer requests (over the peer transport's
 * request/response, like server/forward.ts). A request is [forward version u8][kind u8]
 * [cache message version u8][body]; a response is a forward response (status u8) whose body
 * starts with the cache message version. Kinds are numbered in server/forward.ts (ForwardKind)
 * so the two protocols never collide; versions let nodes of different releases talk.
 *
 *   FETCH       node -> leader: key, register?        OK: the value, its version and a grant
 *   WRITE       node -> leader: encoded cache op      OK: the Result, version and a grant
 *   INVALIDATE  leader -> holder: term, key, version, [new value under the update policy]
 *   DOWNGRADE   leader -> E/M holder: key             (another node now shares it)
 *   FLUSH       new leader -> every node: term        (drop every line; refuse older grants)
 *   EVICT       node -> leader: [(key, registration)] (best effort: the directory shrinks)
 *   STATE       any -> any: key                       (CSTATE: the line, and the directory)
 *
 * Must never: carry argv, or be decoded without bounds checks (CodecError on bad bytes).
 */
import { CodecError } from '../../commands/codec.js';
import type { LineState } from '../../commands/cache/near-cache.js';
import { FORWARD_VERSION, ForwardKind } from '../forward.js';

export const CACHE_MESSAGE_VERSION = 1;

export const CACHE_KINDS: ReadonlySet<number> = new Set([
  ForwardKind.CacheFetch,
  ForwardKind.CacheWrite,
  ForwardKind.CacheInvalidate,
  ForwardKind.CacheDowngrade,
  ForwardKind.CacheFlush,
  ForwardKind.CacheEvict,
  ForwardKind.CacheState,
]);

/** Whether a peer request belongs to the coherence protocol (server/node.ts routes on it). */
export function isCacheRequest(payload: Buffer): boolean {
  return payload.length >= 2 && payload[0] === FORWARD_VERSION && CACHE_KINDS.has(payload[1]!);
}

export class Writer {
  private buf = Buffer.allocUnsafe(64);
  private pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): this {
    this.ensure(1);
    this.pos = this.buf.writeUInt8(v, this.pos);
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
    return this;
  }
  f64(v: number): this {
    this.ensure(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.u32(b.byteLength);
    this.ensure(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
    return this;
  }
  text(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new CodecError('truncated cache message');
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
  /** A count of items of at least `minItemBytes` each, bounded by what is left. */
  count(minItemBytes: number): number {
    const n = this.u32();
    if (n * minItemBytes > this.buf.length - this.pos) throw new CodecError('count exceeds message size');
    return n;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new CodecError('trailing bytes in cache message');
  }
}

/** A request: the kind, then the versioned body. */
export function cacheRequest(kind: number, body: Writer | null = null): Buffer {
  const inner = body === null ? Buffer.alloc(0) : body.finish();
  const out = Buffer.allocUnsafe(3 + inner.length);
  out[0] = FORWARD_VERSION;
  out[1] = kind;
  out[2] = CACHE_MESSAGE_VERSION;
  inner.copy(out, 3);
  return out;
}

/** The body of a cache request (after the version byte), checked. */
export function requestBody(payload: Buffer): Reader {
  if (payload.length < 3 || payload[2] !== CACHE_MESSAGE_VERSION)
    throw new CodecError(`unknown cache message version ${payload[2] ?? 'none'}`);
  return new Reader(payload.subarray(3));
}

/** A response body: the version byte, then the fields. */
export function responseBody(w: Writer | null): Buffer {
  const inner = w === null ? Buffer.alloc(0) : w.finish();
  const out = Buffer.allocUnsafe(1 + inner.length);
  out[0] = CACHE_MESSAGE_VERSION;
  inner.copy(out, 1);
  return out;
}

export function readResponseBody(body: Buffer): Reader {
  if (body.length < 1 || body[0] !== CACHE_MESSAGE_VERSION)
    throw new CodecError(`unknown cache response version ${body[0] ?? 'none'}`);
  return new Reader(body.subarray(1));
}

export const STATE_CODES: readonly LineState[] = ['I', 'S', 'E', 'M'];

export function stateCode(s: LineState): number {
  return STATE_CODES.indexOf(s);
}

export function decodeState(code: number): LineState {
  const s = STATE_CODES[code];
  if (s === undefined) throw new CodecError(`bad line state ${code}`);
  return s;
}
