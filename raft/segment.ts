/**
 * The on-disk format of the durable Raft log (raft/file-storage.ts): segment files of records,
 * and how a segment is validated when the node starts.
 *
 * A segment file: a 32-byte header, then records.
 *   header  magic "CNCDWAL1" (8) | version u32 | seq u64 | firstIndex u64 | crc32c of the 28 bytes before (4)
 *   record  length u32 | crc32c(type, payload) u32 | crc32c(the 8 bytes before) u32 | type u8 | payload
 * `length` counts type + payload. The record header carries its own checksum, so a damaged
 * length is never trusted to skip over good records. Integers are big-endian; u64 values are
 * Raft indexes and terms (< 2^53).
 *
 * Owns: byte layouts of segments and records, and the scan that classifies what it finds:
 * valid records, a torn tail (an incomplete last write: only acceptable at the end of the last
 * segment), or corruption (a checksum mismatch on a complete record, or garbage that is not an
 * incomplete write). Must never do I/O; never guess past corruption.
 */
import { crc32c } from './crc32c.js';
import { EntryType } from './messages.js';
import type { ConfState, Entry } from './messages.js';
import { StorageError } from './storage-error.js';

export const SEGMENT_MAGIC = Buffer.from('CNCDWAL1', 'latin1');
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 12;
/** A record bigger than this is treated as a damaged length, not an allocation to attempt. */
export const MAX_RECORD_BYTES = 1 << 30;

/** Record tags. Stored on disk: never renumber, only add. */
export enum RecordType {
  /** term u64 | index u64 | entry type u8 | data. Replaces any stored entry at index or after. */
  Entry = 1,
  /** commit u64. */
  Commit = 2,
  /** JSON SegmentState: the state at the start of a segment (first record of every segment). */
  State = 3,
  /** JSON SnapshotRef: a snapshot the application took (createSnapshot); the log is kept. */
  Snapshot = 4,
  /** JSON SnapshotRef: a snapshot received from the leader (applySnapshot); replaces the log. */
  Reset = 5,
  /** index u64 | term u64: entries up to index dropped (compact). */
  Compact = 6,
  /** JSON ConfState: the membership at the applied index (setConfState). */
  ConfState = 7,
}

/** A snapshot as the log refers to it; its data is in snap/<index>-<term>.snap. */
export interface SnapshotRef {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** Everything replay needs that earlier (possibly deleted) segments established. */
export interface SegmentState {
  readonly snapshot: SnapshotRef;
  readonly compactIndex: number;
  readonly compactTerm: number;
  readonly commit: number;
  readonly confState: ConfState | null;
  readonly lastIndex: number;
}

export interface SegmentHeader {
  readonly seq: number;
  readonly firstIndex: number;
}

export interface RawRecord {
  readonly type: RecordType;
  readonly payload: Buffer;
  /** Byte offset of the record header in the file. */
  readonly offset: number;
}

export function segmentName(seq: number): string {
  return `${seq.toString(16).padStart(16, '0')}.wal`;
}

export function parseSegmentName(name: string): number | null {
  return /^[0-9a-f]{16}\.wal$/.test(name) ? parseInt(name.slice(0, 16), 16) : null;
}

/** Big-endian u32 by byte stores (hot path: every WAL record; Uint8Array keeps the low 8 bits). */
function putU32(b: Buffer, v: number, at: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

function putU64(b: Buffer, v: number, at: number): void {
  putU32(b, Math.floor(v / 0x100000000), at);
  putU32(b, v >>> 0, at + 4);
}

function getU64(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * 0x100000000 + b.readUInt32BE(at + 4);
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32BE(SEGMENT_VERSION, 8);
  putU64(b, h.seq, 12);
  putU64(b, h.firstIndex, 20);
  b.writeUInt32BE(crc32c(b.subarray(0, 28)), 28);
  return b;
}

/** One record, header included, ready to append. */
export function encodeRecord(type: RecordType, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + 1 + payload.byteLength);
  b.writeUInt32BE(1 + payload.byteLength, 0);
  b[RECORD_HEADER_BYTES] = type;
  b.set(payload, RECORD_HEADER_BYTES + 1);
  b.writeUInt32BE(crc32c(b.subarray(RECORD_HEADER_BYTES)), 4);
  b.writeUInt32BE(crc32c(b.subarray(0, 8)), 8);
  return b;
}

/** encodeRecord(RecordType.Entry, term | index | type | data), built in place (one copy of the data: hot path). */
export function encodeEntry(e: Entry): Buffer {
  const payloadBytes = 17 + e.data.byteLength;
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + 1 + payloadBytes);
  putU32(b, 1 + payloadBytes, 0);
  const at = RECORD_HEADER_BYTES + 1;
  b[RECORD_HEADER_BYTES] = RecordType.Entry;
  putU64(b, e.term, at);
  putU64(b, e.index, at + 8);
  b[at + 16] = e.type;
  b.set(e.data, at + 17);
  putU32(b, crc32c(b.subarray(RECORD_HEADER_BYTES)), 4);
  putU32(b, crc32c(b.subarray(0, 8)), 8);
  return b;
}

export function decodeEntry(p: Buffer): Entry {
  const type = p[16];
  if (type !== EntryType.Normal && type !== EntryType.ConfChange && type !== EntryType.Empty) {
    throw new Error(`bad entry type ${String(type)}`);
  }
  // Copy: the entry outlives the file buffer it was read from, which may be large.
  return { term: getU64(p, 0), index: getU64(p, 8), type, data: new Uint8Array(p.subarray(17)) };
}

export function encodeU64Pair(type: RecordType, a: number, b?: number): Buffer {
  const p = Buffer.alloc(b === undefined ? 8 : 16);
  putU64(p, a, 0);
  if (b !== undefined) putU64(p, b, 8);
  return encodeRecord(type, p);
}

