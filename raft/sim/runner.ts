/**
 * One randomized simulation run from a seed: a random cluster configuration, a random
 * schedule of ticks, deliveries, client writes and ReadIndex reads, and faults (crashes,
 * restarts, symmetric and asymmetric partitions, loss and duplication bursts, membership
 * changes, leadership transfers, forced campaigns), with every invariant checked after every
 * step; then a heal phase (all links restored, crashed nodes restarted, no loss) in which a
 * leader must be elected and a fresh write must commit and be applied by every member within
 * a bounded number of ticks (liveness; paper §5.6 / thesis §3.4 on timing).
 *
 * The same seed and step count give the same run, byte for byte: every choice comes from one
 * Prng (forked per consumer). This module must never read Math.random, Date or the
 * environment; soak.ts and the specs pick the seeds.
 */
import type { BugFlags } from '../core.js';
import { ConfChangeType } from '../messages.js';
import type { ConfChange } from '../messages.js';
import { Cluster, describeMessage } from './cluster.js';
import type { ClusterOptions, ClusterStats, SimNode } from './cluster.js';
import { InvariantViolation } from './invariants.js';
import type { InvariantName } from './invariants.js';
import type { NetworkStats } from './network.js';
import { Prng } from './prng.js';
import { Trace } from './trace.js';

export interface RunOptions {
  seed: number;
  steps: number;
  bugs?: BugFlags;
  /** Overrides of the randomized cluster configuration (e.g. to force preVote off). */
  overrides?: Partial<ClusterOptions>;
  /** Lines of trace tail kept for a failure report. */
  traceLines?: number;
  /** Hash every delivered message into RunResult.digest (for determinism checks). */
  digest?: boolean;
  /** Skip the heal phase (liveness is not checked). */
  skipHeal?: boolean;
  /**
   * Ticks a leader may take after healing to commit a fresh write; every member must apply
   * it within twice that. Default: 30 election timeouts + 4 ticks per entry of backlog (the
   * span between the lowest applied index and the highest last index when healing starts),
   * since with one entry per message and one message in flight, catching up is one round
   * trip per entry.
   */
  healBudgetTicks?: number;
}

export interface RunResult {
  seed: number;
  steps: number;
  ok: boolean;
  /** The broken invariant, or 'Crash' when the core or driver threw something else. */
  invariant?: InvariantName | 'Crash';
  message?: string;
  /** Step at which it failed (steps + heal ticks when in the heal phase). */
  failedAtStep?: number;
  trace?: string[];
  state?: string;
  /** Ticks the heal phase needed until a leader committed a fresh write (on a quorum). */
  healCommitTicks: number;
  /** Ticks the heal phase needed until every member applied it (lagging nodes caught up). */
  healTicks: number;
  /** Ticks the heal phase allowed until commit (twice this until every member applied). */
  healBudget: number;
  /** Election timeout of the run, to express heal times in election timeouts. */
  electionTicks: number;
  stats: ClusterStats & {
    network: NetworkStats;
    leaders: number;
    commits: number;
    readsServed: number;
    ticks: number;
  };
  config: string;
  /** Hash of every delivered message, in order, when RunOptions.digest was set. */
  digest?: number;
}

/** The cluster configuration of a seed: varied so runs cover fast and slow, lossy and clean. */
export function randomClusterOptions(prng: Prng): ClusterOptions {
  const electionTicks = prng.range(5, 12);
  const lossRate = prng.pick([0, 0.01, 0.05, 0.1, 0.2]);
  const maxDelayTicks = prng.pick([0, 1, 2, 4]);
  return {
    initialVoters: prng.range(3, 5),
    maxNodes: 7,
    electionTicks,
    heartbeatTicks: prng.range(1, Math.max(1, Math.floor(electionTicks / 3))),
    preVote: prng.chance(0.5),
    checkQuorum: prng.chance(0.5),
    maxInflightMsgs: prng.range(1, 8),
    maxSizePerMsg: prng.pick([30, 100, 1024]),
    maxUncommittedBytes: prng.pick([512, 4096, 1 << 20]),
    snapshotEvery: prng.pick([5, 10, 30, 80]),
    compactKeep: prng.pick([0, 2, 10]),
    readyDeferRate: prng.pick([0, 0, 0.1, 0.3]),
    tickSkipRate: prng.pick([0, 0, 0.05, 0.3]),
    maxPendingPerNode: 256,
    network: {
      reorderRate: prng.pick([0, 0.05, 0.3, 1]),
      lossRate,
      duplicateRate: prng.pick([0, 0.01, 0.05]),
      minDelayTicks: 0,
      maxDelayTicks,
      maxInFlight: 4096,
    },
    // Drawn last, so every other choice of a seed is what it was before pipelining existed.
    readiesInFlight: prng.pick([1, 1, 2, 4]),
  };
}

