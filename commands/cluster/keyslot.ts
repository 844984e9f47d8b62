/**
 * CLUSTER KEYSLOT: the hash slot of a key (CRC16 of its {hash tag} modulo 16,384, as Redis
 * Cluster computes it; see slot.ts). Answers with or without a cluster: it is pure arithmetic.
 *
 * Format:
 *   CLUSTER KEYSLOT key
 *
 * Reply:
 *   Integer: the slot, 0..16383.
 */
import { integer, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { keySlot } from './slot.js';

export const clusterKeyslot: CommandSpec = {
  name: 'cluster|keyslot',
  arity: 3,
  flags: ['stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'Returns the hash slot for a key.',
    since: '3.0.0',
    group: 'server',
    complexity: 'O(N) where N is the number of bytes in the key',
    arguments: [{ name: 'key', type: 'string' }],
    format: 'CLUSTER KEYSLOT key',
    reply: 'Integer: the slot, 0..16383 (CRC16 of the key or of its {hash tag}, modulo 16384).',
  },
  handler: {
    kind: 'local',
    run(_ctx, args): Reply {
      return integer(keySlot(args.required()));
    },
  },
};
