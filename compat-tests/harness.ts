/**
 * Test harness for compatibility tests, differential tests and benchmarks: starts real server
 * processes (Concord from dist/server/main.js, Debian's redis-server) on free loopback ports,
 * and gives tests a raw RESP socket and a redis-cli runner.
 *
 * Owns: every child process it spawns (tracked until it exits; killed by a root mocha `after`
 * hook and, as a last resort, on process exit) and the temp data dirs it creates.
 * Must never: use fixed sleeps (it polls with deadlines), talk to anything but 127.0.0.1, or
 * leave a process running after the test run.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, whether this runs as dist/compat-tests/harness.js or from source. */
export const REPO_ROOT =
  path.basename(path.dirname(HERE)) === 'dist' ? path.resolve(HERE, '..', '..') : path.resolve(HERE, '..');
export const CONCORD_MAIN = path.join(REPO_ROOT, 'dist', 'server', 'main.js');

export const HOST = '127.0.0.1';
export const REDIS_SERVER_BIN = '/usr/bin/redis-server';
export const REDIS_CLI_BIN = '/usr/bin/redis-cli';

const START_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 10_000;
const POLL_INTERVAL_MS = 25;
/** Captured stdout/stderr per process is capped; the tail is kept. */
const MAX_CAPTURE_BYTES = 256 * 1024;
const START_ATTEMPTS = 3;

export interface ServerHandle {
  readonly port: number;
  readonly host: string;
  readonly pid: number;
  readonly dataDir: string;
  /** SIGTERM, wait for exit; SIGKILL if it has not exited after a deadline. Idempotent. */
  stop(): Promise<void>;
  /** Sends a signal now; does not wait. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<ExitStatus>;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** Everything (up to a cap) the process wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  requirepass?: string;
  /** Extra command-line arguments after `server --port P --data-dir D`. */
  args?: string[];
  /** Extra environment variables, over the runner's own (minus its CONCORD_* variables). */
  env?: Record<string, string>;
  /** Reuse this data dir (e.g. to restart a node) instead of making a fresh temp dir. */
  dataDir?: string;
  /** Keep the data dir after stop() (always kept when it was passed in). */
  keepDataDir?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Process tracking: nothing outlives the test run.

const live = new Set<ChildProcess>();
const cleanups = new Set<() => Promise<void>>();

/** Stops every process the harness started (and runs registered cleanups). */
export async function stopAll(): Promise<void> {
  const pending = [...cleanups].map((cleanup) => cleanup());
  await Promise.allSettled(pending);
  for (const child of live) child.kill('SIGKILL');
}

/** Registers a cleanup to run in the root `after` hook (e.g. killing a tmux session). */
export function onCleanup(cleanup: () => Promise<void>): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Temp data dirs made here and not yet removed; removed synchronously at exit at the latest. */
const ownDataDirs = new Set<string>();

function killAllNow(): void {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of ownDataDirs) rmSync(dir, { recursive: true, force: true });
}

process.on('exit', killAllNow);

// A test run ended by a signal (e.g. `timeout` sending SIGTERM to mocha alone) must not leave
// servers behind: kill them, then let the signal do what it would have done.
for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    killAllNow();
    process.removeListener(signal, onSignal);
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

// Under mocha, a hook registered at module load time is a root hook: it runs once after all
// suites, whether tests passed or failed.
if (typeof globalThis.after === 'function') {
  after('harness: stop every started process', async function () {
    this.timeout(STOP_DEADLINE_MS + 5_000);
    await stopAll();
  });
}

// ---------------------------------------------------------------------------------------------
// Small utilities.

/** Resolves after `ms`; used only between polls that have a deadline. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown from a `waitFor` check to end the wait at once (e.g. the process died). */
export class StopWaiting extends Error {}