/** Runs one seed. Never throws for a failing run: the failure is in the result. */
export function runSeed(options: RunOptions): RunResult {
  const root = new Prng(options.seed);
  const config: ClusterOptions = {
    ...randomClusterOptions(root.fork()),
    ...options.overrides,
    ...(options.bugs === undefined ? {} : { bugs: options.bugs }),
    ...(options.digest === true ? { digest: true } : {}),
  };
  const schedule = root.fork();
  const trace = new Trace(Math.max(8, options.traceLines ?? 40));
  let healBudget = options.healBudgetTicks ?? 0;
  let cluster: Cluster | undefined;
  let step = 0;
  let healTicks = 0;
  let healCommitTicks = 0;
  let failure: Pick<RunResult, 'invariant' | 'message'> | undefined;
  try {
    cluster = new Cluster(root.fork(), config, trace);
    for (; step < options.steps; step++) {
      trace.step = step;
      randomStep(cluster, schedule);
      cluster.processReadies();
      cluster.observe();
    }
    if (options.skipHeal !== true) {
      healBudget = options.healBudgetTicks ?? 30 * config.electionTicks + 4 * backlog(cluster);
      const healed = heal(cluster, healBudget, trace, options.steps);
      healTicks = healed.convergeTicks;
      healCommitTicks = healed.commitTicks;
    }
  } catch (err) {
    if (err instanceof InvariantViolation) failure = { invariant: err.invariant, message: err.message };
    else
      failure = {
        invariant: 'Crash',
        message: err instanceof Error ? (err.stack ?? err.message) : String(err),
      };
  }
  const checker = cluster?.checker;
  const result: RunResult = {
    seed: options.seed,
    steps: options.steps,
    ok: failure === undefined,
    healCommitTicks,
    healTicks,
    healBudget,
    electionTicks: config.electionTicks,
    stats: {
      ...(cluster?.stats ?? emptyStats()),
      network: {
        ...(cluster?.network.stats ?? { sent: 0, lost: 0, duplicated: 0, delivered: 0, cut: 0, overflow: 0 }),
      },
      leaders: checker?.counts.leaders ?? 0,
      commits: checker?.counts.commits ?? 0,
      readsServed: checker?.counts.readsServed ?? 0,
      ticks: cluster?.clock.now ?? 0,
    },
    config: describeConfig(config),
    ...(options.digest === true && cluster !== undefined ? { digest: cluster.messageDigest } : {}),
  };
  if (failure !== undefined) {
    Object.assign(result, failure);
    result.failedAtStep = trace.step;
    result.trace = trace.tail(options.traceLines ?? 40, describeMessage);
    result.state = cluster?.describe() ?? '(cluster not built)';
  }
  return result;
}

/** One step of the random schedule. */
function randomStep(cluster: Cluster, prng: Prng): void {
  const r = prng.float();
  if (r < 0.12) {
    cluster.tick();
    if (cluster.clock.now % 16 === 0) cluster.expireReads(10 * cluster.options.electionTicks);
  } else if (r < 0.82) {
    if (!cluster.deliverOne()) cluster.tick();
  } else if (r < 0.92) {
    const live = cluster.liveNodes;
    if (live.length > 0) cluster.propose(prng.pick(live));
  } else if (r < 0.965) {
    const live = cluster.liveNodes;
    if (live.length > 0) cluster.read(prng.pick(live));
  } else {
    fault(cluster, prng);
  }
}

