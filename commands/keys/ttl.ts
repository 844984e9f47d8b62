/**
 * TTL and PTTL: the time a key has left to live.
 *
 * Format:
 *   TTL key
 *   PTTL key
 *
 * Reply:
 *   Integer: seconds (TTL, rounded to the nearest second as Redis does) or milliseconds (PTTL)
 *   left; -1 when the key has no expiry; -2 when the key does not exist.
 */
import { integer } from '../reply.js';
import { readHandler, type CommandSpec } from '../spec.js';

export const ttl: CommandSpec = {
  name: 'ttl',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@keyspace', '@read', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RO', 'access'],
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns the expiration time in seconds of a key.',
    since: '1.0.0',
    group: 'generic',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'TTL key',
    reply: 'Integer: seconds left (rounded); -1 without expiry; -2 when the key does not exist.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => args.required(),
    query(sm, key, nowMs) {
      const ms = sm.keys.ttlMs(key, nowMs);
      return integer(ms < 0 ? ms : Math.floor((ms + 500) / 1000));
    },
  }),
};

export const pttl: CommandSpec = {
  name: 'pttl',
  arity: 2,
  flags: ['readonly', 'fast'],
  aclCategories: ['@keyspace', '@read', '@fast'],
  keys: { first: 1, last: 1, step: 1 },
  keySpecFlags: ['RO', 'access'],
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns the expiration time in milliseconds of a key.',
    since: '2.6.0',
    group: 'generic',
    complexity: 'O(1)',
    arguments: [{ name: 'key', type: 'key', keySpecIndex: 0 }],
    format: 'PTTL key',
    reply: 'Integer: milliseconds left; -1 without expiry; -2 when the key does not exist.',
  },
  handler: readHandler<Buffer>({
    parse: (args) => args.required(),
    query: (sm, key, nowMs) => integer(sm.keys.ttlMs(key, nowMs)),
  }),
};
