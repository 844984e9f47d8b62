/**
 * The long soak run of the Raft simulation, outside CI:
 *
 *   node dist/raft/sim/soak.js [seeds=100000] [steps=2000] [firstSeed=1] [workers=2]
 *
 * Runs the seeds on worker threads, prints progress (seeds done, seeds/s, failures) every few
 * seconds and every failing seed with its invariant, replay command and trace tail; exits 1 if
 * any seed failed. This is the only place in raft/sim that reads argv or measures wall time,
 * and only to report throughput: no simulated run ever sees it.
 */
import { runPool } from './pool.js';
import type { Summary } from './pool.js';
import { formatFailure } from './runner.js';

function arg(i: number, fallback: number): number {
  const raw = process.argv[2 + i];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`argument ${i + 1} must be a non-negative integer, got ${raw}`);
  return n;
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

async function main(): Promise<void> {
  const seeds = arg(0, 100_000);
  const steps = arg(1, 2000);
  const from = arg(2, 1);
  const workers = arg(3, 2);
  const started = process.hrtime.bigint();
  let lastPrint = started;
  let printedFailures = 0;
  console.log(`soak: seeds ${from}..${from + seeds - 1}, ${steps} steps each, ${workers} workers`);
  const report = (s: Summary): string => {
    const elapsed = seconds(started);
    return (
      `soak: ${s.seeds}/${seeds} seeds, ${(s.seeds / Math.max(elapsed, 1e-9)).toFixed(1)} seeds/s, ` +
      `${s.failed} failed, ${elapsed.toFixed(1)} s, heal: commit <= ${s.maxHealCommitTicks} ticks (seed ${s.maxHealCommitSeed}), ` +
      `all caught up <= ${s.maxHealTicks} ticks (seed ${s.maxHealSeed})`
    );
  };
  const summary = await runPool({
    from,
    count: seeds,
    steps,
    workers,
    chunk: 50,
    maxFailures: 50,
    onProgress: (s) => {
      for (; printedFailures < s.failures.length; printedFailures++) {
        const f = s.failures[printedFailures];
        if (f !== undefined) console.log(formatFailure(f));
      }
      if (Number(process.hrtime.bigint() - lastPrint) > 5e9) {
        lastPrint = process.hrtime.bigint();
        console.log(report(s));
      }
    },
  });
  console.log(report(summary));
  const t = summary.totals;
  console.log(
    `soak totals: leaders ${t.leaders}, commits ${t.commits}, writes acked ${t.acked}/${t.proposals}, ` +
      `reads served ${t.readsServed}/${t.reads}, crashes ${t.crashes}, conf changes ${t.confChanges}, ` +
      `transfers ${t.transfers}, snapshots installed ${t.snapshotsInstalled}, messages ${t.messages}, ticks ${t.ticks}`,
  );
  if (summary.failed > 0) {
    console.log(
      `soak: FAILED seeds: ${summary.failures.map((f) => f.seed).join(' ')}${summary.failed > summary.failures.length ? ' ...' : ''}`,
    );
    process.exitCode = 1;
  }
}

await main();
