/**
 * Differential protocol test: every case of compat-tests/cases/protocol-cases.ts (the edge cases
 * of Redis's protocol.tcl and auth.tcl, plus inline, pipelining and split-frame cases) is sent as
 * identical bytes over raw sockets to Concord and to Debian's redis-server, and the replies and
 * the connection state afterwards must be the same. Each case runs twice: with its chunks as
 * written ('whole') and byte by byte ('bytewise'; cases above BYTEWISE_MAX_BYTES go in
 * SPLIT_BYTES pieces instead).
 *
 * A deliberate difference is not skipped: the case carries a `difference` naming its entry in
 * docs/compatibility.md ("Differential"), and both servers must match their documented outcome.
 *
 * DIFF_SELF_CHECK=1 runs the table against two redis-servers instead (checks the runner itself:
 * any difference then is the runner's fault).
 *
 * Owns: the servers it starts (stopped in `after`, and by the harness's root hook). Must never:
 * talk to anything but 127.0.0.1, sleep without a deadline, or hide a difference.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import { HOST, startRedisServer, startServer } from './harness.js';
import type { ServerHandle } from './harness.js';
import { multibulk, PASSWORD, PROTOCOL_CASES } from './cases/protocol-cases.js';
import type { Outcome, ProtocolCase, ServerMode } from './cases/protocol-cases.js';

/** Quiet period after which an 'idle' case counts as "still open, nothing to say". */
const IDLE_MS = 300;
/** Longest wait for a probe answer or a close. */
const DEADLINE_MS = 5_000;
/** Cases up to this size are also sent one byte per write. */
const BYTEWISE_MAX_BYTES = 2_048;
/** Larger cases are sent in pieces of this size in the 'bytewise' run. */
const SPLIT_BYTES = 1_000;
/** Upper bound on reply bytes kept per exchange. */
const MAX_REPLY_BYTES = 1024 * 1024;
/** A 'flood-unread' case writes at most this many bytes ... */
const FLOOD_MAX_BYTES = 32 * 1024 * 1024;
/** ... for at most this long. */
const FLOOD_MS = 3_000;
/** RSS growth allowed while connections hold huge length claims. */
const MAX_CLAIM_RSS_GROWTH_BYTES = 64 * 1024 * 1024;

type SendMode = 'whole' | 'bytewise';

const SELF_CHECK = process.env['DIFF_SELF_CHECK'] === '1';

/** The probe request and the exact reply that proves it was answered in sync. */
function probeFor(mode: ServerMode): { request: Buffer; reply: string } {
  const nonce = `probe-${randomBytes(6).toString('hex')}`;
  const echo = multibulk('ECHO', nonce);
  const echoReply = `$${nonce.length}\r\n${nonce}\r\n`;
  switch (mode) {
    case 'open':
      return { request: Buffer.from(echo, 'latin1'), reply: echoReply };
    case 'requirepass':
      return {
        request: Buffer.from(multibulk('AUTH', PASSWORD) + echo, 'latin1'),
        reply: `+OK\r\n${echoReply}`,
      };
    default: {
      const unreachable: never = mode;
      throw new Error(`unknown mode ${String(unreachable)}`);
    }
  }
}

