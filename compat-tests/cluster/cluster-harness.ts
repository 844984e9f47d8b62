/**
 * Cluster harness for fault tests with real Concord node processes on loopback: starts N nodes
 * (`node dist/server/main.js server --node-id nI --port P --peer-port Q --data-dir D
 * --cluster-secret-file F --bootstrap n1=127.0.0.1:P1@Q1,...`), finds the leader through
 * `INFO raft`, kills (-9), stops, freezes (SIGSTOP) and restarts nodes by PID with their data
 * dir, runs bounded write loads that record which writes were acknowledged, and checks them
 * on every node.
 *
 * Owns: every node process it spawns (SIGKILLed in the root `after` hook of ../harness.ts and
 * at process exit, frozen ones included) and the temp dirs it makes (removed at the end).
 * Must never: sleep without a deadline, talk to anything but 127.0.0.1, treat an errored or
 * timed-out write as either applied or lost (it is "unknown"), or leave a process running.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { CONCORD_MAIN, HOST, REPO_ROOT, freePort, onCleanup, rawConnection, waitFor } from '../harness.js';

/** Captured output per process is capped; the tail is kept. */
const MAX_CAPTURE_CHARS = 512 * 1024;
const READY_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 10_000;

export interface ClusterOptions {
  /** Number of founding members (bootstrap list). */
  size: number;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  snapshotEntries?: number;
  /** `info` to see leader changes and snapshot installs on stderr (default `info`). */
  logLevel?: string;
  /** Run node i (0-based) as this uid (the data dir is chowned), e.g. for iptables owner rules. */
  uids?: readonly number[];
  extraArgs?: readonly string[];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One running (or exited) node process. */
class NodeProcess {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private status: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;

  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => {
      this.out = (this.out + chunk.toString()).slice(-MAX_CAPTURE_CHARS);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.err = (this.err + chunk.toString()).slice(-MAX_CAPTURE_CHARS);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      });
    });
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }
  stdout(): string {
    return this.out;
  }
  stderr(): string {
    return this.err;
  }
  exitStatus(): ExitStatus | undefined {
    return this.status;
  }
}

const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killEverything(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killEverything);
onCleanup(async () => {
  const exits = [...liveChildren].map(
    (child) =>
      new Promise<void>((resolve) =>
        child.exitCode !== null || child.signalCode !== null
          ? resolve()
          : child.once('exit', () => resolve()),
      ),
  );
  for (const child of liveChildren) child.kill('SIGKILL');
  await Promise.all(exits);
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
  tempDirs.clear();
});

/** The runner's environment minus CONCORD_* variables. */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CONCORD_')));
}

export class ClusterNode {
  process: NodeProcess | undefined;

  constructor(
    readonly cluster: Cluster,
    readonly id: string,
    readonly port: number,
    readonly peerPort: number,
    readonly dataDir: string,
    readonly uid: number | undefined,
  ) {}

  /** `id=127.0.0.1:port@peerPort`, as in --bootstrap and RAFT.NODE ADD. */
  get member(): string {
    return `${this.id}=${HOST}:${this.port}@${this.peerPort}`;
  }
  get address(): string {
    return `${HOST}:${this.port}@${this.peerPort}`;
  }
  get pid(): number {
    return this.process?.pid ?? -1;
  }
  isRunning(): boolean {
    return this.process !== undefined && this.process.exitStatus() === undefined;
  }
  stderr(): string {
    return this.process?.stderr() ?? '';
  }

