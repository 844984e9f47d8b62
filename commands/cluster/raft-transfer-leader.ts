/**
 * RAFT.TRANSFER-LEADER: hands leadership to another voter (Raft thesis §3.10), e.g. before
 * restarting the leader's machine.
 *
 * Format:
 *   RAFT.TRANSFER-LEADER [node-id]
 *
 * Reply:
 *   OK once the target is leader. Without a node id the leader picks the reachable voter with
 *   the highest match index (the one that can take over soonest). Transferring to the current
 *   leader is OK at once. Errors: `-ERR unknown node 'x'`, `-ERR node 'x' is a learner`,
 *   `-ERR no other voter to transfer leadership to`; on a follower `-TRYAGAIN not the leader,
 *   try <id>`; `-ERR Leadership transfer to x did not complete in time` when the target did
 *   not take over within two election timeouts.
 */
import { fail } from '../args.js';
import { OK, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import type { ClusterView } from '../../server/cluster-view.js';
import { parseNodeId } from './raft-node.js';
import { requireCluster } from './topology.js';

/** The voter best placed to take over: reachable, highest match index; null if none. */
export function pickTransferee(cluster: ClusterView): string | null {
  let best: { id: string; match: number } | null = null;
  for (const m of cluster.members()) {
    if (m.self || !m.voter || !m.reachable) continue;
    const match = m.matchIndex ?? -1;
    if (best === null || match > best.match) best = { id: m.id, match };
  }
  return best === null ? null : best.id;
}

export const raftTransferLeader: CommandSpec = {
  name: 'raft.transfer-leader',
  arity: -1,
  flags: ['admin', 'noscript'],
  aclCategories: ['@admin', '@slow', '@dangerous'],
  keys: NO_KEYS,
  docs: {
    summary: 'Transfers leadership to another voter.',
    since: '0.1.0',
    group: 'server',
    complexity: 'O(N) where N is the number of members',
    arguments: [{ name: 'node-id', type: 'string', optional: true }],
    format: 'RAFT.TRANSFER-LEADER [node-id]',
    reply:
      "OK once the target is leader (without node-id: the reachable voter with the highest match index). `-ERR unknown node 'x'`, `-ERR node 'x' is a learner`; on a follower `-TRYAGAIN not the leader, try <id>`; `-ERR Leadership transfer ... did not complete in time` after two election timeouts.",
  },
  handler: {
    kind: 'local',
    async run(ctx, args): Promise<Reply> {
      const cluster = requireCluster(ctx);
      let target: string | null = null;
      if (args.hasMore()) {
        target = parseNodeId(args);
        args.end();
        const member = cluster.members().find((m) => m.id === target);
        if (member === undefined) fail(`ERR unknown node '${target}'`);
        if (!member.voter) fail(`ERR node '${target}' is a learner`);
        if (target === cluster.leaderId()) return OK;
      } else {
        target = pickTransferee(cluster);
        if (target === null) fail('ERR no other voter to transfer leadership to');
      }
      await cluster.transferLeader(target);
      return OK;
    },
  },
};
