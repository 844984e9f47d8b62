/**
 * The peer-link fault proxy on real loopback sockets: it learns the dialer from the HELLO
 * frame, forwards bytes in order, delays them, blackholes a cut source (the dialer sees a
 * stall, not a close), and closes the broken connections when the cut heals. Packet loss is
 * modelled as TCP makes it look to an application: every byte still arrives, in order, but
 * some chunks are held back by retransmission timeouts (and the chunks behind them wait), and
 * a chunk lost too many times in a row resets the connection; the model is seeded.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { encodeHello, TRANSPORT_PROTOCOL_VERSION } from '../raft/tcp-transport.js';
import { Prng } from './prng.js';
import { helloFrom, lossOutcome, MAX_RETRANSMITS, MIN_RTO_MS, NO_FAULT, PeerProxy } from './proxy.js';

function hello(from: string): Buffer {
  return encodeHello({ version: TRANSPORT_PROTOCOL_VERSION, clusterId: 'c', from, to: 'n1', nonce: randomBytes(32) });
}

async function poll<T>(what: string, check: () => T | undefined, deadlineMs = 5_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  while (true) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('faults/proxy: the peer-link fault proxy', () => {
  let upstream: net.Server;
  let received: Buffer;
  let upstreamSockets: net.Socket[];
  let proxy: PeerProxy;
  let port: number;

  beforeEach(async () => {
    received = Buffer.alloc(0);
    upstreamSockets = [];
    upstream = net.createServer((s) => {
      upstreamSockets.push(s);
      s.on('data', (d: Buffer) => {
        received = Buffer.concat([received, d]);
        s.write(d); // echo
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const address = upstream.address() as net.AddressInfo;
    const prng = new Prng(1);
    proxy = new PeerProxy({ host: '127.0.0.1', port: address.port }, () => prng.next());
    port = await proxy.listen('127.0.0.1', 0);
  });

  afterEach(async () => {
    await proxy.close();
    for (const s of upstreamSockets) s.destroy();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  async function dial(from: string): Promise<{ socket: net.Socket; echoed: () => Buffer; closed: () => boolean; error: () => string | undefined }> {
    const socket = net.connect(port, '127.0.0.1');
    let echoed = Buffer.alloc(0);
    let closed = false;
    let error: string | undefined;
    socket.on('data', (d: Buffer) => (echoed = Buffer.concat([echoed, d])));
    socket.on('close', () => (closed = true));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(hello(from));
    return { socket, echoed: () => echoed, closed: () => closed, error: () => error };
  }

  it('reads the dialer from a HELLO, whole or in pieces, and rejects other first frames', () => {
    const frame = hello('n2');
    expect(helloFrom(frame)).to.equal('n2');
    expect(helloFrom(frame.subarray(0, 3))).to.equal(undefined);
    expect(helloFrom(frame.subarray(0, frame.length - 1))).to.equal(undefined);
    expect(helloFrom(Buffer.from([0, 0, 0, 2, 6, 0]))).to.equal(null);
  });

  it('forwards both ways in order, without and with delay and jitter', async () => {
    const c = await dial('n2');
    const payload = randomBytes(64 * 1024);
    c.socket.write(payload.subarray(0, 1000));
    proxy.setPolicy('n2', { ...NO_FAULT, delayMs: 30, jitterMs: 30 });
    for (let i = 1000; i < payload.length; i += 1000) c.socket.write(payload.subarray(i, i + 1000));
    // What arrives upstream is the HELLO followed by the payload, byte for byte, and the echo
    // comes back the same.
    await poll('the payload upstream', () =>
      received.length > payload.length && received.subarray(received.length - payload.length).equals(payload) ? true : undefined,
    );
    await poll('the echo', () => (c.echoed().equals(received) ? true : undefined));
    expect(helloFrom(received)).to.equal('n2');
    c.socket.destroy();
  });

  it('blackholes a cut source (a stall, not a close), spares others, and closes broken links on heal', async () => {
    proxy.setPolicy('n2', { ...NO_FAULT, cut: true });
    const cut = await dial('n2');
    const fine = await dial('n3');
    fine.socket.write('hello');
    await poll('n3 echo', () => (fine.echoed().includes('hello') ? true : undefined));
    cut.socket.write('lost');
    // Give the proxy time to forward if it were going to (a negative check, bounded by the n3 round trip above).
    fine.socket.write('again');
    await poll('n3 echo 2', () => (fine.echoed().includes('again') ? true : undefined));
    expect(received.includes('lost')).to.equal(false);
    expect(cut.closed()).to.equal(false);
    proxy.setPolicy('n2', NO_FAULT);
    await poll('the broken link to close', () => (cut.closed() ? true : undefined));
    expect(fine.closed()).to.equal(false);
    fine.socket.destroy();
  });

  it('loss: every byte arrives in order and intact, some chunks held back by an RTO; nothing reset at moderate loss', async () => {
    proxy.setPolicy('n2', { ...NO_FAULT, lossPercent: 25 });
    const c = await dial('n2');
    const helloBytes = hello('n2').length; // dial() sent one of this size (its nonce is random)
    await poll('the HELLO echoed', () => (c.echoed().length >= helloBytes ? true : undefined), 20_000);
    const sent: Buffer[] = [c.echoed().subarray(0, helloBytes)];
    // One chunk at a time, each after the previous echo: the PRNG's draws follow the chunks, so
    // the seed fixes which chunks wait.
    for (let i = 0; i < 10; i++) {
      const chunk = randomBytes(200 + i);
      sent.push(chunk);
      c.socket.write(chunk);
      const want = Buffer.concat(sent).length;
      await poll(`the echo of chunk ${i}`, () => (c.echoed().length >= want ? true : undefined), 20_000);
    }
    expect(c.echoed().equals(Buffer.concat(sent))).to.equal(true);
    expect(received.equals(Buffer.concat(sent))).to.equal(true);
    expect(proxy.lossStats.heldBack).to.be.greaterThan(0);
    expect(proxy.lossStats.resets).to.equal(0);
    expect(c.closed()).to.equal(false);
    c.socket.destroy();
  });

  it('loss: a chunk lost more than MAX_RETRANSMITS times in a row resets the connection (RST), nothing corrupt gets through', async () => {
    proxy.setPolicy('*', { ...NO_FAULT, lossPercent: 100 });
    const c = await dial('n2');
    await poll('the reset', () => (c.closed() ? true : undefined));
    expect(c.error()).to.equal('ECONNRESET');
    expect(received.length).to.equal(0);
    expect(proxy.lossStats.resets).to.equal(1);
  });
});

describe('faults/proxy: lossOutcome, the TCP-under-loss model', () => {
  /** A random() that returns `values` in turn (and fails when they run out). */
  function script(...values: number[]): () => number {
    return () => {
      const v = values.shift();
      if (v === undefined) throw new Error('script ran out');
      return v;
    };
  }

  it('stalls a lost chunk one RTO, doubling for each further loss; resets past MAX_RETRANSMITS', () => {
    expect(lossOutcome(script(), 0)).to.deep.equal({ kind: 'sent', stallMs: 0 });
    expect(lossOutcome(script(0.5), 30)).to.deep.equal({ kind: 'sent', stallMs: 0 });
    expect(lossOutcome(script(0.1, 0.9), 30)).to.deep.equal({ kind: 'sent', stallMs: MIN_RTO_MS });
    expect(lossOutcome(script(0.1, 0.2, 0.9), 30)).to.deep.equal({ kind: 'sent', stallMs: 3 * MIN_RTO_MS });
    expect(lossOutcome(script(0, 0, 0, 0, 0, 0.99), 30)).to.deep.equal({ kind: 'sent', stallMs: 200 + 400 + 800 + 1600 + 3200 });
    expect(lossOutcome(script(...new Array<number>(MAX_RETRANSMITS + 1).fill(0)), 30)).to.deep.equal({
      kind: 'reset',
      losses: MAX_RETRANSMITS + 1,
    });
  });

  it('holds back about lossPercent of the chunks, resets rarely, and a seed replays the same schedule', () => {
    const run = (seed: number, percent: number, n: number) => {
      const prng = new Prng(seed);
      return Array.from({ length: n }, () => lossOutcome(() => prng.next(), percent));
    };
    const outcomes = run(7, 30, 20_000);
    const held = outcomes.filter((o) => o.kind === 'sent' && o.stallMs > 0).length;
    const resets = outcomes.filter((o) => o.kind === 'reset').length;
    expect(held / outcomes.length).to.be.within(0.28, 0.32);
    // 0.3^6 = 0.07% of the chunks.
    expect(resets).to.be.within(1, 40);
    expect(run(7, 30, 1_000)).to.deep.equal(outcomes.slice(0, 1_000));
    expect(run(8, 30, 1_000)).to.not.deep.equal(outcomes.slice(0, 1_000));
  });
});
