/**
 * The coherent cache's replicated operations (codec tags 400-499 in commands/codec.ts). They
 * change only the cache's home (commands/cache/store.ts); the directory of which node holds
 * which line lives on the leader, outside the log (server/cache/, docs/cache.md says why).
 */

/** How a write reaches the other holders of a key: their lines dropped, or given the value. */
export type CachePolicy = 'invalidate' | 'update';

/** A write's own choice; 'default' takes the key's policy, else the cluster-wide one. */
export type CacheWritePolicy = CachePolicy | 'default';

export type CacheOperation =
  | {
      readonly type: 'cache.set';
      readonly key: Buffer;
      readonly value: Buffer;
      /** Relative expiry from the entry's time (PX), > 0; 0: none. */
      readonly ttlMs: number;
      readonly policy: CacheWritePolicy;
    }
  | { readonly type: 'cache.del'; readonly key: Buffer }
  /**
   * CPOLICY: `key` null sets the cluster-wide default ('default' is then refused); a key with
   * 'default' forgets the key's own policy.
   */
  | { readonly type: 'cache.policy'; readonly key: Buffer | null; readonly policy: CacheWritePolicy }
  /**
   * FLUSHALL / FLUSHDB: empties the keyspace AND the cache's home values in one entry (per-key
   * and cluster-wide policies stay: they are settings, not data). The older `keys.flushall`
   * (tag 5) keeps its meaning (keyspace only) so that old logs replay as they were written.
   */
  | { readonly type: 'cache.flushall' }
  /**
   * CONFIG SET cache-lease-ms: the cluster-wide lease of a near-cache line; null goes back to
   * each node's --cache-lease-ms.
   */
  | { readonly type: 'cache.lease'; readonly leaseMs: number | null };

/** The cluster-wide lease a `cache.lease` may set, in ms (the --cache-lease-ms range). */
export const MIN_CACHE_LEASE_MS = 10;
export const MAX_CACHE_LEASE_MS = 600_000;

export const CACHE_POLICIES: readonly CacheWritePolicy[] = ['default', 'invalidate', 'update'];
