/**
 * `npm run chaos -- --minutes N --seed S`: the long fault run. Consecutive runs of the fault
 * suite (each a fresh cluster, every workload family, nemeses mixed at random), seeds S, S+1,
 * ..., until N minutes of fault phase have run; then one verdict over all of them: total
 * operations, faults injected by kind, anomalies, checker violations, recovery after heal.
 *
 * Each run keeps its own files (history, timeline, verdict, summary, latency plot) and the
 * whole is written as JSON (`--out`), so docs/reliability.md quotes figures a reader can
 * reproduce: the same `--seed` replays the same schedules (timings still vary with load).
 *
 * Owns: nothing past its runs (each run cleans up its cluster). Exits 1 when any run is
 * invalid, 2 on bad arguments.
 */
import { Command, InvalidArgumentError } from 'commander';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAMILIES, familyByName } from './families/index.js';
import type { Family } from './family.js';
import { NEMESES } from './nemeses.js';
import { percentile, recoveryTimes, runFaults, type RunReport } from './runner.js';

function positive(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

const list = (value: string): string[] => value.split(',').filter((x) => x !== '');

const program: Command = new Command('chaos')
  .description('Long fault-injection run: consecutive seeded runs, one verdict over all of them')
  .option('--minutes <n>', 'total fault-phase minutes', positive('--minutes'), 60)
  .option('--seed <n>', 'first run seed (default: random, printed)', integer)
  .option(
    '--run-minutes <n>',
    'fault-phase minutes per run (each run is a fresh cluster)',
    positive('--run-minutes'),
    10,
  )
  .option(
    '--families <list>',
    `workload families (default: all: ${FAMILIES.map((f) => f.name).join(',')})`,
    list,
    [],
  )
  .option('--nemeses <list>', `nemeses (default: all: ${NEMESES.map((n) => n.name).join(',')})`, list, [])
  .option('--hosts <mode>', 'netns | loopback (default: netns when root, else loopback)')
  .option('--processes <n>', 'client processes per run', positive('--processes'), 6)
  .option('--out <file>', 'where to write the JSON summary (default: in the temp dir)')
  .showHelpAfterError()
  // Bad arguments exit 2 (as documented), distinct from 1 = a run found a violation.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const opts = program.opts<{
  minutes: number;
  seed?: number;
  runMinutes: number;
  families: string[];
  nemeses: string[];
  hosts?: string;
  processes: number;
  out?: string;
}>();

if (opts.hosts !== undefined && opts.hosts !== 'netns' && opts.hosts !== 'loopback') {
  program.error('--hosts must be netns or loopback');
}
let families: readonly Family[];
try {
  families = opts.families.length === 0 ? FAMILIES : opts.families.map(familyByName);
} catch (err) {
  program.error(`--families: ${err instanceof Error ? err.message : String(err)}`);
}
const unknownNemeses = opts.nemeses.filter((n) => !NEMESES.some((x) => x.name === n));
if (unknownNemeses.length > 0) program.error(`--nemeses: unknown ${unknownNemeses.join(', ')}`);

const firstSeed = opts.seed ?? randomInt(1, 2 ** 31);
const totalMs = opts.minutes * 60_000;
const out = opts.out ?? path.join(os.tmpdir(), `concord-chaos-${firstSeed}.json`);
console.log(
  `chaos: ${opts.minutes} min of faults from seed ${firstSeed} (replay: npm run chaos -- --minutes ${opts.minutes} --seed ${firstSeed}); summary -> ${out}`,
);

interface RunLine {
  seed: number;
  dir: string;
  mode: string;
  valid: boolean;
  faultPhaseMs: number;
  ops: RunReport['ops'];
  faults: number;
  anomalies: RunReport['anomalies'];
  invalidCheckers: { checker: string; details: string[] }[];
}

const started = Date.now();
const runs: RunLine[] = [];
const faultsByKind = new Map<string, number>();
const recoveries: number[] = [];
let doneMs = 0;
for (let seed = firstSeed; doneMs < totalMs; seed++) {
  const durationMs = Math.min(opts.runMinutes * 60_000, totalMs - doneMs);
  const report = await runFaults({
    seed,
    durationMs,
    nemeses: opts.nemeses,
    families,
    everyOnce: false,
    processes: opts.processes,
    maxOps: 400_000,
    ...(opts.hosts === 'netns' || opts.hosts === 'loopback' ? { mode: opts.hosts } : {}),
  });
  doneMs += durationMs;
  for (const f of report.faults) faultsByKind.set(f.name, (faultsByKind.get(f.name) ?? 0) + 1);
  recoveries.push(...recoveryTimes(report.faults));
  runs.push({
    seed,
    dir: report.dir,
    mode: report.mode,
    valid: report.valid,
    faultPhaseMs: durationMs,
    ops: report.ops,
    faults: report.faults.length,
    anomalies: report.anomalies,
    invalidCheckers: report.verdicts
      .filter((v) => !v.valid)
      .map((v) => ({ checker: `${v.family}/${v.checker}`, details: v.details })),
  });
  // Written after every run, so an interrupted soak still leaves its figures.
  writeSummary();
}

function summary(): Record<string, unknown> {
  const sum = (f: (r: RunLine) => number): number => runs.reduce((a, r) => a + f(r), 0);
  return {
    command: `npm run chaos -- --minutes ${opts.minutes} --seed ${firstSeed}`,
    startedAt: new Date(started).toISOString(),
    wallMinutes: Math.round((Date.now() - started) / 600) / 100,
    faultPhaseMinutes: Math.round(sum((r) => r.faultPhaseMs) / 600) / 100,
    machine: { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    runs: runs.length,
    invalidRuns: runs.filter((r) => !r.valid).length,
    ops: {
      total: sum((r) => r.ops.total),
      ok: sum((r) => r.ops.ok),
      fail: sum((r) => r.ops.fail),
      unknown: sum((r) => r.ops.unknown),
    },
    faults: sum((r) => r.faults),
    faultsByKind: Object.fromEntries([...faultsByKind].sort((a, b) => b[1] - a[1])),
    anomalies: sum((r) => r.anomalies.length),
    checkerViolations: sum((r) => r.invalidCheckers.length),
    recoveryAfterHealMs: {
      p50: percentile(recoveries, 50),
      p99: percentile(recoveries, 99),
      max: percentile(recoveries, 100),
    },
    perRun: runs,
  };
}

function writeSummary(): void {
  writeFileSync(out, `${JSON.stringify(summary(), null, 2)}\n`);
}

const s = summary();
console.log(
  `chaos: ${runs.length} run(s), ${String(s['invalidRuns'])} invalid; ` +
    `${JSON.stringify(s['ops'])} ops; ${String(s['faults'])} faults; ${String(s['anomalies'])} anomalies; ` +
    `${String(s['checkerViolations'])} checker violations; recovery ${JSON.stringify(s['recoveryAfterHealMs'])}; summary in ${out}`,
);
process.exit(runs.every((r) => r.valid) ? 0 : 1);
