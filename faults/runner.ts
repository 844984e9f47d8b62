/**
 * One fault-injection run: a cluster on Hosts, each family's workload on every node, a seeded
 * schedule of nemeses (each started, held, healed, and the recovery timed), then the final
 * reads and a verdict per checker. Every run writes to its own temp dir:
 *   <family>-history.json   every operation (invocation, completion, outcome)
 *   timeline.json           every nemesis start/heal, notes and anomalies
 *   verdict.json            each checker's verdict, faults, recovery times, counts
 *   summary.txt             the short human summary (also printed)
 *   latency.svg             latency of acknowledged ops over time, faults shaded
 *   n<i>.log                every node process's stderr (JSON logs), in start order
 * and the nodes' data dirs when the run fails.
 *
 * Families plug in through family.ts (a workload and its checkers): registers, locks, queues
 * and the cache (families/index.ts); each runs its own client processes next to the others.
 *
 * Owns: the run dir (kept; its path is printed), the Hosts (cleaned up at the end, even on
 * failure). Must never: call a run valid when a checker found a violation, or leave a fault
 * in place when it returns.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FaultCluster, pollUntil, StartFailed } from './cluster.js';
import { FAMILIES } from './families/index.js';
import type { CheckerVerdict, Family, FamilyRun } from './family.js';
import { runClock, type BaseOp } from './history.js';
import { Hosts, type Host, type HostMode } from './hosts.js';
import { NEMESES, nemesisByName, rejoinWiped, type Nemesis, type NemesisContext, type TimelineEvent } from './nemeses.js';
import { Prng } from './prng.js';

export interface RunOptions {
  seed: number;
  /** Fault phase length; the run also does every nemesis in `nemeses` at least once when `everyOnce`. */
  durationMs: number;
  /** Names, or all available when empty. */
  nemeses: readonly string[];
  /** Run each chosen nemesis at least once even past `durationMs` (the CI run). */
  everyOnce: boolean;
  mode?: HostMode;
  size?: number;
  processes?: number;
  maxOps?: number;
  /** Workload families (default: every family in families/index.ts). */
  families?: readonly Family[];
  /** Also write the run's files under this dir (default: os.tmpdir()). */
  baseDir?: string;
  log?: (line: string) => void;
}

export interface RunReport {
  seed: number;
  dir: string;
  mode: HostMode;
  valid: boolean;
  ops: { total: number; ok: number; fail: number; unknown: number };
  faults: { name: string; detail: string; startMs: number; healMs: number; recoveryMs: number | undefined }[];
  skipped: { name: string; why: string }[];
  /**
   * `recovery`: writes were not served again within the bound after a heal (liveness);
   * `fault`: anything else (undetected damage, a node that cannot restart or rejoin, a nemesis
   * that failed, an aborted run).
   */
  anomalies: { nemesis: string; kind: 'recovery' | 'fault'; detail: string }[];
  recovery: { p50Ms: number | undefined; p99Ms: number | undefined; maxMs: number | undefined };
  verdicts: CheckerVerdict[];
  summary: string;
}

const TICK_MS = 50;
const ELECTION_TICKS = 10;
const RECOVERY_DEADLINE_MS = 30_000;

/**
 * Time from each heal until writes were served again. A heal not followed by served writes
 * within the bound counts as the bound (a lower bound of the truth); overlays (membership,
 * transfers) have no recovery of their own.
 */
export function recoveryTimes(faults: RunReport['faults']): number[] {
  return faults
    .filter((f) => !['membership', 'transfer-leader'].includes(f.name))
    .map((f) => f.recoveryMs ?? RECOVERY_DEADLINE_MS);
}

