/**
 * A Concord cluster on fault-suite hosts: starts nodes the way compat-tests/cluster/
 * cluster-harness.ts does (`node dist/server/main.js server --node-id ... --bootstrap ...`),
 * but on Hosts (namespaces or loopback), with the peer port advertised through each host's
 * fault proxy, the power-cut failpoint armed, and libfaketime preloaded when installed.
 *
 * Tracks the membership it asked for (`members`: founding members, plus joins, minus removals)
 * so workloads and final reads go to members only.
 *
 * Owns: the cluster secret file. Node processes belong to their Host (and die with Hosts).
 * Must never: sleep without a deadline, or treat an errored admin command as done.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Endpoint } from './history.js';
import type { Host, Hosts } from './hosts.js';

const READY_DEADLINE_MS = 20_000;
const POLL_MS = 100;
export const POWER_CUT_SIGNAL = 'SIGUSR2';

export interface ClusterOptions {
  size: number;
  tickMs: number;
  electionTicks: number;
  snapshotEntries: number;
  logLevel?: string;
}

export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  deadlineMs: number,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof StopPolling) throw err;
      lastError = err;
    }
    if (Date.now() > until) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** GET served by `host`'s own state machine (READONLY), not forwarded to the leader. */
export async function ownRead(host: Host, key: string): Promise<unknown> {
  const redis = new Redis({
    host: host.ip,
    port: host.clientPort,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.call('READONLY');
    return await redis.get(key);
  } finally {
    redis.disconnect();
  }
}

/** A short-lived admin client (INFO, RAFT.*): bounded timeouts, no retries. */
export async function adminCall(host: Host, timeoutMs: number, ...args: string[]): Promise<unknown> {
  const redis = new Redis({
    host: host.ip,
    port: host.clientPort,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  redis.on('error', () => {
    // The command reports its own error.
  });
  try {
    await redis.connect();
    return await redis.call(args[0]!, ...args.slice(1));
  } finally {
    redis.disconnect();
  }
}

export class FaultCluster {
  readonly members = new Set<Host>();
  readonly secretFile: string;

  constructor(
    readonly hosts: Hosts,
    readonly options: ClusterOptions,
  ) {
    this.secretFile = path.join(hosts.runDir, 'cluster-secret');
  }

  get electionTimeoutMs(): number {
    return this.options.tickMs * this.options.electionTicks;
  }

  founders(): Host[] {
    return this.hosts.hosts.slice(0, this.options.size);
  }

  /** Hosts not in the membership (spares for joins). */
  spares(): Host[] {
    return this.hosts.hosts.filter((h) => !this.members.has(h));
  }

  endpoints(): Endpoint[] {
    return [...this.members].map((h) => ({ node: h.id, host: h.ip, port: h.clientPort }));
  }

  async start(): Promise<void> {
    await writeFile(this.secretFile, randomBytes(24).toString('hex'), { mode: 0o600 });
    for (const host of this.founders()) this.members.add(host);
    await Promise.all(this.founders().map((h) => this.startNode(h, 'bootstrap')));
  }

  private args(host: Host, mode: 'bootstrap' | 'join'): string[] {
    const o = this.options;
    const bootstrap = this.founders()
      .map((h) => h.member)
      .join(',');
    return [
      'server',
      '--node-id',
      host.id,
      '--bind',
      host.ns === undefined ? host.ip : '0.0.0.0',
      '--port',
      String(host.clientPort),
      '--peer-port',
      String(host.realPeerPort),
      '--data-dir',
      host.dataDir,
      '--cluster-secret-file',
      this.secretFile,
      '--protected-mode',
      'no',
      '--tick-ms',
      String(o.tickMs),
      '--election-ticks',
      String(o.electionTicks),
      '--heartbeat-ticks',
      '1',
      '--snapshot-entries',
      String(o.snapshotEntries),
      '--log-level',
      o.logLevel ?? 'info',
      ...(mode === 'bootstrap' ? ['--bootstrap', bootstrap] : ['--join']),
    ];
  }

  /**
   * Starts `host`'s node (bootstrap args are ignored by a node whose data dir is not empty) and
   * waits for "Concord listening on". `faketime` starts it with a changed clock rate.
   */
  async startNode(host: Host, mode: 'bootstrap' | 'join', faketime?: string): Promise<void> {
    // Only founders are in --bootstrap; a node that joined later restarts with --join (a
    // non-empty data dir ignores both).
    const effective = mode === 'bootstrap' && !this.founders().includes(host) ? 'join' : mode;
    const proc = host.spawnNode({
      args: this.args(host, effective),
      env: { CONCORD_POWER_CUT_SIGNAL: POWER_CUT_SIGNAL },
      ...(faketime !== undefined ? { faketime } : {}),
    });
    await pollUntil(
      `${host.id} to print "Concord listening on"`,
      () => {
        const status = proc.exitStatus();
        if (status !== undefined) {
          throw new StartFailed(
            `${host.id} exited (code ${String(status.code)}, signal ${String(status.signal)}): ${proc.stderr().slice(-1500)}`,
          );
        }
        return proc.stdout().includes('Concord listening on') ? true : undefined;
      },
      READY_DEADLINE_MS,
    );
  }

  /**
   * After startNode: waits until `host` has applied the commit index the leader (among the other
   * running members) had when this was called, so a node that starts and then fail-stops (e.g.
   * on finding its log behind what it acknowledged) is caught here. Throws StartFailed if the
   * process exits first. Without a leader among the others (all restarting) it returns at once.
   */
  async waitCaughtUp(host: Host, deadlineMs = 20_000): Promise<void> {
    const others = this.runningMembers().filter((h) => h !== host);
    const leader =
      others.length === 0
        ? undefined
        : await pollUntil('a leader', () => this.currentLeader(others), 3_000).catch(() => undefined);
    if (leader === undefined) return;
    const target = Number((await this.raftInfo(leader)).get('raft_commit_index'));
    const proc = host.node;
    await pollUntil(
      `${host.id} to apply index ${target}`,
      async () => {
        if (proc === undefined || !proc.running()) {
          const why = /"message":"([^"]*)"/.exec(
            proc
              ?.stderr()
              .split('\n')
              .filter((l) => /"level":[56]0/.test(l))
              .pop() ?? '',
          )?.[1];
          throw new StartFailed(
            `${host.id} exited after starting: ${why ?? proc?.stderr().slice(-500) ?? ''}`,
          );
        }
        return Number((await this.raftInfo(host)).get('raft_applied_index')) >= target ? true : undefined;
      },
      deadlineMs,
    );
  }

  /** startNode, then waitCaughtUp. */
  async restartCaughtUp(host: Host, mode: 'bootstrap' | 'join' = 'bootstrap'): Promise<void> {
    await this.startNode(host, mode);
    await this.waitCaughtUp(host);
  }

  /** kill -9 and wait for the exit. */
  async kill9(host: Host): Promise<void> {
    const proc = host.node;
    if (proc === undefined || !proc.running()) return;
    process.kill(proc.pid, 'SIGKILL');
    await proc.exited;
  }

  /** Power cut: the node drops every byte not yet fsynced, then dies (SIGKILL by itself). */
  async powerCut(host: Host): Promise<void> {
    const proc = host.node;
    if (proc === undefined || !proc.running()) return;
    process.kill(proc.pid, POWER_CUT_SIGNAL);
    await pollUntil(`${host.id} to die of its power cut`, () => (proc.running() ? undefined : true), 10_000);
  }

  signal(host: Host, signal: NodeJS.Signals): void {
    const proc = host.node;
    if (proc === undefined || !proc.running()) throw new Error(`${host.id} is not running`);
    process.kill(proc.pid, signal);
  }

  async wipe(host: Host): Promise<void> {
    if (host.isRunning()) throw new Error(`wipe ${host.id}: still running`);
    await rm(host.dataDir, { recursive: true, force: true });
  }

  /** `INFO raft` of a node as a field map. */
  async raftInfo(host: Host, timeoutMs = 1_000): Promise<Map<string, string>> {
    const text = String(await adminCall(host, timeoutMs, 'INFO', 'raft'));
    const fields = new Map<string, string>();
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
    }
    return fields;
  }

  /** The voters and learners in `host`'s configuration (INFO raft), undefined when it cannot answer. */
  async configuredMembers(host: Host): Promise<string[] | undefined> {
    const info = await this.raftInfo(host).catch(() => undefined);
    if (info === undefined) return undefined;
    return [info.get('raft_voters') ?? '', info.get('raft_learners') ?? '']
      .flatMap((list) => list.split(','))
      .filter((id) => id !== '');
  }

  /** The leader among running members that every answering member agrees on. */
  async waitForLeader(deadlineMs = 15_000, among: readonly Host[] = this.runningMembers()): Promise<Host> {
    return pollUntil(
      `a leader among ${among.map((h) => h.id).join(',')}`,
      async () => this.currentLeader(among),
      deadlineMs,
    );
  }

  async currentLeader(among: readonly Host[] = this.runningMembers()): Promise<Host | undefined> {
    const infos = await Promise.allSettled(among.map((h) => this.raftInfo(h, 500)));
    let leader: Host | undefined;
    let leaderTerm = -1;
    infos.forEach((r, i) => {
      if (r.status === 'fulfilled' && r.value.get('raft_role') === 'leader') {
        const term = Number(r.value.get('raft_current_term'));
        if (term > leaderTerm) {
          leaderTerm = term;
          leader = among[i];
        }
      }
    });
    if (leader === undefined) return undefined;
    // A majority of the members that answered must name it (a --join node still catching up
    // names no one; a deposed leader may still name itself for a moment).
    const chosen = leader;
    const answered = infos.filter((r) => r.status === 'fulfilled');
    const naming = answered.filter((r) => r.value.get('raft_leader_id') === chosen.id).length;
    return naming * 2 > answered.length ? chosen : undefined;
  }

  runningMembers(): Host[] {
    return [...this.members].filter((h) => h.isRunning());
  }

  /** Polls until a SET through every running member answers OK; returns the ms it took. */
  async waitUntilServing(deadlineMs = 15_000): Promise<number> {
    const started = Date.now();
    await Promise.all(
      this.runningMembers().map((host) =>
        pollUntil(
          `${host.id} to acknowledge a write`,
          async () =>
            (await adminCall(host, 1_000, 'SET', `probe:${host.id}`, String(Date.now()))) === 'OK'
              ? true
              : undefined,
          deadlineMs,
        ),
      ),
    );
    return Date.now() - started;
  }

  /** Polls until every running member has applied at least the leader's commit index. */
  async waitConverged(deadlineMs = 20_000): Promise<void> {
    const leader = await this.waitForLeader(deadlineMs);
    const commit = Number((await this.raftInfo(leader)).get('raft_commit_index'));
    await pollUntil(
      `every member to apply index ${commit}`,
      async () => {
        const applied = await Promise.all(
          this.runningMembers().map(async (h) => Number((await this.raftInfo(h)).get('raft_applied_index'))),
        );
        return applied.every((a) => a >= commit) ? true : undefined;
      },
      deadlineMs,
    );
  }

  /** RAFT.NODE / RAFT.TRANSFER-LEADER on the leader, retried on -TRYAGAIN within the deadline. */
  async admin(deadlineMs: number, ...args: string[]): Promise<unknown> {
    return pollUntil(
      args.join(' '),
      async () => {
        const leader = await this.currentLeader();
        if (leader === undefined) return undefined;
        return adminCall(leader, 5_000, ...args);
      },
      deadlineMs,
    );
  }
}

/** Thrown from a pollUntil check to end the wait at once. */
export class StopPolling extends Error {}

/** A node process exited while starting (e.g. it refused a damaged data dir). */
export class StartFailed extends StopPolling {
  override readonly name = 'StartFailed';
}
