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
  | { readonly type: 'cache.policy'; readonly key: Buffer | null; readonly policy: CacheWritePolicy };

export const CACHE_POLICIES: readonly CacheWritePolicy[] = ['default', 'invalidate', 'update'];
