/**
 * LOCK.WAITSFOR: why an owner is blocked: every wait-for edge reachable from it, breadth
 * first (what it waits for, then what those wait for ...).
 *
 * Format:
 *   LOCK.WAITSFOR owner
 *
 * Reply:
 *   Array of edges, each `[waiter, lock, blocker, "holder" | "waiter"]`: `waiter` waits on
 *   `lock` for `blocker`, which holds it in a conflicting mode or waits ahead of it in the
 *   queue. Empty when the owner waits for nothing. The graph never has a cycle (LOCK refuses
 *   the request that would close one with -DEADLOCK).
 */
import { array, bulk, type Reply } from '../reply.js';
import { NO_KEYS, readHandler, type CommandSpec } from '../spec.js';
import { lockKey } from './args.js';

export const lockWaitsFor: CommandSpec = {
  name: 'lock.waitsfor',
  arity: 2,
  flags: ['readonly'],
  aclCategories: ['@read', '@slow'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Shows the chain of holders and waiters an owner waits for.',
    since: '0.1.0',
    group: 'lock',
    complexity: 'O(E) for the E wait-for edges reachable from the owner',
    arguments: [{ name: 'owner', type: 'string' }],
    format: 'LOCK.WAITSFOR owner',
    reply:
      'Array of [waiter, lock, blocker, holder|waiter] edges, breadth first from the owner; empty if it waits for nothing.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => lockKey(args.required(), 'owner'),
    query(sm, owner): Reply {
      return array(
        sm.locks
          .waitsFor(owner)
          .map((e) =>
            array([
              bulk(Buffer.from(e.from, 'latin1')),
              bulk(Buffer.from(e.lock, 'latin1')),
              bulk(Buffer.from(e.to, 'latin1')),
              bulk(e.as),
            ]),
          ),
      );
    },
  }),
};
