/**
 * Runs many seeds of the simulation on worker threads (node:worker_threads), in chunks handed
 * out as workers free up, and merges their summaries. Used by the sim specs (so `npm test`
 * uses both cores) and by soak.ts.
 *
 * Owns the workers it starts and always terminates them, even when a run fails. Keeps at most
 * `maxFailures` failing results per summary: the rest are only counted.
 */
import { Worker } from 'node:worker_threads';
import type { BugFlags } from '../core.js';
import type { RunResult } from './runner.js';

export interface ChunkRequest {
  from: number;
  count: number;
  steps: number;
  bugs?: BugFlags;
  maxFailures: number;
}

export interface Summary {
  seeds: number;
  failed: number;
  /** The first failing results (at most maxFailures), in seed order within a chunk. */
  failures: RunResult[];
  maxHealTicks: number;
  /** Seed with the slowest heal, for the report. */
  maxHealSeed: number;
  healTicksTotal: number;
  /** Slowest time from healing to a fresh write committed, in ticks, and its seed. */
  maxHealCommitTicks: number;
  maxHealCommitSeed: number;
  totals: {
    proposals: number;
    acked: number;
    reads: number;
    readsServed: number;
    leaders: number;
    commits: number;
    crashes: number;
    confChanges: number;
    transfers: number;
    snapshotsInstalled: number;
    ticks: number;
    messages: number;
  };
}

export function emptySummary(): Summary {
  return {
    seeds: 0,
    failed: 0,
    failures: [],
    maxHealTicks: 0,
    maxHealSeed: 0,
    healTicksTotal: 0,
    maxHealCommitTicks: 0,
    maxHealCommitSeed: 0,
    totals: {
      proposals: 0,
      acked: 0,
      reads: 0,
      readsServed: 0,
      leaders: 0,
      commits: 0,
      crashes: 0,
      confChanges: 0,
      transfers: 0,
      snapshotsInstalled: 0,
      ticks: 0,
      messages: 0,
    },
  };
}

export function summarize(results: readonly RunResult[], maxFailures: number): Summary {
  const s = emptySummary();
  for (const r of results) {
    s.seeds++;
    if (!r.ok) {
      s.failed++;
      if (s.failures.length < maxFailures) s.failures.push(r);
    }
    if (r.healTicks > s.maxHealTicks) {
      s.maxHealTicks = r.healTicks;
      s.maxHealSeed = r.seed;
    }
    s.healTicksTotal += r.healTicks;
    if (r.healCommitTicks > s.maxHealCommitTicks) {
      s.maxHealCommitTicks = r.healCommitTicks;
      s.maxHealCommitSeed = r.seed;
    }
    const t = s.totals;
    t.proposals += r.stats.proposals;
    t.acked += r.stats.proposalsAcked;
    t.reads += r.stats.reads;
    t.readsServed += r.stats.readsServed;
    t.leaders += r.stats.leaders;
    t.commits += r.stats.commits;
    t.crashes += r.stats.crashes;
    t.confChanges += r.stats.confChanges;
    t.transfers += r.stats.transfers;
    t.snapshotsInstalled += r.stats.snapshotsInstalled;
    t.ticks += r.stats.ticks;
    t.messages += r.stats.network.delivered;
  }
  return s;
}

export function merge(into: Summary, from: Summary, maxFailures: number): void {
  into.seeds += from.seeds;
  into.failed += from.failed;
  for (const f of from.failures) if (into.failures.length < maxFailures) into.failures.push(f);
  if (from.maxHealTicks > into.maxHealTicks) {
    into.maxHealTicks = from.maxHealTicks;
    into.maxHealSeed = from.maxHealSeed;
  }
  into.healTicksTotal += from.healTicksTotal;
  if (from.maxHealCommitTicks > into.maxHealCommitTicks) {
    into.maxHealCommitTicks = from.maxHealCommitTicks;
    into.maxHealCommitSeed = from.maxHealCommitSeed;
  }
  for (const k of Object.keys(into.totals) as (keyof Summary['totals'])[]) into.totals[k] += from.totals[k];
}

export interface PoolOptions {
  from: number;
  count: number;
  steps: number;
  workers: number;
  chunk: number;
  bugs?: BugFlags;
  maxFailures?: number;
  /** Stop handing out chunks once this many seeds failed. */
  stopAfterFailures?: number;
  onProgress?: (done: Summary) => void;
}

/** Runs seeds [from, from + count) on `workers` threads; resolves with the merged summary. */
export async function runPool(options: PoolOptions): Promise<Summary> {
  const maxFailures = options.maxFailures ?? 10;
  const total = emptySummary();
  let next = options.from;
  const end = options.from + options.count;
  const url = new URL('./worker.js', import.meta.url);
  const workers = Array.from({ length: Math.max(1, options.workers) }, () => new Worker(url));
  const drive = (worker: Worker): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const send = (): void => {
        const stop = options.stopAfterFailures !== undefined && total.failed >= options.stopAfterFailures;
        if (next >= end || stop) {
          resolve();
          return;
        }
        const count = Math.min(options.chunk, end - next);
        const req: ChunkRequest = {
          from: next,
          count,
          steps: options.steps,
          maxFailures,
          ...(options.bugs === undefined ? {} : { bugs: options.bugs }),
        };
        next += count;
        worker.postMessage(req);
      };
      worker.on('message', (summary: Summary) => {
        merge(total, summary, maxFailures);
        options.onProgress?.(total);
        send();
      });
      worker.on('error', reject);
      send();
    });
  try {
    await Promise.all(workers.map(drive));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  total.failures.sort((a, b) => a.seed - b.seed);
  return total;
}
