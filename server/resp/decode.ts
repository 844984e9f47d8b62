/**
 * The request decoder: turns the bytes a client sends into requests (argv as Buffers), one
 * connection's state at a time. It understands what a Redis server accepts:
 * - RESP multibulk requests (`*<n>\r\n` then n times `$<len>\r\n<bytes>\r\n`), RESP2 and RESP3
 *   alike (a RESP3 client still sends requests as arrays of bulk strings);
 * - inline commands (a line of space-separated words, what telnet, nc and redis-benchmark's
 *   PING_INLINE send), with Redis's quoting rules (sdssplitargs): "..." with \n \r \t \b \a
 *   \xHH escapes, '...' with \' only, a closing quote must be followed by a space or the end;
 * - pipelining: any number of requests per chunk, and a request split across chunks at any byte.
 *
 * Written by hand rather than with the redis-parser package: redis-parser parses REPLIES for
 * clients, so it cannot read inline commands, and it allocates a bulk's declared length before
 * checking it against a server's limits. Here a header never allocates: `*2000000000` creates
 * nothing until arguments actually arrive (argv grows as they do), and a `$<len>` payload is
 * kept as the chunks it came in until all of it is there (no O(n^2) re-copying).
 *
 * Speed: lines are found with Buffer.indexOf, numbers are parsed from the bytes, arguments are
 * `subarray` views of the received chunks (no copy, no string conversion of payloads). A
 * consumer that keeps an argument beyond the request (a stored value) should copy it
 * (`Buffer.from(arg)`), or it pins the whole received chunk in memory.
 *
 * Limits and error texts are Redis's (src/networking.c processMultibulkBuffer and
 * processInlineBuffer); each framing error is final: the decoder stops and the connection
 * sends the error, then closes (as Redis does). This module must never touch a socket, log,
 * or know what a command means.
 */

/** Redis PROTO_INLINE_MAX_SIZE: an inline request, or a `*`/`$` header line, up to 64 KB. */
export const INLINE_MAX_BYTES = 64 * 1024;
/** Redis: a multibulk count above INT_MAX is an invalid multibulk length. */
export const MULTIBULK_MAX_LENGTH = 2147483647;
/** Redis authRequired(c): before AUTH a request may carry at most 10 arguments ... */
export const UNAUTHENTICATED_MAX_ARGS = 10;
/** ... each of at most 16384 bytes. */
export const UNAUTHENTICATED_MAX_BULK_BYTES = 16384;
/** What one parsed argument costs beyond its bytes (a Buffer view object), for heldBytes(). */
export const ARG_OVERHEAD_BYTES = 64;
/** Redis proto-max-bulk-len default (512 MB). */
export const DEFAULT_PROTO_MAX_BULK_LEN = 512 * 1024 * 1024;

export type ProtocolErrorCode =
  | 'too-big-inline'
  | 'unbalanced-quotes'
  | 'too-big-mbulk-count'
  | 'invalid-mbulk-length'
  | 'unauthenticated-mbulk-length'
  | 'too-big-bulk-count'
  | 'expected-dollar'
  | 'invalid-bulk-length'
  | 'unauthenticated-bulk-length';

/** A framing error: the message is the text after "-" of the reply Redis sends. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface DecoderLimits {
  /** proto-max-bulk-len: the largest argument accepted, in bytes. */
  protoMaxBulkLen: number;
  /** Whether the client must still authenticate (requirepass set and no AUTH yet). */
  authRequired: boolean;
}

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const EMPTY = Buffer.alloc(0);

/** Sentinel for "not a valid integer" (Redis string2ll failing). */
const NOT_A_NUMBER = Number.NaN;

/**
 * Parses bytes [start, end) as Redis's string2ll does: optional '-', no '+', no leading
 * zeros (except "0"), no spaces, fewer than 21 characters, within a signed 64-bit integer.
 * Returns NaN when string2ll would fail. Values beyond 2^53 are returned approximately (every
 * caller compares them with limits far below that), except that the 64-bit range check is exact.
 */
