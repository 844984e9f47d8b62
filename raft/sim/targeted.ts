/**
 * Targeted fault schedules for faults that random runs reach too rarely. Each drives a
 * Cluster step by step (campaigns, crashes, partitions, selective message drops) with the
 * same invariant checks as a random run, and throws InvariantViolation when one breaks.
 *
 * figure8: the paper's Figure 8 (§5.4.2). A leader that counts replicas of an entry from an
 * earlier term toward commitment (BugFlags.commitOldTermEntries) commits it, crashes, and a
 * leader elected with a conflicting entry of a later term overwrites it. A correct core must
 * run the same schedule without any violation.
 *
 * leaderPersistsLate: thesis §10.2.1. A leader sends its App before its own entries are
 * durable; a one-voter cluster with a learner then commits on the leader's word alone. A core
 * that counts the leader before the driver acknowledged the persist
 * (BugFlags.leaderCountsSelfBeforePersist) tells the learner to commit an entry the leader
 * loses in a crash, and the restarted leader writes another entry at that index.
 *
 * followerAcksEarly: Raft Figure 2 (persist before responding). A follower that acknowledges
 * an App before its own write is durable (BugFlags.followerAcksBeforePersist) gives a 3-voter
 * leader the majority it commits and applies on; the follower then crashes and loses the entry,
 * the leader crashes, and the two left elect a leader that writes another entry at that index.
 * Run with readiesInFlight > 1 it also covers the pipelined driver: the follower's Ready with
 * the entry is still unpersisted when it could begin the next one.
 *
 * This module must never use Math.random or Date; the schedule is fixed, the cluster's Prng
 * only breaks ties the schedule does not care about.
 */
import type { BugFlags } from '../core.js';
import { ConfChangeType, MessageType, Role } from '../messages.js';
import type { Message, NodeId } from '../messages.js';
import { Cluster } from './cluster.js';
import type { ClusterOptions } from './cluster.js';
import type { InvariantName } from './invariants.js';
import { Prng } from './prng.js';

/**
 * A quiet 5-node cluster: no timeouts fire unless someone ticks 1000 times, no loss, no delay,
 * one entry per App message.
 */
export function quietOptions(bugs?: BugFlags, disabledChecks: readonly InvariantName[] = []): ClusterOptions {
  return {
    initialVoters: 5,
    maxNodes: 5,
    electionTicks: 1000,
    heartbeatTicks: 1,
    preVote: false,
    checkQuorum: false,
    maxInflightMsgs: 1,
    maxSizePerMsg: 1, // one entry per App message, so a schedule can drop single entries
    maxUncommittedBytes: 1 << 20,
    snapshotEvery: 1000,
    compactKeep: 0,
    readyDeferRate: 0,
    maxPendingPerNode: 64,
    network: {
      reorderRate: 0,
      lossRate: 0,
      duplicateRate: 0,
      minDelayTicks: 0,
      maxDelayTicks: 0,
      maxInFlight: 1024,
    },
    ...(bugs === undefined ? {} : { bugs }),
    disabledChecks,
  };
}

/** Campaigns at `id` until it leads (each rejection teaches it a higher term), bounded. */
export function elect(cluster: Cluster, id: NodeId, accept?: (m: Message) => boolean): void {
  const node = cluster.nodes.get(id);
  for (let attempt = 0; attempt < 5; attempt++) {
    node?.core?.campaign();
    cluster.settle(accept);
    if (node?.core?.status().role === Role.Leader) return;
  }
  throw new Error(`figure8 schedule: ${id} could not be elected: ${cluster.describe()}`);
}

/**
 * Runs the Figure 8 schedule; returns the cluster for inspection. Throws InvariantViolation
 * when the core breaks an invariant (expected with commitOldTermEntries).
 */
export function figure8(bugs?: BugFlags, disabledChecks: readonly InvariantName[] = [], seed = 8): Cluster {
  const cluster = new Cluster(new Prng(seed), quietOptions(bugs, disabledChecks));
  const net = cluster.network;
  const [s1, s2, s3, s4, s5] = ['n1', 'n2', 'n3', 'n4', 'n5'] as const;
  // (a) S1 leads term 1 and commits its empty entry 1 everywhere, then replicates entry 2
  //     (term 1) to S2 only.
  elect(cluster, s1);
  net.partition([
    [s1, s2],
    [s3, s4, s5],
  ]);
  const leader1 = cluster.nodes.get(s1);
  if (leader1 === undefined || cluster.propose(leader1) === undefined)
    throw new Error('figure8: S1 refused the write');
  cluster.settle();
  // (b) S1 crashes. S5 is elected by S3, S4 and itself and appends its empty entry at index 2
  //     (a later term), then crashes before sending it anywhere.
  cluster.crash(s1);
  net.healLinks();
  net.partition([
    [s1, s2],
    [s3, s4, s5],
  ]);
  elect(cluster, s5, (m) => m.type !== MessageType.App && m.type !== MessageType.Heartbeat);
  cluster.crash(s5);
  // (c) S1 restarts and is elected by S2, S3 and itself. It brings S3 up to entry 2 (term 1)
  //     but no follower gets its own term's entry 3 except S2: entry 2 now sits on a majority.
  cluster.restart(s1);
  net.healLinks();
  net.partition([
    [s1, s2, s3],
    [s4, s5],
  ]);
  const follower3 = cluster.nodes.get(s3);
  // Drop an App to S3 only if S3 would accept entry 3 from it (its prev entry is in S3's log);
  // the probes S3 rejects and the App carrying entry 2 alone go through.
  const withholdEntry3 = (m: Message): boolean =>
    !(
      m.type === MessageType.App &&
      m.to === s3 &&
      m.entries.some((e) => e.index >= 3) &&
      m.index <= (follower3?.storage.lastIndex() ?? 0)
    );
  elect(cluster, s1, withholdEntry3);
  cluster.settle(withholdEntry3);
  // (d) S1 crashes; S5 restarts and is elected by S3, S4 and itself (its last term beats
  //     theirs) and overwrites entry 2. Only a core that committed entry 2 in (c) breaks here.
  cluster.crash(s1);
  cluster.restart(s5);
  net.healLinks();
  net.partition([
    [s1, s2],
    [s3, s4, s5],
  ]);
  elect(cluster, s5);
  const leader5 = cluster.nodes.get(s5);
  if (leader5 !== undefined) cluster.propose(leader5);
  cluster.settle();
  // Heal: everyone converges on S5's log.
  cluster.restart(s1);
  net.healLinks();
  for (let t = 0; t < 50; t++) {
    cluster.tick();
    cluster.settle();
  }
  return cluster;
}

