/**
 * The operation codec: how typed operations are stored as bytes in the Raft log.
 *
 * Layout: [format version u8][tag u16 BE][fields...]. Buffers are [length u32 BE][bytes];
 * integers that fit a double are float64 BE; int64 values are BigInt64 BE; enums are u8.
 *
 * Owns the tag table. Tags and enum codes are permanent: a log written by any past version must
 * still decode, so a tag is never renumbered or reused, a field is never reordered, and a new
 * field means a new format version (decoders keep reading every older version).
 * Must never encode argv: only typed operations cross this boundary.
 */
import { CACHE_POLICIES, MAX_CACHE_LEASE_MS, MIN_CACHE_LEASE_MS } from './cache/operations.js';
import {
  BLOCKED_RESULT,
  OK_RESULT,
  type ResultTree,
  type ExpireCondition,
  type ExpireMode,
  type Operation,
  type OperationType,
  type Result,
  type SetCondition,
} from './state-machine.js';
import type { LockMode } from './locks/operations.js';
import { CodecError, Reader, Writer } from './bytes.js';

// Re-exported: callers have always caught the codec's errors as codec.ts's CodecError.
export { CodecError };

export const CODEC_VERSION = 1;

/**
 * Permanent tags. Append only. Ranges keep the families apart: keyspace 1-99, the state
 * machine's own (sys.*) 100-199, locks 200-299, queues 300-399, cache 400-499.
 */
const TAGS = {
  'keys.set': 1,
  'keys.del': 2,
  'keys.incrby': 3,
  'keys.mset': 4,
  'keys.flushall': 5,
  'keys.getdel': 6,
  'keys.expire': 7,
  'keys.persist': 8,
  'sys.tick': 100,
  'lock.acquire': 200,
  'lock.release': 201,
  'lock.renew': 202,
  'lock.cancel': 203,
  'lock.force-release': 204,
  'lock.fenced': 205,
  'queues.push': 300,
  'queues.pop': 301,
  'queues.ack': 302,
  'queues.nack': 303,
  'queues.touch': 304,
  'queues.cancel': 305,
  'queues.config': 306,
  'queues.replay': 307,
  'cache.set': 400,
  'cache.del': 401,
  'cache.policy': 402,
  'cache.flushall': 403,
  'cache.lease': 404,
} as const satisfies Record<OperationType, number>;

const CONDITIONS: readonly SetCondition[] = ['always', 'nx', 'xx'];
const EXPIRE_MODES: readonly ExpireMode[] = ['none', 'ttl', 'at', 'keep'];
const EXPIRE_CONDITIONS: readonly ExpireCondition[] = ['always', 'nx', 'xx', 'gt', 'lt'];
const EXPIRE_KINDS: readonly ('ttl' | 'at')[] = ['ttl', 'at'];
const LOCK_MODES: readonly LockMode[] = ['shared', 'exclusive'];

function buffersSize(bufs: readonly Buffer[]): number {
  let n = 0;
  for (const b of bufs) n += 4 + b.length;
  return n;
}