export function parseRedisInteger(buf: Buffer, start: number, end: number): number {
  const length = end - start;
  if (length <= 0 || length >= 21) return NOT_A_NUMBER;
  let p = start;
  if (length === 1 && buf[p] === 48) return 0;
  let negative = false;
  if (buf[p] === 45) {
    negative = true;
    p++;
    if (p === end) return NOT_A_NUMBER;
  }
  const first = buf[p]!;
  if (first < 49 || first > 57) return NOT_A_NUMBER;
  let value = first - 48;
  p++;
  for (; p < end; p++) {
    const c = buf[p]!;
    if (c < 48 || c > 57) return NOT_A_NUMBER;
    value = value * 10 + (c - 48);
  }
  const digits = end - start - (negative ? 1 : 0);
  if (digits >= 19) {
    // Near the 64-bit limits a double is not exact: decide the range with BigInt (rare path).
    const exact = BigInt(buf.toString('latin1', start, end));
    if (exact > 9223372036854775807n || exact < -9223372036854775808n) return NOT_A_NUMBER;
  }
  return negative ? -value : value;
}

/**
 * Splits an inline request line into arguments with Redis's sdssplitargs rules. Returns null
 * for unbalanced quotes (or a closing quote followed by something other than a space).
 * Stops at a NUL byte as the C code does.
 */
export function splitInlineArgs(line: Buffer): Buffer[] | null {
  const args: Buffer[] = [];
  const end = line.length;
  let p = 0;
  const at = (i: number): number => (i < end ? line[i]! : 0);
  while (true) {
    while (p < end && isSpace(at(p))) p++;
    if (p >= end || at(p) === 0) return args;
    // Fast path: an unquoted word without escapes is a view of the line.
    let q = p;
    while (q < end) {
      const c = line[q]!;
      if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0 || c === 34 || c === 39) break;
      q++;
    }
    const c = at(q);
    if (c !== 34 && c !== 39) {
      args.push(line.subarray(p, q));
      p = q;
      continue;
    }
    // Slow path: the word has quotes somewhere; build it byte by byte.
    const bytes: number[] = [];
    for (let i = p; i < q; i++) bytes.push(line[i]!);
    p = q;
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const ch = at(p);
      if (inDouble) {
        if (ch === 92 && at(p + 1) === 120 && isHex(at(p + 2)) && isHex(at(p + 3))) {
          bytes.push(hexValue(at(p + 2)) * 16 + hexValue(at(p + 3)));
          p += 3;
        } else if (ch === 92 && at(p + 1) !== 0) {
          p++;
          const e = at(p);
          bytes.push(e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e);
        } else if (ch === 34) {
          const next = at(p + 1);
          if (next !== 0 && !isSpace(next)) return null;
          done = true;
        } else if (ch === 0) {
          return null;
        } else {
          bytes.push(ch);
        }
      } else if (inSingle) {
        if (ch === 92 && at(p + 1) === 39) {
          p++;
          bytes.push(39);
        } else if (ch === 39) {
          const next = at(p + 1);
          if (next !== 0 && !isSpace(next)) return null;
          done = true;
        } else if (ch === 0) {
          return null;
        } else {
          bytes.push(ch);
        }
      } else if (ch === 32 || ch === 10 || ch === 13 || ch === 9 || ch === 0) {
        done = true;
      } else if (ch === 34) {
        inDouble = true;
      } else if (ch === 39) {
        inSingle = true;
      } else {
        bytes.push(ch);
      }
      if (p < end && at(p) !== 0) p++;
      else if (!done) {
        // End of line inside a word outside quotes ends the word; inside quotes it is an error.
        if (inDouble || inSingle) return null;
        done = true;
      }
    }
    args.push(Buffer.from(bytes));
  }
}