function fault(cluster: Cluster, prng: Prng): void {
  const nodes = [...cluster.nodes.values()].filter((n) => !n.decommissioned);
  const ids = nodes.map((n) => n.id);
  switch (prng.int(12)) {
    case 0: {
      const live = cluster.liveNodes;
      if (live.length > 0) cluster.crash(prng.pick(live).id);
      break;
    }
    case 1:
    case 2: {
      const down = nodes.filter((n) => !n.live);
      if (down.length > 0) cluster.restart(prng.pick(down).id);
      break;
    }
    case 3: {
      // Symmetric partition into two groups.
      const shuffled = prng.shuffle([...ids]);
      const cut = prng.range(1, Math.max(1, shuffled.length - 1));
      cluster.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      cluster.trace.add(
        cluster.clock.now,
        `partition [${shuffled.slice(0, cut).join(',')}] [${shuffled.slice(cut).join(',')}]`,
      );
      break;
    }
    case 4: {
      // Asymmetric: cut a few directed links.
      const n = prng.range(1, 3);
      for (let i = 0; i < n && ids.length > 1; i++) {
        const from = prng.pick(ids);
        const to = prng.pick(ids.filter((x) => x !== from));
        cluster.network.cutLink(from, to);
        cluster.trace.add(cluster.clock.now, `cut ${from}>${to}`);
      }
      break;
    }
    case 5:
    case 10:
    case 11:
      cluster.network.healLinks();
      cluster.trace.add(cluster.clock.now, 'heal links');
      break;
    case 6: {
      const opts = cluster.network.options;
      opts.lossRate = prng.pick([0, 0.01, 0.05, 0.2, 0.5]);
      opts.duplicateRate = prng.pick([0, 0.02, 0.1]);
      opts.reorderRate = prng.pick([0, 0.05, 0.3, 1]);
      cluster.trace.add(
        cluster.clock.now,
        `loss ${opts.lossRate} dup ${opts.duplicateRate} reorder ${opts.reorderRate}`,
      );
      break;
    }
    case 7:
      confChange(cluster, prng);
      break;
    case 8: {
      const leader = cluster.leader();
      if (leader === undefined) break;
      // Mostly to a voter; sometimes to a learner, a removed node or itself, which the core
      // must refuse without losing leadership safety.
      const voters = leader.confState.voters.filter((v) => v !== leader.id);
      const anyone = [...cluster.nodes.keys()];
      const target = voters.length > 0 && prng.chance(0.9) ? prng.pick(voters) : prng.pick(anyone);
      cluster.transferLeadership(leader, target);
      break;
    }
    case 9: {
      const live = cluster.liveNodes;
      if (live.length === 0) break;
      const node = prng.pick(live);
      cluster.trace.add(cluster.clock.now, `campaign ${node.id}`);
      node.core?.campaign();
      break;
    }
    default:
      break;
  }
}

/** A random membership change at the leader: add a learner, promote one, or remove a node. */
function confChange(cluster: Cluster, prng: Prng): void {
  const leader = cluster.leader();
  if (leader === undefined) return;
  const { voters, learners } = leader.confState;
  const choices: ConfChange[] = [];
  const fresh = cluster.unusedId();
  if (fresh !== undefined && voters.length + learners.length < cluster.options.maxNodes) {
    choices.push({ type: ConfChangeType.AddLearner, node: fresh });
  }
  for (const l of learners) {
    choices.push({ type: ConfChangeType.AddVoter, node: l });
    choices.push({ type: ConfChangeType.RemoveNode, node: l });
  }
  if (voters.length >= 4) for (const v of voters) choices.push({ type: ConfChangeType.RemoveNode, node: v });
  if (choices.length > 0) cluster.proposeConfChange(leader, prng.pick(choices));
}

/** Entries between the lowest applied index and the highest persisted last index. */
function backlog(cluster: Cluster): number {
  let low = Infinity;
  let high = 0;
  for (const node of cluster.nodes.values()) {
    if (node.decommissioned) continue;
    low = Math.min(low, node.machine.index);
    high = Math.max(high, node.storage.lastIndex(), node.core?.status().lastIndex ?? 0);
  }
  return low === Infinity ? 0 : Math.max(0, high - low);
}

/**
 * The heal phase: restore every link, restart every crashed node, stop loss and duplication,
 * then tick until a leader has committed a fresh write (within `commitBudget` ticks) and every
 * member applied it (within twice that). Throws a Liveness violation past either bound.
 */