export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function runFaults(options: RunOptions): Promise<RunReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const size = options.size ?? 3;
  const prng = new Prng(options.seed);
  const schedulePrng = prng.fork();
  const workloadPrng = prng.fork();
  const base = options.baseDir ?? os.tmpdir();
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(path.join(base, `concord-faults-${options.seed}-`));
  log(`faults: seed ${options.seed} (replay: FAULTS_SEED=${options.seed}); results in ${dir}`);

  const timeline: TimelineEvent[] = [];
  const anomalies: RunReport['anomalies'] = [];
  const faults: RunReport['faults'] = [];
  const skipped: RunReport['skipped'] = [];
  const hosts = await Hosts.create({ slots: size + 1, runDir: dir, seed: options.seed, ...(options.mode ? { mode: options.mode } : {}) });
  const cluster = new FaultCluster(hosts, {
    size,
    tickMs: TICK_MS,
    electionTicks: ELECTION_TICKS,
    // Small, so snapshots (and snapshot installs for re-added nodes) happen within a short run.
    snapshotEntries: 500,
  });
  const now = runClock();
  const families = options.families ?? FAMILIES;
  let runs: FamilyRun[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(runs.map((r) => r.stop()));
  };
  const ctx: NemesisContext = {
    cluster,
    hosts,
    prng: schedulePrng,
    now,
    record: (e) => {
      timeline.push({ atMs: now(), ...e });
      if (e.phase !== 'note') log(`      ${(now() / 1000).toFixed(1)}s ${e.nemesis} ${e.phase}: ${e.detail}`);
    },
    anomaly: (nemesis, detail) => {
      anomalies.push({ nemesis, kind: detail.startsWith('writes not served within') ? 'recovery' : 'fault', detail });
      timeline.push({ atMs: now(), nemesis, phase: 'anomaly', detail });
      log(`      ANOMALY ${nemesis}: ${detail}`);
    },
  };

  try {
    await cluster.start();
    await cluster.waitForLeader(20_000);
    await cluster.waitUntilServing(20_000);

    runs = families.map((family) =>
      family.create({
        endpoints: () => cluster.endpoints(),
        prng: workloadPrng.fork(),
        prefix: `s${options.seed}:${family.name}`,
        processes: options.processes ?? 6,
        maxOps: options.maxOps ?? 60_000,
        commandTimeoutMs: 1_000,
        now,
      }),
    );
    for (const r of runs) r.start();

    const chosen: Nemesis[] = [];
    for (const n of options.nemeses.length === 0 ? NEMESES : options.nemeses.map(nemesisByName)) {
      const why = n.unavailable(ctx);
      if (why === undefined) chosen.push(n);
      else {
        skipped.push({ name: n.name, why });
        log(`      skipped nemesis ${n.name}: ${why}`);
      }
    }
    const primaries = chosen.filter((n) => n.overlay !== true);
    const overlays = chosen.filter((n) => n.overlay === true);
    const pending = new Set(options.everyOnce ? chosen.map((n) => n.name) : []);
    const started = Date.now();
    let round: Nemesis[] = [];
    while (primaries.length > 0 && (Date.now() - started < options.durationMs || pending.size > 0)) {
      if (round.length === 0) {
        round = [...primaries];
        for (let i = round.length - 1; i > 0; i--) {
          const j = schedulePrng.below(i + 1);
          [round[i], round[j]] = [round[j]!, round[i]!];
        }
      }
      const nemesis = round.pop()!;
      // Overlays still owed go first; otherwise one in three faults gets one at random.
      const owed = overlays.filter((o) => pending.has(o.name));
      const overlay =
        nemesis.name === 'kill-all' || nemesis.name === 'wipe-restart'
          ? undefined
          : (owed[0] ?? (overlays.length > 0 && schedulePrng.below(3) === 0 ? schedulePrng.pick(overlays) : undefined));
      await new Promise((resolve) => setTimeout(resolve, 300 + schedulePrng.below(700)));
      await runOne(ctx, nemesis, overlay, faults, cluster);
      pending.delete(nemesis.name);
      if (overlay !== undefined) pending.delete(overlay.name);
    }

    // Quiet end: everything healed, every member up, replicas converged.
    await hosts.heal();
    for (const h of cluster.members) if (!h.isRunning()) await restartOrRejoin(ctx, 'final', h);
    await cluster.waitUntilServing(RECOVERY_DEADLINE_MS);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a little fault-free load at the end
    await stopAll();
    await cluster.waitConverged(30_000);
  } catch (err) {
    ctx.anomaly('runner', `run aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopAll();
  }

  let report: RunReport | undefined;
  try {
    const verdicts: CheckerVerdict[] = [];
    const files: Record<string, unknown> = {};
    const windows = faults.map((f) => ({ name: f.name, startMs: f.startMs, healMs: f.healMs }));
    for (const r of runs) {
      const checked = await r.check(cluster.endpoints(), { faults: windows });
      verdicts.push(...checked.verdicts);
      Object.assign(files, checked.files);
    }
    const ops: BaseOp[] = runs.flatMap((r) => [...r.ops()]);
    const counts = { ok: 0, fail: 0, unknown: 0 };
    for (const op of ops) counts[op.result]++;
    const recoveries = recoveryTimes(faults);
    const recovery = { p50Ms: percentile(recoveries, 50), p99Ms: percentile(recoveries, 99), maxMs: percentile(recoveries, 100) };
    const valid = verdicts.length > 0 && verdicts.every((v) => v.valid) && anomalies.length === 0;
    const byFamily = runs.map((r) => `${r.family} ${r.ops().length}`).join(', ');
    const summary = summarize(options.seed, hosts.mode, dir, ops.length, counts, byFamily, faults, skipped, anomalies, recovery, verdicts, valid);
    report = { seed: options.seed, dir, mode: hosts.mode, valid, ops: { total: ops.length, ...counts }, faults, skipped, anomalies, recovery, verdicts, summary };
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), JSON.stringify(content));
    await writeFile(path.join(dir, 'timeline.json'), JSON.stringify(timeline, null, 1));
    const { summary: _s, ...rest } = report;
    await writeFile(path.join(dir, 'verdict.json'), JSON.stringify(rest, null, 1));
    await writeFile(path.join(dir, 'summary.txt'), summary);
    await writeFile(path.join(dir, 'latency.svg'), latencySvg(ops, faults));
  } finally {
    if (process.env['FAULTS_KEEP'] !== '1') {
      await hosts.cleanup();
      // A valid run keeps its histories and verdict, not the nodes' data (soak runs add up).
      if (report?.valid === true) {
        for (const h of hosts.hosts) await rm(h.dataDir, { recursive: true, force: true });
      }
    } else log(`      FAULTS_KEEP=1: cluster left running in ${dir}`);
  }
  log(report.summary);
  return report;
}

async function runOne(
  ctx: NemesisContext,
  nemesis: Nemesis,
  overlay: Nemesis | undefined,
  faults: RunReport['faults'],
  cluster: FaultCluster,
): Promise<void> {
  // Every member up before a new fault: a node left down by an earlier anomaly is restarted
  // (or, if it refuses, re-added); if that fails too, the fault is not injected, so the suite
  // itself never takes down or wipes a majority.
  for (const h of cluster.members) {
    if (h.isRunning()) continue;
    try {
      await restartOrRejoin(ctx, 'restore', h);
    } catch (err) {
      ctx.anomaly('restore', `${h.id} is down and could not be brought back: ${String(err).slice(0, 300)}; ${nemesis.name} not injected`);
      return;
    }
  }
  const startMs = ctx.now();
  let detail = '';
  try {
    const active = await nemesis.start(ctx);
    detail = active.detail;
    ctx.record({ nemesis: nemesis.name, phase: 'start', detail });
    // Longer than an election timeout, so pauses and partitions force an election.
    const holdMs = cluster.electionTimeoutMs * 2 + ctx.prng.below(2_000);
    if (overlay !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, holdMs / 2));
      try {
        const o = await overlay.start(ctx);
        ctx.record({ nemesis: overlay.name, phase: 'start', detail: `${o.detail} (during ${nemesis.name})` });
        faults.push({ name: overlay.name, detail: o.detail, startMs: ctx.now(), healMs: ctx.now(), recoveryMs: undefined });
      } catch (err) {
        // A membership change may fail under a fault (no quorum): that is an allowed outcome.
        ctx.record({ nemesis: overlay.name, phase: 'note', detail: `failed during ${nemesis.name}: ${String(err).slice(0, 300)}` });
      }
      await new Promise((resolve) => setTimeout(resolve, holdMs / 2));
    } else {
      await new Promise((resolve) => setTimeout(resolve, holdMs));
    }
    ctx.record({ nemesis: nemesis.name, phase: 'heal', detail });
    await active.heal();
  } catch (err) {
    ctx.anomaly(nemesis.name, `nemesis failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 1000));
    await ctx.hosts.heal().catch(() => undefined);
  }
  const healMs = ctx.now();
  let recoveryMs: number | undefined;
  try {
    await cluster.waitUntilServing(RECOVERY_DEADLINE_MS);
    recoveryMs = ctx.now() - healMs;
    ctx.record({ nemesis: nemesis.name, phase: 'healed', detail: `writes served again ${recoveryMs.toFixed(0)} ms after heal` });
  } catch (err) {
    ctx.anomaly(nemesis.name, `writes not served within ${RECOVERY_DEADLINE_MS} ms after heal: ${String(err).slice(0, 300)}`);
    // What each member says about itself, for the report (INFO raft, or why it did not answer).
    for (const h of cluster.members) {
      const info = await cluster.raftInfo(h, 1_000).then(
        (f) => [...f].filter(([k]) => /role|term|leader_id|commit|applied|snapshot|voters|learners|last_index/.test(k)).map(([k, v]) => `${k}=${v}`).join(' '),
        (e: unknown) => `no answer: ${String(e).slice(0, 100)}`,
      );
      ctx.record({ nemesis: nemesis.name, phase: 'note', detail: `INFO raft ${h.id}: ${info}` });
    }
    await pollUntil('a leader', () => cluster.currentLeader(), 5_000).catch(() => undefined);
  }
  faults.push({ name: nemesis.name, detail, startMs, healMs, recoveryMs });
}

