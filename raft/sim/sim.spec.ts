/**
 * The randomized Raft simulation (runner.ts) over many seeds, on two worker threads:
 * every invariant after every step, then liveness after healing. A failure prints its seed,
 * the invariant, a replay command and the trace tail.
 *
 *   npm run test:sim                      SEEDS (default 3000) seeds of STEPS (default 3000)
 *   SEED=n [STEPS=m] npm run test:sim     replays seed n in this process, with its trace
 *   BUGS=forgetVote SEED=n ...            the same with deliberate core faults (bugs.spec.ts)
 *
 * The environment is read here, in the spec, never by the simulation itself.
 */
import { expect } from 'chai';
import type { BugFlags } from '../core.js';
import { runPool } from './pool.js';
import type { Summary } from './pool.js';
import { formatFailure, runSeed } from './runner.js';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

const STEPS = envInt('STEPS', 3000);
const SEEDS = envInt('SEEDS', 3000);
const SINGLE = process.env['SEED'];
/** BUGS=flag,flag replays a seed with RaftConfig.bugs set (to watch a caught fault's trace). */
const BUGS = bugFlags(process.env['BUGS']);

function bugFlags(raw: string | undefined): BugFlags | undefined {
  if (raw === undefined || raw === '') return undefined;
  const known: (keyof BugFlags)[] = [
    'commitOldTermEntries',
    'voteWithoutLogCheck',
    'forgetVote',
    'skipPrevLogCheck',
    'readIndexWithoutQuorumCheck',
    'commitRegression',
  ];
  const flags: BugFlags = {};
  for (const name of raw.split(',')) {
    const flag = known.find((k) => k === name.trim());
    if (flag === undefined) throw new RangeError(`BUGS: unknown flag ${name}; known: ${known.join(', ')}`);
    flags[flag] = true;
  }
  return flags;
}

describe('raft/sim: randomized simulation', function () {
  this.timeout(0);

  if (SINGLE !== undefined && SINGLE !== '') {
    const seed = envInt('SEED', 0);
    it(`replays seed ${seed} (${STEPS} steps)`, () => {
      const r = runSeed({
        seed,
        steps: STEPS,
        traceLines: 80,
        ...(BUGS === undefined ? {} : { bugs: BUGS }),
      });
      if (!r.ok) console.log(formatFailure(r));
      else
        console.log(
          `      seed ${seed}: ok, ${r.stats.commits} commits, heal: commit after ${r.healCommitTicks} ticks (bound ${r.healBudget}), all caught up after ${r.healTicks} (bound ${2 * r.healBudget}); ${r.config}`,
        );
      expect(r.ok, r.message).to.equal(true);
    });
    return;
  }

  it('is deterministic: a seed replays the same messages in the same order, and the same result', () => {
    for (const seed of [1, 77, 1234]) {
      const a = runSeed({ seed, steps: STEPS, digest: true });
      const b = runSeed({ seed, steps: STEPS, digest: true });
      expect(a.digest).to.be.a('number');
      expect(JSON.stringify(a)).to.equal(JSON.stringify(b));
      expect(runSeed({ seed: seed + 1, steps: STEPS, digest: true }).digest).to.not.equal(a.digest);
    }
  });

  const parts = 4;
  const per = Math.ceil(SEEDS / parts);
  const total: Summary[] = [];
  for (let p = 0; p < parts; p++) {
    const from = 1 + p * per;
    const count = Math.max(0, Math.min(per, SEEDS - p * per));
    if (count === 0) continue;
    it(`seeds ${from}..${from + count - 1}: every invariant after every step, then liveness`, async () => {
      const s = await runPool({ from, count, steps: STEPS, workers: 2, chunk: 25, maxFailures: 5 });
      total.push(s);
      for (const f of s.failures) console.log(formatFailure(f));
      expect(s.seeds).to.equal(count);
      expect(s.failed, `failing seeds: ${s.failures.map((f) => f.seed).join(' ')}`).to.equal(0);
    });
  }

  it('exercised what it claims: elections, commits, reads, crashes, membership, snapshots', function () {
    if (total.length === 0) this.skip();
    const t = total.reduce(
      (acc, s) => {
        for (const k of Object.keys(acc) as (keyof typeof acc)[]) acc[k] += s.totals[k];
        return acc;
      },
      {
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
    );
    const seeds = total.reduce((n, s) => n + s.seeds, 0);
    const maxHeal = Math.max(...total.map((s) => s.maxHealTicks));
    const maxCommit = Math.max(...total.map((s) => s.maxHealCommitTicks));
    console.log(
      `      ${seeds} seeds x ${STEPS} steps: ${JSON.stringify(t)}, after healing: commit <= ${maxCommit} ticks, all caught up <= ${maxHeal} ticks`,
    );
    expect(t.leaders).to.be.at.least(seeds);
    expect(t.commits).to.be.above(seeds * 10);
    expect(t.acked).to.be.above(0);
    expect(t.readsServed).to.be.above(0);
    expect(t.crashes).to.be.above(0);
    expect(t.confChanges).to.be.above(0);
    expect(t.transfers).to.be.above(0);
    expect(t.snapshotsInstalled).to.be.above(0);
  });
});
