/**
 * Hosts for the fault suite: where each Concord node runs and how its network can be broken.
 *
 * Mode `netns` (root with iproute2): the suite makes a bridge in the root namespace with the
 * address 10.232.<k>.254/24 (the ops engineer's tests use 10.231.x), and per host a network
 * namespace joined to the bridge by a veth pair, the host's address being 10.232.<k>.<i+1>.
 * Every node uses the same ports inside its namespace. Partitions and packet loss are real
 * packet drops by iptables / nftables inside the namespaces.
 *
 * Mode `loopback` (no root, no namespaces, or FAULTS_HOSTS=loopback): every node on 127.0.0.1
 * with its own ports; partitions are made by the fault proxies instead (a blackhole that stalls
 * the connection, as a partition does), and packet loss by the proxies' model of what TCP makes
 * of it (retransmission stalls of an RTO and more, rarely a reset connection: proxy.ts).
 *
 * In both modes a fault proxy process (proxy-main.ts) sits in front of each node's peer port:
 * the cluster advertises the proxy's port, the node listens on its real peer port, and the
 * proxy adds delay and jitter on the peer links (the kernel here has no netem).
 *
 * Names carry the runner's pid in base 36 (`cfz<pid>b` bridge, `cfz<pid>v<i>` veth,
 * `cfz<pid>n<i>` namespace, all at most 15 characters), so sweepStale() can remove what a
 * runner that died by SIGKILL left behind (its pid is gone) without touching a live run's.
 *
 * Owns: the bridge, namespaces, veths, the FORWARD rule and every process it spawns (nodes and
 * proxies). Removed by cleanup() in the suite's after hook, synchronously at process exit, and
 * on SIGINT/SIGTERM. Must never: touch an interface, namespace or rule it did not make (except
 * the stale ones of dead runs, by name), or route anything but its own subnet.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CONCORD_MAIN = path.join(REPO_ROOT, 'dist', 'server', 'main.js');
const PROXY_MAIN = path.join(REPO_ROOT, 'dist', 'faults', 'proxy-main.js');
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

export type HostMode = 'netns' | 'loopback';

const NAME_PREFIX = 'cfz';
const PID_TAG = process.pid.toString(36);
const NETNS_CLIENT_PORT = 6379;
const NETNS_REAL_PEER_PORT = 16379;
const NETNS_PROXY_PORT = 7379;
const MAX_CAPTURE_CHARS = 256 * 1024;
const COMMAND_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Commands and process bookkeeping.

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (never a shell); resolves with its exit code instead of throwing. */
export function run(command: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr: stderr || (error?.message ?? '') });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs a command and throws with its stderr when it fails. */
export async function must(command: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(command, args, input);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Every process this module spawned and has not seen exit: SIGKILLed at cleanup and exit. */
const live = new Set<ChildProcess>();

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned process with a bounded capture of its output. */
export class Proc {
  private out = '';
  private err = '';
  private status: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;

  /** `logFile`: every stderr byte of every process of a host is also appended there. */
  constructor(
    readonly child: ChildProcess,
    logFile?: string,
  ) {
    live.add(child);
    const log = logFile === undefined ? undefined : createWriteStream(logFile, { flags: 'a' });
    log?.write(`--- pid ${String(child.pid)} started ${new Date().toISOString()}\n`);
    child.stdout?.on('data', (chunk: Buffer) => {
      this.out = (this.out + chunk.toString()).slice(-MAX_CAPTURE_CHARS);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.err = (this.err + chunk.toString()).slice(-MAX_CAPTURE_CHARS);
      log?.write(chunk);
    });
    child.once('close', (code, signal) => {
      log?.end(`--- pid ${String(child.pid)} exited code=${String(code)} signal=${String(signal)} ${new Date().toISOString()}\n`);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
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
  running(): boolean {
    return this.status === undefined;
  }
}

/** The runner's environment without CONCORD_* and faketime variables. */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('CONCORD_') && !name.startsWith('FAKETIME') && name !== 'LD_PRELOAD',
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Hosts.

export interface HostsOptions {
  /** Host slots (founding members plus spares for joins). */
  slots: number;
  /** Directory for data dirs, clock files and logs (the run's temp dir). */
  runDir: string;
  /** Seed for the proxies' jitter. */
  seed: number;
  /** Force a mode; default: netns when usable, else loopback. */
  mode?: HostMode;
  /**
   * netns only: no fault proxies, the nodes' peer ports are advertised directly (to tell a
   * Concord problem from a proxy artifact; no delay nemesis then). FAULTS_NO_PROXY=1 sets it.
   */
  noProxy?: boolean;
}

/** How a node process is started on a host. */
export interface SpawnOptions {
  args: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** Start under libfaketime with this clock (e.g. `+0 x1.5`); default: the host's skew file. */
  faketime?: string;
}

export class Host {
  node: Proc | undefined;
  proxy: Proc | undefined;
  private proxySeq = 0;
  private readonly proxyAcks = new Map<number, () => void>();

  constructor(
    readonly hosts: Hosts,
    readonly index: number,
    readonly id: string,
    /** Address clients and peers use for this host. */
    readonly ip: string,
    readonly clientPort: number,
    /** The node's real peer listener. */
    readonly realPeerPort: number,
    /** The proxy's port: what the cluster advertises as this node's peer port. */
    readonly peerPort: number,
    readonly dataDir: string,
    readonly ns: string | undefined,
  ) {}

  /** `id=ip:port@peerPort`, as in --bootstrap and RAFT.NODE ADD. */
  get member(): string {
    return `${this.id}=${this.address}`;
  }
  get address(): string {
    return `${this.ip}:${this.clientPort}@${this.peerPort}`;
  }
  /** The file libfaketime reads the node's clock offset from (FAKETIME_TIMESTAMP_FILE). */
  get clockFile(): string {
    return path.join(this.hosts.runDir, `clock-${this.id}`);
  }
  isRunning(): boolean {
    return this.node?.running() ?? false;
  }
  get pid(): number {
    return this.node?.pid ?? -1;
  }

  /** argv prefix that runs a command inside this host's namespace (empty on loopback). */
  private wrap(command: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): [string, string[]] {
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    if (this.ns === undefined) {
      return assignments.length === 0 ? [command, [...args]] : ['env', [...assignments, command, ...args]];
    }
    return ['ip', ['netns', 'exec', this.ns, 'env', ...assignments, command, ...args]];
  }

  /** Runs a command inside the host's namespace (iptables, nft). */
  exec(command: string, args: readonly string[], input?: string): Promise<RunResult> {
    const [cmd, argv] = this.wrap(command, args);
    return run(cmd, argv, input);
  }

  /**
   * Spawns the node process (ip netns exec ... env ... node main.js ...). `ip netns exec` and
   * `env` both exec, so the child's pid is the node's pid: signals go to the node itself.
   */
  spawnNode(options: SpawnOptions): Proc {
    if (this.isRunning()) throw new Error(`${this.id} is already running (pid ${this.pid})`);
    const env: Record<string, string> = { ...(options.env ?? {}) };
    if (this.hosts.faketime) {
      env['LD_PRELOAD'] = LIBFAKETIME;
      if (options.faketime !== undefined) {
        // A clock rate applies to every clock from process start (monotonic included).
        env['FAKETIME'] = options.faketime;
      } else {
        // A wall-clock skew that the nemesis changes while the node runs; monotonic is real.
        env['FAKETIME_TIMESTAMP_FILE'] = this.clockFile;
        env['FAKETIME_CACHE_DURATION'] = '1';
        env['FAKETIME_DONT_FAKE_MONOTONIC'] = '1';
      }
    }
    const [cmd, argv] = this.wrap(process.execPath, [CONCORD_MAIN, ...options.args], env);
    const child = spawn(cmd, argv, { cwd: REPO_ROOT, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.node = new Proc(child, path.join(this.hosts.runDir, `${this.id}.log`));
    return this.node;
  }

  /** Starts the fault proxy in front of the node's peer port; resolves once it listens. */
  async startProxy(): Promise<void> {
    const listenHost = this.ns === undefined ? this.ip : '0.0.0.0';
    const [cmd, argv] = this.wrap(process.execPath, [
      PROXY_MAIN,
      listenHost,
      String(this.peerPort),
      '127.0.0.1',
      String(this.realPeerPort),
      String(this.hosts.seed + this.index),
    ]);
    const child = spawn(cmd, argv, { cwd: REPO_ROOT, env: baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const proc = new Proc(child);
    this.proxy = proc;
    const ready = new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        if (line.startsWith('ready ')) resolve();
        const ack = /^ack (\d+)$/.exec(line);
        if (ack !== null) {
          const seq = Number(ack[1]);
          this.proxyAcks.get(seq)?.();
          this.proxyAcks.delete(seq);
        }
      });
      void proc.exited.then((s) =>
        reject(new Error(`proxy of ${this.id} exited (${String(s.code)}): ${proc.stderr().slice(-2000)}`)),
      );
    });
    await withTimeout(ready, 10_000, `the proxy of ${this.id} to listen`);
  }

  /** Sends one command to the proxy and waits for its ack. */
  async proxyCommand(command: {
    cmd: 'policy' | 'reset';
    from?: string;
    cut?: boolean;
    delayMs?: number;
    jitterMs?: number;
    lossPercent?: number;
  }): Promise<void> {
    const proxy = this.proxy;
    if (proxy === undefined || !proxy.running()) throw new Error(`the proxy of ${this.id} is not running`);
    const seq = ++this.proxySeq;
    const acked = new Promise<void>((resolve) => this.proxyAcks.set(seq, resolve));
    proxy.child.stdin!.write(`${JSON.stringify({ seq, ...command })}\n`);
    await withTimeout(acked, 5_000, `the proxy of ${this.id} to ack ${command.cmd}`);
  }

  /** Sets the node's wall-clock offset (seconds, may be negative) through libfaketime's file. */
  async setClockOffset(seconds: number): Promise<void> {
    await writeFile(this.clockFile, `${seconds >= 0 ? '+' : ''}${seconds}s\n`);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Why namespaces cannot be used here, or undefined. */
export async function netnsUnusable(): Promise<string | undefined> {
  if (process.env['FAULTS_HOSTS'] === 'loopback') return 'FAULTS_HOSTS=loopback';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root';
  const probe = `${NAME_PREFIX}${PID_TAG}p`;
  const add = await run('ip', ['netns', 'add', probe]);
  if (add.code !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  const ipt = await run('ip', ['netns', 'exec', probe, 'iptables', '-w', '5', '-S', 'INPUT']);
  await run('ip', ['netns', 'del', probe]);
  if (ipt.code !== 0) return `iptables inside a namespace failed: ${ipt.stderr.trim()}`;
  return undefined;
}

/** Whether `nft` can make a numgen rule (else packet loss uses iptables -m statistic). */
async function nftUsable(host: Host): Promise<boolean> {
  const r = await host.exec('nft', ['-c', '-f', '-'], lossRuleset(['10.0.0.1'], 10));
  return r.code === 0;
}

function lossRuleset(sources: readonly string[], percent: number): string {
  return [
    'table inet cfz_loss {',
    ' chain input {',
    '  type filter hook input priority 0; policy accept;',
    `  ip saddr { ${sources.join(', ')} } numgen random mod 100 <= ${Math.min(99, Math.max(0, percent - 1))} drop`,
    ' }',
    '}',
    '',
  ].join('\n');
}

export class Hosts {
  readonly hosts: Host[] = [];
  bridge: string | undefined;
  subnet: string | undefined;
  /** The runner's address on the bridge (netns mode). */
  runnerIp: string | undefined;
  faketime = false;
  useNft = false;
  /** Whether fault proxies sit on the peer links (always on loopback). */
  proxied = true;
  private forwardRule: string[] | undefined;
  /** Root-side veth names, deleted explicitly (a namespace's teardown can lag behind `ip netns del`). */
  private readonly veths: string[] = [];
  private cleaned = false;

  private constructor(
    readonly mode: HostMode,
    readonly runDir: string,
    readonly seed: number,
  ) {}

  static async create(options: HostsOptions): Promise<Hosts> {
    await sweepStale();
    const why = options.mode === 'loopback' ? 'asked for loopback' : await netnsUnusable();
    if (options.mode === 'netns' && why !== undefined) throw new Error(`netns hosts unusable: ${why}`);
    const hosts = new Hosts(why === undefined ? 'netns' : 'loopback', options.runDir, options.seed);
    hosts.proxied = !(hosts.mode === 'netns' && (options.noProxy === true || process.env['FAULTS_NO_PROXY'] === '1'));
    if (why !== undefined) console.log(`      faults: hosts on loopback with proxy partitions (${why})`);
    registered.add(hosts);
    hosts.faketime = existsSync(LIBFAKETIME);
    try {
      if (hosts.mode === 'netns') await hosts.setupNetns(options.slots);
      else await hosts.setupLoopback(options.slots);
      for (const host of hosts.hosts) await host.setClockOffset(0);
      if (hosts.proxied) await Promise.all(hosts.hosts.map((h) => h.startProxy()));
      if (hosts.mode === 'netns') hosts.useNft = await nftUsable(hosts.hosts[0]!);
    } catch (err) {
      await hosts.cleanup();
      throw err;
    }
    return hosts;
  }

  private async setupNetns(slots: number): Promise<void> {
    const k = await freeSubnetOctet();
    this.subnet = `10.232.${k}`;
    this.runnerIp = `${this.subnet}.254`;
    const bridge = `${NAME_PREFIX}${PID_TAG}b`;
    await must('ip', ['link', 'add', bridge, 'type', 'bridge']);
    this.bridge = bridge;
    await must('ip', ['addr', 'add', `${this.runnerIp}/24`, 'dev', bridge]);
    await must('ip', ['link', 'set', bridge, 'up']);
    // With br_netfilter loaded, bridged frames pass the root FORWARD chain: let ours through
    // whatever its policy (removed at cleanup).
    const rule = ['FORWARD', '-i', bridge, '-o', bridge, '-m', 'comment', '--comment', `${NAME_PREFIX}-${PID_TAG}`, '-j', 'ACCEPT'];
    if ((await run('iptables', ['-w', '5', '-I', ...rule])).code === 0) this.forwardRule = rule;
    for (let i = 0; i < slots; i++) {
      const ns = `${NAME_PREFIX}${PID_TAG}n${i + 1}`;
      const veth = `${NAME_PREFIX}${PID_TAG}v${i + 1}`;
      await must('ip', ['netns', 'add', ns]);
      const ip = `${this.subnet}.${i + 1}`;
      const dataDir = path.join(this.runDir, `n${i + 1}`);
      this.hosts.push(
        new Host(this, i, `n${i + 1}`, ip, NETNS_CLIENT_PORT, NETNS_REAL_PEER_PORT, this.proxied ? NETNS_PROXY_PORT : NETNS_REAL_PEER_PORT, dataDir, ns),
      );
      await must('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      this.veths.push(veth);
      await must('ip', ['link', 'set', veth, 'master', bridge, 'up']);
      await must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  }

  private async setupLoopback(slots: number): Promise<void> {
    const used = new Set<number>();
    const port = async (): Promise<number> => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const p = await freePort();
        if (!used.has(p)) {
          used.add(p);
          return p;
        }
      }
      throw new Error('no distinct free port');
    };
    for (let i = 0; i < slots; i++) {
      const dataDir = path.join(this.runDir, `n${i + 1}`);
      this.hosts.push(new Host(this, i, `n${i + 1}`, '127.0.0.1', await port(), await port(), await port(), dataDir, undefined));
    }
  }

  host(id: string): Host {
    const host = this.hosts.find((h) => h.id === id);
    if (host === undefined) throw new Error(`no host ${id}`);
    return host;
  }

  /** Whether packet loss can be injected: real drops in namespaces, else the proxies' model. */
  get canDropPackets(): boolean {
    return this.mode === 'netns' || this.proxied;
  }

  /** How loss() makes packet loss here, for the run's timeline. */
  get lossMethod(): string {
    if (this.mode === 'netns') return this.useNft ? 'nft numgen' : 'iptables statistic';
    return 'proxy: chunks held back by TCP-like retransmission timeouts, rare resets';
  }

  // -------------------------------------------------------------------------------------------
  // Network faults. Each is undone by heal().

  /**
   * Drops everything `from` sends to `to` (a one-way cut; cut both ways for a partition).
   * netns: an iptables INPUT rule in `to`'s namespace (TCP then stalls both ways on the
   * affected connections, as on a real network). loopback: `to`'s proxy blackholes the
   * connections `from` dialed.
   */
  async cut(from: Host, to: Host): Promise<void> {
    if (this.mode === 'netns') {
      await must('ip', ['netns', 'exec', to.ns!, 'iptables', '-w', '5', '-A', 'INPUT', '-s', from.ip, '-j', 'DROP']);
    } else {
      await to.proxyCommand({ cmd: 'policy', from: from.id, cut: true });
    }
  }

  /**
   * Drops `percent`% (1-100) of the packets `host` receives from the other hosts. netns: real
   * drops (nftables numgen, else iptables statistic). loopback: `host`'s proxy holds back that
   * share of the chunks on every peer link into it by retransmission timeouts and rarely resets
   * a connection (proxy.ts: a TCP proxy must not drop bytes; this is what TCP makes of loss).
   */
  async loss(host: Host, percent: number): Promise<void> {
    if (!(percent >= 1 && percent <= 100)) throw new Error(`loss: percent ${percent} not in 1..100`);
    if (this.mode !== 'netns') {
      if (!this.proxied) throw new Error('packet loss needs network namespaces or the fault proxies');
      await host.proxyCommand({ cmd: 'policy', from: '*', lossPercent: percent });
      return;
    }
    const others = this.hosts.filter((h) => h !== host).map((h) => h.ip);
    if (this.useNft) {
      await must('ip', ['netns', 'exec', host.ns!, 'nft', '-f', '-'], lossRuleset(others, percent));
    } else {
      for (const ip of others) {
        await must('ip', [
          'netns', 'exec', host.ns!, 'iptables', '-w', '5', '-A', 'INPUT', '-s', ip,
          '-m', 'statistic', '--mode', 'random', '--probability', String(percent / 100), '-j', 'DROP',
        ]);
      }
    }
  }

  /** Delays (with jitter) every peer link into `host`, through its proxy. */
  async delay(host: Host, delayMs: number, jitterMs: number): Promise<void> {
    if (!this.proxied) throw new Error('delay needs the fault proxies');
    await host.proxyCommand({ cmd: 'policy', from: '*', delayMs, jitterMs });
  }

  /** Removes every network fault: iptables rules and nft tables in every namespace, proxy policies. */
  async heal(): Promise<void> {
    await Promise.all(
      this.hosts.map(async (host) => {
        if (this.mode === 'netns') {
          await must('ip', ['netns', 'exec', host.ns!, 'iptables', '-w', '5', '-F', 'INPUT']);
          await host.exec('nft', ['delete', 'table', 'inet', 'cfz_loss']); // absent unless loss was on
        }
        if (this.proxied && host.proxy?.running() === true) await host.proxyCommand({ cmd: 'reset' });
      }),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Cleanup.

  /** Kills every process and removes every namespace, link and rule made here. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    registered.delete(this);
    const procs = this.hosts.flatMap((h) => [h.node, h.proxy]).filter((p): p is Proc => p?.running() === true);
    for (const p of procs) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    if (this.mode === 'netns') {
      for (const host of this.hosts) await removeNamespace(host.ns!);
      for (const veth of this.veths) await run('ip', ['link', 'del', veth]); // absent once its namespace is gone
      if (this.bridge !== undefined) await run('ip', ['link', 'del', this.bridge]);
      if (this.forwardRule !== undefined) await run('iptables', ['-w', '5', '-D', ...this.forwardRule]);
    }
  }

  /** The synchronous cleanup for process exit. */
  cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const host of this.hosts) {
      for (const p of [host.node, host.proxy]) if (p?.running() === true) p.child.kill('SIGKILL');
    }
    if (this.mode !== 'netns') return;
    const quiet = (cmd: string, args: string[]): void => {
      try {
        execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // Best effort at exit; sweepStale() of the next run removes leftovers by name.
      }
    };
    for (const host of this.hosts) quiet('ip', ['netns', 'del', host.ns!]);
    for (const veth of this.veths) quiet('ip', ['link', 'del', veth]);
    if (this.bridge !== undefined) quiet('ip', ['link', 'del', this.bridge]);
    if (this.forwardRule !== undefined) quiet('iptables', ['-w', '5', '-D', ...this.forwardRule]);
  }
}

const registered = new Set<Hosts>();
process.on('exit', () => {
  for (const hosts of registered) hosts.cleanupSync();
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    for (const hosts of registered) hosts.cleanupSync();
    for (const child of live) child.kill('SIGKILL');
    process.removeListener(signal, onSignal);
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

/** Kills the processes left in a namespace, then deletes it. */
async function removeNamespace(ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns]);
  for (const pid of pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await run('ip', ['netns', 'del', ns]);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes namespaces, links and FORWARD rules that earlier runs (by name: `cfz<pid36>...`) left
 * behind when they died without cleaning up, if their pid no longer runs.
 */
export async function sweepStale(): Promise<string[]> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return [];
  const removed: string[] = [];
  const dead = (tag: string): boolean => tag !== PID_TAG && !pidAlive(parseInt(tag, 36));
  const namespaces = await run('ip', ['netns', 'list']);
  for (const line of namespaces.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^cfz([0-9a-z]+)[np]\d*$/.exec(name);
    if (m !== null && dead(m[1]!)) {
      await removeNamespace(name);
      removed.push(name);
    }
  }
  const links = await run('ip', ['-o', 'link', 'show']);
  for (const line of links.stdout.split('\n')) {
    const m = /^\d+:\s+(cfz([0-9a-z]+?)(?:b|v\d+))[@:]/.exec(line);
    if (m !== null && dead(m[2]!)) {
      await run('ip', ['link', 'del', m[1]!]);
      removed.push(m[1]!);
    }
  }
  const rules = await run('iptables', ['-w', '5', '-S', 'FORWARD']);
  for (const line of rules.stdout.split('\n')) {
    const m = /--comment "?cfz-([0-9a-z]+)"?/.exec(line);
    if (m !== null && dead(m[1]!) && line.startsWith('-A ')) {
      const args = line.slice(3).split(' ').map((a) => a.replace(/^"|"$/g, ''));
      await run('iptables', ['-w', '5', '-D', ...args]);
      removed.push(`FORWARD rule ${m[1]!}`);
    }
  }
  return removed;
}

/** A third octet k such that 10.232.k.0/24 is on no interface. */
async function freeSubnetOctet(): Promise<number> {
  const addrs = await must('ip', ['-4', '-o', 'addr', 'show']);
  const taken = new Set([...addrs.matchAll(/inet 10\.232\.(\d+)\./g)].map((m) => Number(m[1])));
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const k = ((start + i) % 250) + 1;
    if (!taken.has(k)) return k;
  }
  throw new Error('no free 10.232.k.0/24 subnet');
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