  /**
   * Spawns the node (a founding member gets --bootstrap, used only while its data dir is
   * empty; a joiner gets --join). Does not wait: see waitReady().
   */
  spawn(mode: 'bootstrap' | 'join'): NodeProcess {
    if (this.isRunning()) throw new Error(`${this.id} is already running (pid ${this.pid})`);
    const o = this.cluster.options;
    const args = [
      CONCORD_MAIN,
      'server',
      '--node-id',
      this.id,
      '--port',
      String(this.port),
      '--peer-port',
      String(this.peerPort),
      '--data-dir',
      this.dataDir,
      '--cluster-secret-file',
      this.cluster.secretFile,
      '--tick-ms',
      String(o.tickMs ?? 50),
      '--election-ticks',
      String(o.electionTicks ?? 10),
      '--heartbeat-ticks',
      String(o.heartbeatTicks ?? 1),
      '--snapshot-entries',
      String(o.snapshotEntries ?? 10_000),
      '--log-level',
      o.logLevel ?? 'info',
      ...(mode === 'bootstrap' ? ['--bootstrap', this.cluster.bootstrap] : ['--join']),
      ...(o.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: inheritedEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.uid !== undefined ? { uid: this.uid, gid: this.uid } : {}),
    });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    this.process = new NodeProcess(child);
    return this.process;
  }

  /** Waits for `Concord listening on` on stdout; fails at once if the process exits first. */
  async waitReady(deadlineMs = READY_DEADLINE_MS): Promise<void> {
    const proc = this.process;
    if (proc === undefined) throw new Error(`${this.id} was never started`);
    try {
      await waitFor(
        `${this.id} to print "Concord listening on"`,
        () => {
          const status = proc.exitStatus();
          if (status !== undefined) {
            throw new Error(
              `${this.id} exited (code ${String(status.code)}, signal ${String(status.signal)})`,
            );
          }
          return proc.stdout().includes('Concord listening on') ? true : undefined;
        },
        deadlineMs,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${message}\n--- ${this.id} stderr (tail) ---\n${proc.stderr().slice(-3000)}`, {
        cause: err,
      });
    }
  }

  async start(mode: 'bootstrap' | 'join' = 'bootstrap'): Promise<void> {
    this.spawn(mode);
    await this.waitReady();
  }

  /** Sends a signal to the node's PID (SIGKILL = kill -9, SIGSTOP freezes, SIGCONT resumes). */
  signal(signal: NodeJS.Signals): void {
    const proc = this.process;
    if (proc === undefined || proc.exitStatus() !== undefined) throw new Error(`${this.id} is not running`);
    process.kill(proc.pid, signal);
  }

  /** kill -9 and wait for the exit. */
  async kill9(): Promise<void> {
    const proc = this.process;
    if (proc === undefined || proc.exitStatus() !== undefined) return;
    process.kill(proc.pid, 'SIGKILL');
    await proc.exited;
  }

  /** SIGTERM, then SIGKILL after a deadline. */
  async stop(): Promise<ExitStatus | undefined> {
    const proc = this.process;
    if (proc === undefined) return undefined;
    if (proc.exitStatus() === undefined) {
      process.kill(proc.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS);
      });
      const first = await Promise.race([proc.exited, timeout]);
      clearTimeout(timer);
      if (first === 'timeout') process.kill(proc.pid, 'SIGKILL');
    }
    return proc.exited;
  }

  /** `INFO raft` of this node as a field map; rejects when the node does not answer in time. */
  async raftInfo(timeoutMs = 1_000): Promise<Map<string, string>> {
    const conn = await rawConnection(this.port, { connectTimeoutMs: timeoutMs });
    try {
      conn.send('INFO', 'raft');
      const reply = await conn.readReply(timeoutMs);
      if (reply.isError) throw new Error(`${this.id}: INFO raft failed: ${reply.raw.toString()}`);
      const text = String(reply.value);
      const fields = new Map<string, string>();
      for (const line of text.split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
      }
      if (!fields.has('raft_role')) {
        throw new Error(
          `${this.id}: INFO raft has no raft_role (is the node running Raft?): ${JSON.stringify(text)}`,
        );
      }
      return fields;
    } finally {
      conn.close();
    }
  }

  /** A numeric INFO raft field. */
  async raftNumber(field: string): Promise<number> {
    const value = (await this.raftInfo()).get(field);
    if (value === undefined || !/^\d+$/.test(value))
      throw new Error(`${this.id}: INFO raft ${field} = ${String(value)}`);
    return Number(value);
  }
}

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  bootstrap = '';

  private constructor(
    readonly options: ClusterOptions,
    readonly rootDir: string,
    readonly secretFile: string,
  ) {}

  /** Allocates ports and dirs for `options.size` founding members and starts them all. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = await Cluster.create(options);
    await Promise.all(cluster.nodes.map((node) => node.start('bootstrap')));
    return cluster;
  }

  /** Allocates ports and dirs without starting anything. */
  static async create(options: ClusterOptions): Promise<Cluster> {
    const rootDir = await mkdtemp(path.join(os.tmpdir(), 'concord-cluster-'));
    tempDirs.add(rootDir);
    // Nodes run as other uids must reach their data dirs and the secret file.
    if (options.uids !== undefined) await chmod(rootDir, 0o755);
    const secretFile = path.join(rootDir, 'cluster-secret');
    await writeFile(secretFile, randomBytes(24).toString('hex'), { mode: 0o644 });
    const cluster = new Cluster(options, rootDir, secretFile);
    for (let i = 0; i < options.size; i++) await cluster.allocateNode(options.uids?.[i]);
    cluster.bootstrap = cluster.nodes.map((n) => n.member).join(',');
    return cluster;
  }

  /** A new node (ports, data dir) not yet started; founding members are allocated by create(). */
  async allocateNode(uid?: number): Promise<ClusterNode> {
    const id = `n${this.nodes.length + 1}`;
    const used = new Set(this.nodes.flatMap((n) => [n.port, n.peerPort]));
    const port = await distinctFreePort(used);
    used.add(port);
    const peerPort = await distinctFreePort(used);
    const dataDir = path.join(this.rootDir, id);
    if (uid !== undefined) {
      await mkdir(dataDir);
      await chown(dataDir, uid, uid);
    }
    const node = new ClusterNode(this, id, port, peerPort, dataDir, uid);
    this.nodes.push(node);
    return node;
  }

  running(): ClusterNode[] {
    return this.nodes.filter((n) => n.isRunning());
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /**
   * Polls INFO raft on `among` (default: every running node) until one reports
   * raft_role:leader and every polled node that answers and knows a leader names it.
   */
  async waitForLeader(
    deadlineMs = 10_000,
    among: readonly ClusterNode[] = this.running(),
  ): Promise<ClusterNode> {
    return waitFor(
      `a leader among ${among.map((n) => n.id).join(',')}`,
      async () => {
        const infos = await Promise.allSettled(among.map((n) => n.raftInfo(500)));
        let leader: ClusterNode | undefined;
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
        const chosen = leader;
        const agree = infos.every(
          (r) => r.status === 'rejected' || r.value.get('raft_leader_id') === chosen.id,
        );
        return agree ? chosen : undefined;
      },
      deadlineMs,
    );
  }

  /**
   * Polls until a SET through each of `nodes` (default: every running node) answers OK: the
   * cluster serves writes from any node. Returns the ms it took.
   */
  async waitUntilServing(
    deadlineMs = 10_000,
    nodes: readonly ClusterNode[] = this.running(),
  ): Promise<number> {
    const started = Date.now();
    await Promise.all(
      nodes.map(async (node) => {
        const redis = client(node.port, 1_000);
        try {
          await waitFor(
            `${node.id} to acknowledge a write`,
            async () =>
              (await redis.set(`probe:${node.id}`, String(Date.now()))) === 'OK' ? true : undefined,
            deadlineMs,
          );
        } finally {
          redis.disconnect();
        }
      }),
    );
    return Date.now() - started;
  }

  /** Polls until every node in `nodes` reports raft_applied_index >= index. */
  async waitForApplied(index: number, nodes: readonly ClusterNode[], deadlineMs = 20_000): Promise<void> {
    await waitFor(
      `applied index ${index} on ${nodes.map((n) => n.id).join(',')}`,
      async () => {
        const applied = await Promise.all(nodes.map((n) => n.raftNumber('raft_applied_index')));
        return applied.every((a) => a >= index) ? true : undefined;
      },
      deadlineMs,
    );
  }

  /** SIGKILLs every node process and waits for the exits. */
  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill9()));
  }

  /** Kills every process and removes the cluster's dirs. */
  async destroy(): Promise<void> {
    await this.killAll();
    await rm(this.rootDir, { recursive: true, force: true });
    tempDirs.delete(this.rootDir);
  }
}

async function distinctFreePort(used: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (!used.has(port)) return port;
  }
  throw new Error('no distinct free port after 20 attempts');
}

let supportProbe: Promise<string | undefined> | undefined;

/**
 * Why this build cannot run a cluster (its `server --help` lacks --bootstrap, --join or
 * --peer-port), or undefined when it can. Specs skip with this reason rather than fail on a
 * build from before the cluster wiring.
 */
export function clusterUnsupported(): Promise<string | undefined> {
  supportProbe ??= new Promise((resolve) => {
    execFile(
      process.execPath,
      [CONCORD_MAIN, 'server', '--help'],
      { timeout: 20_000, encoding: 'utf8' },
      (error, stdout) => {
        if (error !== null) {
          resolve(`\`concord server --help\` failed: ${error.message}`);
          return;
        }
        const missing = ['--bootstrap', '--join', '--peer-port', '--cluster-secret-file'].filter(
          (f) => !stdout.includes(f),
        );
        resolve(
          missing.length === 0
            ? undefined
            : `this build's \`concord server\` has no ${missing.join(', ')} (cluster CLI not wired)`,
        );
      },
    );
  });
  return supportProbe;
}

