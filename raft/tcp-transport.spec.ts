import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { encodeMessage } from './codec.js';
import { crc32c } from './crc32c.js';
import { RaftCore } from './core.js';
import { EntryType, MessageType, message, Role } from './messages.js';
import type { Message, NodeId } from './messages.js';
import { Prng } from './sim/prng.js';
import { MemoryStorage } from './storage.js';
import {
  backoffDelayMs,
  decodeHello,
  encodeFrame,
  encodeHello,
  FrameError,
  FrameKind,
  FrameReader,
  handshakeMac,
  parseAddress,
  TcpTransport,
  TRANSPORT_PROTOCOL_VERSION,
} from './tcp-transport.js';
import type { TcpTransportOptions } from './tcp-transport.js';
import {
  ConnectionLostError,
  PeerUnreachableError,
  RemoteRequestError,
  RequestTimeoutError,
  TransportClosedError,
} from './transport.js';
import type { TransportLogger } from './transport.js';

const SECRET = 'correct horse battery staple, twice';
const CLUSTER = 'test-cluster';

/** Polls `cond` every few ms until it holds or `deadlineMs` passes (real sockets: no fixed sleeps). */
async function until(cond: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface LogLine {
  level: string;
  obj: object;
  msg: string;
}
function capturingLog(lines: LogLine[]): TransportLogger {
  const push = (level: string) => (obj: object, msg: string) => {
    if (lines.length < 1000) lines.push({ level, obj, msg });
  };
  return { warn: push('warn'), info: push('info'), debug: push('debug') };
}

const open: TcpTransport[] = [];
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];

async function transport(id: NodeId, extra: Partial<TcpTransportOptions> = {}): Promise<TcpTransport> {
  const prng = new Prng(42);
  const t = await TcpTransport.listen({
    id,
    clusterId: CLUSTER,
    secret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    random: () => prng.float(),
    heartbeatIntervalMs: 50,
    idleTimeoutMs: 1000,
    handshakeTimeoutMs: 1000,
    backoffBaseMs: 10,
    backoffMaxMs: 100,
    ...extra,
  });
  open.push(t);
  return t;
}

function collect(t: TcpTransport): Message[] {
  const got: Message[] = [];
  t.onMessage((m) => {
    if (got.length < 100_000) got.push(m);
  });
  return got;
}

function app(from: NodeId, to: NodeId, index: number, dataBytes = 8): Message {
  return message({
    type: MessageType.App,
    from,
    to,
    term: 7,
    index,
    logTerm: 6,
    commit: index - 1,
    entries: [
      { term: 7, index: index + 1, type: EntryType.Normal, data: Buffer.alloc(dataBytes, index % 256) },
    ],
  });
}