function heal(
  cluster: Cluster,
  commitBudget: number,
  trace: Trace,
  steps: number,
): { commitTicks: number; convergeTicks: number } {
  const net = cluster.network;
  net.healLinks();
  net.options.lossRate = 0;
  net.options.duplicateRate = 0;
  // A healed network behaves like TCP: in order per link, one tick of delay.
  net.options.reorderRate = 0;
  net.options.minDelayTicks = 1;
  net.options.maxDelayTicks = 1;
  cluster.options.tickSkipRate = 0;
  for (const node of cluster.nodes.values()) if (!node.live && !node.decommissioned) cluster.restart(node.id);
  trace.add(cluster.clock.now, 'heal: links restored, crashed nodes restarted, no loss');
  const budget = 2 * commitBudget;
  let marker: { index: number; term: number; leader: SimNode } | undefined;
  let commitTicks: number | undefined;
  for (let t = 0; t <= budget; t++) {
    trace.step = steps + t;
    cluster.settle();
    const leader = cluster.leader();
    if (leader !== undefined && leader.core !== null) {
      const st = leader.core.status();
      if (marker === undefined || marker.term !== st.term || marker.leader !== leader) {
        const at = cluster.propose(leader);
        if (at !== undefined) marker = { ...at, leader };
      } else {
        if (commitTicks === undefined && st.commit >= marker.index) commitTicks = t;
        if (healed(cluster, leader, marker.index)) return { commitTicks: commitTicks ?? t, convergeTicks: t };
      }
    }
    if (commitTicks === undefined && t >= commitBudget) break;
    cluster.tick();
    cluster.processReadies(0);
    cluster.observe();
  }
  const what =
    commitTicks === undefined
      ? `no leader committed a fresh write within ${commitBudget} ticks after healing`
      : `a write committed after ${commitTicks} ticks but not every member applied it within ${budget} ticks`;
  throw new InvariantViolation(
    'Liveness',
    what +
      (marker === undefined
        ? ' (no write was accepted)'
        : ` (write at ${marker.index}/${marker.term} on ${marker.leader.id})`),
  );
}

/** Every member of the leader's configuration applied the marker, and it was acknowledged. */
function healed(cluster: Cluster, leader: SimNode, markerIndex: number): boolean {
  if (leader.proposals.has(markerIndex) || leader.machine.index < markerIndex) return false;
  const { voters, learners } = leader.confState;
  for (const id of [...voters, ...learners]) {
    const node = cluster.nodes.get(id);
    if (node === undefined || !node.live || node.machine.index < markerIndex) return false;
    for (const index of node.proposals.keys()) {
      if (index <= markerIndex) {
        throw new InvariantViolation(
          'Liveness',
          `${id} applied ${markerIndex} but proposal ${index} is unresolved`,
        );
      }
    }
  }
  return true;
}

function emptyStats(): ClusterStats {
  return {
    proposals: 0,
    proposalsAcked: 0,
    proposalsLost: 0,
    reads: 0,
    crashes: 0,
    restarts: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
  };
}

function describeConfig(c: ClusterOptions): string {
  return (
    `voters=${c.initialVoters} election=${c.electionTicks} heartbeat=${c.heartbeatTicks} ` +
    `preVote=${c.preVote} checkQuorum=${c.checkQuorum} inflight=${c.maxInflightMsgs} ` +
    `maxSize=${c.maxSizePerMsg} snapEvery=${c.snapshotEvery} keep=${c.compactKeep} ` +
    `defer=${c.readyDeferRate} skew=${c.tickSkipRate ?? 0} loss=${c.network.lossRate} dup=${c.network.duplicateRate} ` +
    `delay<=${c.network.maxDelayTicks} reorder=${c.network.reorderRate} pipeline=${c.readiesInFlight ?? 1}` +
    (c.bugs === undefined ? '' : ` bugs=${Object.keys(c.bugs).join(',')}`)
  );
}

/** A failure as printed by the specs and the soak: seed, invariant, how to replay, trace tail. */
export function formatFailure(r: RunResult): string {
  return [
    `seed ${r.seed} FAILED ${r.invariant ?? '?'} at step ${r.failedAtStep ?? '?'} (of ${r.steps})`,
    `  ${r.message ?? ''}`,
    `  replay: SEED=${r.seed} STEPS=${r.steps} npm run test:sim`,
    `  config: ${r.config}`,
    `  state: ${r.state ?? ''}`,
    '  trace tail:',
    ...(r.trace ?? []).map((l) => `    ${l}`),
  ].join('\n');
}
