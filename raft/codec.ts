/**
 * The Raft message codec: every raft/messages.ts `Message` (entries and snapshots included) as
 * bytes, for the peer transport. One exact-size Buffer per message, no JSON, no intermediate
 * copies: the size is computed first, then the fields are written in place.
 *
 * Layout, format version 1 (integers big-endian; u64 = two u32 halves, at most 2^53 - 1):
 *   u8 version | u8 type code | u8 flags (1 reject, 2 snapshot, 4 context)
 *   str from | str to                              (str = u16 byte length + UTF-8)
 *   u64 term | logTerm | index | commit | rejectHint | hintTerm
 *   u32 entry count, then per entry: u64 term | u64 index | u8 entry type | u32 length | data
 *   [flag 2] u64 index | u64 term | u16 voters, str... | u16 learners, str... | u32 length | data
 *   [flag 4] u32 length | context bytes
 *
 * Owns the message type codes. Codes are permanent: a code is never renumbered or reused, a
 * field is never reordered; a layout change means a new format version that decoders accept
 * alongside the old ones. Must never: do I/O, copy payloads on decode (the decoded message's
 * byte fields are views of the input; the caller hands over a buffer it owns), or accept
 * trailing, truncated or out-of-range input silently (CodecError names the field and offset).
 */
import assert from 'node:assert/strict';
import { EntryType, MessageType } from './messages.js';
import type { ConfState, Entry, Message, NodeId, Snapshot } from './messages.js';

export const MESSAGE_CODEC_VERSION = 1;

/** Permanent wire codes of the message types. Append only. */
const TYPE_CODES = {
  [MessageType.PreVote]: 1,
  [MessageType.PreVoteResp]: 2,
  [MessageType.Vote]: 3,
  [MessageType.VoteResp]: 4,
  [MessageType.App]: 5,
  [MessageType.AppResp]: 6,
  [MessageType.Heartbeat]: 7,
  [MessageType.HeartbeatResp]: 8,
  [MessageType.Snap]: 9,
  [MessageType.ReadIndex]: 10,
  [MessageType.ReadIndexResp]: 11,
  [MessageType.TimeoutNow]: 12,
  [MessageType.Prop]: 13,
} as const satisfies Record<MessageType, number>;

const TYPES_BY_CODE: (MessageType | undefined)[] = [];
for (const [type, code] of Object.entries(TYPE_CODES)) TYPES_BY_CODE[code] = type as MessageType;

/** Entry types are written as their (permanent) enum values. */
const ENTRY_TYPES_BY_CODE: (EntryType | undefined)[] = [];
for (const t of [EntryType.Normal, EntryType.ConfChange, EntryType.Empty]) ENTRY_TYPES_BY_CODE[t] = t;

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_CONTEXT = 4;
const KNOWN_FLAGS = FLAG_REJECT | FLAG_SNAPSHOT | FLAG_CONTEXT;

const TWO_32 = 0x1_0000_0000;
/** Fixed part: version, type, flags, six u64, entry count (the two ids are counted apart). */
const FIXED_BYTES = 3 + 6 * 8 + 4;
/** Per entry besides its data: term, index, type, data length. */
const ENTRY_FIXED_BYTES = 8 + 8 + 1 + 4;
const MAX_STRING_BYTES = 0xffff;

/** Bytes that are not a valid message: truncated, corrupt, or of an unknown format version. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

// The checks below run for every message and entry: their messages are built only on failure.

function stringBytes(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_STRING_BYTES) assert.fail(`raft codec: string of ${n} bytes exceeds ${MAX_STRING_BYTES}`);
  return 2 + n;
}

function confStateBytes(cs: ConfState): number {
  assert.ok(cs.voters.length <= 0xffff && cs.learners.length <= 0xffff, 'raft codec: membership too large');
  let n = 4;
  for (const v of cs.voters) n += stringBytes(v);
  for (const l of cs.learners) n += stringBytes(l);
  return n;
}

/** The exact number of bytes `encodeMessageInto` writes for `m`. */
export function encodedMessageSize(m: Message): number {
  let n = FIXED_BYTES + stringBytes(m.from) + stringBytes(m.to);
  for (const e of m.entries) n += ENTRY_FIXED_BYTES + e.data.byteLength;
  if (m.snapshot !== null)
    n += 16 + confStateBytes(m.snapshot.metadata.confState) + 4 + m.snapshot.data.byteLength;
  if (m.context !== null) n += 4 + m.context.byteLength;
  return n;
}

