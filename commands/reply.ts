/**
 * The reply model: what a command produces, independent of the wire. `server/resp/encode.ts`
 * turns a Reply into RESP2 or RESP3 bytes for the client's protocol (HELLO 2|3); RESP3-only
 * kinds (map, set, double, boolean, null, verbatim, push) fall back to their RESP2 shapes as
 * Redis does.
 *
 * Client errors are Reply values (kind 'error', message starts with the Redis prefix such as
 * "ERR", "WRONGTYPE", "NOAUTH"). Operating errors are thrown classes, turned into replies only
 * in server/errors.ts.
 */

export type Reply =
  | { readonly kind: 'simple'; readonly value: string }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'integer'; readonly value: number | bigint }
  /** `value: null` is the nil bulk string ($-1 in RESP2, _ in RESP3). */
  | { readonly kind: 'bulk'; readonly value: Buffer | string | null }
  /** `items: null` is the nil array (*-1 in RESP2, _ in RESP3). */
  | { readonly kind: 'array'; readonly items: readonly Reply[] | null }
  | { readonly kind: 'map'; readonly entries: readonly (readonly [Reply, Reply])[] }
  | { readonly kind: 'set'; readonly items: readonly Reply[] }
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'boolean'; readonly value: boolean }
  | { readonly kind: 'null' }
  | { readonly kind: 'verbatim'; readonly format: string; readonly value: string }
  | { readonly kind: 'push'; readonly items: readonly Reply[] };

export const OK: Reply = Object.freeze({ kind: 'simple', value: 'OK' });
export const PONG: Reply = Object.freeze({ kind: 'simple', value: 'PONG' });
export const NIL: Reply = Object.freeze({ kind: 'bulk', value: null });
export const NIL_ARRAY: Reply = Object.freeze({ kind: 'array', items: null });

export const simple = (value: string): Reply => ({ kind: 'simple', value });
/** `message` must start with its prefix: error('ERR syntax error'). */
export const error = (message: string): Reply => ({ kind: 'error', message });
export const integer = (value: number | bigint): Reply => ({ kind: 'integer', value });
export const bulk = (value: Buffer | string | null): Reply => ({ kind: 'bulk', value });
export const array = (items: readonly Reply[] | null): Reply => ({ kind: 'array', items });
export const map = (entries: readonly (readonly [Reply, Reply])[]): Reply => ({ kind: 'map', entries });
export const verbatim = (value: string, format = 'txt'): Reply => ({ kind: 'verbatim', format, value });