/** A listening raw TCP server for hand-written peers; its address as "host:port". */
async function rawServer(onSocket: (s: net.Socket) => void): Promise<string> {
  const server = net.createServer((s) => {
    sockets.push(s);
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address() as net.AddressInfo;
  return `127.0.0.1:${a.port}`;
}

/** A free port: bind one, close it. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Reads frames from a raw socket into a list. */
function frames(s: net.Socket): Buffer[] {
  const out: Buffer[] = [];
  const reader = new FrameReader(64 * 1024 * 1024);
  s.on('data', (chunk: Buffer) =>
    reader.push(chunk, (f) => {
      out.push(Buffer.from(f));
      return true;
    }),
  );
  return out;
}

/** Dials `address` as node `from` knowing `secret`; resolves when ACCEPT arrives (or the socket closes). */
async function rawDial(
  address: string,
  from: NodeId,
  to: NodeId,
  secret: string,
  opts: { clusterId?: string; staleServerNonce?: boolean } = {},
): Promise<{ socket: net.Socket; got: Buffer[]; accepted: boolean }> {
  const clusterId = opts.clusterId ?? CLUSTER;
  const { host, port } = parseAddress(address);
  const socket = net.connect({ host, port });
  sockets.push(socket);
  const got = frames(socket);
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const nonce = randomBytes(32);
  socket.write(encodeHello({ version: TRANSPORT_PROTOCOL_VERSION, clusterId, from, to, nonce }));
  await until(() => got.length >= 1 || closed, 'challenge');
  const challenge = got[0];
  if (challenge === undefined || challenge[0] !== FrameKind.Challenge)
    return { socket, got, accepted: false };
  // A stale nonce stands for a replayed PROOF from an earlier handshake.
  const serverNonce = opts.staleServerNonce === true ? randomBytes(32) : challenge.subarray(1, 33);
  socket.write(
    encodeFrame(FrameKind.Proof, handshakeMac(secret, 'client', CLUSTER, from, to, nonce, serverNonce)),
  );
  await until(() => got.length >= 2 || closed, 'accept');
  return { socket, got, accepted: got[1]?.[0] === FrameKind.Accept };
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await Promise.all(open.splice(0).map((t) => t.close()));
});

describe('raft/tcp-transport: frames', () => {
  const payloads = [Buffer.from([]), Buffer.from('hello'), randomBytes(5000)];
  const stream = Buffer.concat(payloads.map((p) => encodeFrame(FrameKind.Ping, p)));

  function readAll(chunks: Buffer[]): Buffer[] {
    const reader = new FrameReader(1 << 20);
    const out: Buffer[] = [];
    for (const c of chunks) {
      reader.push(c, (f) => {
        out.push(Buffer.from(f));
        return true;
      });
    }
    expect(reader.pendingBytes).to.equal(0);
    return out;
  }

  it('splits a stream given whole and byte by byte', () => {
    const expected = payloads.map((p) => Buffer.concat([Buffer.from([FrameKind.Ping]), p]));
    expect(readAll([stream])).to.deep.equal(expected);
    const bytes: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
    expect(readAll(bytes)).to.deep.equal(expected);
  });

  it('rejects an empty or oversized frame with a FrameError', () => {
    const reader = new FrameReader(100);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(101);
    expect(() => reader.push(big, () => true)).to.throw(FrameError, /101 bytes exceeds the maximum of 100/);
    expect(() => new FrameReader(100).push(Buffer.alloc(4), () => true)).to.throw(FrameError, /empty frame/);
  });

  it('stops when the handler says so', () => {
    const reader = new FrameReader(1 << 20);
    let n = 0;
    reader.push(stream, () => ++n < 2);
    expect(n).to.equal(2);
  });

  it('parses addresses and refuses bad ones', () => {
    expect(parseAddress('127.0.0.1:7000')).to.deep.equal({ host: '127.0.0.1', port: 7000 });
    expect(parseAddress('[::1]:7000')).to.deep.equal({ host: '::1', port: 7000 });
    expect(() => parseAddress('nohost')).to.throw(/bad peer address/);
    expect(() => parseAddress('h:70000')).to.throw(/bad peer address/);
  });

  it('backs off exponentially up to the cap, jittering the upper half', () => {
    const lo = [0, 1, 2, 3, 10].map((n) => backoffDelayMs(n, 50, 2000, () => 0));
    const hi = [0, 1, 2, 3, 10].map((n) => backoffDelayMs(n, 50, 2000, () => 0.999999));
    expect(lo).to.deep.equal([25, 50, 100, 200, 1000]);
    expect(hi.map(Math.round)).to.deep.equal([50, 100, 200, 400, 2000]);
    const prng = new Prng(7);
    const samples = Array.from({ length: 200 }, () => backoffDelayMs(4, 50, 2000, () => prng.float()));
    expect(Math.min(...samples)).to.be.at.least(400);
    expect(Math.max(...samples)).to.be.below(800);
    expect(new Set(samples).size).to.be.greaterThan(150);
  });

  it('round-trips a HELLO and refuses a truncated one', () => {
    const h = { version: 1, clusterId: 'c', from: 'a', to: 'b', nonce: randomBytes(32) };
    const f = encodeHello(h).subarray(4);
    expect(decodeHello(f)).to.deep.equal(h);
    expect(() => decodeHello(f.subarray(0, f.length - 1))).to.throw(FrameError, /malformed HELLO/);
  });
});

describe('raft/tcp-transport', () => {
  it('streams a Snap larger than a frame in chunks; messages sent after it are not held behind it', async () => {
    const a = await transport('a', { maxFrameBytes: 256 * 1024, snapshotChunkBytes: 64 * 1024 });
    const b = await transport('b', { maxFrameBytes: 256 * 1024 });
    const got = collect(b);
    a.addPeer('b', b.address());
    b.addPeer('a', a.address());
    await until(() => a.isConnected('b'), 'a to connect');
    const data = randomBytes(5 * 1024 * 1024 + 17);
    const snapshot = {
      metadata: { index: 900, term: 7, confState: { voters: ['a', 'b'], learners: [] } },
      data,
    };
    a.send(message({ type: MessageType.Snap, from: 'a', to: 'b', term: 7, snapshot }));
    a.send(app('a', 'b', 5));
    await until(() => got.length === 2, 'both messages');
    // The App was queued after the Snap but left first: the stream yields to queued messages.
    expect(got[0]!.type).to.equal(MessageType.App);
    const snap = got[1]!;
    expect(snap.type).to.equal(MessageType.Snap);
    expect(snap.snapshot!.metadata).to.deep.equal(snapshot.metadata);
    expect(Buffer.from(snap.snapshot!.data).equals(data)).to.equal(true);
    expect(b.stats().badMessages).to.equal(0);
  });

  it('a snapshot stream with a bad checksum or a wrong length is dropped, the connection kept', async () => {
    const a = await transport('a');
    const got = collect(a);
    const { socket, accepted } = await rawDial(a.address(), 'x', 'a', SECRET);
    expect(accepted).to.equal(true);
    const data = Buffer.from('snapshot bytes');
    const header = encodeMessage(
      message({
        type: MessageType.Snap,
        from: 'x',
        to: 'a',
        term: 3,
        snapshot: {
          metadata: { index: 10, term: 3, confState: { voters: ['a', 'x'], learners: [] } },
          data: new Uint8Array(0),
        },
      }),
    );
    const begin = (id: number, total: number): Buffer => {
      const b = Buffer.alloc(12 + header.byteLength);
      b.writeUInt32BE(id, 0);
      b.writeUInt32BE(0, 4);
      b.writeUInt32BE(total, 8);
      Buffer.from(header).copy(b, 12);
      return encodeFrame(FrameKind.SnapBegin, b);
    };
    const chunk = (id: number, bytes: Buffer): Buffer => {
      const b = Buffer.alloc(4 + bytes.length);
      b.writeUInt32BE(id, 0);
      bytes.copy(b, 4);
      return encodeFrame(FrameKind.SnapChunk, b);
    };
    const end = (id: number, crc: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(id, 0);
      b.writeUInt32BE(crc >>> 0, 4);
      return encodeFrame(FrameKind.SnapEnd, b);
    };
    socket.write(Buffer.concat([begin(1, data.length), chunk(1, data), end(1, crc32c(data) ^ 1)]));
    socket.write(Buffer.concat([begin(2, data.length + 1), chunk(2, data), end(2, crc32c(data))]));
    socket.write(Buffer.concat([begin(3, data.length), chunk(3, data), end(3, crc32c(data))]));
    await until(() => got.length === 1, 'the good stream');
    expect(Buffer.from(got[0]!.snapshot!.data).equals(data)).to.equal(true);
    expect(a.stats().badMessages).to.equal(2);
  });

  it('a notice reaches a node we do not list as a peer over its inbound connection, and ours over our outbound one', async () => {
    const a = await transport('a');
    const b = await transport('b');
    collect(a);
    const notices: string[] = [];
    b.onNotice((from, body) => notices.push(`${from}:${body.toString('utf8')}`));
    // Only b dials a (a removed b, say): a's one way to reach b is b's inbound connection.
    b.addPeer('a', a.address());
    expect(a.notice('b', Buffer.from('early'))).to.equal(false);
    await until(() => a.notice('b', Buffer.from('{"removed":7}')), 'b to connect to a');
    await until(() => notices.length === 1, 'the notice to arrive');
    expect(notices).to.deep.equal(['a:{"removed":7}']);
    // Over an outbound connection too.
    const fromB: string[] = [];
    a.onNotice((from, body) => fromB.push(`${from}:${body.toString('utf8')}`));
    expect(b.notice('a', Buffer.from('hi'))).to.equal(true);
    await until(() => fromB.length === 1, 'the notice to arrive at a');
    expect(fromB).to.deep.equal(['b:hi']);
    // Bounded: a notice is small.
    expect(a.notice('b', Buffer.alloc(128 * 1024))).to.equal(false);
  });

  it('refuses a short secret', async () => {
    let err: unknown = null;
    try {
      await transport('n1', { secret: 'short' });
    } catch (e) {
      err = e;
    }
    expect(err)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/at least 16 bytes/);
    err = null;
    try {
      await transport('x'.repeat(256));
    } catch (e) {
      err = e;
    }
    expect(err)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/1 to 255 bytes/);
  });

  it('two transports exchange messages in order, both ways', async () => {
    const a = await transport('a');
    const b = await transport('b');
    a.addPeer('b', b.address());
    b.addPeer('a', a.address());
    const gotA = collect(a);
    const gotB = collect(b);
    const n = 2000;
    for (let i = 1; i <= n; i++) {
      a.send(app('a', 'b', i, i % 100));
      b.send(app('b', 'a', i));
    }
    await until(() => gotA.length === n && gotB.length === n, 'all messages');
    expect(gotB.map((m) => m.index)).to.deep.equal(Array.from({ length: n }, (_, i) => i + 1));
    expect(gotA.map((m) => m.from)).to.satisfy((xs: string[]) => xs.every((x) => x === 'a' || x === 'b'));
    const sample = gotB[41]!;
    expect(encodeMessage(sample)).to.deep.equal(encodeMessage(app('a', 'b', 42, 42)));
    expect(a.stats().messagesSent).to.equal(n);
    expect(b.stats().messagesReceived).to.equal(n);
    await until(() => a.peerStates()[0]?.inboundConnected === true, 'b dialled a');
    expect(a.peerStates()).to.deep.equal([
      {
        id: 'b',
        address: b.address(),
        connected: true,
        inboundConnected: true,
        queuedMessages: 0,
        queuedBytes: 0,
        inflightRequests: 0,
        failedDials: 0,
      },
    ]);
    expect(a.stats().dropped).to.equal(0);
  });

  it('three transports: every pair talks, messages from each sender in order', async () => {
    const ids = ['n1', 'n2', 'n3'];
    const ts = await Promise.all(ids.map((id) => transport(id)));
    const got = ts.map(collect);
    for (const t of ts) for (const u of ts) if (t !== u) t.addPeer(u.id, u.address());
    const n = 300;
    for (let i = 1; i <= n; i++)
      for (const t of ts) for (const u of ts) if (t !== u) t.send(app(t.id, u.id, i));
    await until(() => got.every((g) => g.length === 2 * n), 'mesh delivery');
    for (const [k, g] of got.entries()) {
      for (const from of ids.filter((x) => x !== ids[k])) {
        const indexes = g.filter((m) => m.from === from).map((m) => m.index);
        expect(indexes, `${from} -> ${ids[k]}`).to.deep.equal(Array.from({ length: n }, (_, i) => i + 1));
      }
      expect(g.every((m) => m.to === ids[k])).to.equal(true);
    }
  });

  it('refuses a peer with the wrong secret in both directions: nothing reaches either handler', async () => {
    const logA: LogLine[] = [];
    const a = await transport('a', { log: capturingLog(logA) });
    const m = await transport('m', { secret: 'not the cluster secret at all' });
    const gotA = collect(a);
    const gotM = collect(m);
    a.addPeer('m', m.address());
    m.addPeer('a', a.address());
    for (let i = 1; i <= 10; i++) {
      a.send(app('a', 'm', i));
      m.send(app('m', 'a', i));
    }
    await until(
      () => a.stats().authFailures >= 2 && m.stats().authFailures >= 2,
      'auth failures on both sides',
    );
    expect(gotA).to.have.length(0);
    expect(gotM).to.have.length(0);
    expect(a.isConnected('m')).to.equal(false);
    expect(m.isConnected('a')).to.equal(false);
    expect(a.stats().messagesSent).to.equal(0);
    expect(logA.some((l) => l.level === 'warn' && /failed authentication/.test(l.msg))).to.equal(true);
    expect(JSON.stringify(logA)).not.to.contain(SECRET);
  });

  it('closes a raw socket that skips the handshake or forges the proof; the handler sees nothing', async () => {
    const a = await transport('a');
    const got = collect(a);
    const { host, port } = parseAddress(a.address());
    // 1. A Raft message frame straight away.
    const s1 = net.connect({ host, port });
    sockets.push(s1);
    let closed1 = false;
    s1.on('close', () => (closed1 = true));
    s1.on('error', () => undefined);
    const body = encodeMessage(app('x', 'a', 1));
    s1.write(encodeFrame(FrameKind.Message, body));
    await until(() => closed1, 'unauthenticated socket closed');
    // 2. A proper HELLO, then a proof made with the wrong secret.
    const forged = await rawDial(a.address(), 'x', 'a', 'a guess that is long enough');
    expect(forged.accepted).to.equal(false);
    await until(() => forged.socket.destroyed || forged.got.length >= 2, 'refusal');
    expect(forged.got[1]?.[0]).to.equal(FrameKind.Reject);
    forged.socket.write(encodeFrame(FrameKind.Message, body));
    // 3. An oversized pre-auth frame.
    const s3 = net.connect({ host, port });
    sockets.push(s3);
    let closed3 = false;
    s3.on('close', () => (closed3 = true));
    s3.on('error', () => undefined);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(10_000_000);
    s3.write(huge);
    await until(() => closed3, 'oversized pre-auth frame closed');
    expect(got).to.have.length(0);
    expect(a.stats().authFailures).to.equal(1);
    expect(a.stats().protocolErrors).to.equal(2);
    // 4. With the right secret, the same raw dialer gets through: the test above was meaningful.
    const honest = await rawDial(a.address(), 'x', 'a', SECRET);
    expect(honest.accepted).to.equal(true);
    honest.socket.write(encodeFrame(FrameKind.Message, body));
    await until(() => got.length === 1, 'authenticated raw message');
    expect(got[0]!.from).to.equal('x');
  });

  it('refuses a replayed proof, a wrong cluster id and a HELLO for another node, with a reason', async () => {
    const a = await transport('a');
    const got = collect(a);
    const replay = await rawDial(a.address(), 'x', 'a', SECRET, { staleServerNonce: true });
    expect(replay.accepted).to.equal(false);
    const cluster = await rawDial(a.address(), 'x', 'a', SECRET, { clusterId: 'other-cluster' });
    expect(cluster.accepted).to.equal(false);
    const other = await rawDial(a.address(), 'x', 'not-a', SECRET);
    expect(other.accepted).to.equal(false);
    const reasons = [cluster, other].map((r) => {
      expect(r.got[0]?.[0]).to.equal(FrameKind.Reject);
      return r.got[0]!.subarray(1).toString();
    });
    expect(reasons).to.deep.equal(['cluster id mismatch', 'this node is not not-a']);
    await until(() => replay.got.length >= 2, 'replay refused');
    expect(replay.got[1]?.[0]).to.equal(FrameKind.Reject);
    expect(a.stats().authFailures).to.equal(1);
    expect(got).to.have.length(0);
  });

  it('closes sockets that never finish the handshake, and bounds how many may try at once', async () => {
    const a = await transport('a', { handshakeTimeoutMs: 200, maxPendingHandshakes: 2 });
    const { host, port } = parseAddress(a.address());
    const closedAt: number[] = [];
    const start = Date.now();
    for (let i = 0; i < 3; i++) {
      const s = net.connect({ host, port });
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closedAt.push(Date.now() - start));
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    }
    await until(() => closedAt.length === 3, 'all three closed');
    expect(closedAt[0], 'the third, refused at once').to.be.below(150);
    expect(closedAt[1], 'the others, at the handshake deadline').to.be.at.least(190);
    // Slots are free again: an honest dialer gets in.
    expect((await rawDial(a.address(), 'x', 'a', SECRET)).accepted).to.equal(true);
  });

  it('drops misaddressed and undecodable messages from an authenticated peer but keeps the connection', async () => {
    const a = await transport('a');
    const got = collect(a);
    const peer = await rawDial(a.address(), 'x', 'a', SECRET);
    expect(peer.accepted).to.equal(true);
    peer.socket.write(encodeFrame(FrameKind.Message, encodeMessage(app('impersonated', 'a', 1))));
    peer.socket.write(encodeFrame(FrameKind.Message, encodeMessage(app('x', 'someone-else', 2))));
    peer.socket.write(encodeFrame(FrameKind.Message, Buffer.from([1, 99, 0])));
    peer.socket.write(encodeFrame(FrameKind.Message, encodeMessage(app('x', 'a', 4))));
    await until(() => got.length === 1, 'the one good message');
    expect(got[0]!.index).to.equal(4);
    expect(a.stats().badMessages).to.equal(3);
    expect(peer.socket.destroyed).to.equal(false);
  });

  it('reconnects after the peer restarts on the same port', async () => {
    const a = await transport('a');
    let b = await transport('b');
    const address = b.address();
    a.addPeer('b', address);
    let gotB = collect(b);
    a.send(app('a', 'b', 1));
    await until(() => gotB.length === 1, 'first delivery');
    await b.close();
    await until(() => !a.isConnected('b'), 'a notices the loss');
    b = await transport('b', { listen: { host: '127.0.0.1', port: parseAddress(address).port } });
    gotB = collect(b);
    // Messages sent while b was down may be lost (Raft resends); keep sending until one arrives.
    let i = 2;
    await until(() => {
      a.send(app('a', 'b', i++));
      return gotB.length > 0;
    }, 'delivery after restart');
    expect(gotB[0]!.from).to.equal('a');
    expect(a.stats().connects).to.be.at.least(2);
  });

  it('bounds the queue by count and by bytes, drops the excess and reports the peer unreachable', async () => {
    const port = await closedPort();
    const a = await transport('a', { maxQueueMessages: 10, maxQueueBytes: 10_000 });
    const reported: NodeId[] = [];
    a.onUnreachable((p) => reported.push(p));
    a.addPeer('b', `127.0.0.1:${port}`);
    for (let i = 1; i <= 25; i++) a.send(app('a', 'b', i));
    expect(a.queueDepth('b').messages).to.equal(10);
    expect(a.stats().dropped).to.equal(15);
    expect(reported, 'reported on a later tick, not inside send').to.deep.equal([]);
    await until(() => reported.length > 0, 'unreachable report');
    expect(reported).to.include('b');
    a.addPeer('a', '127.0.0.1:1'); // itself: ignored
    expect(a.queueDepth('a').messages).to.equal(0);
    expect(() => a.addPeer('z', 'no-port')).to.throw(/bad peer address/);
    a.send(message({ type: MessageType.Vote, from: 'a', to: 'nobody', term: 1 }));
    await until(() => reported.includes('nobody'), 'unknown peer reported');

    const c = await transport('c', { maxQueueMessages: 100, maxQueueBytes: 10_000 });
    c.addPeer('b', `127.0.0.1:${port}`);
    for (let i = 1; i <= 10; i++) c.send(app('c', 'b', i, 3000));
    expect(c.queueDepth('b').messages).to.equal(3);
    expect(c.queueDepth('b').bytes).to.be.at.most(10_000);
    expect(c.stats().dropped).to.equal(7);
  });

  it('detects a stalled connection by the read deadline and redials', async () => {
    const log: LogLine[] = [];
    const a = await transport('a', { idleTimeoutMs: 300, heartbeatIntervalMs: 50, log: capturingLog(log) });
    let connections = 0;
    let firstClosed = false;
    let first: net.Socket | null = null;
    let acceptSentAt = Infinity;
    // A peer that completes the handshake, then stops reading and never writes again (as if
    // SIGSTOPped or partitioned: the TCP connection stays up but nothing moves).
    const address = await rawServer((s) => {
      const index = ++connections;
      if (index === 1) {
        first = s;
        s.on('close', () => (firstClosed = true));
      }
      s.on('error', () => undefined);
      const got = frames(s);
      s.once('data', () => {
        const hello = decodeHello(got[0]!);
        const nonce = randomBytes(32);
        s.write(
          encodeFrame(
            FrameKind.Challenge,
            Buffer.concat([nonce, handshakeMac(SECRET, 'server', CLUSTER, 'a', 'b', hello.nonce, nonce)]),
          ),
        );
        s.once('data', () => {
          if (index === 1) acceptSentAt = Date.now();
          s.write(encodeFrame(FrameKind.Accept));
          s.pause(); // silent from now on: reads nothing, writes nothing
        });
      });
    });
    const reported: NodeId[] = [];
    a.onUnreachable((p) => reported.push(p));
    a.addPeer('b', address);
    await until(() => a.isConnected('b'), 'handshake with the silent peer');
    await until(() => a.stats().stalls >= 1, 'stall detected');
    // Not before the deadline: the last byte from the peer (ACCEPT) was sent at acceptSentAt.
    expect(Date.now() - acceptSentAt).to.be.at.least(295);
    // The silent peer reads again only now, to see that `a` closed its end.
    (first as net.Socket | null)?.resume();
    await until(() => firstClosed && connections >= 2, 'closed and redialled');
    expect(reported).to.include('b');
    expect(log.some((l) => /stalled connection/.test(l.msg))).to.equal(true);
  });

  it('detects a SIGSTOPped peer process, and talks to it again after SIGCONT', async function () {
    if (process.platform === 'win32') this.skip();
    const a = await transport('a', { idleTimeoutMs: 300, heartbeatIntervalMs: 50, handshakeTimeoutMs: 300 });
    const echoes: number[] = [];
    a.onMessage((m) => {
      if (echoes.length < 10_000) echoes.push(m.index);
    });
    // The peer: a transport in its own process that echoes each message's index back.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        const { TcpTransport } = await import(${JSON.stringify(new URL('./tcp-transport.js', import.meta.url).href)});
        const { message } = await import(${JSON.stringify(new URL('./messages.js', import.meta.url).href)});
        const t = await TcpTransport.listen({ id: 'b', clusterId: ${JSON.stringify(CLUSTER)},
          secret: ${JSON.stringify(SECRET)}, listen: { host: '127.0.0.1', port: 0 },
          idleTimeoutMs: 300, heartbeatIntervalMs: 50, handshakeTimeoutMs: 300, backoffBaseMs: 10, backoffMaxMs: 100 });
        t.addPeer('a', process.argv[1]);
        t.onMessage((m) => t.send(message({ type: m.type, from: 'b', to: 'a', term: m.term, index: m.index })));
        process.stdout.write(t.address() + '\\n');
        process.stdin.on('end', () => process.exit(0));
        process.stdin.resume();
        `,
        a.address(),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const pid = child.pid!;
    let exited = false;
    child.on('exit', () => (exited = true));
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('\n'), 'the peer process to listen');
      a.addPeer('b', out.trim());
      a.send(app('a', 'b', 1));
      await until(() => echoes.includes(1), 'first echo');

      process.kill(pid, 'SIGSTOP');
      const stalls = a.stats().stalls;
      await until(() => a.stats().stalls > stalls, 'stall detected while the peer is stopped');
      expect(a.isConnected('b')).to.equal(false);

      process.kill(pid, 'SIGCONT');
      let i = 2;
      await until(() => {
        a.send(app('a', 'b', i++));
        return echoes.some((x) => x > 1);
      }, 'an echo after SIGCONT');
      expect(a.stats().connects).to.be.at.least(2);
    } finally {
      if (!exited) {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
        await until(() => exited, 'the peer process to exit');
      }
    }
  });

  it('does not count a blocked event loop as the peer being silent', async () => {
    const a = await transport('a', { idleTimeoutMs: 300, heartbeatIntervalMs: 50 });
    const b = await transport('b', { idleTimeoutMs: 300, heartbeatIntervalMs: 50 });
    a.addPeer('b', b.address());
    b.addPeer('a', a.address());
    await until(() => a.isConnected('b') && b.isConnected('a'), 'connected');
    // Block this (shared) event loop for twice the idle timeout, as a long GC or apply would.
    const end = Date.now() + 600;
    while (Date.now() < end) {
      // busy: nothing is read meanwhile
    }
    const got = collect(b);
    a.send(app('a', 'b', 1));
    await until(() => got.length === 1, 'delivery after the pause');
    expect(a.stats().stalls + b.stats().stalls).to.equal(0);
    expect(a.stats().connects + b.stats().connects).to.equal(2);
  });

  it('stops writing under backpressure and queues up to the bound', async () => {
    const a = await transport('a', { maxQueueBytes: 1 << 20, maxBatchBytes: 1 << 20, idleTimeoutMs: 5000 });
    const b = await transport('b');
    a.addPeer('b', b.address());
    await until(() => a.isConnected('b'), 'connected');
    // b stops reading: the kernel buffers fill, socket.write returns false, a must queue.
    for (const link of b['links']) link.socket.pause();
    const reported: NodeId[] = [];
    a.onUnreachable((p) => reported.push(p));
    let sent = 0;
    await until(() => {
      for (let i = 0; i < 20; i++) a.send(app('a', 'b', ++sent, 64 * 1024));
      return a.stats().dropped > 0;
    }, 'queue full under backpressure');
    expect(a.queueDepth('b').bytes).to.be.at.most(1 << 20);
    expect(a.queueDepth('b').messages).to.be.greaterThan(0);
    await until(() => reported.includes('b'), 'drop reported');
  });

  describe('requests', () => {
    async function pair(extra: Partial<TcpTransportOptions> = {}): Promise<[TcpTransport, TcpTransport]> {
      const a = await transport('a', extra);
      const b = await transport('b', extra);
      a.addPeer('b', b.address());
      b.addPeer('a', a.address());
      return [a, b];
    }

    it('answers a request with the handler result, and an error with its message', async () => {
      const [a, b] = await pair();
      b.onRequest(async (from, payload) => {
        await Promise.resolve();
        if (payload.toString() === 'fail') throw new Error('no such thing');
        return Buffer.from(`${from}:${payload.toString().toUpperCase()}`);
      });
      const replies = await Promise.all([1, 2, 3].map((i) => a.request('b', Buffer.from(`req${i}`), 5000)));
      expect(replies.map((r) => r.toString())).to.deep.equal(['a:REQ1', 'a:REQ2', 'a:REQ3']);
      let err: unknown = null;
      await a.request('b', Buffer.from('fail'), 5000).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(RemoteRequestError).with.property('remoteMessage', 'no such thing');
      const big = randomBytes(3 << 20);
      b.onRequest((_from, payload) => Promise.resolve(payload));
      expect((await a.request('b', big, 10_000)).equals(big)).to.equal(true);
    });

    it('times out cleanly, bounds requests in flight, rejects unknown peers', async () => {
      const [a, b] = await pair({ maxInflightRequests: 2 });
      const release: (() => void)[] = [];
      b.onRequest(
        () => new Promise<Uint8Array>((resolve) => release.push(() => resolve(Buffer.from('late')))),
      );
      const started = Date.now();
      const p1 = a.request('b', Buffer.from('1'), 200);
      const p2 = a.request('b', Buffer.from('2'), 200);
      let overErr: unknown = null;
      await a.request('b', Buffer.from('3'), 200).catch((e: unknown) => (overErr = e));
      expect(overErr)
        .to.be.instanceOf(PeerUnreachableError)
        .with.property('reason')
        .that.matches(/in flight/);
      const results = await Promise.allSettled([p1, p2]);
      expect(Date.now() - started).to.be.at.least(190);
      for (const r of results) {
        expect(r.status).to.equal('rejected');
        if (r.status === 'rejected') expect(r.reason).to.be.instanceOf(RequestTimeoutError);
      }
      await until(() => release.length === 2, 'both requests reached the handler');
      for (const r of release) r(); // late answers are ignored
      let unknownErr: unknown = null;
      await a.request('zz', Buffer.from('x'), 100).catch((e: unknown) => (unknownErr = e));
      expect(unknownErr).to.be.instanceOf(PeerUnreachableError);
      // The slots are free again after the timeouts.
      b.onRequest(() => Promise.resolve(Buffer.from('ok')));
      expect((await a.request('b', Buffer.from('4'), 5000)).toString()).to.equal('ok');
    });

    it('rejects a request in flight when the connection is lost, and all on close', async () => {
      const [a, b] = await pair();
      let arrived = 0;
      b.onRequest(() => {
        arrived++;
        return new Promise<Uint8Array>(() => undefined);
      });
      const p = a.request('b', Buffer.from('x'), 10_000);
      await until(() => arrived === 1, 'request arrived');
      await b.close();
      let err: unknown = null;
      await p.catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(ConnectionLostError);
      const q = a.request('b', Buffer.from('y'), 10_000);
      await a.close();
      let closedErr: unknown = null;
      await q.catch((e: unknown) => (closedErr = e));
      expect(closedErr).to.be.instanceOf(TransportClosedError);
    });
  });
});

/**
 * A minimal driver (persist to memory, send, apply) around a RaftCore, to run real Raft traffic
 * (elections, appends, heartbeats) through the codec and the TCP transport.
 */
class MiniNode {
  readonly storage: MemoryStorage;
  readonly core: RaftCore;
  readonly applied: string[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly transport: TcpTransport,
    voters: NodeId[],
    seed: number,
  ) {
    const prng = new Prng(seed);
    this.storage = new MemoryStorage({ voters });
    this.core = new RaftCore({
      id: transport.id,
      storage: this.storage,
      electionTicks: 10,
      heartbeatTicks: 1,
      maxInflightMsgs: 64,
      maxSizePerMsg: 64 * 1024,
      preVote: true,
      checkQuorum: true,
      random: () => prng.float(),
    });
    transport.onMessage((m) => {
      this.core.step(m);
      this.pump();
    });
    transport.onUnreachable((peer) => this.core.reportUnreachable(peer));
    this.timer = setInterval(() => {
      this.core.tick();
      this.pump();
    }, 10);
  }

  pump(): void {
    while (this.core.hasReady()) {
      const rd = this.core.ready();
      if (rd.snapshot !== null) this.storage.applySnapshot(rd.snapshot);
      this.storage.append(rd.entries);
      if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.transport.send(m);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.Normal && e.data.byteLength > 0 && this.applied.length < 10_000) {
          this.applied.push(Buffer.from(e.data).toString());
        }
      }
      this.core.advance();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

describe('raft/tcp-transport: Raft over TCP', () => {
  const nodes: MiniNode[] = [];
  afterEach(() => {
    for (const n of nodes.splice(0)) n.stop();
  });

  it('three cores elect a leader, replicate, and re-elect when the leader is cut off', async () => {
    const ids = ['n1', 'n2', 'n3'];
    const ts = await Promise.all(
      ids.map((id) => transport(id, { idleTimeoutMs: 400, heartbeatIntervalMs: 50 })),
    );
    for (const t of ts) for (const u of ts) if (t !== u) t.addPeer(u.id, u.address());
    ts.forEach((t, i) => nodes.push(new MiniNode(t, ids, 100 + i)));
    const leader = (among: MiniNode[]): MiniNode | undefined =>
      among.find((n) => n.core.status().role === Role.Leader);
    await until(() => leader(nodes) !== undefined, 'a leader');
    const first = leader(nodes)!;
    const firstTerm = first.core.status().term;
    for (let i = 0; i < 200; i++) first.core.propose(Buffer.from(`e${i}`));
    first.pump();
    const expected = Array.from({ length: 200 }, (_, i) => `e${i}`);
    await until(() => nodes.every((n) => n.applied.length === 200), 'replication to all three');
    for (const n of nodes) expect(n.applied).to.deep.equal(expected);

    // Cut the leader off: its transport closes, its clock stops.
    first.stop();
    await first.transport.close();
    const rest = nodes.filter((n) => n !== first);
    await until(() => leader(rest) !== undefined, 'a new leader among the other two');
    const second = leader(rest)!;
    expect(second.core.status().term).to.be.greaterThan(firstTerm);
    second.core.propose(Buffer.from('after'));
    second.pump();
    await until(() => rest.every((n) => n.applied.length === 201), 'replication after re-election');
    for (const n of rest) expect(n.applied[200]).to.equal('after');
  });
});
