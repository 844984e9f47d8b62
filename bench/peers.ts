/**
 * Peer systems and load generators for bench/cluster-vs-peers.ts: a three-process etcd cluster
 * (Debian's etcd-server) and a three-process Concord cluster on loopback, server CPU accounting
 * from /proc, a redis-benchmark runner, and a small HTTP/1.1 keep-alive load generator for
 * etcd's JSON gateway.
 *
 * Owns: the etcd and Concord processes it spawns (stopped by the cluster's stop(), SIGKILLed at
 * process exit at the latest) and their temp data dirs (removed on stop).
 * Must never: talk to anything but 127.0.0.1, sleep without a deadline, or let a stalled server
 * hang a run (every run has a timeout).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CONCORD_MAIN, HOST, REPO_ROOT, freePort, rawConnection, waitFor } from '../compat-tests/harness.js';

export const REDIS_BENCHMARK_BIN = '/usr/bin/redis-benchmark';
export const REDIS_SERVER_BIN = '/usr/bin/redis-server';
export const ETCD_BIN = '/usr/bin/etcd';

/** One load run may take at most this long. */
export const RUN_TIMEOUT_MS = 180_000;
const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;
/** Captured output per process is capped; the tail is kept. */
const MAX_CAPTURE_CHARS = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Tools.

/**
 * Throws, with how to install them, when any of the external tools the benchmark needs is
 * missing (the benchmark is not run in CI, so the machine may lack them).
 */
export function checkTools(): void {
  const missing: string[] = [];
  const need: [string, string][] = [
    [REDIS_SERVER_BIN, 'apt-get install -y --no-install-recommends redis-server'],
    [REDIS_BENCHMARK_BIN, 'apt-get install -y --no-install-recommends redis-tools'],
    [ETCD_BIN, 'apt-get update && apt-get install -y --no-install-recommends etcd-server etcd-client'],
  ];
  for (const [bin, install] of need) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      // Not executable or absent: both mean "install it".
      missing.push(`${bin} (install: ${install})`);
    }
  }
  try {
    accessSync(CONCORD_MAIN, constants.R_OK);
  } catch {
    // Not built yet.
    missing.push(`${CONCORD_MAIN} (build: npx tsc -p tsconfig.json)`);
  }
  if (missing.length > 0) throw new Error(`missing tools:\n  ${missing.join('\n  ')}`);
}

export function toolVersion(bin: string, args: readonly string[]): string {
  return execFileSync(bin, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? 'unknown';
}

// ---------------------------------------------------------------------------------------------
// CPU accounting.

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime+stime of a process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3 ("state").
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`bad /proc/${pid}/stat: ${stat}`);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** Sum of utime+stime over the processes of one system, in seconds. */
export function totalCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

// ---------------------------------------------------------------------------------------------
// Processes.

const live = new Set<ChildProcess>();
const ownDirs = new Set<string>();

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of ownDirs) rmSync(dir, { recursive: true, force: true });
});

export interface Proc {
  readonly pid: number;
  readonly label: string;
  hasExited(): boolean;
  output(): string;
  /** SIGTERM, then SIGKILL after a deadline; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

function spawnTracked(
  command: string,
  args: readonly string[],
  label: string,
  extraEnv: Record<string, string> = {},
): Proc {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('CONCORD_')),
  );
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${label}: spawn ${command} failed`);
  live.add(child);
  let text = '';
  const append = (chunk: Buffer): void => {
    text += chunk.toString();
    if (text.length > MAX_CAPTURE_CHARS) text = text.slice(-MAX_CAPTURE_CHARS);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid,
    label,
    hasExited: () => exited,
    output: () => text,
    stop: () => {
      stopping ??= (async () => {
        if (exited) return;
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS);
        });
        const outcome = await Promise.race([exit, timeout]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          child.kill('SIGKILL');
          await exit;
        }
      })();
      return stopping;
    },
  };
}

async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `concord-bench-${label}-`));
  ownDirs.add(dir);
  return dir;
}

async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  ownDirs.delete(dir);
}

/** Distinct free loopback ports (each was free a moment ago). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function failIfExited(procs: readonly Proc[]): void {
  for (const proc of procs) {
    if (proc.hasExited())
      throw new Error(`${proc.label} exited during start:\n${proc.output().slice(-3000)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// etcd: three processes on loopback, distinct client/peer ports and data dirs.

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly proc: Proc;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  pids(): number[];
  /** The member that is leader now (asks every member's /v3/maintenance/status). */
  leader(): Promise<EtcdMember>;
  anyExited(): boolean;
  stop(): Promise<void>;
}

