/**
 * Protocol fuzz test: fast-check generates sessions of random and malformed RESP (random bytes,
 * valid requests, mutated valid requests, huge length claims, over-long lines) and sends each
 * to a real Concord process over a raw socket, whole, byte by byte or at random split points.
 * After every session:
 * - the process is still running, and another connection gets +PONG to PING and reads back a
 *   random value it SET;
 * - everything the server sent on the fuzzed connection is well-formed RESP, and when the server
 *   closed the connection its last reply was a protocol error (the only reason to close).
 * At the end the server's RSS (/proc/<pid>/status VmRSS) has grown by less than
 * MAX_RSS_GROWTH_BYTES.
 *
 * Bounded: FUZZ_RUNS runs (default DEFAULT_RUNS) or TIME_LIMIT_MS, whichever comes first. The
 * seed is printed on failure; `SEED=<n>` replays it. FUZZ_TARGET=redis fuzzes redis-server
 * instead (checks the properties themselves against the reference).
 *
 * Owns: the server it starts. Must never: talk to anything but 127.0.0.1, or send commands that
 * stop or reconfigure the server (SHUTDOWN, CONFIG, DEBUG, ...: none is ever generated whole).
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import fc from 'fast-check';
import { frameLength, HOST, rawConnection, startRedisServer, startServer } from './harness.js';
import type { RawConnection, ServerHandle } from './harness.js';

const DEFAULT_RUNS = 2_000;
/** fast-check stops starting new runs after this long (the suite must end well under 60 s). */
const TIME_LIMIT_MS = 40_000;
const MAX_RSS_GROWTH_BYTES = 100 * 1024 * 1024;
/** Longest wait for the server to react to one fuzzed session before we hang up. */
const SESSION_SETTLE_MS = 200;
/** Quiet period after which a fuzzed connection counts as "waiting for more input". */
const QUIET_MS = 20;
/** Sessions up to this size may be sent one byte per write. */
const BYTEWISE_MAX_BYTES = 400;
/** Reply bytes kept per fuzzed connection. */
const MAX_REPLY_BYTES = 256 * 1024;

const runs = Number(process.env['FUZZ_RUNS'] ?? DEFAULT_RUNS);
const seed = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : randomInt(2 ** 31);
const againstRedis = process.env['FUZZ_TARGET'] === 'redis';

// ---------------------------------------------------------------------------------------------
// Generators.

/** Commands a fuzzed session may send whole: harmless, and each answers without blocking. */
const COMMANDS = ['PING', 'ECHO', 'SET', 'GET', 'DEL', 'EXISTS', 'GETDEL', 'STRLEN', 'PTTL', 'TYPE'];

const bytesOf = (text: string): Buffer => Buffer.from(text, 'latin1');

/**
 * Keys come from a small set, so that the data a session stores replaces earlier data: the RSS
 * bound then measures protocol handling, not a keyspace that grows with the number of runs.
 */
const keyArb: fc.Arbitrary<Buffer> = fc.constantFrom(
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => bytesOf(`fuzz:${i}`)),
);

const argArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.constantFrom('', '0', '-1', 'EX', 'PX', '10', 'NX', 'XX', 'KEEPTTL').map(bytesOf),
);

const argvArb: fc.Arbitrary<Buffer[]> = fc
  .tuple(fc.constantFrom(...COMMANDS), keyArb, fc.array(argArb, { maxLength: 3 }), fc.boolean())
  .map(([name, key, args, withKey]) => (withKey ? [bytesOf(name), key, ...args] : [bytesOf(name)]));

function encodeMultibulk(argv: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [bytesOf(`*${argv.length}\r\n`)];
  for (const arg of argv) parts.push(bytesOf(`$${arg.length}\r\n`), arg, bytesOf('\r\n'));
  return Buffer.concat(parts);
}

/** Inline form: arguments quoted with \xHH escapes so any byte survives sdssplitargs. */
function encodeInline(argv: readonly Buffer[]): Buffer {
  const words = argv.map(
    (arg) => '"' + [...arg].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('') + '"',
  );
  return bytesOf(words.join(' ') + '\r\n');
}

const validRequestArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: argvArb.map(encodeMultibulk) },
  { weight: 1, arbitrary: argvArb.map(encodeInline) },
);

/** Length headers that are huge, negative, out of range or not numbers at all. */
const hugeClaimArb: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.constantFrom(
      '*2147483647\r\n',
      '*2000000000\r\n',
      '*3000000000\r\n',
      '*99999999999999999999\r\n',
      '*-2147483649\r\n',
      '*1\r\n$536870912\r\n',
      '*1\r\n$536870913\r\n',
      '*2\r\n$4\r\nECHO\r\n$2147483647\r\n',
      '*1\r\n$-7\r\n',
      '*1\r\n$9223372036854775808\r\n',
      '*1e9\r\n',
      '*1\r\n$0x10\r\n',
      '$10\r\n',
    ),
    fc.uint8Array({ maxLength: 64 }),
  )
  .map(([header, tail]) => Buffer.concat([bytesOf(header), Buffer.from(tail)]));

