/**
 * Values and expected messages shared by the client compatibility specs: binary and UTF-8
 * payloads, the error texts Redis clients match on. Owns no processes or sockets.
 */

/** Every byte value 0..255 once, in order (NUL, CR, LF and invalid UTF-8 included). */
export const ALL_BYTES: Buffer = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** Multi-byte UTF-8: 2-, 3- and 4-byte sequences; byte length differs from character length. */
export const UTF8_TEXT = 'héllo wörld — 日本語テキスト 🎉🚀 Ωμέγα';

/** Length in bytes, as RESP bulk strings count it. */
export function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Error texts as Redis 7 words them (clients and users match on them). */
export const ERRORS = {
  unknownCommand: (name: string, ...args: string[]) =>
    `ERR unknown command '${name}', with args beginning with: ${args.map((arg) => `'${arg}' `).join('')}`,
  wrongArity: (name: string) => `ERR wrong number of arguments for '${name}' command`,
  notInteger: 'ERR value is not an integer or out of range',
  syntax: 'ERR syntax error',
  noAuth: 'NOAUTH Authentication required.',
  wrongPass: 'WRONGPASS invalid username-password pair or user is disabled.',
  authWithoutPassword:
    'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
} as const;

/** A key unique to this process and call site, so suites sharing a server never collide. */
let keyCounter = 0;
export function uniqueKey(prefix: string): string {
  keyCounter += 1;
  return `compat:${prefix}:${process.pid}:${keyCounter}`;
}
