/**
 * LOCK.INFO: what a lock looks like now: its mode, latest token, holders and queue.
 *
 * Format:
 *   LOCK.INFO name
 *
 * Reply:
 *   Map (flat array in RESP2): `mode` ("none", "shared" or "exclusive"), `token` (the latest
 *   fencing token granted on the lock, 0 if none), `holders` (in grant order, each a map of
 *   owner, mode, token, ttl = ms left of its lease), `waiters` (in service order, each a map of
 *   owner, mode, wait = ms left of its WAIT).
 */
import { array, bulk, integer, map, type Reply } from '../reply.js';
import { NO_KEYS, readHandler, type CommandSpec } from '../spec.js';
import { lockKey } from './args.js';

export const lockInfo: CommandSpec = {
  name: 'lock.info',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@read', '@fast'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: "Shows a lock's mode, latest fencing token, holders and waiters.",
    since: '0.1.0',
    group: 'lock',
    complexity: 'O(N) for the N holders and waiters',
    arguments: [{ name: 'name', type: 'string' }],
    format: 'LOCK.INFO name',
    reply:
      'Map: mode, token, holders (owner, mode, token, ttl ms left) in grant order, waiters (owner, mode, wait ms left) in service order.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => lockKey(args.required(), 'name'),
    query(sm, name, nowMs): Reply {
      const view = sm.locks.view(name, nowMs);
      return map([
        [bulk('mode'), bulk(view?.mode ?? 'none')],
        [bulk('token'), integer(view?.lastToken ?? sm.locks.currentToken(name.toString('latin1')))],
        [
          bulk('holders'),
          array(
            (view?.holders ?? []).map((h) =>
              map([
                [bulk('owner'), bulk(h.owner)],
                [bulk('mode'), bulk(h.mode)],
                [bulk('token'), integer(h.token)],
                [bulk('ttl'), integer(h.ttlLeftMs)],
              ]),
            ),
          ),
        ],
        [
          bulk('waiters'),
          array(
            (view?.waiters ?? []).map((w) =>
              map([
                [bulk('owner'), bulk(w.owner)],
                [bulk('mode'), bulk(w.mode)],
                [bulk('wait'), integer(w.waitLeftMs)],
              ]),
            ),
          ),
        ],
      ]);
    },
  }),
};