/** For a suite's `before`: skips the suite with the reason when the build cannot run a cluster. */
export async function skipUnlessClusterSupported(context: Mocha.Context): Promise<void> {
  const reason = await clusterUnsupported();
  if (reason !== undefined) {
    console.log(`      skipped: ${reason}`);
    context.skip();
  }
}

// ---------------------------------------------------------------------------------------------
// Clients and loads.

/**
 * An ioredis client to one node that fails fast instead of queueing forever: a bounded command
 * timeout, one retry after a reconnect, reconnects every 100-500 ms.
 */
export function client(port: number, commandTimeoutMs = 3_000): Redis {
  const redis = new Redis({
    host: HOST,
    port,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(100 * times, 500),
    lazyConnect: false,
  });
  redis.on('error', () => {
    // Connection errors are expected while nodes are killed; commands report their own.
  });
  return redis;
}

export type WriteOutcome = 'acked' | 'unknown';

export interface WriteRecord {
  readonly key: string;
  readonly value: string;
  outcome: WriteOutcome;
}

export interface LoadOptions {
  /** Ports to write through; a writer moves to the next one after an error. */
  ports: () => readonly number[];
  writers: number;
  /** Bound per writer. */
  maxWritesPerWriter: number;
  /** Bound on the whole load. */
  maxDurationMs: number;
  prefix: string;
}