interface EtcdStatus {
  header?: { member_id?: string };
  leader?: string;
}

async function postJson(port: number, urlPath: string, body: unknown, timeoutMs = 2_000): Promise<unknown> {
  const response = await fetch(`http://${HOST}:${port}${urlPath}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw new Error(`POST ${urlPath} on ${port}: HTTP ${response.status}`);
  return response.json();
}

/**
 * Starts an etcd cluster of `size` members (`etcd --name eN --data-dir ... --initial-cluster ...`)
 * and waits until every member answers and they agree on a leader. etcd fsyncs its WAL on every
 * commit batch (there is no switch to turn that off), like Concord.
 */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const ports = await freePorts(size * 2);
  const spec = Array.from({ length: size }, (_, i) => ({
    name: `e${i + 1}`,
    clientPort: ports[2 * i]!,
    peerPort: ports[2 * i + 1]!,
  }));
  const initialCluster = spec.map((m) => `${m.name}=http://${HOST}:${m.peerPort}`).join(',');
  const dirs: string[] = [];
  const members: EtcdMember[] = [];
  for (const m of spec) {
    const dir = await tempDir(`etcd-${m.name}`);
    dirs.push(dir);
    const client = `http://${HOST}:${m.clientPort}`;
    const peer = `http://${HOST}:${m.peerPort}`;
    const proc = spawnTracked(
      ETCD_BIN,
      [
        '--name',
        m.name,
        '--data-dir',
        dir,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `concord-bench-${process.pid}`,
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      `etcd ${m.name}`,
    );
    members.push({ ...m, proc });
  }
  const procs = members.map((m) => m.proc);
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(dirs.map(removeDir));
  };
  const cluster: EtcdCluster = {
    members,
    pids: () => procs.map((p) => p.pid),
    anyExited: () => procs.some((p) => p.hasExited()),
    leader: async () => {
      const statuses = await Promise.all(
        members.map(async (m) => ({
          m,
          status: (await postJson(m.clientPort, '/v3/maintenance/status', {})) as EtcdStatus,
        })),
      );
      const found = statuses.find(
        ({ status }) => status.leader !== undefined && status.leader === status.header?.member_id,
      );
      if (found === undefined) throw new Error('etcd: no member is leader');
      return found.m;
    },
    stop,
  };
  try {
    await waitFor(
      'etcd cluster leader',
      async () => {
        failIfExited(procs);
        return cluster.leader();
      },
      START_DEADLINE_MS,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// Concord: three node processes (server/main.ts), bootstrapped from one member list.

export interface ConcordMember {
  readonly id: string;
  readonly port: number;
  readonly peerPort: number;
  readonly proc: Proc;
}

export interface ConcordCluster {
  readonly members: readonly ConcordMember[];
  pids(): number[];
  /** The member whose `INFO raft` says it is the leader now. */
  leader(): Promise<ConcordMember>;
  anyExited(): boolean;
  stop(): Promise<void>;
}

/** The `role` of a node from its `INFO raft` text (`role:leader`, `raft_role:follower`, ...). */
export function parseRaftRole(info: string): string | undefined {
  const match = /^(?:raft_)?role:(\w+)\s*$/im.exec(info);
  return match?.[1]?.toLowerCase();
}

async function infoRaft(port: number): Promise<string> {
  const conn = await rawConnection(port, { connectTimeoutMs: 2_000 });
  try {
    const reply = await conn.call('INFO', 'raft');
    if (reply.isError || typeof reply.value !== 'string')
      throw new Error(`INFO raft on ${port}: ${reply.raw.toString()}`);
    return reply.value;
  } finally {
    conn.close();
  }
}

/**
 * Starts a Concord cluster of `size` nodes (`concord server --node-id nN --port P --data-dir D
 * --cluster-secret S --bootstrap n1=127.0.0.1:P1@Q1,...`), each with its own data dir (fsync on,
 * as always), and waits until every node listens and one reports `role:leader`.
 */
export async function startConcordCluster(
  size = 3,
  extraArgs: readonly string[] = [],
): Promise<ConcordCluster> {
  const ports = await freePorts(size * 2);
  const spec = Array.from({ length: size }, (_, i) => ({
    id: `n${i + 1}`,
    port: ports[2 * i]!,
    peerPort: ports[2 * i + 1]!,
  }));
  const bootstrap = spec.map((m) => `${m.id}=${HOST}:${m.port}@${m.peerPort}`).join(',');
  const secret = `bench-${process.pid}-${Date.now()}`;
  const dirs: string[] = [];
  const members: ConcordMember[] = [];
  for (const m of spec) {
    const dir = await tempDir(`concord-${m.id}`);
    dirs.push(dir);
    const proc = spawnTracked(
      process.execPath,
      [
        ...(process.env.CONCORD_BENCH_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []),
        CONCORD_MAIN,
        'server',
        '--node-id',
        m.id,
        '--port',
        String(m.port),
        '--peer-port',
        String(m.peerPort),
        '--data-dir',
        dir,
        '--cluster-secret',
        secret,
        '--bootstrap',
        bootstrap,
        '--log-level',
        'warn',
        ...extraArgs,
      ],
      `concord ${m.id}`,
    );
    members.push({ ...m, proc });
  }
  const procs = members.map((m) => m.proc);
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(dirs.map(removeDir));
  };
  const cluster: ConcordCluster = {
    members,
    pids: () => procs.map((p) => p.pid),
    anyExited: () => procs.some((p) => p.hasExited()),
    leader: async () => {
      const roles = await Promise.all(
        members.map(async (m) => ({ m, role: parseRaftRole(await infoRaft(m.port)) })),
      );
      const found = roles.find(({ role }) => role === 'leader');
      if (found === undefined)
        throw new Error(
          `concord: no leader (roles ${roles.map((r) => `${r.m.id}=${String(r.role)}`).join(' ')})`,
        );
      return found.m;
    },
    stop,
  };
  try {
    await waitFor(
      'concord cluster leader',
      async () => {
        failIfExited(procs);
        if (!procs.every((p) => p.output().includes('Concord listening on'))) return undefined;
        return cluster.leader();
      },
      START_DEADLINE_MS,
    );
  } catch (err) {
    const tails = procs.map((p) => `--- ${p.label} ---\n${p.output().slice(-2000)}`).join('\n');
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tails}`, { cause: err });
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// Load results.

export interface LoadResult {
  requests: number;
  opsPerSec: number;
  avgLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  maxLatencyMs: number;
  /** CPU-seconds of the load generator itself, where it runs in this process (the HTTP one). */
  loadGeneratorCpuSeconds?: number;
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (0 < p <= 100) of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

// ---------------------------------------------------------------------------------------------
// redis-benchmark.

export interface BenchmarkOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs redis-benchmark against 127.0.0.1:port; never rejects for a non-zero exit (the caller judges). */
export function runRedisBenchmark(port: number, args: readonly string[]): Promise<BenchmarkOutput> {
  return new Promise((resolve, reject) => {
    execFile(
      REDIS_BENCHMARK_BIN,
      ['-h', HOST, '-p', String(port), ...args],
      { timeout: RUN_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number' && error.killed !== true) {
          reject(new Error(`redis-benchmark failed to run: ${error.message}`, { cause: error }));
          return;
        }
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Parses redis-benchmark --csv output into rows keyed by test name (upper case). */
export function parseCsv(stdout: string): Map<string, Record<string, string>> {
  const rows = new Map<string, Record<string, string>>();
  let header: string[] | undefined;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('"')) continue;
    const cells = line
      .trim()
      .split(',')
      .map((cell) => cell.replace(/^"|"$/g, ''));
    if (cells[0] === 'test') {
      header = cells;
      continue;
    }
    if (header === undefined) continue;
    const row: Record<string, string> = {};
    header.forEach((name, i) => {
      row[name] = cells[i] ?? '';
    });
    rows.set(cells[0] ?? '', row);
  }
  return rows;
}

export interface RedisBenchmarkParams {
  /** A redis-benchmark -t test (the list ones compare with Concord's queues). */
  test: 'ping_inline' | 'ping_mbulk' | 'set' | 'get' | 'lpush' | 'rpop';
  requests: number;
  clients: number;
  pipeline: number;
}

/** One `redis-benchmark -t <test> -n -c -P --csv` run; throws on a failed run or any error reply. */
export async function redisBenchmark(port: number, params: RedisBenchmarkParams): Promise<LoadResult> {
  const out = await runRedisBenchmark(port, [
    '-t',
    params.test,
    '-n',
    String(params.requests),
    '-c',
    String(params.clients),
    '-P',
    String(params.pipeline),
    '--csv',
  ]);
  const row = parseCsv(out.stdout).get(params.test.toUpperCase());
  const problem =
    out.code !== 0
      ? `exit code ${String(out.code)}`
      : /error/i.test(out.stderr)
        ? 'error on stderr'
        : row === undefined
          ? 'no CSV row'
          : undefined;
  if (problem !== undefined || row === undefined) {
    throw new Error(
      `redis-benchmark ${params.test} -c ${params.clients} -P ${params.pipeline} on port ${port}: ${problem ?? 'no CSV row'}; ` +
        `stderr: ${out.stderr.slice(-1000)} stdout: ${out.stdout.slice(-1000)}`,
    );
  }
  return loadResultFromCsv(params.requests, row);
}

/** A LoadResult from one row of redis-benchmark's --csv output; throws on a missing number. */
export function loadResultFromCsv(requests: number, row: Record<string, string>): LoadResult {
  const num = (name: string): number => {
    const value = Number(row[name]);
    if (!Number.isFinite(value)) throw new Error(`redis-benchmark CSV: no ${name} in ${JSON.stringify(row)}`);
    return value;
  };
  return {
    requests,
    opsPerSec: num('rps'),
    avgLatencyMs: num('avg_latency_ms'),
    p50LatencyMs: num('p50_latency_ms'),
    p99LatencyMs: num('p99_latency_ms'),
    maxLatencyMs: num('max_latency_ms'),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 keep-alive load generator (for etcd's JSON gateway).

export interface HttpLoadParams {
  port: number;
  /** The same request is sent `requests` times, spread over `connections` keep-alive sockets. */
  method: 'POST';
  path: string;
  body: string;
  connections: number;
  requests: number;
  /** The whole run fails after this long. */
  timeoutMs?: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');
/** A response header block larger than this is a protocol problem, not a slow server. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Parses complete HTTP/1.1 responses from the front of `buffer`: returns each status and the
 * number of bytes consumed. Only Content-Length framing is understood (etcd's gateway sends it
 * for every unary reply); chunked framing throws.
 */
export function parseResponses(buffer: Buffer): { statuses: number[]; bodies: Buffer[]; consumed: number } {
  const statuses: number[] = [];
  const bodies: Buffer[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const headerEnd = buffer.indexOf(HEADER_END, offset);
    if (headerEnd < 0) {
      if (buffer.length - offset > MAX_HEADER_BYTES) throw new Error('HTTP response header too large');
      break;
    }
    const head = buffer.toString('latin1', offset, headerEnd);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (status === null) throw new Error(`bad HTTP status line: ${JSON.stringify(head.slice(0, 100))}`);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length === null)
      throw new Error(`HTTP response without Content-Length: ${JSON.stringify(head.slice(0, 300))}`);
    const bodyLength = Number(length[1]);
    if (bodyLength > MAX_BODY_BYTES) throw new Error(`HTTP response body of ${bodyLength} bytes`);
    const bodyStart = headerEnd + HEADER_END.length;
    if (buffer.length < bodyStart + bodyLength) break;
    statuses.push(Number(status[1]));
    bodies.push(buffer.subarray(bodyStart, bodyStart + bodyLength));
    offset = bodyStart + bodyLength;
  }
  return { statuses, bodies, consumed: offset };
}

/**
 * Sends `requests` copies of one request over `connections` keep-alive sockets, each socket
 * one request at a time (like redis-benchmark -P 1), and measures each request's latency from
 * write to the last byte of its response. Any non-2xx status, framing error or socket error
 * fails the run.
 */
export function httpLoad(params: HttpLoadParams): Promise<LoadResult> {
  const body = Buffer.from(params.body);
  const request = Buffer.concat([
    Buffer.from(
      `${params.method} ${params.path} HTTP/1.1\r\nHost: ${HOST}:${params.port}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    ),
    body,
  ]);
  const latencies = new Float64Array(params.requests);
  let issued = 0;
  let completed = 0;
  const sockets: net.Socket[] = [];
  return new Promise<LoadResult>((resolve, reject) => {
    let settled = false;
    const startNs = process.hrtime.bigint();
    const startCpu = process.cpuUsage();
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      if (err !== undefined) {
        reject(err);
        return;
      }
      const elapsedMs = Number(process.hrtime.bigint() - startNs) / 1e6;
      const cpu = process.cpuUsage(startCpu);
      latencies.sort();
      const sum = latencies.reduce((a, b) => a + b, 0);
      resolve({
        requests: params.requests,
        opsPerSec: round(params.requests / (elapsedMs / 1000), 2),
        avgLatencyMs: round(sum / latencies.length, 3),
        p50LatencyMs: round(percentile(latencies, 50), 3),
        p99LatencyMs: round(percentile(latencies, 99), 3),
        maxLatencyMs: round(latencies[latencies.length - 1] ?? Number.NaN, 3),
        loadGeneratorCpuSeconds: round((cpu.user + cpu.system) / 1e6, 3),
      });
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `HTTP load on ${params.port}${params.path}: timed out with ${completed}/${params.requests} done`,
          ),
        ),
      params.timeoutMs ?? RUN_TIMEOUT_MS,
    );
    const connections = Math.min(params.connections, params.requests);
    for (let c = 0; c < connections; c++) {
      const socket = net.createConnection({ host: HOST, port: params.port });
      sockets.push(socket);
      socket.setNoDelay(true);
      let pending: Buffer = Buffer.alloc(0);
      let sentAtNs = 0n;
      let inFlight = false;
      const sendNext = (): void => {
        if (issued >= params.requests) {
          socket.end();
          return;
        }
        issued++;
        inFlight = true;
        sentAtNs = process.hrtime.bigint();
        socket.write(request);
      };
      socket.once('connect', sendNext);
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let parsed;
        try {
          parsed = parseResponses(pending);
        } catch (err) {
          finish(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        pending = pending.subarray(parsed.consumed);
        for (let i = 0; i < parsed.statuses.length; i++) {
          const status = parsed.statuses[i]!;
          if (status < 200 || status > 299) {
            finish(
              new Error(
                `HTTP ${status} from ${params.port}${params.path}: ${parsed.bodies[i]?.toString().slice(0, 300)}`,
              ),
            );
            return;
          }
          if (parsed.statuses.length > 1) {
            finish(new Error('HTTP: more than one response to one request'));
            return;
          }
          latencies[completed] = Number(process.hrtime.bigint() - sentAtNs) / 1e6;
          completed++;
          inFlight = false;
        }
        if (completed === params.requests) finish();
        else if (parsed.statuses.length > 0) sendNext();
      });
      socket.on('error', (err) => finish(new Error(`HTTP load socket: ${err.message}`, { cause: err })));
      socket.on('close', () => {
        if (!settled && (inFlight || issued < params.requests)) {
          finish(
            new Error(`HTTP load: server closed a connection with ${completed}/${params.requests} done`),
          );
        }
      });
    }
  });
}

