/**
 * The reply encoder: writes commands/reply.ts Replies as RESP2 or RESP3 bytes into an
 * OutputBuffer, for the protocol of the client (HELLO 2|3, session.protocol).
 *
 * RESP3-only kinds take their RESP2 shapes as Redis does: map -> flat array of key, value;
 * set and push -> array; double -> bulk string; boolean -> integer 0/1; null -> nil bulk
 * ($-1); verbatim -> bulk string of the text. Nil bulk and nil array are `_` in RESP3.
 *
 * Lengths are BYTE lengths (UTF-8 for string values). Simple strings and errors cannot carry
 * CR or LF on the wire: any is replaced by a space, as Redis does for error messages.
 * The shared constant replies (OK, PONG, NIL, NIL_ARRAY) are pre-encoded.
 *
 * This module owns bytes only: it never writes to a socket and never interprets a command.
 */
import type { Protocol } from '../../commands/context.js';
import type { Reply } from '../../commands/reply.js';
import { NIL, NIL_ARRAY, OK, PONG } from '../../commands/reply.js';

/** Buffers up to this size are copied into the current chunk; bigger ones are passed by reference. */
const COPY_LIMIT_BYTES = 16 * 1024;
const CHUNK_BYTES = 16 * 1024;

const CRLF = Buffer.from('\r\n', 'latin1');

export const ENCODED_OK = Buffer.from('+OK\r\n', 'latin1');
export const ENCODED_PONG = Buffer.from('+PONG\r\n', 'latin1');
const NIL_BULK_RESP2 = Buffer.from('$-1\r\n', 'latin1');
const NIL_ARRAY_RESP2 = Buffer.from('*-1\r\n', 'latin1');
const NULL_RESP3 = Buffer.from('_\r\n', 'latin1');
const TRUE_RESP3 = Buffer.from('#t\r\n', 'latin1');
const FALSE_RESP3 = Buffer.from('#f\r\n', 'latin1');
const ZERO = Buffer.from(':0\r\n', 'latin1');
const ONE = Buffer.from(':1\r\n', 'latin1');

/**
 * Bytes waiting to be written to one socket: small pieces are copied into 16 KB chunks, large
 * buffers are kept by reference. `take()` hands everything over (for one socket write or a
 * corked writev) and starts afresh; the taken buffers are never written to again.
 */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  private takenBytes = 0;

  /** Bytes waiting to be taken. */
  get length(): number {
    return this.takenBytes + this.used;
  }

  private reserve(bytes: number): void {
    if (this.current.length - this.used >= bytes) return;
    if (this.used > 0) {
      this.chunks.push(this.current.subarray(0, this.used));
      this.takenBytes += this.used;
    }
    this.current = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, bytes));
    this.used = 0;
  }

  /** Appends a latin1 (ASCII) string: headers, numbers, simple strings. */
  ascii(text: string): void {
    this.reserve(text.length);
    this.used += this.current.write(text, this.used, 'latin1');
  }

  /**
   * Appends `<prefix><n>\r\n` for a non-negative safe integer n (headers and integers)
   * without building a string: the hot path allocates nothing here.
   */
  header(prefix: number, n: number): void {
    this.reserve(24);
    const buf = this.current;
    let at = this.used;
    buf[at++] = prefix;
    if (n < 10) {
      buf[at++] = 48 + n;
    } else {
      let digits = 1;
      for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
      let end = at + digits;
      for (let rest = n; end > at; rest = Math.floor(rest / 10)) buf[--end] = 48 + (rest % 10);
      at += digits;
    }
    buf[at++] = 13;
    buf[at++] = 10;
    this.used = at;
  }

  /** Appends a string as UTF-8 whose byte length the caller computed. */
  utf8(text: string, byteLength: number): void {
    if (byteLength > COPY_LIMIT_BYTES) {
      this.bytes(Buffer.from(text, 'utf8'));
      return;
    }
    this.reserve(byteLength);
    this.used += this.current.write(text, this.used, 'utf8');
  }

  /** Appends bytes; large buffers are referenced, not copied (the caller must not change them). */
  bytes(data: Buffer): void {
    if (data.length > COPY_LIMIT_BYTES) {
      if (this.used > 0) {
        this.chunks.push(this.current.subarray(0, this.used));
        this.takenBytes += this.used;
        this.current = this.current.subarray(this.used);
        this.used = 0;
      }
      this.chunks.push(data);
      this.takenBytes += data.length;
      return;
    }
    this.reserve(data.length);
    // TypedArray.set: Buffer.copy's argument checks cost more than copying a small reply.
    this.current.set(data, this.used);
    this.used += data.length;
  }

  /** Hands over all pending bytes as buffers to write in order; the buffer is empty after. */
  take(): Buffer[] {
    const out = this.chunks;
    if (this.used > 0) {
      out.push(this.current.subarray(0, this.used));
      // The rest of the chunk stays ours to fill; the taken part is never touched again.
      this.current = this.current.subarray(this.used);
      this.used = 0;
      if (this.current.length < 512) this.current = Buffer.allocUnsafe(CHUNK_BYTES);
    }
    this.chunks = [];
    this.takenBytes = 0;
    return out;
  }
}