/** One client socket that records everything it receives and whether the peer closed it. */
class Recorder {
  readonly socket: net.Socket;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private lastActivityAt = Date.now();
  closed = false;
  private wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (this.bytes < MAX_REPLY_BYTES) {
        this.chunks.push(chunk);
        this.bytes += chunk.length;
      }
      this.lastActivityAt = Date.now();
      this.notify();
    });
    // A write after the server closed fails with EPIPE/ECONNRESET: that is a close, not a bug.
    socket.on('error', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  static connect(port: number): Promise<Recorder> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: HOST, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${port} timed out`));
      }, DEADLINE_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        resolve(new Recorder(socket));
      });
      socket.once('error', reject);
    });
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  /** Time since the last byte received or written. */
  quietForMs(): number {
    return Date.now() - this.lastActivityAt;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves on the next data/close event or after `ms`. */
  waitEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.wake = undefined;
          resolve();
        },
        Math.max(1, ms),
      );
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Writes and waits until the bytes are handed to the kernel; false once the socket is gone. */
  write(bytes: Buffer): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.socket.write(bytes, (err) => {
        this.lastActivityAt = Date.now();
        resolve(err === undefined || err === null);
      });
    });
  }

  /** Yields to the event loop so replies to earlier bytes are read before the next write. */
  static turn(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The pieces a case is written in, for one send mode, with the probe appended if any. */
function writesFor(c: ProtocolCase, how: SendMode, probe: Buffer | undefined): Buffer[] {
  const chunks = c.chunks.map((chunk) => Buffer.from(chunk, 'latin1'));
  if (probe !== undefined) {
    // The probe goes in the same write as the case's last bytes, as a pipelining client does.
    const last = chunks.pop() ?? Buffer.alloc(0);
    chunks.push(Buffer.concat([last, probe]));
  }
  switch (how) {
    case 'whole':
      return chunks;
    case 'bytewise': {
      const all = Buffer.concat(chunks);
      const piece = all.length <= BYTEWISE_MAX_BYTES ? 1 : SPLIT_BYTES;
      const pieces: Buffer[] = [];
      for (let at = 0; at < all.length; at += piece) pieces.push(all.subarray(at, at + piece));
      return pieces;
    }
    default: {
      const unreachable: never = how;
      throw new Error(`unknown send mode ${String(unreachable)}`);
    }
  }
}

/**
 * Sends a case to one server and reports what it did.
 *
 * A write that fails because the server already closed (its RST) makes Node drop the input it
 * had not read yet, which may hold the server's last reply. So when a write fails, the exchange
 * is replayed once on a new connection with only the pieces before the failed one, and then
 * only read until the server closes: the server saw the same bytes, so it sends the same reply.
 */
async function exchange(port: number, mode: ServerMode, c: ProtocolCase, how: SendMode): Promise<Outcome> {
  if (c.end === 'flood-unread') return flood(port, c);
  const probe = c.end === 'probe' ? probeFor(mode) : undefined;
  const pieces = writesFor(c, how, probe?.request);
  const first = await exchangeOnce(port, mode, c, pieces, probe);
  if (first.failedWriteAt === undefined) return first.outcome;
  const replay = await exchangeOnce(
    port,
    mode,
    { ...c, end: 'idle' },
    pieces.slice(0, first.failedWriteAt),
    probe,
  );
  if (replay.outcome.state !== 'closed') {
    // The server did not close on the same bytes this time: report the first attempt.
    return first.outcome;
  }
  return replay.outcome;
}

async function exchangeOnce(
  port: number,
  mode: ServerMode,
  c: ProtocolCase,
  pieces: readonly Buffer[],
  probe: { request: Buffer; reply: string } | undefined,
): Promise<{ outcome: Outcome; failedWriteAt?: number }> {
  const conn = await Recorder.connect(port);
  try {
    for (let i = 0; i < pieces.length; i++) {
      if (!(await conn.write(pieces[i]!))) {
        return { outcome: await settle(port, mode, c, conn, probe), failedWriteAt: i };
      }
      await Recorder.turn();
    }
    return { outcome: await settle(port, mode, c, conn, probe) };
  } finally {
    conn.destroy();
  }
}

/**
 * Sends the case's bytes over and over without ever reading, until the server closes the
 * connection, FLOOD_MAX_BYTES were written or FLOOD_MS passed.
 */
async function flood(port: number, c: ProtocolCase): Promise<Outcome> {
  const conn = await Recorder.connect(port);
  conn.socket.pause();
  const chunk = Buffer.from(c.chunks.join(''), 'latin1');
  const until = Date.now() + FLOOD_MS;
  let written = 0;
  try {
    while (!conn.closed && written < FLOOD_MAX_BYTES && Date.now() < until) {
      // Once the kernel buffers are full the callback waits for the server to read (or never).
      const sent = conn.write(chunk);
      const outcome = await Promise.race([sent, conn.waitEvent(until - Date.now()).then(() => undefined)]);
      if (outcome === false) break;
      if (outcome === true) written += chunk.length;
    }
    return { reply: '', state: conn.closed ? 'closed' : 'open' };
  } finally {
    conn.destroy();
  }
}

/** Waits for the end of an exchange as the case says (probe answer, close, quiet period). */
async function settle(
  port: number,
  mode: ServerMode,
  c: ProtocolCase,
  conn: Recorder,
  probe: { request: Buffer; reply: string } | undefined,
): Promise<Outcome> {
  switch (c.end) {
    case 'probe': {
      const expected = probe?.reply ?? '';
      const until = Date.now() + DEADLINE_MS;
      while (!conn.closed && !conn.text().endsWith(expected) && Date.now() < until) {
        await conn.waitEvent(until - Date.now());
      }
      const text = conn.text();
      if (text.endsWith(expected))
        return { reply: text.slice(0, text.length - expected.length), state: 'open' };
      return { reply: text, state: conn.closed ? 'closed' : 'stuck' };
    }
    case 'idle': {
      const until = Date.now() + DEADLINE_MS;
      while (!conn.closed && conn.quietForMs() < IDLE_MS && Date.now() < until) {
        await conn.waitEvent(IDLE_MS - conn.quietForMs());
      }
      return { reply: conn.text(), state: conn.closed ? 'closed' : 'open' };
    }
    case 'flood-unread':
      throw new Error('flood cases do not settle: see flood()');
    case 'client-close': {
      // Give the server the chance to answer or react before we hang up mid-frame.
      await Recorder.turn();
      const before = conn.text();
      conn.destroy();
      const check = probeFor(mode);
      const next = await Recorder.connect(port);
      try {
        await next.write(check.request);
        const until = Date.now() + DEADLINE_MS;
        while (!next.closed && !next.text().endsWith(check.reply) && Date.now() < until) {
          await next.waitEvent(until - Date.now());
        }
        return { reply: before, state: next.text().endsWith(check.reply) ? 'alive' : 'dead' };
      } finally {
        next.destroy();
      }
    }
    default: {
      const unreachable: never = c.end;
      throw new Error(`unknown case end ${String(unreachable)}`);
    }
  }
}

/** Resident set size of a process, from /proc/<pid>/status (VmRSS), in bytes. */
function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Shows an outcome in a failure message (escapes control characters, caps the length). */
function show(outcome: Outcome): string {
  const reply = JSON.stringify(
    outcome.reply.length > 400 ? outcome.reply.slice(0, 400) + '...' : outcome.reply,
  );
  return `${outcome.state} ${reply}`;
}

interface Pair {
  redis: ServerHandle;
  concord: ServerHandle;
}

describe('differential protocol tests: Concord vs redis-server (protocol.tcl, auth.tcl)', function () {
  this.timeout(60_000);
  const pairs = new Map<ServerMode, Pair>();

  before(async function () {
    const startConcord = SELF_CHECK ? startRedisServer : startServer;
    const [redisOpen, concordOpen, redisAuth, concordAuth] = await Promise.all([
      startRedisServer(),
      startConcord(),
      startRedisServer({ requirepass: PASSWORD }),
      startConcord({ requirepass: PASSWORD }),
    ]);
    pairs.set('open', { redis: redisOpen, concord: concordOpen });
    pairs.set('requirepass', { redis: redisAuth, concord: concordAuth });
  });

  after(async function () {
    await Promise.all([...pairs.values()].flatMap((pair) => [pair.redis.stop(), pair.concord.stop()]));
  });

  const pairFor = (mode: ServerMode): Pair => {
    const pair = pairs.get(mode);
    if (pair === undefined) throw new Error(`servers for mode ${mode} did not start`);
    return pair;
  };

  for (const c of PROTOCOL_CASES) {
    const sendModes: readonly SendMode[] = c.end === 'flood-unread' ? ['whole'] : ['whole', 'bytewise'];
    for (const how of sendModes) {
      const label = c.difference === undefined ? '' : ` (documented difference ${c.difference.id})`;
      it(`${c.source}: ${c.name} [${how}]${label}`, async function () {
        const pair = pairFor(c.mode);
        const [redis, concord] = await Promise.all([
          exchange(pair.redis.port, c.mode, c, how),
          exchange(pair.concord.port, c.mode, c, how),
        ]);
        if (c.difference === undefined) {
          expect(concord, `concord ${show(concord)}\n  redis ${show(redis)}`).to.deep.equal(redis);
        } else {
          expect(redis, `redis no longer does what ${c.difference.id} says: ${show(redis)}`).to.deep.equal(
            c.difference.redis,
          );
          expect(
            concord,
            `concord no longer does what ${c.difference.id} says: ${show(concord)}`,
          ).to.deep.equal(SELF_CHECK ? c.difference.redis : c.difference.concord);
        }
        expect(pair.concord.hasExited(), 'concord exited').to.equal(false);
      });
    }
  }

  it('huge length claims held open on many connections are not preallocated (RSS)', async function () {
    const pair = pairFor('open');
    const claims = [
      '*2000000000\r\n$4\r\nPING\r\n',
      '*2147483647\r\n',
      '*1\r\n$536870912\r\n' + 'x'.repeat(1000),
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n' + 'y'.repeat(1000),
    ];
    const connectionsPerClaim = 8;
    for (const server of [pair.redis, pair.concord]) {
      const before = residentBytes(server.pid);
      const conns: Recorder[] = [];
      try {
        for (const claim of claims) {
          for (let i = 0; i < connectionsPerClaim; i++) {
            const conn = await Recorder.connect(server.port);
            conns.push(conn);
            await conn.write(Buffer.from(claim, 'latin1'));
          }
        }
        // Every connection is still open and silent (each waits for the rest of its request),
        // and the server still answers a new one.
        const health = await exchange(
          server.port,
          'open',
          { name: 'health', source: 'concord', mode: 'open', chunks: ['PING\r\n'], end: 'probe' },
          'whole',
        );
        expect(health).to.deep.equal({ reply: '+PONG\r\n', state: 'open' });
        const growth = residentBytes(server.pid) - before;
        expect(conns.every((conn) => !conn.closed && conn.text() === '')).to.equal(true);
        expect(growth, `RSS growth of pid ${server.pid}: ${growth} bytes`).to.be.below(
          MAX_CLAIM_RSS_GROWTH_BYTES,
        );
      } finally {
        for (const conn of conns) conn.destroy();
      }
    }
  });

  it('both servers are still running after every case', function () {
    for (const pair of pairs.values()) {
      expect(pair.redis.hasExited()).to.equal(false);
      expect(pair.concord.hasExited(), `concord stderr: ${pair.concord.stderr().slice(-2000)}`).to.equal(
        false,
      );
    }
  });
});