export function encodeOperation(op: Operation): Buffer {
  switch (op.type) {
    case 'keys.set': {
      const w = header(op.type, 4 + op.key.length + 4 + op.value.length + 11);
      w.bytes(op.key);
      w.bytes(op.value);
      w.u8(CONDITIONS.indexOf(op.condition));
      w.u8(EXPIRE_MODES.indexOf(op.expire));
      w.f64(op.expireMs);
      w.u8(op.get ? 1 : 0);
      return w.finish();
    }
    case 'keys.del': {
      const w = header(op.type, 4 + buffersSize(op.keys));
      w.u32(op.keys.length);
      for (const k of op.keys) w.bytes(k);
      return w.finish();
    }
    case 'keys.incrby': {
      const w = header(op.type, 4 + op.key.length + 8);
      w.bytes(op.key);
      w.i64(op.delta);
      return w.finish();
    }
    case 'keys.mset': {
      let size = 4;
      for (const [k, v] of op.pairs) size += 8 + k.length + v.length;
      const w = header(op.type, size);
      w.u32(op.pairs.length);
      for (const [k, v] of op.pairs) {
        w.bytes(k);
        w.bytes(v);
      }
      return w.finish();
    }
    case 'keys.flushall':
      return header(op.type, 0).finish();
    case 'keys.getdel':
    case 'keys.persist': {
      const w = header(op.type, 4 + op.key.length);
      w.bytes(op.key);
      return w.finish();
    }
    case 'keys.expire': {
      const w = header(op.type, 4 + op.key.length + 10);
      w.bytes(op.key);
      w.u8(EXPIRE_KINDS.indexOf(op.mode));
      w.f64(op.ms);
      w.u8(EXPIRE_CONDITIONS.indexOf(op.condition));
      return w.finish();
    }
    case 'sys.tick':
      return header(op.type, 0).finish();
    case 'lock.acquire': {
      const waiterId = Buffer.from(op.waiterId, 'utf8');
      const w = header(op.type, 12 + op.name.length + op.owner.length + waiterId.length + 17);
      w.bytes(op.name);
      w.bytes(op.owner);
      w.u8(LOCK_MODES.indexOf(op.mode));
      w.f64(op.ttlMs);
      w.f64(op.waitMs);
      w.bytes(waiterId);
      return w.finish();
    }
    case 'lock.release': {
      const w = header(op.type, 8 + op.name.length + op.owner.length);
      w.bytes(op.name);
      w.bytes(op.owner);
      return w.finish();
    }
    case 'lock.renew': {
      const w = header(op.type, 16 + op.name.length + op.owner.length);
      w.bytes(op.name);
      w.bytes(op.owner);
      w.f64(op.ttlMs);
      return w.finish();
    }
    case 'lock.cancel': {
      const waiterId = Buffer.from(op.waiterId, 'utf8');
      const w = header(op.type, 8 + op.name.length + waiterId.length);
      w.bytes(op.name);
      w.bytes(waiterId);
      return w.finish();
    }
    case 'lock.force-release': {
      const w = header(op.type, 9 + op.name.length + (op.owner?.length ?? 0));
      w.bytes(op.name);
      w.u8(op.owner === null ? 0 : 1);
      if (op.owner !== null) w.bytes(op.owner);
      return w.finish();
    }
    case 'lock.fenced': {
      // The guarded operation nests as its own encoding, so any operation can be fenced.
      const inner = encodeOperation(op.op);
      const w = header(op.type, 16 + op.name.length + inner.length);
      w.bytes(op.name);
      w.f64(op.token);
      w.bytes(inner);
      return w.finish();
    }
    case 'queues.push': {
      const key = op.idempotencyKey;
      const w = header(
        op.type,
        4 + op.queue.length + 4 + buffersSize(op.payloads) + 5 + (key?.length ?? 0) + 8,
      );
      w.bytes(op.queue);
      w.u32(op.payloads.length);
      for (const p of op.payloads) w.bytes(p);
      w.u8(key === null ? 0 : 1);
      if (key !== null) w.bytes(key);
      w.f64(op.delayMs);
      return w.finish();
    }
    case 'queues.pop': {
      const waiterId = Buffer.from(op.waiterId, 'utf8');
      const w = header(op.type, 4 + op.queue.length + 16 + 4 + op.consumer.length + 4 + waiterId.length + 8);
      w.bytes(op.queue);
      w.f64(op.count);
      w.f64(op.visibilityMs);
      w.bytes(op.consumer);
      w.bytes(waiterId);
      w.f64(op.blockMs);
      return w.finish();
    }
    case 'queues.ack': {
      const w = header(op.type, 4 + op.queue.length + 4 + 16 * op.receipts.length);
      w.bytes(op.queue);
      w.u32(op.receipts.length);
      for (const r of op.receipts) {
        w.f64(r.id);
        w.f64(r.delivery);
      }
      return w.finish();
    }
    case 'queues.nack':
    case 'queues.touch': {
      const w = header(op.type, 4 + op.queue.length + 24);
      w.bytes(op.queue);
      w.f64(op.receipt.id);
      w.f64(op.receipt.delivery);
      w.f64(op.type === 'queues.nack' ? op.delayMs : op.visibilityMs);
      return w.finish();
    }
    case 'queues.cancel': {
      const waiterId = Buffer.from(op.waiterId, 'utf8');
      const w = header(op.type, 8 + op.queue.length + waiterId.length);
      w.bytes(op.queue);
      w.bytes(waiterId);
      return w.finish();
    }
    case 'queues.config': {
      const w = header(op.type, 4 + op.queue.length + 32);
      w.bytes(op.queue);
      w.f64(op.visibilityMs);
      w.f64(op.maxDeliveries);
      w.f64(op.maxLength);
      w.f64(op.idempotencyWindowMs);
      return w.finish();
    }
    case 'queues.replay': {
      const w = header(op.type, 4 + op.queue.length + 8);
      w.bytes(op.queue);
      w.f64(op.count);
      return w.finish();
    }
    case 'cache.set': {
      const w = header(op.type, 8 + op.key.length + op.value.length + 9);
      w.bytes(op.key);
      w.bytes(op.value);
      w.f64(op.ttlMs);
      w.u8(CACHE_POLICIES.indexOf(op.policy));
      return w.finish();
    }
    case 'cache.del': {
      const w = header(op.type, 4 + op.key.length);
      w.bytes(op.key);
      return w.finish();
    }
    case 'cache.policy': {
      const w = header(op.type, 6 + (op.key?.length ?? 0));
      w.u8(op.key === null ? 0 : 1);
      if (op.key !== null) w.bytes(op.key);
      w.u8(CACHE_POLICIES.indexOf(op.policy));
      return w.finish();
    }
    case 'cache.flushall':
      return header(op.type, 0).finish();
    case 'cache.lease': {
      // 0 on the wire: back to each node's own --cache-lease-ms (a lease is never 0).
      const w = header(op.type, 8);
      w.f64(op.leaseMs ?? 0);
      return w.finish();
    }
    default: {
      const unknown: never = op;
      throw new Error(`no codec for ${JSON.stringify(unknown)}`);
    }
  }
}

