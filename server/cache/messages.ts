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
import { CodecError, Reader, type Writer } from '../../commands/bytes.js';
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

/** A Reader over a cache message body: its errors name the cache message. */
export function messageReader(body: Buffer): Reader {
  return new Reader(body, 'cache message');
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
  return messageReader(payload.subarray(3));
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
  return messageReader(body.subarray(1));
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