/**
 * A bounded write load: `writers` loops, each with its own ioredis client, SET key value one
 * at a time with unique keys and values. Every attempted write is recorded as acked (OK
 * received) or unknown (error or timeout). stop() ends the loops early.
 */
export class WriteLoad {
  readonly records: WriteRecord[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;
  private readonly clients = new Map<number, Redis>();
  private readonly started = Date.now();
  /** Wall-clock time of each acknowledgement, for "serves again within" checks. */
  readonly ackTimes: number[] = [];

  constructor(readonly options: LoadOptions) {
    const loops = Array.from({ length: options.writers }, (_, w) => this.loop(w));
    this.done = Promise.all(loops).then(() => undefined);
  }

  private clientFor(port: number): Redis {
    let redis = this.clients.get(port);
    if (redis === undefined) {
      redis = client(port, 2_000);
      this.clients.set(port, redis);
    }
    return redis;
  }

  private async loop(w: number): Promise<void> {
    let portIndex = w;
    for (let seq = 0; seq < this.options.maxWritesPerWriter; seq++) {
      if (this.stopped || Date.now() - this.started > this.options.maxDurationMs) return;
      const ports = this.options.ports();
      const port = ports[portIndex % ports.length];
      if (port === undefined) return;
      const record: WriteRecord = {
        key: `${this.options.prefix}:${w}:${seq}`,
        value: `${this.options.prefix}-${w}-${seq}-${randomBytes(4).toString('hex')}`,
        outcome: 'unknown',
      };
      this.records.push(record);
      try {
        const reply = await this.clientFor(port).set(record.key, record.value);
        if (reply === 'OK') {
          record.outcome = 'acked';
          this.ackTimes.push(Date.now());
        } else this.note(`SET ${record.key} via ${port}: unexpected reply ${String(reply)}`);
      } catch (err) {
        this.note(`SET ${record.key} via ${port}: ${err instanceof Error ? err.message : String(err)}`);
        portIndex++;
        // Back off a little so a leaderless window is not a busy loop (bounded by the load's deadline).
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  private note(message: string): void {
    if (this.errors.length < 200) this.errors.push(message);
  }

  acked(): WriteRecord[] {
    return this.records.filter((r) => r.outcome === 'acked');
  }

  /** Count of acknowledgements so far. */
  ackCount(): number {
    return this.ackTimes.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await Promise.all([...this.clients.values()].map((c) => c.quit().catch(() => c.disconnect())));
  }

  /** Waits for the loops to end by themselves (count or time bound). */
  async finish(): Promise<void> {
    await this.done;
    await this.stop();
  }
}

export interface Violation {
  port: number;
  key: string;
  expected: string;
  found: string | null;
  outcome: WriteOutcome;
}

/**
 * Reads every recorded key on the node at `port` (MGET in chunks) and returns the violations:
 * an acked write missing or different, or an unknown write holding a value that was never
 * written to its key.
 */
export async function verifyWrites(port: number, records: readonly WriteRecord[]): Promise<Violation[]> {
  const redis = client(port, 10_000);
  const violations: Violation[] = [];
  try {
    for (let i = 0; i < records.length; i += 500) {
      const chunk = records.slice(i, i + 500);
      const values = await redis.mget(...chunk.map((r) => r.key));
      chunk.forEach((record, j) => {
        const found = values[j] ?? null;
        const ok =
          record.outcome === 'acked' ? found === record.value : found === null || found === record.value;
        if (!ok && violations.length < 50) {
          violations.push({ port, key: record.key, expected: record.value, found, outcome: record.outcome });
        }
      });
    }
  } finally {
    redis.disconnect();
  }
  return violations;
}

/** Time of the first acknowledgement at or after `sinceMs`, or undefined. */
export function firstAckAfter(load: WriteLoad, sinceMs: number): number | undefined {
  return load.ackTimes.find((t) => t >= sinceMs);
}

/** Waits (bounded) until `load` has at least `count` acknowledgements. */
export async function waitForAcks(load: WriteLoad, count: number, deadlineMs = 15_000): Promise<void> {
  await waitFor(
    `${count} acknowledged writes (have ${load.ackCount()})`,
    () => (load.ackCount() >= count ? true : undefined),
    deadlineMs,
  );
}

export { HOST };
