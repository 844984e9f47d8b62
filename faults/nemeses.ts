/**
 * Nemeses: the faults the suite injects into a running cluster, each started and healed by
 * the runner, and recorded in a timeline.
 *
 * Network (see hosts.ts): isolate the leader, split majority/minority, a one-way cut, a bridge
 * node that sees both sides; packet loss (nftables `numgen random`, else iptables `statistic`,
 * in namespaces; on loopback the proxies' model of TCP under loss: retransmission stalls and
 * rare resets); delay and jitter on the peer links through the fault proxies.
 * Processes: kill -9 and restart of one node, of the leader, of every node; SIGSTOP of the
 * leader for longer than the election timeout, then SIGCONT.
 * Clocks (libfaketime; skipped when not installed): a wall-clock skew changed while the node
 * runs; a node restarted with a clock running at another rate (timers and hrtime included).
 * Membership: add a spare node (--join, RAFT.NODE ADD) or remove a member, and leadership
 * transfer; the runner runs these while another fault is active.
 * Disk (through the failpoint layer and raft/failpoints.ts helpers, on one node, a minority):
 * a power cut that loses every byte not yet fsynced; a flipped bit in a log record or a
 * snapshot; a torn (truncated) log tail; a truncated snapshot. Damage must be detected (the
 * node refuses to start, naming the file) or repaired (a torn tail is cut), never served. A node
 * that refuses is wiped and re-added (RAFT.NODE REMOVE, --join, RAFT.NODE ADD), as the operator
 * procedure in docs/design.md says, and must catch up from a snapshot.
 * Full restart with one node's data dir wiped: the others restart, the wiped one is re-added.
 *
 * Owns: nothing but what it records; the processes and rules belong to Hosts and FaultCluster.
 * Must never: leave a fault in place after heal() returns, or take a majority's disk.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { flipBit, truncateFile } from '../raft/failpoints.js';
import { StartFailed, type FaultCluster } from './cluster.js';
import type { Host, Hosts } from './hosts.js';
import type { Prng } from './prng.js';

export interface TimelineEvent {
  /** ms since the run began (the history's clock). */
  atMs: number;
  nemesis: string;
  phase: 'start' | 'heal' | 'healed' | 'note' | 'anomaly';
  detail: string;
}

export interface NemesisContext {
  cluster: FaultCluster;
  hosts: Hosts;
  prng: Prng;
  now: () => number;
  record: (event: Omit<TimelineEvent, 'atMs'>) => void;
  /** Anomalies that are not history violations (undetected corruption, a node that cannot restart). */
  anomaly: (nemesis: string, detail: string) => void;
}

export interface ActiveFault {
  detail: string;
  heal: () => Promise<void>;
}

export interface Nemesis {
  name: string;
  /** Why it cannot run here, or undefined. */
  unavailable: (ctx: NemesisContext) => string | undefined;
  /** A membership change or leadership transfer: the runner overlaps it with another fault. */
  overlay?: boolean;
  start: (ctx: NemesisContext) => Promise<ActiveFault>;
}

const SEGMENT_HEADER_BYTES = 32;
const RECORD_HEADER_BYTES = 12;

async function leaderOrAny(ctx: NemesisContext): Promise<Host> {
  const leader = await ctx.cluster.currentLeader();
  return leader ?? ctx.prng.pick(ctx.cluster.runningMembers());
}

function others(ctx: NemesisContext, host: Host): Host[] {
  return [...ctx.cluster.members].filter((h) => h !== host);
}

async function cutBothWays(ctx: NemesisContext, a: readonly Host[], b: readonly Host[]): Promise<void> {
  for (const x of a) {
    for (const y of b) {
      await ctx.hosts.cut(x, y);
      await ctx.hosts.cut(y, x);
    }
  }
}

