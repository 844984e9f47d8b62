import { expect } from 'chai';
import fc from 'fast-check';
import {
  CodecError,
  decodeMessage,
  encodedMessageSize,
  encodeMessage,
  MESSAGE_CODEC_VERSION,
} from './codec.js';
import { EntryType, MessageType, message } from './messages.js';
import type { Entry, Message, Snapshot } from './messages.js';

const uint = fc.maxSafeNat();
const nodeId = fc.oneof(
  fc.constantFrom('n1', 'n2', 'n3', 'node-with-a-longer-name.example'),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);
const bytes = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: uint,
  index: uint,
  type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange, EntryType.Empty),
  data: bytes(64),
});

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  metadata: fc.record({
    index: uint,
    term: uint,
    confState: fc.record({
      voters: fc.array(nodeId, { maxLength: 7 }),
      learners: fc.array(nodeId, { maxLength: 3 }),
    }),
  }),
  data: bytes(256),
});

const messageArb: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...Object.values(MessageType)),
  from: nodeId,
  to: nodeId,
  term: uint,
  logTerm: uint,
  index: uint,
  entries: fc.array(entryArb, { maxLength: 8 }),
  commit: uint,
  reject: fc.boolean(),
  rejectHint: uint,
  hintTerm: uint,
  snapshot: fc.option(snapshotArb, { nil: null }),
  context: fc.option(bytes(32), { nil: null }),
});

/** Plain values, so chai compares Buffers/Uint8Arrays views by content. */
function normalize(m: Message): unknown {
  const b = (u: Uint8Array): number[] => Array.from(u);
  return {
    ...m,
    entries: m.entries.map((e) => ({ ...e, data: b(e.data) })),
    snapshot: m.snapshot === null ? null : { metadata: m.snapshot.metadata, data: b(m.snapshot.data) },
    context: m.context === null ? null : b(m.context),
  };
}

describe('raft/codec', () => {
  it('round-trips every message type, with entries, snapshots and contexts (fast-check)', () => {
    const seen = new Set<MessageType>();
    fc.assert(
      fc.property(messageArb, (m) => {
        seen.add(m.type);
        const buf = encodeMessage(m);
        expect(buf.length).to.equal(encodedMessageSize(m));
        expect(normalize(decodeMessage(buf))).to.deep.equal(normalize(m));
      }),
      { numRuns: 2000 },
    );
    expect(seen.size).to.equal(Object.values(MessageType).length);
  });

  it('decodes from a Uint8Array view at a non-zero offset', () => {
    const m = message({ type: MessageType.App, from: 'n1', to: 'n2', term: 3, entries: [] });
    const enc = encodeMessage(m);
    const big = new Uint8Array(enc.length + 10);
    big.set(enc, 7);
    expect(normalize(decodeMessage(big.subarray(7, 7 + enc.length)))).to.deep.equal(normalize(m));
  });

  it('keeps null and empty context and snapshot data apart', () => {
    const a = message({
      type: MessageType.Heartbeat,
      from: 'a',
      to: 'b',
      term: 1,
      context: new Uint8Array(0),
    });
    const b = message({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, context: null });
    expect(decodeMessage(encodeMessage(a)).context).to.deep.equal(new Uint8Array(0));
    expect(decodeMessage(encodeMessage(b)).context).to.equal(null);
  });

  it('encodes the largest safe integer and the version byte first', () => {
    const m = message({ type: MessageType.Vote, from: 'a', to: 'b', term: Number.MAX_SAFE_INTEGER });
    const buf = encodeMessage(m);
    expect(buf[0]).to.equal(MESSAGE_CODEC_VERSION);
    expect(decodeMessage(buf).term).to.equal(Number.MAX_SAFE_INTEGER);
  });

  it('rejects every truncation of a valid message with a CodecError naming the offset (fast-check)', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), (m, cut) => {
        const buf = encodeMessage(m);
        const at = cut % buf.length;
        expect(() => decodeMessage(buf.subarray(0, at)))
          .to.throw(CodecError)
          .with.property('message')
          .that.matches(/truncated message: .* at offset \d+|count \d+ at offset \d+ exceeds/);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects trailing bytes', () => {
    const buf = encodeMessage(message({ type: MessageType.Vote, from: 'a', to: 'b', term: 1 }));
    expect(() => decodeMessage(Buffer.concat([buf, Buffer.from([0])]))).to.throw(
      CodecError,
      /1 trailing bytes/,
    );
  });

  it('rejects an unknown version, type, flag, entry type, oversized integer and bad UTF-8', () => {
    const base = (): Buffer =>
      encodeMessage(
        message({
          type: MessageType.App,
          from: 'a',
          to: 'b',
          term: 1,
          entries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array([1, 2]) }],
        }),
      );
    // Offsets: version 0, type 1, flags 2, "a" at 3..5, "b" at 6..8, term at 9.
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['version', (b) => (b[0] = 9), /unknown format version 9/],
      ['type', (b) => (b[1] = 200), /unknown message type code 200/],
      ['flags', (b) => (b[2] = 0x80), /unknown flags 0x80/],
      ['integer', (b) => b.writeUInt32BE(0x0020_0000, 9), /term at offset 9 exceeds 2\^53 - 1/],
      ['utf-8', (b) => (b[5] = 0xff), /from at offset 5 is not valid UTF-8/],
      // Entry type sits after the fixed part (3 + 3 + 3 + 48 + 4) and term + index (16).
      ['entry type', (b) => (b[3 + 3 + 3 + 48 + 4 + 16] = 7), /unknown entry type 7 at offset 77/],
      [
        'entry count',
        (b) => b.writeUInt32BE(1_000_000, 3 + 3 + 3 + 48),
        /entry count 1000000 at offset \d+ exceeds/,
      ],
    ];
    for (const [name, corrupt, expected] of cases) {
      const b = base();
      expect(() => decodeMessage(b), 'untouched').not.to.throw();
      corrupt(b);
      expect(() => decodeMessage(b), name).to.throw(CodecError, expected);
    }
  });

  it('never throws anything but CodecError on random bytes (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          decodeMessage(b);
        } catch (err) {
          expect(err).to.be.instanceOf(CodecError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