/**
 * Runs the leaderPersistsLate schedule (one voter n1, learner n2). Throws InvariantViolation
 * when the core breaks an invariant (expected with leaderCountsSelfBeforePersist).
 */
export function leaderPersistsLate(
  bugs?: BugFlags,
  disabledChecks: readonly InvariantName[] = [],
  seed = 10,
  readiesInFlight = 1,
): Cluster {
  const options: ClusterOptions = {
    ...quietOptions(bugs, disabledChecks),
    initialVoters: 1,
    maxNodes: 2,
    readiesInFlight,
  };
  const cluster = new Cluster(new Prng(seed), options);
  const [s1, s2] = ['n1', 'n2'] as const;
  elect(cluster, s1);
  const leader = cluster.nodes.get(s1);
  if (
    leader === undefined ||
    !cluster.proposeConfChange(leader, { type: ConfChangeType.AddLearner, node: s2 })
  )
    throw new Error('leaderPersistsLate: n1 refused the learner');
  cluster.settle();
  for (let t = 0; t < 5; t++) {
    cluster.tick();
    cluster.settle();
  }
  // n1 writes an entry: its App leaves while n1's own disk write is still in flight; n2
  // persists it (and whatever commit the App carried). Then n1 crashes before its write lands.
  if (cluster.propose(leader) === undefined) throw new Error('leaderPersistsLate: n1 refused the write');
  if (!cluster.handOutReady(s1)) throw new Error('leaderPersistsLate: n1 had no Ready');
  while (cluster.deliverOne((m) => m.to === s2)) cluster.processReadiesOf([s2]);
  cluster.observe();
  cluster.crash(s1);
  // n1 restarts without the entry, leads again and writes its own at that index.
  cluster.restart(s1);
  elect(cluster, s1);
  for (let t = 0; t < 20; t++) {
    cluster.tick();
    cluster.settle();
  }
  return cluster;
}

/**
 * Runs the followerAcksEarly schedule (voters n1, n2, n3). Throws InvariantViolation when the
 * core breaks an invariant (expected with followerAcksBeforePersist).
 */
export function followerAcksEarly(
  bugs?: BugFlags,
  readiesInFlight = 1,
  disabledChecks: readonly InvariantName[] = [],
  seed = 12,
): Cluster {
  const options: ClusterOptions = {
    ...quietOptions(bugs, disabledChecks),
    initialVoters: 3,
    maxNodes: 3,
    readiesInFlight,
  };
  const cluster = new Cluster(new Prng(seed), options);
  const [s1, s2, s3] = ['n1', 'n2', 'n3'] as const;
  elect(cluster, s1);
  for (let t = 0; t < 5; t++) {
    cluster.tick();
    cluster.settle();
  }
  const leader = cluster.nodes.get(s1);
  if (leader === undefined || cluster.propose(leader) === undefined)
    throw new Error('followerAcksEarly: n1 refused the write');
  // n1 persists its entry and sends it; only n2 receives it (n3's copy is lost on the way).
  cluster.processReadiesOf([s1]);
  while (cluster.deliverOne((m) => m.to === s2)) {
    // every message to n3 is dropped
  }
  // n2 hands out its Ready but its disk write never completes; whatever it may send early
  // goes out. Pipelined, it may begin more (bounded by the core's maxReadiesInFlight).
  while (cluster.handOutReady(s2)) {
    // nothing else
  }
  // n1 hears whatever n2 sent, and persists and applies what it then counts as committed.
  while (cluster.deliverOne((m) => m.to === s1)) cluster.processReadiesOf([s1]);
  cluster.observe();
  // n2 loses its unpersisted write; n1 goes down too. n2 and n3, neither holding the entry,
  // elect n2, which writes its own entry at that index.
  cluster.crash(s2);
  cluster.crash(s1);
  cluster.restart(s2);
  elect(cluster, s2);
  const leader2 = cluster.nodes.get(s2);
  if (leader2 !== undefined) cluster.propose(leader2);
  for (let t = 0; t < 20; t++) {
    cluster.tick();
    cluster.settle();
  }
  void s3;
  return cluster;
}
