/**
 * Runs a compose project's services as processes in Linux network namespaces, without a
 * container engine: one namespace per service on a private bridge (10.231.7.0/24), each
 * service's hostname resolvable from every namespace (an /etc/netns/<ns>/hosts file, which
 * `ip netns exec` bind-mounts over /etc/hosts), and each service started with the image's
 * command (Dockerfile ENTRYPOINT + CMD, `/app` mapped to this checkout) and its effective
 * environment from the compose file, its volume targets mapped to temp directories.
 *
 * Owns every namespace, veth pair, bridge, hosts file, iptables rule and process it creates:
 * all carry a per-run suffix and are removed by destroy(), which also runs at process exit.
 * Must never touch an interface, namespace or rule it did not create, nor send traffic outside
 * its own namespaces (the root namespace gets no address on the bridge).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REDIS_CLI_BIN, REPO_ROOT } from '../harness.js';
import type { ComposeService } from './compose.js';

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
const IPTABLES = ['/usr/sbin/iptables', '/sbin/iptables'].find((p) => existsSync(p)) ?? null;
const SUBNET = '10.231.7';
/** Where the image keeps the application; mapped to this checkout. */
const IMAGE_APP_DIR = '/app';
const MAX_CAPTURE = 64 * 1024;

/** Why namespaces cannot be used here (not root, no ip, no permission), or undefined. */
export function netnsUnsupported(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'creating network namespaces needs root (CI runs as root)';
  }
  if (spawnSync(IP, ['-V']).status !== 0) return 'the ip command (iproute2) is not installed';
  if (!existsSync(REDIS_CLI_BIN)) return 'redis-cli is not installed';
  const probe = `ccprobe${process.pid % 100000}`;
  const made = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `cannot create a network namespace: ${made.stderr.trim()}`;
  spawnSync(IP, ['netns', 'del', probe]);
  return undefined;
}

