/**
 * Argument rules shared by the lock commands: names and owners (bounded, non-empty), TTL and
 * WAIT in milliseconds. Throws CommandError with Redis-style messages; never touches state.
 */
import { CommandError, MAX_TTL_MS, NOT_INTEGER, parseSafeInteger } from '../args.js';

/** Longest lock name or owner, in bytes. */
export const MAX_LOCK_KEY_BYTES = 4096;
/**
 * Longest WAIT (one day): a blocked LOCK keeps a local safety timer of WAIT plus a margin,
 * and Node's timers hold at most 2^31 - 1 ms.
 */
export const MAX_WAIT_MS = 86_400_000;

/** A lock name or owner: 1 to MAX_LOCK_KEY_BYTES bytes. */
export function lockKey(raw: Buffer, what: 'name' | 'owner'): Buffer {
  if (raw.length === 0 || raw.length > MAX_LOCK_KEY_BYTES)
    throw new CommandError(`ERR lock ${what} must be 1 to ${MAX_LOCK_KEY_BYTES} bytes`);
  return raw;
}

/** A TTL in ms: an integer from 1 to 2^52. */
export function ttlArgument(raw: Buffer): number {
  const v = parseSafeInteger(raw);
  if (v === null) throw new CommandError(NOT_INTEGER);
  if (v < 1 || v > MAX_TTL_MS)
    throw new CommandError(`ERR TTL must be between 1 and ${MAX_TTL_MS} milliseconds`);
  return v;
}

/** A WAIT in ms: an integer from 0 to MAX_WAIT_MS. */
export function waitArgument(raw: Buffer): number {
  const v = parseSafeInteger(raw);
  if (v === null) throw new CommandError(NOT_INTEGER);
  if (v < 0 || v > MAX_WAIT_MS)
    throw new CommandError(`ERR WAIT must be between 0 and ${MAX_WAIT_MS} milliseconds`);
  return v;
}
