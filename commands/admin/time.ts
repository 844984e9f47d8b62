/**
 * TIME: the server's clock.
 *
 * Format:
 *   TIME
 *
 * Reply:
 *   Array of two bulk strings: Unix time in seconds, and the microseconds within that second.
 */
import { performance } from 'node:perf_hooks';
import { array, bulk } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';

export const time: CommandSpec = {
  name: 'time',
  arity: 1,
  flags: ['loading', 'stale', 'fast'],
  aclCategories: ['@fast'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns the server time.',
    since: '2.6.0',
    group: 'server',
    complexity: 'O(1)',
    format: 'TIME',
    reply:
      'Array of two bulk strings: Unix time in seconds and the microseconds elapsed in the current second.',
  },
  handler: {
    kind: 'local',
    run() {
      const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
      const seconds = Math.floor(micros / 1e6);
      return array([bulk(String(seconds)), bulk(String(micros - seconds * 1e6))]);
    },
  },
};
