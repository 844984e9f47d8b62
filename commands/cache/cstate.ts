/**
 * CSTATE: the coherence state of a key across the cluster (introspection).
 *
 * Format:
 *   CSTATE key
 *
 * Reply:
 *   Array: one item per node, sorted by id: [node, state (M|E|S|I), version, lease ms left],
 *   or [node, "unreachable"]; then ["directory", leader, "invalidations-in-flight", n,
 *   "holders", [[node, state, lease ms left] ...]] as the leader's directory sees it
 *   (["directory", nil] when no leader answered). A line past its lease shows as I.
 */
import type { CommandSpec } from '../spec.js';
import { cacheOf, treeReply } from './common.js';

export const cstate: CommandSpec = {
  name: 'cstate',
  arity: 2,
  flags: ['readonly'],
  aclCategories: ['@read', '@slow'],
  keys: { first: 1, last: 1, step: 1 },
  tips: ['nondeterministic_output'],
  docs: {
    summary: "Shows a key's near-cache line on every node and the leader's directory view.",
    since: '0.1.0',
    group: 'cache',
    complexity: 'O(N) where N is the number of nodes',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'CSTATE key',
    reply:
      'Array: [node, state, version, lease ms left] per node, then ["directory", leader, "invalidations-in-flight", n, "holders", [[node, state, lease ms left]...]].',
  },
  handler: {
    kind: 'local',
    run(_ctx, args, dispatch) {
      const key = args.required();
      args.end();
      return cacheOf(dispatch).state(key).then(treeReply);
    },
  },
};