function writeU64(buf: Buffer, v: number, at: number): number {
  if (!(Number.isSafeInteger(v) && v >= 0))
    assert.fail(`raft codec: ${v} is not a non-negative safe integer`);
  buf.writeUInt32BE(Math.floor(v / TWO_32), at);
  buf.writeUInt32BE(v >>> 0, at + 4);
  return at + 8;
}

function writeString(buf: Buffer, s: string, at: number): number {
  const n = buf.write(s, at + 2, 'utf8');
  buf.writeUInt16BE(n, at);
  return at + 2 + n;
}

function writeBytes(buf: Buffer, data: Uint8Array, at: number): number {
  buf.writeUInt32BE(data.byteLength, at);
  buf.set(data, at + 4);
  return at + 4 + data.byteLength;
}

/**
 * Writes `m` into `buf` at `offset` (which must have `encodedMessageSize(m)` bytes free) and
 * returns the offset after it. A message with a negative or fractional number is a broken
 * invariant (assert), not a codec error. `size`: encodedMessageSize(m), when the caller has it.
 */
export function encodeMessageInto(
  m: Message,
  buf: Buffer,
  offset: number,
  size: number = encodedMessageSize(m),
): number {
  const start = offset;
  let at = offset;
  buf[at++] = MESSAGE_CODEC_VERSION;
  buf[at++] = TYPE_CODES[m.type];
  buf[at++] =
    (m.reject ? FLAG_REJECT : 0) |
    (m.snapshot !== null ? FLAG_SNAPSHOT : 0) |
    (m.context !== null ? FLAG_CONTEXT : 0);
  at = writeString(buf, m.from, at);
  at = writeString(buf, m.to, at);
  at = writeU64(buf, m.term, at);
  at = writeU64(buf, m.logTerm, at);
  at = writeU64(buf, m.index, at);
  at = writeU64(buf, m.commit, at);
  at = writeU64(buf, m.rejectHint, at);
  at = writeU64(buf, m.hintTerm, at);
  buf.writeUInt32BE(m.entries.length, at);
  at += 4;
  for (const e of m.entries) {
    at = writeU64(buf, e.term, at);
    at = writeU64(buf, e.index, at);
    buf[at++] = e.type;
    at = writeBytes(buf, e.data, at);
  }
  if (m.snapshot !== null) {
    const { metadata, data } = m.snapshot;
    at = writeU64(buf, metadata.index, at);
    at = writeU64(buf, metadata.term, at);
    buf.writeUInt16BE(metadata.confState.voters.length, at);
    at += 2;
    for (const v of metadata.confState.voters) at = writeString(buf, v, at);
    buf.writeUInt16BE(metadata.confState.learners.length, at);
    at += 2;
    for (const l of metadata.confState.learners) at = writeString(buf, l, at);
    at = writeBytes(buf, data, at);
  }
  if (m.context !== null) at = writeBytes(buf, m.context, at);
  if (at - start !== size) assert.fail('raft codec: size computation disagrees with the encoder');
  return at;
}

/** `m` as one exact-size Buffer. */
export function encodeMessage(m: Message): Buffer {
  const buf = Buffer.allocUnsafe(encodedMessageSize(m));
  encodeMessageInto(m, buf, 0);
  return buf;
}

/** Sequential reader with bounds checks; every failure names the field and the offset. */
class Reader {
  private pos = 0;
  private readonly buf: Buffer;

  constructor(input: Uint8Array) {
    this.buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }

