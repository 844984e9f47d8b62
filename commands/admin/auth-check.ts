/**
 * Password checking shared by AUTH and HELLO ... AUTH. Concord has one user, "default", whose
 * password is the server's requirepass; with no requirepass the default user takes any
 * password (Redis's "nopass"). Comparison is constant-time over SHA-256 digests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';

function digest(value: Buffer | string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** True when `username`/`password` are valid for the server's password setting. */
export function checkCredentials(requirePass: string | null, username: Buffer, password: Buffer): boolean {
  if (username.toString() !== 'default') return false;
  if (requirePass === null) return true;
  return timingSafeEqual(digest(password), digest(requirePass));
}

/** Client names and CLIENT SETINFO values: printable ASCII without spaces ('!' to '~'). */
export function isValidClientAttribute(value: Buffer): boolean {
  for (const c of value) if (c < 0x21 || c > 0x7e) return false;
  return true;
}
