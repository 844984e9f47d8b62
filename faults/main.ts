/**
 * `npm run faults`: a soak run of the fault suite, configured by the environment:
 *   FAULTS_SEED       seed (default: random, printed)        FAULTS_DURATION_S  fault phase (default 300)
 *   FAULTS_NEMESES    comma-separated names (default: all)    FAULTS_HOSTS       netns | loopback
 *   FAULTS_PROCESSES  client processes (default 6)            FAULTS_MAX_OPS     history bound (default 200000)
 *   FAULTS_RUNS       consecutive runs with seeds seed, seed+1, ... (default 1)
 *   FAULTS_FAMILIES   comma-separated workload families (default: all: registers,locks,queues,cache)
 *   FAULTS_KEEP=1     leave the last cluster running (for debugging)
 * Exits 1 when any run is invalid; every run prints where its history and verdict are.
 *
 * The only place in faults/ that reads the environment for the run's settings.
 */
import { randomInt } from 'node:crypto';
import { FAMILIES, familyByName } from './families/index.js';
import type { Family } from './family.js';
import { NEMESES } from './nemeses.js';
import { runFaults } from './runner.js';

const env = process.env;
const seed = env['FAULTS_SEED'] !== undefined ? Number(env['FAULTS_SEED']) : randomInt(1, 2 ** 31);
const durationS = Number(env['FAULTS_DURATION_S'] ?? 300);
const nemeses = (env['FAULTS_NEMESES'] ?? '').split(',').filter((n) => n !== '');
const runs = Number(env['FAULTS_RUNS'] ?? 1);
const mode = env['FAULTS_HOSTS'];
const familyNames = (env['FAULTS_FAMILIES'] ?? '').split(',').filter((n) => n !== '');
if (!Number.isInteger(seed) || !(durationS > 0) || !(runs >= 1)) {
  console.error('faults: FAULTS_SEED must be an integer, FAULTS_DURATION_S and FAULTS_RUNS positive');
  process.exit(2);
}
if (env['FAULTS_HELP'] !== undefined) {
  console.log(`nemeses: ${NEMESES.map((n) => n.name).join(', ')}`);
  console.log(`families: ${FAMILIES.map((f) => f.name).join(', ')}`);
  process.exit(0);
}
let families: readonly Family[];
try {
  families = familyNames.length === 0 ? FAMILIES : familyNames.map(familyByName);
} catch (err) {
  console.error(`faults: FAULTS_FAMILIES: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
let invalid = 0;
for (let i = 0; i < runs; i++) {
  const report = await runFaults({
    seed: seed + i,
    durationMs: durationS * 1000,
    nemeses,
    families,
    everyOnce: false,
    ...(mode === 'netns' || mode === 'loopback' ? { mode } : {}),
    processes: Number(env['FAULTS_PROCESSES'] ?? 6),
    maxOps: Number(env['FAULTS_MAX_OPS'] ?? 200_000),
  });
  if (!report.valid) invalid++;
}
console.log(`faults: ${runs} run(s), ${invalid} invalid`);
process.exit(invalid === 0 ? 0 : 1);
