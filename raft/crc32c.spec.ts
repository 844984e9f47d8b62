import { expect } from 'chai';
import fc from 'fast-check';
import { crc32c } from './crc32c.js';

/** Bit-at-a-time reference: the definition, slow and obviously right. */
function naive(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('matches the RFC 3720 check value and test vectors', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).to.equal(0xe3069283);
    expect(crc32c(new Uint8Array(32))).to.equal(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).to.equal(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).to.equal(0);
  });

  it('equals the bit-at-a-time definition and continues across chunks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (data, cut) => {
        const at = Math.min(cut, data.length);
        const whole = crc32c(data);
        expect(whole).to.equal(naive(data));
        expect(crc32c(data.subarray(at), crc32c(data.subarray(0, at)))).to.equal(whole);
      }),
      { numRuns: 300 },
    );
  });
});
