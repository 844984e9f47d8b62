/**
 * The argument cursor: walks a request's argv (Buffers, binary safe) for a command's `parse`
 * or `run`, and raises Redis's exact client errors.
 *
 * Errors are thrown as `CommandError`, which carries an error Reply. It is a client error in
 * transit, not an operating error: dispatch catches exactly this class and replies with it,
 * so it never reaches the server. This module must never touch the state machine or a socket.
 */
import { error, type Reply } from './reply.js';

export class CommandError extends Error {
  readonly reply: Reply;
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
    this.reply = error(message);
  }
}

export const SYNTAX_ERROR = 'ERR syntax error';
/** Largest relative expiry or lease (ms): keeps entry time + ttl an exact integer in a double. */
export const MAX_TTL_MS = 2 ** 52;
export const NOT_INTEGER = 'ERR value is not an integer or out of range';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Parses a signed 64-bit integer the way Redis's string2ll does: optional '-', digits, no '+',
 * no spaces, no leading zeros (except "0"), within int64. Returns null when it is not one.
 */
export function parseInt64(buf: Buffer): bigint | null {
  const n = buf.length;
  if (n === 0 || n > 20) return null;
  let i = 0;
  let negative = false;
  if (buf[0] === 0x2d) {
    negative = true;
    i = 1;
    if (n === 1) return null;
  }
  const first = buf[i]!;
  if (first === 0x30) {
    // "0" alone; "-0", "00", "01" are rejected by Redis.
    return n === 1 ? 0n : null;
  }
  if (first < 0x31 || first > 0x39) return null;
  // Fast path: up to 15 digits fit a double exactly.
  if (n - i <= 15) {
    let v = 0;
    for (let j = i; j < n; j++) {
      const c = buf[j]!;
      if (c < 0x30 || c > 0x39) return null;
      v = v * 10 + (c - 0x30);
    }
    return BigInt(negative ? -v : v);
  }
  for (let j = i; j < n; j++) {
    const c = buf[j]!;
    if (c < 0x30 || c > 0x39) return null;
  }
  const v = BigInt(buf.toString('latin1'));
  if (v < INT64_MIN || v > INT64_MAX) return null;
  return v;
}

/** parseInt64 for values that must fit a JS safe integer (counts, indexes, milliseconds). */
export function parseSafeInteger(buf: Buffer): number | null {
  const v = parseInt64(buf);
  if (v === null) return null;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return null;
  return Number(v);
}

export class ArgCursor {
  private pos: number;

  /** `argv[0]` is the command name (or argv[0..1] for a subcommand): start after it. */
  constructor(
    readonly argv: readonly Buffer[],
    start = 1,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.argv.length - this.pos;
  }

  hasMore(): boolean {
    return this.pos < this.argv.length;
  }

  /** The next argument; a syntax error if there is none (arity normally prevents it). */
  required(): Buffer {
    const a = this.argv[this.pos];
    if (a === undefined) throw new CommandError(SYNTAX_ERROR);
    this.pos++;
    return a;
  }

  optional(): Buffer | undefined {
    const a = this.argv[this.pos];
    if (a !== undefined) this.pos++;
    return a;
  }

  requiredString(): string {
    return this.required().toString();
  }

  /** The next argument upper-cased as a keyword (for NX/XX/EX...). */
  keyword(): string {
    return this.required().toString('latin1').toUpperCase();
  }

  /** Looks at the next argument as an upper-cased keyword without consuming it. */
  peekKeyword(): string | undefined {
    const a = this.argv[this.pos];
    return a === undefined ? undefined : a.toString('latin1').toUpperCase();
  }

  /** A signed 64-bit integer, or `-ERR value is not an integer or out of range`. */
  int64(message = NOT_INTEGER): bigint {
    const v = parseInt64(this.required());
    if (v === null) throw new CommandError(message);
    return v;
  }

  /** An integer that fits a JS safe integer, with the same error as int64. */
  integer(message = NOT_INTEGER): number {
    const v = parseSafeInteger(this.required());
    if (v === null) throw new CommandError(message);
    return v;
  }

  /** All remaining arguments. */
  rest(): Buffer[] {
    const out = this.argv.slice(this.pos);
    this.pos = this.argv.length;
    return out;
  }

  /** A syntax error unless every argument was consumed. */
  end(): void {
    if (this.pos < this.argv.length) throw new CommandError(SYNTAX_ERROR);
  }
}

/** Redis's arity error, for commands whose arity depends on their arguments. */
export function wrongArity(name: string): never {
  throw new CommandError(`ERR wrong number of arguments for '${name}' command`);
}

/** Throws a client error; for handlers that detect one outside the cursor. */
export function fail(message: string): never {
  throw new CommandError(message);
}