/** Replaces CR and LF, which would break the framing of a simple string or error line. */
function oneLine(text: string): string {
  if (text.indexOf('\r') === -1 && text.indexOf('\n') === -1) return text;
  return text.replace(/[\r\n]/g, ' ');
}

/** Formats a double as Redis does in replies: shortest round-trip form, inf, -inf, nan. */
export function formatDouble(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  return String(value);
}

const DOLLAR = 36;
const STAR = 42;
const COLON = 58;

function writeBulk(out: OutputBuffer, value: Buffer | string): void {
  if (typeof value === 'string') {
    const byteLength = Buffer.byteLength(value, 'utf8');
    out.header(DOLLAR, byteLength);
    out.utf8(value, byteLength);
  } else {
    out.header(DOLLAR, value.length);
    out.bytes(value);
  }
  out.bytes(CRLF);
}

/** Writes one reply in the given protocol. */
export function encodeReply(out: OutputBuffer, reply: Reply, protocol: Protocol): void {
  if (reply === OK) return out.bytes(ENCODED_OK);
  if (reply === PONG) return out.bytes(ENCODED_PONG);
  if (reply === NIL) return out.bytes(protocol === 3 ? NULL_RESP3 : NIL_BULK_RESP2);
  if (reply === NIL_ARRAY) return out.bytes(protocol === 3 ? NULL_RESP3 : NIL_ARRAY_RESP2);
  switch (reply.kind) {
    case 'simple':
      return writeLine(out, '+', oneLine(reply.value));
    case 'error':
      return writeLine(out, '-', oneLine(reply.message));
    case 'integer':
      if (reply.value === 0) return out.bytes(ZERO);
      if (reply.value === 1) return out.bytes(ONE);
      if (typeof reply.value === 'number' && reply.value > 0 && Number.isSafeInteger(reply.value)) {
        return out.header(COLON, reply.value);
      }
      return out.ascii(`:${reply.value}\r\n`);
    case 'bulk':
      if (reply.value === null) return out.bytes(protocol === 3 ? NULL_RESP3 : NIL_BULK_RESP2);
      return writeBulk(out, reply.value);
    case 'array':
      if (reply.items === null) return out.bytes(protocol === 3 ? NULL_RESP3 : NIL_ARRAY_RESP2);
      return writeAggregate(out, '*', reply.items, protocol);
    case 'set':
      return writeAggregate(out, protocol === 3 ? '~' : '*', reply.items, protocol);
    case 'push':
      return writeAggregate(out, protocol === 3 ? '>' : '*', reply.items, protocol);
    case 'map':
      out.ascii(protocol === 3 ? `%${reply.entries.length}\r\n` : `*${reply.entries.length * 2}\r\n`);
      for (const [key, value] of reply.entries) {
        encodeReply(out, key, protocol);
        encodeReply(out, value, protocol);
      }
      return;
    case 'double': {
      const text = formatDouble(reply.value);
      return out.ascii(protocol === 3 ? `,${text}\r\n` : `$${text.length}\r\n${text}\r\n`);
    }
    case 'boolean':
      if (protocol === 3) return out.bytes(reply.value ? TRUE_RESP3 : FALSE_RESP3);
      return out.bytes(reply.value ? ONE : ZERO);
    case 'null':
      return out.bytes(protocol === 3 ? NULL_RESP3 : NIL_BULK_RESP2);
    case 'verbatim':
      if (protocol === 3) {
        // "=<len>\r\n" + 3-letter format + ':' + text: the length covers the prefix too.
        const format = (reply.format + '   ').slice(0, 3);
        const byteLength = Buffer.byteLength(reply.value, 'utf8');
        out.ascii(`=${byteLength + 4}\r\n${format}:`);
        out.utf8(reply.value, byteLength);
        return out.bytes(CRLF);
      }
      return writeBulk(out, reply.value);
    default: {
      const unreachable: never = reply;
      throw new Error(`unknown reply kind: ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Error and status lines may hold any UTF-8 text (a key name in a message). */
function writeLine(out: OutputBuffer, prefix: string, text: string): void {
  const byteLength = Buffer.byteLength(text, 'utf8');
  if (byteLength === text.length) return out.ascii(`${prefix}${text}\r\n`);
  out.ascii(prefix);
  out.utf8(text, byteLength);
  out.bytes(CRLF);
}

function writeAggregate(
  out: OutputBuffer,
  prefix: string,
  items: readonly Reply[],
  protocol: Protocol,
): void {
  if (prefix === '*') out.header(STAR, items.length);
  else out.ascii(`${prefix}${items.length}\r\n`);
  for (const item of items) encodeReply(out, item, protocol);
}

/** Convenience for tests and one-off writes: the whole encoding as one Buffer. */
export function encodeToBuffer(reply: Reply, protocol: Protocol): Buffer {
  const out = new OutputBuffer();
  encodeReply(out, reply, protocol);
  return Buffer.concat(out.take());
}