function header(type: OperationType, bodyBytes: number): Writer {
  const w = new Writer(3 + bodyBytes);
  w.u8(CODEC_VERSION);
  w.u16(TAGS[type]);
  return w;
}

/** Decodes bytes written by encodeOperation (any format version so far). Throws CodecError. */
export function decodeOperation(data: Buffer): Operation {
  const r = new Reader(data, 'operation');
  const version = r.u8();
  if (version !== 1) throw new CodecError(`unknown operation format version ${version}`);
  const tag = r.u16();
  let op: Operation;
  switch (tag) {
    case TAGS['keys.set']: {
      const key = r.bytes();
      const value = r.bytes();
      const condition = CONDITIONS[r.u8()];
      const expire = EXPIRE_MODES[r.u8()];
      const expireMs = r.f64();
      const get = r.u8();
      if (condition === undefined || expire === undefined || get > 1)
        throw new CodecError('bad keys.set fields');
      op = { type: 'keys.set', key, value, condition, expire, expireMs, get: get === 1 };
      break;
    }
    case TAGS['keys.del']: {
      const n = r.count(4);
      const keys: Buffer[] = [];
      for (let i = 0; i < n; i++) keys.push(r.bytes());
      op = { type: 'keys.del', keys };
      break;
    }
    case TAGS['keys.incrby']: {
      const key = r.bytes();
      op = { type: 'keys.incrby', key, delta: r.i64() };
      break;
    }
    case TAGS['keys.mset']: {
      const n = r.count(8);
      const pairs: [Buffer, Buffer][] = [];
      for (let i = 0; i < n; i++) pairs.push([r.bytes(), r.bytes()]);
      op = { type: 'keys.mset', pairs };
      break;
    }
    case TAGS['keys.flushall']:
      op = { type: 'keys.flushall' };
      break;
    case TAGS['keys.getdel']:
      op = { type: 'keys.getdel', key: r.bytes() };
      break;
    case TAGS['keys.expire']: {
      const key = r.bytes();
      const mode = EXPIRE_KINDS[r.u8()];
      const ms = r.f64();
      const condition = EXPIRE_CONDITIONS[r.u8()];
      if (mode === undefined || condition === undefined) throw new CodecError('bad keys.expire fields');
      op = { type: 'keys.expire', key, mode, ms, condition };
      break;
    }
    case TAGS['keys.persist']:
      op = { type: 'keys.persist', key: r.bytes() };
      break;
    case TAGS['sys.tick']:
      op = { type: 'sys.tick' };
      break;
    case TAGS['lock.acquire']: {
      const name = r.bytes();
      const owner = r.bytes();
      const mode = LOCK_MODES[r.u8()];
      const ttlMs = r.f64();
      const waitMs = r.f64();
      const waiterId = r.bytes().toString('utf8');
      if (mode === undefined) throw new CodecError('bad lock.acquire fields');
      op = { type: 'lock.acquire', name, owner, mode, ttlMs, waitMs, waiterId };
      break;
    }
    case TAGS['lock.release']: {
      const name = r.bytes();
      op = { type: 'lock.release', name, owner: r.bytes() };
      break;
    }
    case TAGS['lock.renew']: {
      const name = r.bytes();
      const owner = r.bytes();
      op = { type: 'lock.renew', name, owner, ttlMs: r.f64() };
      break;
    }
    case TAGS['lock.cancel']: {
      const name = r.bytes();
      op = { type: 'lock.cancel', name, waiterId: r.bytes().toString('utf8') };
      break;
    }
    case TAGS['lock.force-release']: {
      const name = r.bytes();
      const hasOwner = r.u8();
      if (hasOwner > 1) throw new CodecError('bad lock.force-release fields');
      op = { type: 'lock.force-release', name, owner: hasOwner === 1 ? r.bytes() : null };
      break;
    }
    case TAGS['lock.fenced']: {
      const name = r.bytes();
      const token = r.f64();
      const inner = decodeOperation(r.bytes());
      if (inner.type === 'lock.fenced') throw new CodecError('a fenced operation cannot be fenced again');
      op = { type: 'lock.fenced', name, token, op: inner };
      break;
    }
    case TAGS['queues.push']: {
      const queue = r.bytes();
      const n = r.count(4);
      const payloads: Buffer[] = [];
      for (let i = 0; i < n; i++) payloads.push(r.bytes());
      const hasKey = r.u8();
      if (hasKey > 1) throw new CodecError('bad queues.push fields');
      const idempotencyKey = hasKey === 1 ? r.bytes() : null;
      op = { type: 'queues.push', queue, payloads, idempotencyKey, delayMs: r.f64() };
      break;
    }
    case TAGS['queues.pop']: {
      const queue = r.bytes();
      const count = r.f64();
      const visibilityMs = r.f64();
      const consumer = r.bytes();
      const waiterId = r.text();
      op = { type: 'queues.pop', queue, count, visibilityMs, consumer, waiterId, blockMs: r.f64() };
      break;
    }
    case TAGS['queues.ack']: {
      const queue = r.bytes();
      const n = r.count(16);
      const receipts: { id: number; delivery: number }[] = [];
      for (let i = 0; i < n; i++) receipts.push({ id: r.f64(), delivery: r.f64() });
      op = { type: 'queues.ack', queue, receipts };
      break;
    }
    case TAGS['queues.nack']:
    case TAGS['queues.touch']: {
      const queue = r.bytes();
      const receipt = { id: r.f64(), delivery: r.f64() };
      const ms = r.f64();
      op =
        tag === TAGS['queues.nack']
          ? { type: 'queues.nack', queue, receipt, delayMs: ms }
          : { type: 'queues.touch', queue, receipt, visibilityMs: ms };
      break;
    }
    case TAGS['queues.cancel']: {
      const queue = r.bytes();
      op = { type: 'queues.cancel', queue, waiterId: r.text() };
      break;
    }
    case TAGS['queues.config']: {
      const queue = r.bytes();
      op = {
        type: 'queues.config',
        queue,
        visibilityMs: r.f64(),
        maxDeliveries: r.f64(),
        maxLength: r.f64(),
        idempotencyWindowMs: r.f64(),
      };
      break;
    }
    case TAGS['queues.replay']: {
      const queue = r.bytes();
      op = { type: 'queues.replay', queue, count: r.f64() };
      break;
    }
    case TAGS['cache.set']: {
      const key = r.bytes();
      const value = r.bytes();
      const ttlMs = r.f64();
      const policy = CACHE_POLICIES[r.u8()];
      if (policy === undefined || !(ttlMs >= 0)) throw new CodecError('bad cache.set fields');
      op = { type: 'cache.set', key, value, ttlMs, policy };
      break;
    }
    case TAGS['cache.del']:
      op = { type: 'cache.del', key: r.bytes() };
      break;
    case TAGS['cache.policy']: {
      const hasKey = r.u8();
      if (hasKey > 1) throw new CodecError('bad cache.policy fields');
      const key = hasKey === 1 ? r.bytes() : null;
      const policy = CACHE_POLICIES[r.u8()];
      if (policy === undefined) throw new CodecError('bad cache.policy fields');
      op = { type: 'cache.policy', key, policy };
      break;
    }
    case TAGS['cache.flushall']:
      op = { type: 'cache.flushall' };
      break;
    case TAGS['cache.lease']: {
      const leaseMs = r.f64();
      if (
        leaseMs !== 0 &&
        !(Number.isSafeInteger(leaseMs) && leaseMs >= MIN_CACHE_LEASE_MS && leaseMs <= MAX_CACHE_LEASE_MS)
      )
        throw new CodecError('bad cache.lease fields');
      op = { type: 'cache.lease', leaseMs: leaseMs === 0 ? null : leaseMs };
      break;
    }
    default:
      throw new CodecError(`unknown operation tag ${tag}`);
  }
  r.end();
  return op;
}