type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; at: number }
  | { kind: 'number'; at: number; text: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('number' as const),
    at: fc.nat(),
    text: fc.constantFrom('-1', '0', '2147483648', '536870913', '99999999999', 'x', '', '+3', '01', ' 1'),
  }),
);

/** Applies a mutation at a position taken modulo the request's length. */
function mutate(request: Buffer, m: Mutation): Buffer {
  if (request.length === 0) return request;
  const at = m.at % request.length;
  switch (m.kind) {
    case 'flip': {
      const copy = Buffer.from(request);
      copy[at] = m.byte;
      return copy;
    }
    case 'delete':
      return Buffer.concat([request.subarray(0, at), request.subarray(at + m.length)]);
    case 'insert':
      return Buffer.concat([request.subarray(0, at), Buffer.from(m.bytes), request.subarray(at)]);
    case 'truncate':
      return request.subarray(0, at);
    case 'number': {
      // Replace the digits of the length header that follows the first '*' or '$' at/after `at`.
      const text = request.toString('latin1');
      const match = /[*$](-?\d+)/g;
      match.lastIndex = at;
      const found = match.exec(text) ?? /[*$](-?\d+)/.exec(text);
      if (found?.[1] === undefined) return request;
      const start = found.index + 1;
      return Buffer.concat([
        request.subarray(0, start),
        bytesOf(m.text),
        request.subarray(start + found[1].length),
      ]);
    }
    default: {
      const unreachable: never = m;
      throw new Error(`unknown mutation ${JSON.stringify(unreachable)}`);
    }
  }
}

const mutatedRequestArb: fc.Arbitrary<Buffer> = fc
  .tuple(validRequestArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }))
  .map(([request, mutations]) => mutations.reduce(mutate, request));

/** A long run without a newline (inline and header limits are 64 KB). */
const longLineArb: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.constantFrom('', '*', '*1\r\n$', 'ECHO '),
    fc.constantFrom('1', 'a', '\x00'),
    fc.integer({ min: 1_000, max: 70_000 }),
  )
  .map(([prefix, fill, n]) => bytesOf(prefix + fill.repeat(n)));

const pieceArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 256 }).map((a) => Buffer.from(a)) },
  { weight: 4, arbitrary: validRequestArb },
  { weight: 6, arbitrary: mutatedRequestArb },
  { weight: 2, arbitrary: hugeClaimArb },
  { weight: 1, arbitrary: longLineArb },
);

type Split = { kind: 'whole' } | { kind: 'bytewise' } | { kind: 'random'; cuts: number[] };

interface Session {
  bytes: Buffer;
  split: Split;
  /** Hang up at once after the last write instead of waiting for the server to react. */
  hangUp: boolean;
}

const sessionArb: fc.Arbitrary<Session> = fc.record({
  bytes: fc.array(pieceArb, { minLength: 1, maxLength: 6 }).map((pieces) => Buffer.concat(pieces)),
  split: fc.oneof(
    fc.constant<Split>({ kind: 'whole' }),
    fc.constant<Split>({ kind: 'bytewise' }),
    fc.array(fc.nat(), { minLength: 1, maxLength: 12 }).map((cuts): Split => ({ kind: 'random', cuts })),
  ),
  hangUp: fc.boolean(),
});

