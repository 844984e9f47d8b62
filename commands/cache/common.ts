/**
 * Helpers shared by the cache commands: reaching the node's CacheService and turning its
 * results into replies. Must never hold protocol logic (server/cache/agent.ts does).
 */
import assert from 'node:assert';
import { CommandError } from '../args.js';
import { array, bulk, integer, NIL, type Reply } from '../reply.js';
import type { DispatchInfo } from '../spec.js';
import type { ResultTree } from '../state-machine.js';
import type { CacheFigures, CacheService } from './service.js';

export const NO_CACHE = 'ERR the coherent cache is not available on this server';

export function cacheOf(dispatch: DispatchInfo): CacheService {
  if (dispatch.cache === undefined) throw new CommandError(NO_CACHE);
  return dispatch.cache;
}

/** A ResultTree as a RESP reply: text and bytes as bulk strings, numbers as integers. */
export function treeReply(tree: ResultTree): Reply {
  if (tree === null) return NIL;
  if (typeof tree === 'boolean') return integer(tree ? 1 : 0);
  if (typeof tree === 'number' || typeof tree === 'bigint') return integer(tree);
  if (typeof tree === 'string' || Buffer.isBuffer(tree)) return bulk(tree);
  assert.ok(Array.isArray(tree), 'result tree node');
  return array((tree as readonly ResultTree[]).map(treeReply));
}

/** INFO cache's `cache_<field>:<value>` lines, from the figures /metrics reads too. */
export function cacheInfoLines(f: CacheFigures): string[] {
  return [
    `cache_hits:${f.hits}`,
    `cache_misses:${f.misses}`,
    `cache_hit_ratio:${f.hitRatio.toFixed(4)}`,
    `cache_lease_expiries:${f.leaseExpiries}`,
    `cache_fetches:${f.fetches}`,
    `cache_refreshes:${f.refreshes}`,
    `cache_misses_joined:${f.missesJoined}`,
    `cache_writes:${f.writes}`,
    `cache_writes_without_round:${f.writesWithoutRound}`,
    `cache_writes_fenced:${f.writesFenced}`,
    `cache_invalidations_sent:${f.invalidationsSent}`,
    `cache_invalidations_received:${f.invalidationsReceived}`,
    `cache_invalidations_timed_out:${f.invalidationsTimedOut}`,
    `cache_updates_sent:${f.updatesSent}`,
    `cache_updates_received:${f.updatesReceived}`,
    `cache_downgrades_sent:${f.downgradesSent}`,
    `cache_downgrades_received:${f.downgradesReceived}`,
    `cache_evictions:${f.evictions}`,
    `cache_flushes_sent:${f.flushesSent}`,
    `cache_flushes_received:${f.flushesReceived}`,
    `cache_data_flushes:${f.dataFlushes}`,
    `cache_lines:${f.lines}`,
    `cache_lines_m:${f.linesM}`,
    `cache_lines_e:${f.linesE}`,
    `cache_lines_s:${f.linesS}`,
    `cache_bytes:${f.bytes}`,
    `cache_max_lines:${f.maxLines}`,
    `cache_max_bytes:${f.maxBytes}`,
    `cache_lease_ms:${f.leaseMs}`,
    `cache_write_latency_p50_ms:${f.writeLatencyP50Ms.toFixed(3)}`,
    `cache_write_latency_p99_ms:${f.writeLatencyP99Ms.toFixed(3)}`,
    `cache_invalidation_wait_p50_ms:${f.invalidationWaitP50Ms.toFixed(3)}`,
    `cache_invalidation_wait_p99_ms:${f.invalidationWaitP99Ms.toFixed(3)}`,
    `cache_directory_leader:${f.directoryLeader ? 1 : 0}`,
    `cache_directory_keys:${f.directoryKeys}`,
    `cache_directory_holders:${f.directoryHolders}`,
  ];
}
