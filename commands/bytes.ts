/**
 * Big-endian byte Writer and bounds-checked Reader shared by the byte formats that are built
 * field by field: the operation and result codec (commands/codec.ts) and the coherence
 * protocol's peer messages (server/cache/messages.ts).
 *
 * Owns only the primitive encodings: u8, u16 BE, u32 BE, float64 BE, BigInt64 BE, and a
 * buffer as [length u32 BE][bytes]. What the fields mean, their order and versions belong to
 * each format. Must never change an encoding: the Raft log and mixed-release clusters hold
 * bytes written by every past version. Every read is bounds-checked and fails with a
 * CodecError, never a RangeError or a wrong value.
 */

/** Bytes that are not a valid operation, result or message (corruption or a newer format). */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

/** Appends fields to a growing buffer; each method returns the Writer so calls can chain. */
export class Writer {
  private buf: Buffer;
  private pos = 0;
  /** `sizeHint`: the expected size, so an exact hint never reallocates. */
  constructor(sizeHint = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(16, sizeHint));
  }
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
  u16(v: number): this {
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
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
  i64(v: bigint): this {
    this.ensure(8);
    this.pos = this.buf.writeBigInt64BE(v, this.pos);
    return this;
  }
  /** [length u32 BE][bytes]. */
  bytes(b: Uint8Array): this {
    this.u32(b.byteLength);
    this.ensure(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
    return this;
  }
  /** A string as the bytes of its UTF-8 encoding. */
  text(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }
  /** The bytes written so far (a view of the Writer's buffer, not a copy). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * Reads fields in order. `what` names the format in its errors ("truncated <what>",
 * "trailing bytes after <what>"), so a log line says which decoder refused the bytes.
 */
export class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new CodecError(`truncated ${this.what}`);
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
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
  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  /** A copy, so a decoded value never pins the buffer it came from (a log entry, a packet). */
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }
  /** UTF-8 text that must re-encode to the same bytes (ids; never replacement characters). */
  text(): string {
    const raw = this.bytes();
    const s = raw.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(raw)) throw new CodecError(`invalid UTF-8 text in ${this.what}`);
    return s;
  }
  /** A count of items that each take at least `minItemBytes`: bounded by what is left. */
  count(minItemBytes: number): number {
    const n = this.u32();
    if (n * minItemBytes > this.buf.length - this.pos)
      throw new CodecError(`count exceeds ${this.what} size`);
    return n;
  }
  /** Asserts every byte was read. */
  end(): void {
    if (this.pos !== this.buf.length) throw new CodecError(`trailing bytes after ${this.what}`);
  }
}