function piecesOf(session: Session): Buffer[] {
  const { bytes, split } = session;
  switch (split.kind) {
    case 'whole':
      return [bytes];
    case 'bytewise': {
      const size = bytes.length <= BYTEWISE_MAX_BYTES ? 1 : Math.ceil(bytes.length / BYTEWISE_MAX_BYTES);
      const pieces: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size));
      return pieces;
    }
    case 'random': {
      const cuts = [...new Set(split.cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort(
        (a, b) => a - b,
      );
      const pieces: Buffer[] = [];
      let from = 0;
      for (const cut of cuts) {
        if (cut > from) pieces.push(bytes.subarray(from, cut));
        from = Math.max(from, cut);
      }
      pieces.push(bytes.subarray(from));
      return pieces;
    }
    default: {
      const unreachable: never = split;
      throw new Error(`unknown split ${JSON.stringify(unreachable)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Driving one session.

interface SessionResult {
  reply: Buffer;
  closedByServer: boolean;
  /** A write failed (server already closed): the tail of the reply may be lost. */
  writeFailed: boolean;
}

async function runSession(port: number, session: Session): Promise<SessionResult> {
  const socket = net.createConnection({ host: HOST, port });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let received = 0;
  let closed = false;
  let writeFailed = false;
  let lastActivityAt = Date.now();
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  socket.on('data', (chunk: Buffer) => {
    if (received < MAX_REPLY_BYTES) chunks.push(chunk);
    received += chunk.length;
    lastActivityAt = Date.now();
    notify();
  });
  socket.on('error', () => {
    writeFailed = true;
    notify();
  });
  socket.on('close', () => {
    closed = true;
    notify();
  });
  const waitEvent = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          wake = undefined;
          resolve();
        },
        Math.max(1, ms),
      );
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    for (const piece of piecesOf(session)) {
      if (closed || socket.destroyed) break;
      const ok = await new Promise<boolean>((resolve) =>
        socket.write(piece, (err) => resolve(err === undefined || err === null)),
      );
      lastActivityAt = Date.now();
      if (!ok) {
        writeFailed = true;
        break;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (!session.hangUp) {
      const until = Date.now() + SESSION_SETTLE_MS;
      while (!closed && Date.now() - lastActivityAt < QUIET_MS && Date.now() < until) {
        await waitEvent(QUIET_MS);
      }
    }
    // `closed` here can only come from the server's side: we destroy the socket below.
    return { reply: Buffer.concat(chunks), closedByServer: closed, writeFailed };
  } finally {
    socket.destroy();
  }
}

/**
 * Splits a reply stream into complete frames; returns them and the incomplete tail. Throws when
 * a frame is not RESP (frameLength throws on an unknown type byte).
 */
function framesOf(reply: Buffer): { frames: Buffer[]; tail: Buffer } {
  const frames: Buffer[] = [];
  let at = 0;
  while (at < reply.length) {
    const frame = frameLength(reply, at);
    if (frame === undefined) break;
    frames.push(reply.subarray(at, frame.end));
    at = frame.end;
  }
  return { frames, tail: reply.subarray(at) };
}

function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

function describeSession(session: Session): string {
  const shown = session.bytes.toString('latin1');
  return `${session.split.kind} split, hangUp=${String(session.hangUp)}, ${session.bytes.length} bytes: ${JSON.stringify(
    shown.length > 300 ? shown.slice(0, 300) + '...' : shown,
  )}`;
}

// ---------------------------------------------------------------------------------------------

describe(`protocol fuzz against a real ${againstRedis ? 'redis-server' : 'Concord'} process`, function () {
  this.timeout(TIME_LIMIT_MS + 30_000);
  let server: ServerHandle;
  let health: RawConnection;

  before(async function () {
    server = againstRedis ? await startRedisServer() : await startServer();
    health = await rawConnection(server.port, { returnBuffers: true });
  });

  after(async function () {
    health?.close();
    await server?.stop();
  });

  it('never crashes, stays answerable, replies well-formed RESP, keeps memory bounded', async function () {
    // Warm up (JIT, first allocations) before the baseline.
    for (let i = 0; i < 50; i++) await health.call('SET', 'fuzz:warm', String(i));
    const rssBefore = residentBytes(server.pid);
    let healthChecks = 0;
    let closedSessions = 0;

    const property = fc.asyncProperty(
      sessionArb,
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      async (session, value) => {
        const result = await runSession(server.port, session);

        // Whatever arrived is RESP; a close comes only after a protocol error.
        const { frames, tail } = framesOf(result.reply);
        if (!result.writeFailed && result.closedByServer && frames.length > 0) {
          closedSessions++;
          const last = frames[frames.length - 1]!.toString('latin1');
          expect(
            tail.length,
            `incomplete reply before the close: ${JSON.stringify(tail.toString('latin1'))}`,
          ).to.equal(0);
          expect(last, 'the last reply before the server closed').to.match(/^-ERR Protocol error/);
        }

        // The server is alive and answers another connection correctly.
        expect(server.hasExited(), `server exited: ${server.stderr().slice(-2000)}`).to.equal(false);
        const pong = await health.call('PING');
        expect(pong.raw.toString('latin1')).to.equal('+PONG\r\n');
        const stored = Buffer.from(value);
        const set = await health.call('SET', 'fuzz:health', stored);
        expect(set.raw.toString('latin1')).to.equal('+OK\r\n');
        const got = await health.call('GET', 'fuzz:health');
        expect(Buffer.compare(got.value as Buffer, stored)).to.equal(0);
        healthChecks++;
      },
    );

    const details = await fc.check(property, {
      seed,
      numRuns: runs,
      plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
    });
    const rssAfter = residentBytes(server.pid);
    const growth = rssAfter - rssBefore;
    console.log(
      `      fuzz: seed ${seed}, ${details.numRuns} runs${details.interrupted ? ' (time limit)' : ''}, ` +
        `${closedSessions} closed by the server, RSS ${(rssBefore / 1048576).toFixed(1)} -> ${(rssAfter / 1048576).toFixed(1)} MB`,
    );
    if (details.failed) {
      const failing = details.counterexample as [Session, Uint8Array] | null;
      const counterexample = failing?.[0];
      throw new Error(
        `fuzz failed with seed ${seed} (replay: SEED=${seed}), path ${String(details.counterexamplePath)}: ` +
          `${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}\n` +
          (counterexample === undefined ? '' : `session: ${describeSession(counterexample)}`),
      );
    }
    expect(healthChecks, 'fuzz ran no session').to.be.greaterThan(0);
    expect(server.hasExited()).to.equal(false);
    expect(growth, `RSS grew by ${growth} bytes`).to.be.below(MAX_RSS_GROWTH_BYTES);
  });
});
