import { expect } from 'chai';
import fc from 'fast-check';
import { EntryType } from './messages.js';
import {
  decodeEntry,
  encodeEntry,
  encodeJson,
  encodeRecord,
  encodeSegmentHeader,
  encodeU64Pair,
  RecordType,
  scanSegment,
  SEGMENT_HEADER_BYTES,
} from './segment.js';
import { StorageError } from './storage-error.js';

/** A valid segment of `n` records and the byte offset where each record starts. */
function segment(n: number, payloadBytes: number): { buf: Buffer; starts: number[] } {
  const parts: Buffer[] = [encodeSegmentHeader({ seq: 3, firstIndex: 11 })];
  parts.push(encodeJson(RecordType.State, { any: 'state' }));
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(payloadBytes).map((_, k) => (i * 7 + k) & 0xff);
    parts.push(
      i % 5 === 4
        ? encodeU64Pair(RecordType.Commit, i)
        : encodeEntry({ term: 2, index: 11 + i, type: EntryType.Normal, data }),
    );
  }
  const starts: number[] = [];
  let at = 0;
  for (const p of parts) {
    if (at > 0) starts.push(at);
    at += p.length;
  }
  return { buf: Buffer.concat(parts), starts };
}

describe('segment format', () => {
  it('round-trips entries with 64-bit-safe indexes and terms', () => {
    const e = {
      term: 2 ** 40 + 3,
      index: 2 ** 52 - 1,
      type: EntryType.ConfChange,
      data: new Uint8Array([1, 2, 3]),
    };
    const rec = encodeEntry(e);
    const { records } = scanSegment(
      Buffer.concat([encodeSegmentHeader({ seq: 1, firstIndex: 1 }), rec]),
      'x.wal',
      false,
    );
    expect(records).to.have.length(1);
    expect(decodeEntry(records[0]!.payload)).to.deep.equal(e);
    // Built in place, byte for byte the generic record of its payload (the on-disk format).
    const payload = Buffer.alloc(17 + 3);
    payload.writeUInt32BE(Math.floor(e.term / 2 ** 32), 0);
    payload.writeUInt32BE(e.term >>> 0, 4);
    payload.writeUInt32BE(Math.floor(e.index / 2 ** 32), 8);
    payload.writeUInt32BE(e.index >>> 0, 12);
    payload[16] = e.type;
    payload.set(e.data, 17);
    expect(rec.equals(encodeRecord(RecordType.Entry, payload))).to.equal(true);
  });

  it('reads every record of an intact segment, last or not', () => {
    const { buf, starts } = segment(40, 20);
    for (const last of [true, false]) {
      const scan = scanSegment(buf, 'x.wal', last);
      expect(scan.records.map((r) => r.offset)).to.deep.equal(starts);
      expect(scan.header).to.deep.equal({ seq: 3, firstIndex: 11 });
      expect(scan.validBytes).to.equal(buf.length);
      expect(scan.tornBytes).to.equal(0);
    }
  });

  it('treats every cut of the last segment as a torn tail that keeps each whole record before it', () => {
    const { buf, starts } = segment(30, 13);
    const boundaries = [...starts, buf.length];
    for (let cut = SEGMENT_HEADER_BYTES; cut < buf.length; cut++) {
      const scan = scanSegment(buf.subarray(0, cut), 'x.wal', true);
      const kept = boundaries.filter((b) => b <= cut).pop()!;
      expect(scan.validBytes, `cut at ${cut}`).to.equal(Math.max(kept, SEGMENT_HEADER_BYTES));
      expect(scan.tornBytes).to.equal(cut - scan.validBytes);
      expect(scan.records.length).to.equal(starts.filter((s) => s < scan.validBytes).length);
    }
  });

  it('refuses a cut inside a record of a segment that is not the last', () => {
    const { buf, starts } = segment(10, 13);
    for (let cut = SEGMENT_HEADER_BYTES + 1; cut < buf.length; cut++) {
      if (starts.includes(cut)) continue;
      expect(() => scanSegment(buf.subarray(0, cut), 'x.wal', false), `cut at ${cut}`).to.throw(
        StorageError,
        /x\.wal at byte offset/,
      );
    }
  });

  it('a tail of zeros after the records (a file extended by a write that never landed) is torn', () => {
    const { buf } = segment(5, 9);
    const scan = scanSegment(Buffer.concat([buf, Buffer.alloc(4096)]), 'x.wal', true);
    expect(scan.validBytes).to.equal(buf.length);
    expect(scan.tornBytes).to.equal(4096);
  });

  it('never accepts a flipped bit: names the record that holds it (fast-check, every position class)', () => {
    const { buf, starts } = segment(25, 17);
    fc.assert(
      fc.property(fc.nat(buf.length - 1), fc.nat(7), fc.boolean(), (pos, bit, last) => {
        const bad = Buffer.from(buf);
        bad[pos] = bad[pos]! ^ (1 << bit);
        let err: unknown = null;
        try {
          scanSegment(bad, 'x.wal', last);
        } catch (e) {
          err = e;
        }
        expect(err, `bit ${bit} of byte ${pos}`).to.be.instanceOf(StorageError);
        const recordStart = pos < SEGMENT_HEADER_BYTES ? 0 : starts.filter((s) => s <= pos).pop()!;
        // The header reports its field's offset; a record reports its own start.
        if (pos >= SEGMENT_HEADER_BYTES) expect((err as StorageError).offset).to.equal(recordStart);
        expect((err as StorageError).file).to.equal('x.wal');
      }),
      { numRuns: 2000 },
    );
  });
});