function isSpace(c: number): boolean {
  // C isspace: space, \t, \n, \v, \f, \r.
  return c === 32 || (c >= 9 && c <= 13);
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

function hexValue(c: number): number {
  if (c <= 57) return c - 48;
  if (c >= 97) return c - 87;
  return c - 55;
}

/**
 * One connection's request decoder. Usage: `feed(chunk)` for each received chunk, then call
 * `next()` until it returns null; when it returns null and `error` is set, the stream is
 * broken (send the error, close). Not reentrant; no I/O.
 */
export class RequestDecoder {
  /** The framing error that stopped this decoder, if any. */
  error: ProtocolError | null = null;

  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Chunks received after `buf` and not merged into it yet (only while waiting for data). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Multibulk in progress: arguments still expected (0 outside a multibulk). */
  private remainingArgs = 0;
  private argv: Buffer[] = [];
  /** Length of the bulk being read, -1 before its `$` line. */
  private bulkLength = -1;
  /** Bytes of `argv` so far, with ARG_OVERHEAD_BYTES each. */
  private argvBytes = 0;

  constructor(readonly limits: DecoderLimits) {}

  /** Bytes received and not yet consumed as requests (CLIENT LIST qbuf). */
  bufferedBytes(): number {
    return this.buf.length - this.pos + this.pendingBytes;
  }

  /**
   * Memory this decoder holds for the client: unconsumed input plus the arguments of the
   * request in progress (each counted with ARG_OVERHEAD_BYTES for its view object). Redis
   * checks client-query-buffer-limit against the same sum (querybuf + argv_len_sum), so a
   * `*2000000000` request fed one tiny argument at a time cannot grow without bound.
   */
  heldBytes(): number {
    return this.bufferedBytes() + this.argvBytes;
  }

  /** Whether a request has started but is not complete yet. */
  midRequest(): boolean {
    return this.remainingArgs > 0 || this.bufferedBytes() > 0;
  }

  /** Adds a received chunk. The decoder keeps references to it (argv are views). */
  feed(chunk: Buffer): void {
    if (chunk.length === 0 || this.error !== null) return;
    if (this.pos >= this.buf.length && this.pendingBytes === 0) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
  }

  /**
   * The next complete request, or null when more bytes are needed or the stream is broken
   * (`error` set). Empty requests (`*0`, `*-1`, blank inline lines) are skipped as in Redis.
   */
  next(): Buffer[] | null {
    while (this.error === null) {
      if (this.remainingArgs === 0) {
        if (this.bufferedBytes() === 0) return null;
        this.mergeIfPending();
        if (this.buf[this.pos] === STAR) {
          const started = this.readMultibulkHeader();
          if (started === null) return null; // need more, or error
          if (!started) continue; // empty multibulk: skipped
        } else {
          const inline = this.readInline();
          if (inline === null) return null;
          if (inline.length === 0) continue; // blank line: ignored
          return inline;
        }
      }
      const request = this.readBulks();
      if (request !== null) return request;
      return null;
    }
    return null;
  }

  /** Joins `pending` into `buf` (called only when the unconsumed part must be contiguous). */
  private mergeIfPending(): void {
    if (this.pendingBytes === 0) return;
    const parts = [this.buf.subarray(this.pos), ...this.pending];
    this.buf = Buffer.concat(parts, this.buf.length - this.pos + this.pendingBytes);
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
  }

  private fail(code: ProtocolErrorCode, message: string): null {
    this.error = new ProtocolError(code, message);
    // Release the input: nothing more will be decoded.
    this.buf = EMPTY;
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.argv = [];
    this.argvBytes = 0;
    return null;
  }

  private consumed(): void {
    if (this.pos >= this.buf.length) {
      this.buf = EMPTY;
      this.pos = 0;
    }
  }

  /** Redis processInlineBuffer. Returns the arguments (maybe none), or null. */
  private readInline(): Buffer[] | null {
    const newline = this.buf.indexOf(LF, this.pos);
    if (newline === -1) {
      if (this.buf.length - this.pos > INLINE_MAX_BYTES) {
        return this.fail('too-big-inline', 'ERR Protocol error: too big inline request');
      }
      return null;
    }
    let lineEnd = newline;
    if (lineEnd !== this.pos && this.buf[lineEnd - 1] === CR) lineEnd--;
    const line = this.buf.subarray(this.pos, lineEnd);
    const args = splitInlineArgs(line);
    if (args === null)
      return this.fail('unbalanced-quotes', 'ERR Protocol error: unbalanced quotes in request');
    this.pos = newline + 1;
    this.consumed();
    return args;
  }

  /**
   * Reads a `*<n>\r\n` line. Returns true when a multibulk with arguments started, false when
   * it was empty (n <= 0, skipped), null when more bytes are needed or on error.
   */
  private readMultibulkHeader(): boolean | null {
    const cr = this.buf.indexOf(CR, this.pos);
    if (cr === -1) {
      if (this.buf.length - this.pos > INLINE_MAX_BYTES) {
        return this.fail('too-big-mbulk-count', 'ERR Protocol error: too big mbulk count string');
      }
      return null;
    }
    // The buffer must also hold the byte after '\r' (Redis does not check that it is '\n').
    if (cr + 1 >= this.buf.length) return null;
    const count = parseRedisInteger(this.buf, this.pos + 1, cr);
    if (Number.isNaN(count) || count > MULTIBULK_MAX_LENGTH) {
      return this.fail('invalid-mbulk-length', 'ERR Protocol error: invalid multibulk length');
    }
    if (count > UNAUTHENTICATED_MAX_ARGS && this.limits.authRequired) {
      return this.fail(
        'unauthenticated-mbulk-length',
        'ERR Protocol error: unauthenticated multibulk length',
      );
    }
    this.pos = cr + 2;
    this.consumed();
    if (count <= 0) return false;
    this.remainingArgs = count;
    this.argv = [];
    this.argvBytes = 0;
    this.bulkLength = -1;
    return true;
  }

  /** Redis processMultibulkBuffer's loop over `$` bulks: the request, or null. */
  private readBulks(): Buffer[] | null {
    while (this.remainingArgs > 0) {
      if (this.bulkLength === -1) {
        this.mergeIfPending();
        const cr = this.buf.indexOf(CR, this.pos);
        if (cr === -1) {
          if (this.buf.length - this.pos > INLINE_MAX_BYTES) {
            return this.fail('too-big-bulk-count', 'ERR Protocol error: too big bulk count string');
          }
          return null;
        }
        if (cr + 1 >= this.buf.length) return null;
        const first = this.buf[this.pos]!;
        if (first !== DOLLAR) {
          return this.fail(
            'expected-dollar',
            `ERR Protocol error: expected '$', got '${String.fromCharCode(first)}'`,
          );
        }
        const length = parseRedisInteger(this.buf, this.pos + 1, cr);
        if (Number.isNaN(length) || length < 0 || length > this.limits.protoMaxBulkLen) {
          return this.fail('invalid-bulk-length', 'ERR Protocol error: invalid bulk length');
        }
        if (length > UNAUTHENTICATED_MAX_BULK_BYTES && this.limits.authRequired) {
          return this.fail('unauthenticated-bulk-length', 'ERR Protocol error: unauthenticated bulk length');
        }
        this.pos = cr + 2;
        this.consumed();
        this.bulkLength = length;
      }
      // The payload and its trailing CRLF (skipped unchecked, as Redis does).
      const needed = this.bulkLength + 2;
      if (this.bufferedBytes() < needed) return null;
      if (this.buf.length - this.pos < needed) this.mergeIfPending();
      this.argv.push(this.buf.subarray(this.pos, this.pos + this.bulkLength));
      this.argvBytes += this.bulkLength + ARG_OVERHEAD_BYTES;
      this.pos += needed;
      this.consumed();
      this.bulkLength = -1;
      this.remainingArgs--;
    }
    const request = this.argv;
    this.argv = [];
    this.argvBytes = 0;
    return request;
  }
}