/** Restarts a member that is down; a refusal to start is an anomaly unless `expectRefusal`. */
async function restart(ctx: NemesisContext, nemesis: string, host: Host): Promise<void> {
  // A node removed meanwhile (membership overlay) stays down: it is a spare now.
  if (host.isRunning() || !ctx.cluster.members.has(host)) return;
  try {
    await ctx.cluster.restartCaughtUp(host);
  } catch (err) {
    if (!(err instanceof StartFailed)) throw err;
    ctx.anomaly(nemesis, `${host.id} could not restart: ${err.message.slice(0, 500)}`);
    await rejoinWiped(ctx, nemesis, host);
  }
}

/**
 * The operator's procedure for a node whose data is gone or refused: remove it, wipe its data
 * dir, start it with --join and add it back; it catches up from the leader (by snapshot once
 * the log is compacted).
 */
export async function rejoinWiped(ctx: NemesisContext, nemesis: string, host: Host): Promise<void> {
  await ctx.cluster.kill9(host);
  const removed = await ctx.cluster
    .admin(20_000, 'RAFT.NODE', 'REMOVE', host.id)
    .catch((err: unknown) => err);
  ctx.record({ nemesis, phase: 'note', detail: `RAFT.NODE REMOVE ${host.id}: ${String(removed)}` });
  if (removed !== 'OK' && !(removed instanceof Error && /unknown node/.test(removed.message))) {
    // Without a quorum to remove it, wiping the node could destroy data a majority needs: leave
    // it down with its files, and let the runner report it.
    throw new Error(
      `cannot re-add ${host.id}: RAFT.NODE REMOVE failed (${String(removed)}); left down, not wiped`,
    );
  }
  await ctx.cluster.wipe(host);
  await ctx.cluster.startNode(host, 'join');
  await ctx.cluster.admin(20_000, 'RAFT.NODE', 'ADD', host.id, host.address);
  ctx.cluster.members.add(host);
  ctx.record({ nemesis, phase: 'note', detail: `${host.id} wiped and re-added with RAFT.NODE ADD` });
}

// ---------------------------------------------------------------------------------------------
// Disk damage helpers.

interface Span {
  offset: number;
  bytes: number;
}

async function walFiles(host: Host): Promise<string[]> {
  const dir = path.join(host.dataDir, 'raft', 'wal');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.wal')).sort();
  return names.map((n) => path.join(dir, n));
}

async function snapFiles(host: Host): Promise<string[]> {
  const dir = path.join(host.dataDir, 'raft', 'snap');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.snap')).sort();
  return names.map((n) => path.join(dir, n));
}

/** Complete records of a segment (walking the length fields, as raft/segment.ts lays them out). */
async function records(file: string): Promise<Span[]> {
  const data = await readFile(file);
  const spans: Span[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset + RECORD_HEADER_BYTES <= data.length) {
    const length = data.readUInt32BE(offset);
    if (length === 0) break;
    const bytes = RECORD_HEADER_BYTES + length;
    if (offset + bytes > data.length) break;
    spans.push({ offset, bytes });
    offset += bytes;
  }
  return spans;
}

type Damage = 'bitflip-wal' | 'bitflip-snapshot' | 'truncate-wal-tail' | 'truncate-snapshot';

/**
 * Damages a stopped node's files; returns what was done and whether the node must refuse to
 * start (true) or must repair and start (false).
 */
/**
 * What a node must do with damaged files: refuse to run (at start, or fail-stop as soon as it
 * finds out), repair them and catch up, or either (a cut last record may be a torn write the
 * leader never counted, or an acknowledged entry the disk lost: the node cannot tell until the
 * leader says what it had acknowledged).
 */
type Expect = 'refuse' | 'repair' | 'either';

