/**
 * The CI-sized fault run (part of `npm test`): a 3-node cluster in network namespaces (or on
 * loopback with proxy partitions where namespaces are unavailable), every workload family
 * (registers, locks, queues, cache: families/index.ts) on every node at once, every available
 * nemesis at least once in a seeded random order, then a verdict per checker. Prints the seed (FAULTS_SEED=<n> replays the schedule) and the run dir with
 * history.json, timeline.json, verdict.json, summary.txt and latency.svg.
 *
 * A second, shorter run forces the loopback fallback (proxy partitions, kills, pause, delay, and
 * packet loss as the proxies model it), so the fallback path stays working on machines where
 * the suite does run as root.
 *
 * A user checks: every checker says ok (no stale read, no lost or duplicated write, no lost
 * increment; no two lock holders, tokens in grant order, no stale fenced write; every
 * acknowledged push delivered, nothing delivered after its ack; no stale CGET), no anomaly (damaged files detected, every node restarts or is re-added), and
 * writes are served again within 5 s (p99) of every heal.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { CacheVerdict } from './checkers/cache.js';
import type { CounterVerdict } from './checkers/counter.js';
import type { DurabilityVerdict } from './checkers/durability.js';
import type { LockVerdict } from './checkers/locks.js';
import type { QueueVerdict } from './checkers/queues.js';
import type { CheckerVerdict } from './family.js';
import { CONCORD_MAIN } from './hosts.js';
import { runFaults, type RunReport } from './runner.js';

const SEED = process.env['FAULTS_SEED'] !== undefined ? Number(process.env['FAULTS_SEED']) : Date.now() % 1_000_000;
const RECOVERY_P99_BOUND_MS = 5_000;
/** Every family runs in both CI runs (families/index.ts); these are their checkers. */
const ALL_CHECKERS = [
  'registers/linearizable',
  'registers/durability',
  'registers/counter',
  'locks/exclusion',
  'locks/tokens',
  'locks/fencing',
  'locks/data-linearizable',
  'queues/delivery',
  'cache/coherence',
];

function explain(report: RunReport): string {
  return `${report.summary}\n(replay: FAULTS_SEED=${report.seed} npm test, or FAULTS_SEED=${report.seed} npm run faults)`;
}

function verdict(report: RunReport, name: string): CheckerVerdict {
  const v = report.verdicts.find((x) => `${x.family}/${x.checker}` === name);
  expect(v, `${name} missing\n${explain(report)}`).to.not.equal(undefined);
  return v!;
}

/** The run's checks, one `it` each, so a failure says which property broke. */
function checksFor(run: () => RunReport, minOps: number): void {
  it('safety: every checker green (registers, locks, queues, cache)', () => {
    const report = run();
    expect(report.verdicts.map((v) => `${v.family}/${v.checker}`), explain(report)).to.include.members(ALL_CHECKERS);
    for (const v of report.verdicts) expect(v.valid, `${v.family}/${v.checker}\n${explain(report)}`).to.equal(true);
    // The run did something: enough acknowledged operations of every kind to check.
    expect(report.ops.ok, explain(report)).to.be.greaterThan(minOps);
    const durability = verdict(report, 'registers/durability').data as DurabilityVerdict;
    const counter = verdict(report, 'registers/counter').data as CounterVerdict;
    expect(durability.ackedWrites, explain(report)).to.be.greaterThan(50);
    expect(counter.keys.length, explain(report)).to.be.greaterThan(0);
    const locks = verdict(report, 'locks/exclusion').data as LockVerdict;
    expect(locks.grants, explain(report)).to.be.greaterThan(10);
    expect(locks.fencedWrites.ok, explain(report)).to.be.greaterThan(10);
    const queues = verdict(report, 'queues/delivery').data as QueueVerdict;
    expect(queues.ackedPayloads, explain(report)).to.be.greaterThan(50);
    expect(queues.deliveries, explain(report)).to.be.at.least(queues.ackedPayloads);
    const cache = verdict(report, 'cache/coherence').data as CacheVerdict;
    expect(cache.writes.ok, explain(report)).to.be.greaterThan(20);
    expect(cache.reads.ok, explain(report)).to.be.greaterThan(50);
  });

  it('faults handled: damage detected, every node restarts or rejoins, every nemesis runs', () => {
    const report = run();
    expect(report.anomalies.filter((a) => a.kind === 'fault'), explain(report)).to.deep.equal([]);
  });

  it(`recovery: writes served again after every heal, p99 within ${RECOVERY_P99_BOUND_MS} ms`, () => {
    const report = run();
    expect(report.anomalies.filter((a) => a.kind === 'recovery'), explain(report)).to.deep.equal([]);
    expect(report.recovery.p99Ms, explain(report)).to.be.a('number').and.at.most(RECOVERY_P99_BOUND_MS);
  });
}

describe('faults: fault injection with history checkers (CI run)', function () {
  this.timeout(600_000);

  before(function () {
    if (!existsSync(CONCORD_MAIN)) {
      console.log(`      skipped: ${CONCORD_MAIN} not built`);
      this.skip();
    }
    try {
      execFileSync(process.execPath, [CONCORD_MAIN, 'server', '--help'], { stdio: 'ignore', timeout: 20_000 });
    } catch {
      this.skip();
    }
  });

  describe(`every nemesis at least once against every workload family (seed ${SEED})`, function () {
    let report: RunReport | undefined;
    before(async function () {
      this.timeout(600_000);
      // Four families side by side, 4 client processes each (16 in all, on a 2-core machine).
      report = await runFaults({ seed: SEED, durationMs: 0, nemeses: [], everyOnce: true, processes: 4, maxOps: 60_000 });
      for (const skipped of report.skipped) console.log(`      not run here: ${skipped.name} (${skipped.why})`);
    });
    checksFor(() => report!, 500);
    it('ran every nemesis that can run here', () => {
      const ran = new Set(report!.faults.map((f) => f.name));
      expect(ran.size + report!.skipped.length, explain(report!)).to.be.at.least(20);
    });
  });

  describe(`the loopback fallback: proxy partitions, kills, pause, delay and loss (seed ${SEED + 1})`, function () {
    let report: RunReport | undefined;
    before(async function () {
      this.timeout(600_000);
      report = await runFaults({
        seed: SEED + 1,
        durationMs: 0,
        mode: 'loopback',
        nemeses: ['partition-leader', 'partition-halves', 'partition-one-way', 'kill-leader', 'pause-leader', 'delay', 'packet-loss', 'transfer-leader'],
        everyOnce: true,
        processes: 3,
        maxOps: 30_000,
      });
      expect(report.mode).to.equal('loopback');
    });
    checksFor(() => report!, 300);
  });
});
