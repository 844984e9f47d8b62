import { expect } from 'chai';
import fc from 'fast-check';
import { SLOT_COUNT, crc16, keySlot } from './slot.js';

/** Bit-by-bit CRC16-XMODEM, the naive model the table-driven crc16 is checked against. */
function naiveCrc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

describe('cluster/slot', () => {
  it('crc16 gives the XMODEM check value Redis cites (0x31C3 for "123456789")', () => {
    expect(crc16(Buffer.from('123456789'))).to.equal(0x31c3);
  });

  it('crc16 matches a bit-by-bit model on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(crc16(bytes)).to.equal(naiveCrc16(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('gives the slots Redis Cluster gives (values from CLUSTER KEYSLOT on redis-server)', () => {
    expect(keySlot(Buffer.from('foo'))).to.equal(12182);
    expect(keySlot(Buffer.from('bar'))).to.equal(5061);
    expect(keySlot(Buffer.from('somekey'))).to.equal(11058);
    expect(keySlot(Buffer.from('foo{hash_tag}'))).to.equal(2515);
    expect(keySlot(Buffer.from(''))).to.equal(0);
  });

  it('hashes only the first non-empty {tag}', () => {
    const tag = keySlot(Buffer.from('user1000'));
    expect(keySlot(Buffer.from('{user1000}.following'))).to.equal(tag);
    expect(keySlot(Buffer.from('{user1000}.followers'))).to.equal(tag);
    expect(keySlot(Buffer.from('foo{user1000}}bar'))).to.equal(tag);
    // An empty tag "{}" means the whole key is hashed.
    expect(keySlot(Buffer.from('foo{}{bar}'))).to.equal(8363);
    // Only the first '{' counts: the tag of "foo{{bar}}zap" is "{bar".
    expect(keySlot(Buffer.from('foo{{bar}}zap'))).to.equal(4015);
    // No closing brace: the whole key.
    expect(keySlot(Buffer.from('foo{bar'))).to.equal(crc16(Buffer.from('foo{bar')) % SLOT_COUNT);
  });

  it('always lands in 0..16383', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const slot = keySlot(bytes);
        expect(slot).to.be.within(0, SLOT_COUNT - 1);
      }),
      { numRuns: 300 },
    );
  });
});