/**
 * Polls `check` until it returns a non-undefined value or the deadline passes.
 * Throws with `what` and the last error when the deadline passes.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  deadlineMs = START_DEADLINE_MS,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof StopWaiting) throw new Error(err.message, { cause: err });
      lastError = err;
    }
    if (Date.now() > until) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${detail}`);
    }
    await delay(POLL_INTERVAL_MS);
  }
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A loopback port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port from listen(0)'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

class Capture {
  private text = '';
  append(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > MAX_CAPTURE_BYTES) this.text = this.text.slice(-MAX_CAPTURE_BYTES);
  }
  toString(): string {
    return this.text;
  }
}

/** One PING over a fresh socket; true on +PONG (or -NOAUTH when a password is set). */
async function pingOnce(port: number, timeoutMs = 1_000): Promise<boolean> {
  const conn = await rawConnection(port, { connectTimeoutMs: timeoutMs });
  try {
    conn.write('*1\r\n$4\r\nPING\r\n');
    const reply = await conn.readReply(timeoutMs);
    if (reply.raw.toString().startsWith('+PONG')) return true;
    return reply.raw.toString().startsWith('-NOAUTH');
  } finally {
    conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Starting servers.

interface SpawnSpec {
  command: string;
  args: (port: number, dataDir: string) => string[];
  env?: Record<string, string>;
  /** A line the process prints once listening; undefined to rely on PING alone. */
  readyLine?: string;
  label: string;
  dataDir?: string;
  keepDataDir?: boolean;
}

async function spawnServer(spec: SpawnSpec): Promise<ServerHandle> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    try {
      return await spawnOnPort(spec, port);
    } catch (err) {
      lastError = err;
      // Only a lost race for the port is worth another try.
      if (!(err instanceof Error) || !/EADDRINUSE|address already in use/i.test(err.message)) throw err;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/**
 * The runner's environment minus CONCORD_* variables: a developer's CONCORD_REQUIREPASS or
 * CONCORD_PORT must not change the server under test (pass them in `options.env` instead).
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CONCORD_')));
}

async function spawnOnPort(spec: SpawnSpec, port: number): Promise<ServerHandle> {
  const ownDataDir = spec.dataDir === undefined;
  const dataDir = spec.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), `concord-${spec.label}-`)));
  if (ownDataDir && spec.keepDataDir !== true) ownDataDirs.add(dataDir);
  const child = spawn(spec.command, spec.args(port, dataDir), {
    cwd: REPO_ROOT,
    env: { ...inheritedEnv(), ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const stdout = new Capture();
  const stderr = new Capture();
  child.stdout?.on('data', (chunk: Buffer) => stdout.append(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.append(chunk));

  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      live.delete(child);
      resolve(exitStatus);
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitStatus === undefined) {
        child.kill('SIGTERM');
        const timer = new Promise<'timeout'>((resolve) => {
          const t = setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS);
          void exited.then(() => clearTimeout(t));
        });
        if ((await Promise.race([exited, timer])) === 'timeout') {
          child.kill('SIGKILL');
          await exited;
        }
      }
      cleanups.delete(stop);
      if (ownDataDir && spec.keepDataDir !== true) {
        await rm(dataDir, { recursive: true, force: true });
        ownDataDirs.delete(dataDir);
      }
    })();
    return stopping;
  };
  cleanups.add(stop);

  const handle: ServerHandle = {
    port,
    host: HOST,
    pid: child.pid ?? -1,
    dataDir,
    stop,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      child.kill(signal);
    },
    exited,
    hasExited: () => exitStatus !== undefined,
    stdout: () => stdout.toString(),
    stderr: () => stderr.toString(),
  };

  try {
    await waitFor(`${spec.label} on port ${port}`, async () => {
      if (spawnError !== undefined)
        throw new StopWaiting(`${spec.label} failed to spawn: ${spawnError.message}`);
      if (exitStatus !== undefined) {
        throw new StopWaiting(
          `${spec.label} exited (code ${String(exitStatus.code)}, signal ${String(exitStatus.signal)}) before it was ready`,
        );
      }
      if (spec.readyLine !== undefined && !stdout.toString().includes(spec.readyLine)) return undefined;
      return (await pingOnce(port)) ? true : undefined;
    });
  } catch (err) {
    await stop();
    const message = err instanceof Error ? err.message : String(err);
    const output = `--- stderr (tail) ---\n${stderr.toString().slice(-3000)}\n--- stdout (tail) ---\n${stdout.toString().slice(-1000)}`;
    throw new Error(`${message}\n${output}`, { cause: err });
  }
  return handle;
}

/**
 * Starts Concord (`node dist/server/main.js server --port P --data-dir D [...args]`) and waits
 * until it prints `Concord listening on` and answers PING. `requirepass` becomes
 * `--requirepass <password>`. Build first (`npx tsc -p tsconfig.json`).
 */
export async function startServer(options: StartOptions = {}): Promise<ServerHandle> {
  const extra = [
    ...(options.requirepass !== undefined ? ['--requirepass', options.requirepass] : []),
    ...(options.args ?? []),
  ];
  return spawnServer({
    command: process.execPath,
    args: (port, dataDir) => [
      CONCORD_MAIN,
      'server',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      ...extra,
    ],
    ...(options.env !== undefined ? { env: options.env } : {}),
    readyLine: 'Concord listening on',
    label: 'concord',
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.keepDataDir !== undefined ? { keepDataDir: options.keepDataDir } : {}),
  });
}

/**
 * Starts Debian's redis-server on a free loopback port with persistence off, for differential
 * tests and benchmarks. `requirepass` and `args` are passed as redis-server options.
 */
export async function startRedisServer(options: StartOptions = {}): Promise<ServerHandle> {
  const extra = [
    ...(options.requirepass !== undefined ? ['--requirepass', options.requirepass] : []),
    ...(options.args ?? []),
  ];
  return spawnServer({
    command: REDIS_SERVER_BIN,
    args: (port, dataDir) => [
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      '--bind',
      HOST,
      '--daemonize',
      'no',
      '--dir',
      dataDir,
      ...extra,
    ],
    ...(options.env !== undefined ? { env: options.env } : {}),
    label: 'redis',
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.keepDataDir !== undefined ? { keepDataDir: options.keepDataDir } : {}),
  });
}

/** Which server the client suites drive: Concord (default) or, with COMPAT_TARGET=redis, redis-server. */
export type Target = 'concord' | 'redis';
export const TARGET: Target = process.env.COMPAT_TARGET === 'redis' ? 'redis' : 'concord';

/**
 * Starts the server under test: Concord, or redis-server when COMPAT_TARGET=redis (to check
 * that a compat spec itself expects what Redis does).
 */
export function startTarget(options: StartOptions = {}): Promise<ServerHandle> {
  return TARGET === 'redis' ? startRedisServer(options) : startServer(options);
}

// ---------------------------------------------------------------------------------------------
// Raw RESP connection.

/** The subset of redis-parser 3 we use (the package ships no types). */
interface RespParser {
  execute(buffer: Buffer): void;
  reset(): void;
}
interface RespParserOptions {
  returnReply(reply: unknown): void;
  returnError(err: Error): void;
  returnFatalError?(err: Error): void;
  returnBuffers?: boolean;
  stringNumbers?: boolean;
}
type RespParserConstructor = new (options: RespParserOptions) => RespParser;
const require = createRequire(import.meta.url);
const RedisParser = require('redis-parser') as RespParserConstructor;

/** A RESP3 double, kept apart from integers so tests can tell `:1` from `,1`. */
export class RespDouble {
  constructor(readonly value: number) {}
}
/** A RESP3 push (`>`) frame. */
export class RespPush {
  constructor(readonly items: unknown[]) {}
}
/** A RESP3 verbatim string (`=`), with its 3-letter format. */
export class RespVerbatim {
  constructor(
    readonly format: string,
    readonly text: string,
  ) {}
}
/** An error reply (`-` or RESP3 `!`). */
export class RespError extends Error {
  override name = 'RespError';
}

export interface RawReply {
  /** The exact bytes of this reply. */
  raw: Buffer;
  /**
   * The decoded value: strings (or Buffers with `returnBuffers`), numbers, null, arrays and,
   * for RESP2 frames, redis-parser's ReplyError for errors. RESP3 frames decode to Map
   * (`%`), Set (`~`), boolean (`#`), RespDouble (`,`), bigint (`(`), RespVerbatim (`=`),
   * RespPush (`>`), RespError (`!` and `-`); attributes (`|`) are skipped.
   */
  value: unknown;
  /** True when the reply is an error (top-level `-` or `!`). */
  isError: boolean;
}

export interface RawConnection {
  /** Writes bytes as they are (inline commands, malformed frames, partial frames). */
  write(bytes: Buffer | string): void;
  /** Encodes argv as a RESP array of bulk strings and writes it. */
  send(...argv: (string | Buffer | number)[]): void;
  /**
   * Next complete reply; rejects on timeout or when the socket closes first. One reader at a
   * time: await each read before starting the next.
   */
  readReply(timeoutMs?: number): Promise<RawReply>;
  /** Sends argv and reads one reply. */
  call(...argv: (string | Buffer | number)[]): Promise<RawReply>;
  /** Resolves with every byte not yet consumed as a reply, once the peer closes the socket. */
  readUntilClosed(timeoutMs?: number): Promise<Buffer>;
  /** Resolves with `n` raw bytes (not parsed) as soon as they arrived. */
  readBytes(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Bytes received but not yet consumed. */
  pending(): Buffer;
  isClosed(): boolean;
  close(): void;
  readonly socket: net.Socket;
}

export interface RawConnectionOptions {
  host?: string;
  connectTimeoutMs?: number;
  /** Decode bulk strings as Buffers instead of UTF-8 strings. */
  returnBuffers?: boolean;
  /** Upper bound on buffered, unconsumed input. */
  maxBufferedBytes?: number;
}

const DEFAULT_READ_TIMEOUT_MS = 5_000;

/** Encodes argv as a RESP2 multibulk request. */
export function encodeCommand(argv: readonly (string | Buffer | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${argv.length}\r\n`)];
  for (const arg of argv) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Opens a raw socket to a RESP server on loopback. */
export async function rawConnection(
  port: number,
  options: RawConnectionOptions = {},
): Promise<RawConnection> {
  const host = options.host ?? HOST;
  const maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024;
  const socket = net.createConnection({ host, port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, options.connectTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

  let buffer: Buffer = Buffer.alloc(0);
  let closed = false;
  let socketError: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    if (buffer.length > maxBufferedBytes) {
      socketError = new Error(`raw connection buffered more than ${maxBufferedBytes} bytes`);
      socket.destroy();
    }
    notify();
  });
  socket.on('error', (err) => {
    socketError = err;
    notify();
  });
  socket.on('close', () => {
    closed = true;
    notify();
  });

  /** Waits for more input (or close) until the deadline; returns false on timeout. */
  const waitForInput = (until: number): Promise<boolean> =>
    new Promise((resolve) => {
      const remaining = until - Date.now();
      if (remaining <= 0) {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => {
        wake = undefined;
        resolve(false);
      }, remaining);
      wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });

  const readReply = async (timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<RawReply> => {
    const until = Date.now() + timeoutMs;
    while (true) {
      const frame = frameLength(buffer, 0);
      if (frame !== undefined) {
        const raw = buffer.subarray(0, frame.end);
        buffer = buffer.subarray(frame.end);
        return decodeFrame(raw, frame.resp3, options.returnBuffers === true);
      }
      if (closed)
        throw new Error(
          `connection closed before a full reply (${buffer.length} bytes pending: ${JSON.stringify(buffer.toString('latin1').slice(0, 200))})`,
        );
      if (socketError !== undefined) throw socketError;
      if (!(await waitForInput(until))) {
        throw new Error(
          `no full reply within ${timeoutMs} ms (${buffer.length} bytes pending: ${JSON.stringify(buffer.toString('latin1').slice(0, 200))})`,
        );
      }
    }
  };

  const write = (bytes: Buffer | string): void => {
    socket.write(bytes);
  };

  return {
    socket,
    write,
    send: (...argv) => write(encodeCommand(argv)),
    readReply,
    call: (...argv) => {
      write(encodeCommand(argv));
      return readReply();
    },
    readUntilClosed: async (timeoutMs = DEFAULT_READ_TIMEOUT_MS) => {
      const until = Date.now() + timeoutMs;
      while (!closed) {
        if (!(await waitForInput(until))) throw new Error(`connection still open after ${timeoutMs} ms`);
      }
      const rest = buffer;
      buffer = Buffer.alloc(0);
      return rest;
    },
    readBytes: async (n: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS) => {
      const until = Date.now() + timeoutMs;
      while (buffer.length < n) {
        if (closed) throw new Error(`connection closed after ${buffer.length} of ${n} bytes`);
        if (!(await waitForInput(until)))
          throw new Error(`only ${buffer.length} of ${n} bytes within ${timeoutMs} ms`);
      }
      const out = buffer.subarray(0, n);
      buffer = buffer.subarray(n);
      return out;
    },
    pending: () => buffer,
    isClosed: () => closed,
    close: () => {
      socket.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// RESP framing and decoding of replies.

const RESP2_TYPES = new Set(['+', '-', ':', '$', '*']);
const CRLF = Buffer.from('\r\n');

/**
 * Finds where the reply starting at `offset` ends. Undefined when the buffer does not hold a
 * whole reply yet. `resp3` tells whether any RESP3-only type occurs in it.
 * Throws on a type byte no RESP version defines.
 */
export function frameLength(buf: Buffer, offset: number): { end: number; resp3: boolean } | undefined {
  if (offset >= buf.length) return undefined;
  const type = String.fromCharCode(buf[offset]!);
  const lineEnd = buf.indexOf(CRLF, offset + 1);
  if (lineEnd < 0) return undefined;
  const line = buf.toString('latin1', offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  const resp3 = !RESP2_TYPES.has(type);
  switch (type) {
    case '+':
    case '-':
    case ':':
    case '_':
    case '#':
    case ',':
    case '(':
      return { end: afterLine, resp3 };
    case '$':
    case '!':
    case '=': {
      const n = Number(line);
      if (n < 0) return { end: afterLine, resp3 };
      const end = afterLine + n + 2;
      return end <= buf.length ? { end, resp3 } : undefined;
    }
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
      const n = Number(line);
      if (n < 0) return { end: afterLine, resp3 };
      const elements = type === '%' || type === '|' ? n * 2 : n;
      let at = afterLine;
      let nested3 = resp3;
      for (let i = 0; i < elements; i++) {
        const inner = frameLength(buf, at);
        if (inner === undefined) return undefined;
        at = inner.end;
        nested3 ||= inner.resp3;
      }
      if (type === '|') {
        // An attribute precedes the reply it annotates.
        const next = frameLength(buf, at);
        if (next === undefined) return undefined;
        return { end: next.end, resp3: true };
      }
      return { end: at, resp3: nested3 };
    }
    default:
      throw new Error(
        `not a RESP reply: type byte ${JSON.stringify(type)} in ${JSON.stringify(buf.toString('latin1', offset, offset + 60))}`,
      );
  }
}

function decodeFrame(raw: Buffer, resp3: boolean, returnBuffers: boolean): RawReply {
  const first = String.fromCharCode(raw[0]!);
  const isError = first === '-' || first === '!';
  if (!resp3) {
    // RESP2: redis-parser, as the client libraries of the Node ecosystem decode it.
    let value: unknown;
    let got = false;
    const parser = new RedisParser({
      returnReply: (reply) => {
        value = reply;
        got = true;
      },
      returnError: (err) => {
        value = err;
        got = true;
      },
      returnFatalError: (err) => {
        throw err;
      },
      returnBuffers,
    });
    parser.execute(raw);
    if (!got)
      throw new Error(
        `redis-parser returned nothing for ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`,
      );
    return { raw, value, isError };
  }
  const [value] = decodeResp3(raw, 0, returnBuffers);
  return { raw, value, isError };
}

/** Decodes one RESP2/RESP3 value at `offset`; returns it with the offset after it. */
function decodeResp3(buf: Buffer, offset: number, returnBuffers: boolean): [unknown, number] {
  const type = String.fromCharCode(buf[offset]!);
  const lineEnd = buf.indexOf(CRLF, offset + 1);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  const blob = (): [Buffer, number] => {
    const n = Number(line);
    return [buf.subarray(next, next + n), next + n + 2];
  };
  const text = (b: Buffer): string | Buffer => (returnBuffers ? b : b.toString('utf8'));
  const many = (count: number, from: number): [unknown[], number] => {
    const items: unknown[] = [];
    let at = from;
    for (let i = 0; i < count; i++) {
      const [item, after] = decodeResp3(buf, at, returnBuffers);
      items.push(item);
      at = after;
    }
    return [items, at];
  };
  switch (type) {
    case '+':
      return [returnBuffers ? Buffer.from(line) : line, next];
    case '-':
      return [new RespError(line), next];
    case ':':
      return [Number(line), next];
    case '_':
      return [null, next];
    case '#':
      return [line === 't', next];
    case ',':
      return [new RespDouble(line === 'inf' ? Infinity : line === '-inf' ? -Infinity : Number(line)), next];
    case '(':
      return [BigInt(line), next];
    case '$': {
      if (Number(line) < 0) return [null, next];
      const [b, after] = blob();
      return [text(b), after];
    }
    case '!': {
      const [b, after] = blob();
      return [new RespError(b.toString('utf8')), after];
    }
    case '=': {
      const [b, after] = blob();
      const s = b.toString('utf8');
      return [new RespVerbatim(s.slice(0, 3), s.slice(4)), after];
    }
    case '*':
    case '~':
    case '>': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const [items, after] = many(n, next);
      if (type === '~') return [new Set(items), after];
      if (type === '>') return [new RespPush(items), after];
      return [items, after];
    }
    case '%': {
      const [items, after] = many(Number(line) * 2, next);
      const map = new Map<unknown, unknown>();
      for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
      return [map, after];
    }
    case '|': {
      const [, afterAttributes] = many(Number(line) * 2, next);
      return decodeResp3(buf, afterAttributes, returnBuffers);
    }
    default:
      throw new Error(`not a RESP reply: type byte ${JSON.stringify(type)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// redis-cli.

export interface CliResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed (timeout). */
  code: number | null;
}

/**
 * Runs `/usr/bin/redis-cli -h 127.0.0.1 -p <port> ...args` (stdin from `input` when given)
 * with a timeout. Never rejects on a non-zero exit: the caller checks `code`.
 */
export function redisCli(
  port: number,
  args: readonly string[],
  input?: string | Buffer,
  timeoutMs = 30_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      REDIS_CLI_BIN,
      ['-h', HOST, '-p', String(port), ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number' && error.killed !== true) {
          reject(new Error(`redis-cli failed: ${error.message}`, { cause: error }));
          return;
        }
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ stdout, stderr, code });
      },
    );
    if (child.stdin !== null) {
      child.stdin.on('error', () => {
        // redis-cli may exit before reading all of its input; its exit status tells the story.
      });
      if (input !== undefined) child.stdin.end(input);
      else child.stdin.end();
    }
  });
}
