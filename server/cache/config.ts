/**
 * The near-cache's CONFIG parameters (docs/cache.md, "Settings"):
 *
 * - `cache-max-entries`, `cache-max-bytes`: this node's bounds (server/config.ts holds them in
 *   Config, like every node-local parameter); a change resizes the LRU at once.
 * - `cache-policy` (invalidate | update) and `cache-lease-ms` (10..600000): cluster-wide, held
 *   in the replicated home (commands/cache/store.ts). CONFIG GET reads this node's applied
 *   state; CONFIG SET checks the value at once and applies it through the Raft log (the reply
 *   waits for the commit), so every node grants and honours the same lease and policy.
 *
 * Must never: hold a value of its own (the Config and the home are the only copies).
 */
import type { StateMachine } from '../../commands/state-machine.js';
import { MAX_CACHE_LEASE_MS, MIN_CACHE_LEASE_MS } from '../../commands/cache/operations.js';
import type { Result } from '../../commands/state-machine.js';
import { failed, integerIn, type ServerConfig } from '../config.js';
import type { CacheAgent } from './agent.js';

export function defineCacheParameters(config: ServerConfig, agent: CacheAgent, sm: StateMachine): void {
  config.onChange((name, current) => {
    if (name === 'cache-max-entries' || name === 'cache-max-bytes')
      agent.resize(current.cacheMaxEntries, current.cacheMaxBytes);
  });
  const refused = (name: string) => (result: Result) => {
    if (result.type === 'error') throw failed(name, result.message.replace(/^ERR /, ''));
  };
  config.define({
    name: 'cache-policy',
    get: () => sm.cache.clusterPolicy,
    setReplicated: (value) => {
      const policy = value.toLowerCase();
      if (policy !== 'invalidate' && policy !== 'update')
        throw failed('cache-policy', 'argument(s) must be one of the following: invalidate, update');
      return () => agent.setPolicy(null, policy).then(refused('cache-policy'));
    },
  });
  config.define({
    name: 'cache-lease-ms',
    get: () => String(agent.leaseMs),
    setReplicated: (value) => {
      const leaseMs = integerIn('cache-lease-ms', value, MIN_CACHE_LEASE_MS, MAX_CACHE_LEASE_MS);
      return () => agent.setLease(leaseMs).then(refused('cache-lease-ms'));
    },
  });
}