  private need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) {
      throw new CodecError(
        `raft codec: truncated message: ${field} needs ${n} bytes at offset ${this.pos}, ${this.buf.length - this.pos} left`,
      );
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(field: string): number {
    this.need(8, field);
    const hi = this.buf.readUInt32BE(this.pos);
    if (hi > 0x1f_ffff) throw new CodecError(`raft codec: ${field} at offset ${this.pos} exceeds 2^53 - 1`);
    const v = hi * TWO_32 + this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return v;
  }

  string(field: string): string {
    const n = this.u16(field);
    this.need(n, field);
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    // Node ids are nearly always ASCII: decode those without the validating decoder.
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (this.buf[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return this.buf.toString('latin1', start, end);
    try {
      return utf8Fatal.decode(this.buf.subarray(start, end));
    } catch (err) {
      throw new CodecError(`raft codec: ${field} at offset ${start} is not valid UTF-8`, { cause: err });
    }
  }

  /** A view of the next length-prefixed bytes (no copy). */
  bytes(field: string): Uint8Array {
    const n = this.u32(field);
    this.need(n, field);
    const view = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }

  /** A count of items of at least `minItemBytes` each: bounded by what is left. */
  count(n: number, minItemBytes: number, field: string): number {
    if (n * minItemBytes > this.buf.length - this.pos) {
      throw new CodecError(`raft codec: ${field} count ${n} at offset ${this.pos} exceeds the message size`);
    }
    return n;
  }

  offset(): number {
    return this.pos;
  }

  end(): void {
    if (this.pos !== this.buf.length) {
      throw new CodecError(`raft codec: ${this.buf.length - this.pos} trailing bytes at offset ${this.pos}`);
    }
  }
}

function readConfState(r: Reader): ConfState {
  const voters: NodeId[] = [];
  const nv = r.count(r.u16('voter count'), 2, 'voter');
  for (let i = 0; i < nv; i++) voters.push(r.string('voter'));
  const learners: NodeId[] = [];
  const nl = r.count(r.u16('learner count'), 2, 'learner');
  for (let i = 0; i < nl; i++) learners.push(r.string('learner'));
  return { voters, learners };
}

/**
 * Decodes one message that fills `input` exactly. Byte fields (entry data, snapshot data,
 * context) are views of `input`: the caller must own it and not reuse it. Throws CodecError
 * on anything malformed, naming the field and offset.
 */
export function decodeMessage(input: Uint8Array): Message {
  const r = new Reader(input);
  const version = r.u8('version');
  if (version !== MESSAGE_CODEC_VERSION) {
    throw new CodecError(
      `raft codec: unknown format version ${version} (this build reads ${MESSAGE_CODEC_VERSION})`,
    );
  }
  const code = r.u8('type');
  const type = TYPES_BY_CODE[code];
  if (type === undefined) throw new CodecError(`raft codec: unknown message type code ${code} at offset 1`);
  const flags = r.u8('flags');
  if ((flags & ~KNOWN_FLAGS) !== 0)
    throw new CodecError(`raft codec: unknown flags 0x${flags.toString(16)} at offset 2`);
  const from = r.string('from');
  const to = r.string('to');
  const term = r.u64('term');
  const logTerm = r.u64('logTerm');
  const index = r.u64('index');
  const commit = r.u64('commit');
  const rejectHint = r.u64('rejectHint');
  const hintTerm = r.u64('hintTerm');
  const count = r.count(r.u32('entry count'), ENTRY_FIXED_BYTES, 'entry');
  const entries: Entry[] = new Array<Entry>(count);
  for (let i = 0; i < count; i++) {
    const eTerm = r.u64('entry term');
    const eIndex = r.u64('entry index');
    const at = r.offset();
    const eCode = r.u8('entry type');
    const eType = ENTRY_TYPES_BY_CODE[eCode];
    if (eType === undefined) throw new CodecError(`raft codec: unknown entry type ${eCode} at offset ${at}`);
    entries[i] = { term: eTerm, index: eIndex, type: eType, data: r.bytes('entry data') };
  }
  let snapshot: Snapshot | null = null;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    const sIndex = r.u64('snapshot index');
    const sTerm = r.u64('snapshot term');
    const confState = readConfState(r);
    snapshot = { metadata: { index: sIndex, term: sTerm, confState }, data: r.bytes('snapshot data') };
  }
  const context = (flags & FLAG_CONTEXT) !== 0 ? r.bytes('context') : null;
  r.end();
  return {
    type,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: (flags & FLAG_REJECT) !== 0,
    rejectHint,
    hintTerm,
    snapshot,
    context,
  };
}