// ------------------------------------------------------------------ results

/**
 * Result codec: how a leader returns an applied Result to the follower that forwarded the
 * write (server/forward.ts). Layout: [format version u8][kind u8][fields...]. Kinds are
 * permanent (append only), like operation tags: nodes of different versions talk during a
 * rolling upgrade.
 */
export const RESULT_CODEC_VERSION = 1;

const RESULT_KINDS = {
  ok: 1,
  integer: 2,
  set: 3,
  value: 4,
  error: 5,
  tree: 6,
  blocked: 7,
} as const satisfies Record<Result['type'], number>;

/** Integer sub-kinds: a double-safe number, or an int64 bigint. */
const INTEGER_NUMBER = 0;
const INTEGER_BIGINT = 1;

export function encodeResult(result: Result): Buffer {
  switch (result.type) {
    case 'ok': {
      const w = resultHeader(result.type, 0);
      return w.finish();
    }
    case 'integer': {
      const w = resultHeader(result.type, 9);
      if (typeof result.value === 'bigint') {
        w.u8(INTEGER_BIGINT);
        w.i64(result.value);
      } else {
        w.u8(INTEGER_NUMBER);
        w.f64(result.value);
      }
      return w.finish();
    }
    case 'set': {
      const w = resultHeader(result.type, 6 + (result.previous?.length ?? 0));
      w.u8(result.written ? 1 : 0);
      w.u8(result.previous === null ? 0 : 1);
      if (result.previous !== null) w.bytes(result.previous);
      return w.finish();
    }
    case 'value': {
      const w = resultHeader(result.type, 5 + (result.value?.length ?? 0));
      w.u8(result.value === null ? 0 : 1);
      if (result.value !== null) w.bytes(result.value);
      return w.finish();
    }
    case 'error': {
      const message = Buffer.from(result.message, 'utf8');
      const w = resultHeader(result.type, 4 + message.length);
      w.bytes(message);
      return w.finish();
    }
    case 'tree': {
      const w = resultHeader(result.type, 64);
      writeTree(w, result.value, 0);
      return w.finish();
    }
    case 'blocked':
      return resultHeader(result.type, 0).finish();
    default: {
      const unknown: never = result;
      throw new Error(`no codec for result ${JSON.stringify(unknown)}`);
    }
  }
}