/** Restarts a member that is down; one that refuses to start is an anomaly, then re-added. */
async function restartOrRejoin(ctx: NemesisContext, name: string, host: Host): Promise<void> {
  try {
    await ctx.cluster.restartCaughtUp(host);
  } catch (err) {
    if (!(err instanceof StartFailed)) throw err;
    ctx.anomaly(name, `${host.id} could not restart: ${err.message.slice(0, 300)}`);
    await rejoinWiped(ctx, name, host);
  }
}

function summarize(
  seed: number,
  mode: HostMode,
  dir: string,
  total: number,
  counts: Record<'ok' | 'fail' | 'unknown', number>,
  byFamily: string,
  faults: RunReport['faults'],
  skipped: RunReport['skipped'],
  anomalies: RunReport['anomalies'],
  recovery: RunReport['recovery'],
  verdicts: readonly CheckerVerdict[],
  valid: boolean,
): string {
  const lines = [
    `faults run seed=${seed} hosts=${mode} -> ${valid ? 'VALID' : 'INVALID'}`,
    `  ops: ${total} (ok ${counts.ok}, fail ${counts.fail}, unknown ${counts.unknown}; ${byFamily})`,
    `  faults: ${faults.length} (${[...new Set(faults.map((f) => f.name))].join(', ')})`,
    ...(skipped.length > 0 ? [`  skipped: ${skipped.map((s) => `${s.name} (${s.why})`).join('; ')}`] : []),
    `  recovery after heal: p50 ${String(recovery.p50Ms?.toFixed(0))} ms, p99 ${String(recovery.p99Ms?.toFixed(0))} ms, max ${String(recovery.maxMs?.toFixed(0))} ms`,
    ...verdicts.flatMap((v) => [
      `  ${v.family}/${v.checker}: ${v.valid ? 'ok' : 'VIOLATION'} (${v.summary})`,
      ...v.details.map((d) => `    ${d}`),
    ]),
    `  anomalies: ${anomalies.length}`,
    ...anomalies.slice(0, 10).map((a) => `    ${a.nemesis} (${a.kind}): ${a.detail.slice(0, 300)}`),
    `  files: ${dir}/{summary.txt,verdict.json,*-history.json,timeline.json,latency.svg}`,
  ];
  return lines.join('\n');
}