/** etcd JSON gateway bodies: keys and values are base64. */
export function etcdPutBody(key: string, value: string): string {
  return JSON.stringify({
    key: Buffer.from(key).toString('base64'),
    value: Buffer.from(value).toString('base64'),
  });
}

export function etcdRangeBody(key: string): string {
  return JSON.stringify({ key: Buffer.from(key).toString('base64') });
}

// ---------------------------------------------------------------------------------------------
// V8 CPU profiles (`node --cpu-prof`).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface Hotspot {
  /** `file:line function` for JavaScript, `(name)` for native code, GC, idle. */
  where: string;
  /** Samples in this function itself, % of the samples that were not idle. */
  selfPercentOfBusy: number;
  /** For native frames: the nearest project (dist/) frames that called them, % of busy samples. */
  callers?: { where: string; percentOfBusy: number }[];
}

export interface ProfileSummary {
  durationSeconds: number;
  /** % of samples that were not `(idle)`. */
  busyPercent: number;
  hotspots: Hotspot[];
}

/**
 * The top self-time functions of a V8 .cpuprofile as % of busy (non-idle) samples; native
 * frames (socket writes, fdatasync...) also name the project functions that called them.
 * Paths are shown relative to `rootDir`.
 */
export function cpuProfileHotspots(profileJson: string, top: number, rootDir: string): ProfileSummary {
  const profile = JSON.parse(profileJson) as {
    nodes: ProfileNode[];
    samples?: number[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const counts = new Map<number, number>();
  if (profile.samples !== undefined && profile.samples.length > 0) {
    for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  } else {
    for (const n of profile.nodes) counts.set(n.id, n.hitCount ?? 0);
  }
  const name = (n: ProfileNode): string => {
    const frame = n.callFrame;
    const fn = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : `(${fn})`;
    const file = frame.url.replace(/^file:\/\//, '').replace(`${rootDir}/`, '');
    return `${file}:${frame.lineNumber + 1} ${fn}`;
  };
  const isProject = (n: ProfileNode): boolean => n.callFrame.url.includes('/dist/');
  const self = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  let total = 0;
  let idle = 0;
  for (const [id, count] of counts) {
    const node = byId.get(id);
    if (node === undefined || count === 0) continue;
    total += count;
    const where = name(node);
    if (where === '(idle)') {
      idle += count;
      continue;
    }
    self.set(where, (self.get(where) ?? 0) + count);
    if (node.callFrame.url === '') {
      // Walk up to the nearest project frame (or any JavaScript frame) that led here.
      let up = parent.get(id);
      let caller: ProfileNode | undefined;
      let firstJs: ProfileNode | undefined;
      for (let depth = 0; up !== undefined && depth < 200; depth++) {
        const n = byId.get(up);
        if (n === undefined) break;
        if (firstJs === undefined && n.callFrame.url !== '') firstJs = n;
        if (isProject(n)) {
          caller = n;
          break;
        }
        up = parent.get(up);
      }
      const by = caller ?? firstJs;
      if (by !== undefined) {
        const perCaller = callers.get(where) ?? new Map<string, number>();
        callers.set(where, perCaller);
        perCaller.set(name(by), (perCaller.get(name(by)) ?? 0) + count);
      }
    }
  }
  const busy = total - idle;
  const pct = (count: number): number => (busy > 0 ? round((100 * count) / busy, 2) : 0);
  return {
    durationSeconds: round((profile.endTime - profile.startTime) / 1e6, 2),
    busyPercent: total > 0 ? round((100 * busy) / total, 2) : 0,
    hotspots: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, count]) => {
        const perCaller = callers.get(where);
        const spot: Hotspot = { where, selfPercentOfBusy: pct(count) };
        if (perCaller !== undefined) {
          spot.callers = [...perCaller.entries()]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 4)
            .map(([by, n]) => ({ where: by, percentOfBusy: pct(n) }));
        }
        return spot;
      }),
  };
}