export function decodeU64(p: Buffer, at: number): number {
  if (p.length < at + 8) throw new Error(`payload of ${p.length} bytes too short`);
  return getU64(p, at);
}

export function encodeJson(type: RecordType, value: unknown): Buffer {
  return encodeRecord(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

function isConfState(v: unknown): v is ConfState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const ids = (x: unknown): boolean => Array.isArray(x) && x.every((s) => typeof s === 'string');
  return ids(o['voters']) && ids(o['learners']);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function decodeConfState(p: Buffer): ConfState {
  const v: unknown = JSON.parse(p.toString('utf8'));
  if (!isConfState(v)) throw new Error('not a ConfState');
  return { voters: [...v.voters], learners: [...v.learners] };
}

export function decodeSnapshotRef(p: Buffer): SnapshotRef {
  const v: unknown = JSON.parse(p.toString('utf8'));
  if (typeof v !== 'object' || v === null) throw new Error('not a snapshot reference');
  const o = v as Record<string, unknown>;
  if (!isIndex(o['index']) || !isIndex(o['term']) || !isConfState(o['confState'])) {
    throw new Error('not a snapshot reference');
  }
  return { index: o['index'], term: o['term'], confState: o['confState'] };
}

export function decodeSegmentState(p: Buffer): SegmentState {
  const v: unknown = JSON.parse(p.toString('utf8'));
  if (typeof v !== 'object' || v === null) throw new Error('not a segment state');
  const o = v as Record<string, unknown>;
  const snapshot = decodeSnapshotRef(Buffer.from(JSON.stringify(o['snapshot'] ?? null), 'utf8'));
  const cs = o['confState'];
  if (
    !isIndex(o['compactIndex']) ||
    !isIndex(o['compactTerm']) ||
    !isIndex(o['commit']) ||
    !isIndex(o['lastIndex']) ||
    (cs !== null && !isConfState(cs))
  ) {
    throw new Error('not a segment state');
  }
  return {
    snapshot,
    compactIndex: o['compactIndex'],
    compactTerm: o['compactTerm'],
    commit: o['commit'],
    confState: cs,
    lastIndex: o['lastIndex'],
  };
}

export interface ScanResult {
  readonly header: SegmentHeader;
  readonly records: RawRecord[];
  /** Bytes of the file that hold the header and valid records. */
  readonly validBytes: number;
  /** Bytes after validBytes that are an incomplete final write (only when `last`). */
  readonly tornBytes: number;
}

function allZero(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Validates a whole segment file. In the LAST segment an incomplete record at the end (the
 * header or the payload runs past the end of the file), or a tail of zero bytes (a file
 * extended by a write that never landed), is a torn write: reported in `tornBytes` for the
 * caller to truncate. Anything else that fails a checksum is corruption: throws a StorageError
 * naming the file and the byte offset of the bad record.
 */
export function scanSegment(buf: Buffer, file: string, last: boolean): ScanResult {
  const corrupt = (offset: number, what: string): StorageError =>
    new StorageError(
      `raft storage: corrupt ${file} at byte offset ${offset}: ${what}; refusing to start ` +
        `(restore this node's data directory from a peer, or remove the node and re-add it)`,
      { file, offset },
    );
  if (buf.length < SEGMENT_HEADER_BYTES) {
    if (last)
      return { header: { seq: -1, firstIndex: -1 }, records: [], validBytes: 0, tornBytes: buf.length };
    throw corrupt(0, `segment header cut short (${buf.length} bytes)`);
  }
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) {
    if (last && allZero(buf, 0)) {
      return { header: { seq: -1, firstIndex: -1 }, records: [], validBytes: 0, tornBytes: buf.length };
    }
    throw corrupt(0, 'not a Concord log segment (bad magic)');
  }
  if (crc32c(buf.subarray(0, 28)) !== buf.readUInt32BE(28))
    throw corrupt(0, 'segment header checksum mismatch');
  const version = buf.readUInt32BE(8);
  if (version !== SEGMENT_VERSION) throw corrupt(8, `unknown segment version ${version}`);
  const header = { seq: getU64(buf, 12), firstIndex: getU64(buf, 20) };
  const records: RawRecord[] = [];
  let o = SEGMENT_HEADER_BYTES;
  const torn = (): ScanResult => ({ header, records, validBytes: o, tornBytes: buf.length - o });
  while (o < buf.length) {
    const left = buf.length - o;
    if (left < RECORD_HEADER_BYTES) {
      if (last) return torn();
      throw corrupt(o, `record header cut short (${left} bytes left)`);
    }
    if (crc32c(buf.subarray(o, o + 8)) !== buf.readUInt32BE(o + 8)) {
      if (last && allZero(buf, o)) return torn();
      throw corrupt(o, 'record header checksum mismatch');
    }
    const length = buf.readUInt32BE(o);
    if (length < 1 || length > MAX_RECORD_BYTES) throw corrupt(o, `impossible record length ${length}`);
    const end = o + RECORD_HEADER_BYTES + length;
    if (end > buf.length) {
      if (last) return torn();
      throw corrupt(o, `record of ${length} bytes runs past the end of the file`);
    }
    const body = buf.subarray(o + RECORD_HEADER_BYTES, end);
    if (crc32c(body) !== buf.readUInt32BE(o + 4)) throw corrupt(o, 'record checksum mismatch');
    const type = body[0]!;
    if (!(type in RecordType) || typeof RecordType[type] !== 'string')
      throw corrupt(o, `unknown record type ${type}`);
    records.push({ type, payload: body.subarray(1), offset: o });
    o = end;
  }
  return { header, records, validBytes: o, tornBytes: 0 };
}