async function damage(
  ctx: NemesisContext,
  host: Host,
  kind: Damage,
): Promise<{ detail: string; expect: Expect } | undefined> {
  switch (kind) {
    case 'bitflip-wal':
    case 'truncate-wal-tail': {
      const files = await walFiles(host);
      const file = files[files.length - 1];
      if (file === undefined) return undefined;
      const spans = await records(file);
      if (kind === 'bitflip-wal') {
        // A record before the last: corruption, never a torn write.
        if (spans.length < 3) return undefined;
        const victim = spans[ctx.prng.below(spans.length - 1)]!;
        const at = victim.offset + RECORD_HEADER_BYTES + ctx.prng.below(victim.bytes - RECORD_HEADER_BYTES);
        const bit = ctx.prng.below(8);
        await flipBit(file, at, bit);
        return {
          detail: `flipped bit ${bit} at byte ${at} (record at ${victim.offset}) of ${file}`,
          expect: 'refuse',
        };
      }
      const last = spans[spans.length - 1];
      if (last === undefined || last.bytes < 2) return undefined;
      const cutAt = last.offset + 1 + ctx.prng.below(last.bytes - 1);
      await truncateFile(file, cutAt);
      return {
        detail: `truncated ${file} to ${cutAt} bytes (inside its last record at ${last.offset})`,
        expect: 'either',
      };
    }
    case 'bitflip-snapshot':
    case 'truncate-snapshot': {
      const files = await snapFiles(host);
      const file = files[files.length - 1];
      if (file === undefined) return undefined;
      const size = (await stat(file)).size;
      if (size < 2) return undefined;
      if (kind === 'bitflip-snapshot') {
        const at = ctx.prng.below(size);
        const bit = ctx.prng.below(8);
        await flipBit(file, at, bit);
        return { detail: `flipped bit ${bit} at byte ${at} of ${file} (${size} bytes)`, expect: 'refuse' };
      }
      const cutAt = 1 + ctx.prng.below(size - 1);
      await truncateFile(file, cutAt);
      return { detail: `truncated ${file} from ${size} to ${cutAt} bytes`, expect: 'refuse' };
    }
  }
}

function diskNemesis(kind: Damage): Nemesis {
  return {
    name: `disk-${kind}`,
    unavailable: () => undefined,
    start: async (ctx) => {
      // One follower (a minority): stopped, damaged, restarted.
      const leader = await ctx.cluster.currentLeader();
      const victim = ctx.prng.pick(ctx.cluster.runningMembers().filter((h) => h !== leader));
      await ctx.cluster.kill9(victim);
      let done = await damage(ctx, victim, kind);
      if (done === undefined && kind.endsWith('snapshot')) {
        // No snapshot yet on this node: damage its log instead, so the step still tests something.
        done = await damage(ctx, victim, kind === 'bitflip-snapshot' ? 'bitflip-wal' : 'truncate-wal-tail');
      }
      const name = `disk-${kind}`;
      const detail = `${victim.id}: ${done?.detail ?? 'nothing to damage (no files yet); plain kill -9'}`;
      return {
        detail,
        heal: async () => {
          // Removed meanwhile (membership overlay): a spare now, left down with its damaged
          // files; a later RAFT.NODE ADD wipes it first. Restarting and re-adding it here
          // would put back a member the suite no longer counts (seed 20261125 did, and the
          // overlay then wiped that live voter as a "spare").
          if (!ctx.cluster.members.has(victim)) {
            ctx.record({
              nemesis: name,
              phase: 'note',
              detail: `${victim.id} was removed meanwhile: left down as a spare`,
            });
            return;
          }
          try {
            await ctx.cluster.restartCaughtUp(victim);
            if (done?.expect === 'refuse') {
              ctx.anomaly(name, `${victim.id} started and caught up on damaged files: ${done.detail}`);
              await rejoinWiped(ctx, name, victim);
            } else if (done !== undefined) {
              ctx.record({
                nemesis: name,
                phase: 'note',
                detail: `${victim.id} repaired its files and caught up`,
              });
            }
          } catch (err) {
            if (!(err instanceof StartFailed)) throw err;
            const stderr = err.message;
            if (done === undefined || done.expect === 'repair') {
              ctx.anomaly(
                name,
                `${victim.id} refused to run after a repairable fault (${detail}): ${stderr.slice(0, 500)}`,
              );
            } else if (
              !/corrupt|checksum|StorageError|truncat|damaged|invalid|beyond last index|lost/i.test(stderr)
            ) {
              ctx.anomaly(name, `${victim.id} refused to run but did not say why: ${stderr.slice(0, 500)}`);
            } else {
              ctx.record({
                nemesis: name,
                phase: 'note',
                detail: `${victim.id} refused to run (detected): ${firstLine(stderr)}`,
              });
            }
            await rejoinWiped(ctx, name, victim);
          }
        },
      };
    },
  };
}