function ip(...args: string[]): void {
  execFileSync(IP, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

export interface ServiceProcess {
  readonly service: ComposeService;
  readonly ns: string;
  readonly address: string;
  readonly dataRoot: string;
  /** The environment the process ran with (volume targets mapped). */
  readonly env: Record<string, string>;
  child: ChildProcess | null;
  stdout: string;
  stderr: string;
  exited: Promise<number | null> | null;
}

/** Replaces the image's /app prefix with this checkout. */
function mapAppPath(arg: string): string {
  return arg === IMAGE_APP_DIR || arg.startsWith(`${IMAGE_APP_DIR}/`)
    ? path.join(REPO_ROOT, arg.slice(IMAGE_APP_DIR.length))
    : arg;
}

export class NetnsProject {
  readonly suffix = `${(process.pid % 0x1000).toString(16)}${randomBytes(2).toString('hex')}`;
  readonly bridge = `cb${this.suffix}`;
  readonly services = new Map<string, ServiceProcess>();
  private readonly root = mkdtempSync(path.join(tmpdir(), 'concord-netns-'));
  private readonly namespaces: string[] = [];
  private readonly veths: string[] = [];
  private readonly hostsDirs: string[] = [];
  private iptablesRule: string[] | null = null;
  private destroyed = false;
  private readonly onExit = (): void => this.destroySync();

  /** Builds the network for every service (started or not: hostnames resolve for all). */
  constructor(services: readonly ComposeService[]) {
    process.on('exit', this.onExit);
    try {
      ip('link', 'add', this.bridge, 'type', 'bridge');
      ip('link', 'set', this.bridge, 'up');
      this.allowBridgedTraffic();
      services.forEach((service, i) => {
        const ns = `cc${i}${this.suffix}`;
        const hostSide = `cv${i}${this.suffix}`;
        const nsSide = `cn${i}${this.suffix}`;
        ip('netns', 'add', ns);
        this.namespaces.push(ns);
        ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide);
        this.veths.push(hostSide);
        ip('link', 'set', hostSide, 'master', this.bridge);
        ip('link', 'set', hostSide, 'up');
        ip('link', 'set', nsSide, 'netns', ns);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        const address = `${SUBNET}.${10 + i}`;
        ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', nsSide);
        ip('-n', ns, 'link', 'set', nsSide, 'up');
        const dataRoot = path.join(this.root, service.name);
        mkdirSync(dataRoot, { recursive: true });
        this.services.set(service.name, {
          service,
          ns,
          address,
          dataRoot,
          env: {},
          child: null,
          stdout: '',
          stderr: '',
          exited: null,
        });
      });
      const hosts = ['127.0.0.1 localhost', '::1 localhost'];
      for (const s of this.services.values()) hosts.push(`${s.address} ${s.service.hostname}`);
      for (const s of this.services.values()) {
        const dir = path.join('/etc/netns', s.ns);
        mkdirSync(dir, { recursive: true });
        this.hostsDirs.push(dir);
        writeFileSync(path.join(dir, 'hosts'), `${hosts.join('\n')}\n`);
        writeFileSync(path.join(dir, 'hostname'), `${s.service.hostname}\n`);
      }
    } catch (error) {
      this.destroySync();
      throw error;
    }
  }

  /**
   * Bridged frames pass through iptables' FORWARD chain when br_netfilter is loaded; a DROP
   * policy there (as Docker installs) would cut the namespaces apart. Accept this bridge's own
   * traffic, first in the chain; the rule is deleted by destroy().
   */
  private allowBridgedTraffic(): void {
    const knob = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    if (IPTABLES === null || !existsSync(knob) || readFileSync(knob, 'utf8').trim() !== '1') return;
    const rule = ['FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'];
    if (spawnSync(IPTABLES, ['-w', '5', '-I', ...rule]).status === 0) this.iptablesRule = rule;
  }

  get(name: string): ServiceProcess {
    const s = this.services.get(name);
    if (s === undefined) throw new Error(`no service ${name}`);
    return s;
  }

  /** Runs a command inside a service's namespace (its hosts file in place); resolves its result. */
  exec(
    name: string,
    command: readonly string[],
    env: Record<string, string> = {},
    timeoutMs = 10_000,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const s = this.get(name);
    return new Promise((resolve) => {
      const child = spawn(IP, ['netns', 'exec', s.ns, ...command], {
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: timeoutMs,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** redis-cli run in `from`'s namespace against `host` (a service hostname). */
  async redisCli(
    from: string,
    host: string,
    port: number,
    password: string | undefined,
    args: readonly string[],
  ) {
    const auth = password === undefined || password === '' ? [] : ['-a', password, '--no-auth-warning'];
    const r = await this.exec(from, [REDIS_CLI_BIN, '-h', host, '-p', String(port), ...auth, ...args]);
    if (r.code !== 0)
      throw new Error(`redis-cli ${args.join(' ')} from ${from} to ${host}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /**
   * Starts a service as the container would: the image command (`/app` mapped) with the
   * service's effective environment, each volume target replaced by a temp directory.
   */
  start(name: string, imageCommand: readonly string[]): ServiceProcess {
    const s = this.get(name);
    if (s.child !== null) throw new Error(`${name} is already running`);
    const env: Record<string, string> = {};
    for (const [key, value] of s.service.environment) {
      let mapped = value;
      for (const v of s.service.volumes) {
        if (value === v.target || value.startsWith(`${v.target}/`)) {
          mapped = path.join(s.dataRoot, v.source, value.slice(v.target.length));
        }
      }
      env[key] = mapped;
    }
    Object.assign(s, { env });
    const [program, ...args] = imageCommand.map(mapAppPath);
    const binary = program === 'node' ? process.execPath : program!;
    const child = spawn(IP, ['netns', 'exec', s.ns, binary, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    s.child = child;
    s.stdout = '';
    s.stderr = '';
    child.stdout.on('data', (c: Buffer) => (s.stdout = (s.stdout + c.toString()).slice(-MAX_CAPTURE)));
    child.stderr.on('data', (c: Buffer) => (s.stderr = (s.stderr + c.toString()).slice(-MAX_CAPTURE)));
    s.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        s.child = null;
        resolve(code);
      }),
    );
    return s;
  }

  /** The host directory standing for the service's data volume (CONCORD_DATA_DIR's mount). */
  dataDir(name: string): string {
    const s = this.get(name);
    const target = s.service.environment.get('CONCORD_DATA_DIR');
    const volume = s.service.volumes.find((v) => v.target === target);
    if (volume === undefined) throw new Error(`${name}: CONCORD_DATA_DIR is not on a volume`);
    return path.join(s.dataRoot, volume.source);
  }

  /** SIGKILL (a machine dying) and wait for the exit. */
  async kill(name: string): Promise<void> {
    const s = this.get(name);
    if (s.child === null || s.exited === null) return;
    s.child.kill('SIGKILL');
    await s.exited;
  }

  /** Runs the service's compose health check (`["CMD", ...]`) in its namespace with its environment. */
  healthcheck(name: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const s = this.get(name);
    const test = s.service.healthcheck?.test;
    if (test === undefined || test[0] !== 'CMD') throw new Error(`${name} has no CMD health check`);
    const [program, ...args] = test.slice(1).map(mapAppPath);
    return this.exec(name, [program === 'node' ? process.execPath : program!, ...args], s.env);
  }

  /** SIGTERM (what `docker stop` sends) and the exit code, SIGKILL after `graceMs`. */
  async stop(name: string, graceMs = 15_000): Promise<number | null> {
    const s = this.get(name);
    const child = s.child;
    if (child === null || s.exited === null) return null;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await s.exited;
    clearTimeout(timer);
    return code;
  }

  /** Stops every process, then removes namespaces, links, hosts files, the rule and temp dirs. */
  async destroy(): Promise<void> {
    await Promise.all([...this.services.keys()].map((name) => this.stop(name, 5_000)));
    this.destroySync();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const s of this.services.values()) s.child?.kill('SIGKILL');
    // Deleting one end of a veth pair deletes both (the kernel would do it on namespace
    // deletion too, but lazily: delete them here so none is left when destroy() returns).
    for (const veth of this.veths) spawnSync(IP, ['link', 'del', veth]);
    for (const ns of this.namespaces) spawnSync(IP, ['netns', 'del', ns]);
    spawnSync(IP, ['link', 'del', this.bridge]);
    if (this.iptablesRule !== null && IPTABLES !== null)
      spawnSync(IPTABLES, ['-w', '5', '-D', ...this.iptablesRule]);
    for (const dir of this.hostsDirs) rmSync(dir, { recursive: true, force: true });
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Names of this run's leftovers still present (for the cleanup assertion). */
  leftovers(): string[] {
    const links = spawnSync(IP, ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    const spaces = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8' }).stdout;
    const found: string[] = [];
    const ours = new RegExp(`\\b(cb|c[cvn]\\d)${this.suffix}\\b`);
    for (const line of `${links}\n${spaces}`.split('\n')) if (ours.test(line)) found.push(line.trim());
    for (const dir of this.hostsDirs) if (existsSync(dir)) found.push(dir);
    if (existsSync(this.root)) found.push(this.root);
    return found;
  }
}