/** A small SVG: latency of each ok op at its invocation time (log scale), faults shaded. */
export function latencySvg(history: readonly BaseOp[], faults: RunReport['faults']): string {
  const width = 1200;
  const height = 400;
  const ok = history.filter((op) => op.result === 'ok' && op.completeMs !== undefined);
  // A loop, not Math.max(...spread): a long soak's history exceeds the call stack's arguments.
  let endMs = 1;
  for (const op of history) endMs = Math.max(endMs, op.completeMs ?? op.invokeMs);
  const x = (ms: number): number => (ms / endMs) * (width - 60) + 50;
  const maxLat = 10_000;
  const y = (lat: number): number => height - 30 - (Math.log10(Math.max(0.1, Math.min(maxLat, lat)) * 10) / Math.log10(maxLat * 10)) * (height - 50);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  for (const f of faults) {
    parts.push(
      `<rect x="${x(f.startMs).toFixed(1)}" y="10" width="${Math.max(1, x(f.healMs) - x(f.startMs)).toFixed(1)}" height="${height - 40}" fill="#f5c6c6" opacity="0.6"><title>${f.name}: ${escapeXml(f.detail)}</title></rect>`,
      `<text x="${x(f.startMs).toFixed(1)}" y="20" transform="rotate(90 ${x(f.startMs).toFixed(1)} 20)">${escapeXml(f.name)}</text>`,
    );
  }
  const step = Math.max(1, Math.floor(ok.length / 20_000));
  for (let i = 0; i < ok.length; i += step) {
    const op = ok[i]!;
    const color = op.kind === 'get' ? '#1f77b4' : op.kind === 'set' ? '#2ca02c' : op.kind === 'incr' ? '#ff7f0e' : '#7f7f7f';
    parts.push(`<circle cx="${x(op.invokeMs).toFixed(1)}" cy="${y(op.completeMs! - op.invokeMs).toFixed(1)}" r="1" fill="${color}"/>`);
  }
  for (const lat of [1, 10, 100, 1000, 10000]) {
    parts.push(`<text x="2" y="${y(lat).toFixed(1)}">${lat} ms</text>`, `<line x1="48" x2="${width}" y1="${y(lat).toFixed(1)}" y2="${y(lat).toFixed(1)}" stroke="#ddd"/>`);
  }
  parts.push(`<text x="50" y="${height - 5}">0 s</text><text x="${width - 60}" y="${height - 5}">${(endMs / 1000).toFixed(0)} s (GET blue, SET green, INCR orange; faults shaded)</text>`, '</svg>');
  return parts.join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
