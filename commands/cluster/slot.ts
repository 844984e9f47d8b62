/**
 * Hash slots as Redis Cluster computes them: CRC16 (XMODEM/CCITT: polynomial 0x1021, initial
 * value 0, no reflection) of the key's hash tag, modulo 16,384. CLUSTER KEYSLOT, the -MOVED
 * redirect and later sharding all use this one implementation.
 *
 * The hash tag rule (Redis `keyHashSlot`): if the key holds a '{' and, after it, a '}' with at
 * least one byte between them, only the bytes between the first '{' and the first '}' after
 * it are hashed; otherwise the whole key is. Keys are Buffers: the rule works on bytes.
 *
 * Pure functions only; must never depend on the cluster's state.
 */

/** Redis Cluster's number of hash slots. */
export const SLOT_COUNT = 16384;

const CRC16_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM of `data[start, end)` (the checksum Redis Cluster hashes keys with). */
export function crc16(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ data[i]!) & 0xff]!;
  }
  return crc;
}

/** The hash slot (0..16383) of a key, honouring `{hash tags}` as Redis Cluster does. */
export function keySlot(key: Uint8Array): number {
  const open = key.indexOf(0x7b); // '{'
  if (open >= 0) {
    const close = key.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return crc16(key, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(key) & (SLOT_COUNT - 1);
}