function resultHeader(type: Result['type'], bodyBytes: number): Writer {
  const w = new Writer(2 + bodyBytes);
  w.u8(RESULT_CODEC_VERSION);
  w.u8(RESULT_KINDS[type]);
  return w;
}

/** Decodes bytes written by encodeResult (any format version so far). Throws CodecError. */
export function decodeResult(data: Buffer): Result {
  const r = new Reader(data, 'result');
  const version = r.u8();
  if (version !== 1) throw new CodecError(`unknown result format version ${version}`);
  const kind = r.u8();
  let result: Result;
  switch (kind) {
    case RESULT_KINDS.ok:
      result = OK_RESULT;
      break;
    case RESULT_KINDS.integer: {
      const sub = r.u8();
      if (sub === INTEGER_BIGINT) result = { type: 'integer', value: r.i64() };
      else if (sub === INTEGER_NUMBER) result = { type: 'integer', value: r.f64() };
      else throw new CodecError('bad integer result');
      break;
    }
    case RESULT_KINDS.set: {
      const written = r.u8();
      const hasPrevious = r.u8();
      if (written > 1 || hasPrevious > 1) throw new CodecError('bad set result');
      result = { type: 'set', written: written === 1, previous: hasPrevious === 1 ? r.bytes() : null };
      break;
    }
    case RESULT_KINDS.value: {
      const hasValue = r.u8();
      if (hasValue > 1) throw new CodecError('bad value result');
      result = { type: 'value', value: hasValue === 1 ? r.bytes() : null };
      break;
    }
    case RESULT_KINDS.error:
      result = { type: 'error', message: r.bytes().toString('utf8') };
      break;
    case RESULT_KINDS.tree:
      result = { type: 'tree', value: readTree(r, 0) };
      break;
    case RESULT_KINDS.blocked:
      result = BLOCKED_RESULT;
      break;
    default:
      throw new CodecError(`unknown result kind ${kind}`);
  }
  r.end();
  return result;
}

