/**
 * Every workload family the runner knows, by name (FAULTS_FAMILIES and the CI run pick from
 * these). Owns: the list. Must never: hold state of a run.
 */
import type { Family } from '../family.js';
import { cacheFamily } from './cache.js';
import { locksFamily } from './locks.js';
import { queuesFamily } from './queues.js';
import { registersFamily } from './registers.js';

export const FAMILIES: readonly Family[] = [registersFamily, locksFamily, queuesFamily, cacheFamily];

export function familyByName(name: string): Family {
  const family = FAMILIES.find((f) => f.name === name);
  if (family === undefined)
    throw new Error(`unknown family ${name} (known: ${FAMILIES.map((f) => f.name).join(', ')})`);
  return family;
}