function firstLine(text: string): string {
  // The node's own one-line reason (`concord: <data dir>: lost acknowledged entries ...`), else
  // the storage's.
  const m = /^concord: .*$/m.exec(text) ?? /raft storage: [^"\n]*/.exec(text);
  return (m?.[0] ?? text.split('\n')[0] ?? '').slice(0, 300);
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

const withFaketime = (ctx: NemesisContext): string | undefined =>
  ctx.hosts.faketime ? undefined : 'libfaketime not installed (apt-get install faketime)';

export const NEMESES: readonly Nemesis[] = [
  {
    name: 'partition-leader',
    unavailable: () => undefined,
    start: async (ctx) => {
      const leader = await leaderOrAny(ctx);
      await cutBothWays(ctx, [leader], others(ctx, leader));
      return { detail: `isolated ${leader.id}`, heal: () => ctx.hosts.heal() };
    },
  },
  {
    name: 'partition-halves',
    unavailable: () => undefined,
    start: async (ctx) => {
      const members = [...ctx.cluster.members];
      // Shuffle, then cut into a minority and a majority.
      for (let i = members.length - 1; i > 0; i--) {
        const j = ctx.prng.below(i + 1);
        [members[i], members[j]] = [members[j]!, members[i]!];
      }
      const minority = members.slice(0, Math.floor((members.length - 1) / 2) || 1);
      const majority = members.slice(minority.length);
      await cutBothWays(ctx, minority, majority);
      return {
        detail: `minority ${minority.map((h) => h.id).join(',')} | majority ${majority.map((h) => h.id).join(',')}`,
        heal: () => ctx.hosts.heal(),
      };
    },
  },
  {
    name: 'partition-one-way',
    unavailable: () => undefined,
    start: async (ctx) => {
      // The leader still hears the others, but they no longer hear it.
      const leader = await leaderOrAny(ctx);
      for (const other of others(ctx, leader)) await ctx.hosts.cut(leader, other);
      return { detail: `${leader.id} -> others dropped (one way)`, heal: () => ctx.hosts.heal() };
    },
  },
  {
    name: 'partition-bridge',
    unavailable: (ctx) => (ctx.cluster.members.size < 3 ? 'needs 3 members' : undefined),
    start: async (ctx) => {
      const members = [...ctx.cluster.members];
      const bridge = ctx.prng.pick(members);
      const rest = members.filter((h) => h !== bridge);
      const half = Math.ceil(rest.length / 2);
      const left = rest.slice(0, half);
      const right = rest.slice(half);
      await cutBothWays(ctx, left, right);
      return {
        detail: `${bridge.id} bridges ${left.map((h) => h.id).join(',')} | ${right.map((h) => h.id).join(',')}`,
        heal: () => ctx.hosts.heal(),
      };
    },
  },
  {
    name: 'kill-one',
    unavailable: () => undefined,
    start: async (ctx) => {
      const victim = ctx.prng.pick(ctx.cluster.runningMembers());
      await ctx.cluster.kill9(victim);
      return { detail: `kill -9 ${victim.id}`, heal: () => restart(ctx, 'kill-one', victim) };
    },
  },
  {
    name: 'kill-leader',
    unavailable: () => undefined,
    start: async (ctx) => {
      const victim = await leaderOrAny(ctx);
      await ctx.cluster.kill9(victim);
      return { detail: `kill -9 leader ${victim.id}`, heal: () => restart(ctx, 'kill-leader', victim) };
    },
  },
  {
    name: 'kill-all',
    unavailable: () => undefined,
    start: async (ctx) => {
      const victims = ctx.cluster.runningMembers();
      await Promise.all(victims.map((h) => ctx.cluster.kill9(h)));
      return {
        detail: `kill -9 ${victims.map((h) => h.id).join(',')}`,
        heal: async () => {
          for (const h of victims) await restart(ctx, 'kill-all', h);
        },
      };
    },
  },
  {
    name: 'pause-leader',
    unavailable: () => undefined,
    start: async (ctx) => {
      const victim = await leaderOrAny(ctx);
      ctx.cluster.signal(victim, 'SIGSTOP');
      return {
        detail: `SIGSTOP leader ${victim.id}`,
        heal: () => {
          if (victim.isRunning()) ctx.cluster.signal(victim, 'SIGCONT');
          return Promise.resolve();
        },
      };
    },
  },
  {
    name: 'packet-loss',
    unavailable: (ctx) =>
      ctx.hosts.canDropPackets ? undefined : 'needs network namespaces or the fault proxies',
    start: async (ctx) => {
      const percent = 20 + ctx.prng.below(31);
      const targets = [...ctx.cluster.members];
      for (const h of targets) await ctx.hosts.loss(h, percent);
      return {
        detail: `${percent}% of peer packets dropped into ${targets.map((h) => h.id).join(',')} (${ctx.hosts.lossMethod})`,
        heal: () => ctx.hosts.heal(),
      };
    },
  },
  {
    name: 'delay',
    unavailable: (ctx) => (ctx.hosts.proxied ? undefined : 'needs the fault proxies (FAULTS_NO_PROXY=1)'),
    start: async (ctx) => {
      const delayMs = 20 + ctx.prng.below(100);
      const jitterMs = ctx.prng.below(50);
      const targets = [...ctx.cluster.members];
      for (const h of targets) await ctx.hosts.delay(h, delayMs, jitterMs);
      return {
        detail: `peer links delayed ${delayMs} ms + up to ${jitterMs} ms jitter`,
        heal: () => ctx.hosts.heal(),
      };
    },
  },
  {
    name: 'clock-skew',
    unavailable: withFaketime,
    start: async (ctx) => {
      const victim = ctx.prng.pick(ctx.cluster.runningMembers());
      const seconds = (ctx.prng.below(2) === 0 ? -1 : 1) * (5 + ctx.prng.below(120));
      await victim.setClockOffset(seconds);
      return {
        detail: `${victim.id} wall clock ${seconds > 0 ? '+' : ''}${seconds} s`,
        heal: () => victim.setClockOffset(0),
      };
    },
  },
  {
    name: 'clock-rate',
    unavailable: withFaketime,
    start: async (ctx) => {
      const victim = ctx.prng.pick(ctx.cluster.runningMembers());
      const rate = ctx.prng.pick(['0.5', '0.75', '1.5', '2']);
      await ctx.cluster.kill9(victim);
      await ctx.cluster.startNode(victim, 'bootstrap', `+0 x${rate}`);
      return {
        detail: `${victim.id} restarted with its clocks at x${rate}`,
        heal: async () => {
          // Back to real time: a rate cannot be undone while running without a jump.
          await ctx.cluster.kill9(victim);
          await restart(ctx, 'clock-rate', victim);
        },
      };
    },
  },
  {
    name: 'membership',
    overlay: true,
    unavailable: () => undefined,
    start: async (ctx) => {
      const spares = ctx.cluster.spares();
      const members = [...ctx.cluster.members];
      const leader = await ctx.cluster.currentLeader();
      if (spares.length > 0 && (members.length <= 3 || ctx.prng.below(2) === 0)) {
        const spare = spares[0]!;
        // Never wipe a node the cluster still counts: that is an operator wiping a live voter,
        // not a membership change (the suite's own bookkeeping must agree with the cluster's).
        // Without a leader's answer the guard cannot be checked: no change (fail closed).
        const configured = leader === undefined ? undefined : await ctx.cluster.configuredMembers(leader);
        if (configured === undefined)
          return { detail: 'no change: no leader to ask who the members are', heal: async () => {} };
        if (configured.includes(spare.id)) {
          ctx.anomaly(
            'membership',
            `suite bookkeeping: ${spare.id} is a spare to the suite but a member of the cluster (${configured.join(',')}); not wiped`,
          );
          ctx.cluster.members.add(spare);
          return { detail: `no change: ${spare.id} is still a member`, heal: async () => {} };
        }
        await ctx.cluster.kill9(spare);
        await ctx.cluster.wipe(spare);
        await ctx.cluster.startNode(spare, 'join');
        const reply = await ctx.cluster.admin(15_000, 'RAFT.NODE', 'ADD', spare.id, spare.address);
        ctx.cluster.members.add(spare);
        return { detail: `RAFT.NODE ADD ${spare.id}: ${String(reply)}`, heal: async () => {} };
      }
      const candidates = members.filter((h) => h !== leader);
      if (members.length <= 3 || candidates.length === 0)
        return { detail: 'no change possible', heal: async () => {} };
      const victim = ctx.prng.pick(candidates);
      const reply = await ctx.cluster.admin(15_000, 'RAFT.NODE', 'REMOVE', victim.id);
      ctx.cluster.members.delete(victim);
      await ctx.cluster.kill9(victim);
      return { detail: `RAFT.NODE REMOVE ${victim.id}: ${String(reply)}`, heal: async () => {} };
    },
  },
  {
    name: 'transfer-leader',
    overlay: true,
    unavailable: () => undefined,
    start: async (ctx) => {
      const leader = await ctx.cluster.currentLeader();
      const target = ctx.prng.pick(ctx.cluster.runningMembers().filter((h) => h !== leader));
      const reply = await ctx.cluster
        .admin(10_000, 'RAFT.TRANSFER-LEADER', target.id)
        .catch((err: unknown) => err);
      return { detail: `RAFT.TRANSFER-LEADER ${target.id}: ${String(reply)}`, heal: async () => {} };
    },
  },
  {
    name: 'wipe-restart',
    unavailable: () => undefined,
    start: async (ctx) => {
      const victims = ctx.cluster.runningMembers();
      await Promise.all(victims.map((h) => ctx.cluster.kill9(h)));
      const wiped = ctx.prng.pick(victims);
      await ctx.cluster.wipe(wiped);
      return {
        detail: `kill -9 ${victims.map((h) => h.id).join(',')}; wiped ${wiped.id}'s data dir`,
        heal: async () => {
          for (const h of victims) if (h !== wiped) await restart(ctx, 'wipe-restart', h);
          await rejoinWiped(ctx, 'wipe-restart', wiped);
        },
      };
    },
  },
  {
    name: 'power-cut',
    unavailable: () => undefined,
    start: async (ctx) => {
      const victim = ctx.prng.pick(ctx.cluster.runningMembers());
      await ctx.cluster.powerCut(victim);
      const said = /simulated power cut: dropped unsynced bytes (\[.*\])/.exec(victim.node?.stderr() ?? '');
      if (said === null) ctx.anomaly('power-cut', `${victim.id} died without reporting its power cut`);
      const dropped = said === null ? [] : (JSON.parse(said[1]!) as { droppedBytes: number }[]);
      const bytes = dropped.reduce((sum, d) => sum + d.droppedBytes, 0);
      return {
        detail: `power cut on ${victim.id}: ${bytes} unsynced bytes dropped from ${dropped.length} file(s)`,
        heal: () => restart(ctx, 'power-cut', victim),
      };
    },
  },
  diskNemesis('bitflip-wal'),
  diskNemesis('bitflip-snapshot'),
  diskNemesis('truncate-wal-tail'),
  diskNemesis('truncate-snapshot'),
];

export function nemesisByName(name: string): Nemesis {
  const n = NEMESES.find((x) => x.name === name);
  if (n === undefined)
    throw new Error(`unknown nemesis '${name}' (known: ${NEMESES.map((x) => x.name).join(', ')})`);
  return n;
}