/** Tree node kinds (permanent, append only). */
const TREE_NULL = 0;
const TREE_FALSE = 1;
const TREE_TRUE = 2;
const TREE_NUMBER = 3;
const TREE_BIGINT = 4;
const TREE_TEXT = 5;
const TREE_BYTES = 6;
const TREE_ARRAY = 7;
/** Deeper trees are a programming error on the writer and corruption on the reader. */
const MAX_TREE_DEPTH = 32;

function writeTree(w: Writer, tree: ResultTree, depth: number): void {
  if (depth > MAX_TREE_DEPTH) throw new Error('result tree too deep');
  if (tree === null) w.u8(TREE_NULL);
  else if (typeof tree === 'boolean') w.u8(tree ? TREE_TRUE : TREE_FALSE);
  else if (typeof tree === 'number') {
    w.u8(TREE_NUMBER);
    w.f64(tree);
  } else if (typeof tree === 'bigint') {
    w.u8(TREE_BIGINT);
    w.i64(tree);
  } else if (typeof tree === 'string') {
    w.u8(TREE_TEXT);
    w.bytes(Buffer.from(tree, 'utf8'));
  } else if (Buffer.isBuffer(tree)) {
    w.u8(TREE_BYTES);
    w.bytes(tree);
  } else {
    w.u8(TREE_ARRAY);
    w.u32(tree.length);
    for (const item of tree) writeTree(w, item, depth + 1);
  }
}

function readTree(r: Reader, depth: number): ResultTree {
  if (depth > MAX_TREE_DEPTH) throw new CodecError('result tree too deep');
  const kind = r.u8();
  switch (kind) {
    case TREE_NULL:
      return null;
    case TREE_FALSE:
      return false;
    case TREE_TRUE:
      return true;
    case TREE_NUMBER:
      return r.f64();
    case TREE_BIGINT:
      return r.i64();
    case TREE_TEXT:
      return r.bytes().toString('utf8');
    case TREE_BYTES:
      return r.bytes();
    case TREE_ARRAY: {
      const n = r.count(1);
      const items: ResultTree[] = [];
      for (let i = 0; i < n; i++) items.push(readTree(r, depth + 1));
      return items;
    }
    default:
      throw new CodecError(`unknown result tree kind ${kind}`);
  }
}
