/**
 * The peer-link fault proxy on real loopback sockets: it learns the dialer from the HELLO
 * frame, forwards bytes in order, delays them, blackholes a cut source (the dialer sees a
 * stall, not a close), and closes the broken connections when the cut heals.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { encodeHello, TRANSPORT_PROTOCOL_VERSION } from '../raft/tcp-transport.js';
import { Prng } from './prng.js';
import { helloFrom, NO_FAULT, PeerProxy } from './proxy.js';

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

  async function dial(from: string): Promise<{ socket: net.Socket; echoed: () => Buffer; closed: () => boolean }> {
    const socket = net.connect(port, '127.0.0.1');
    let echoed = Buffer.alloc(0);
    let closed = false;
    socket.on('data', (d: Buffer) => (echoed = Buffer.concat([echoed, d])));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(hello(from));
    return { socket, echoed: () => echoed, closed: () => closed };
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
    proxy.setPolicy('n2', { cut: false, delayMs: 30, jitterMs: 30 });
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
    proxy.setPolicy('n2', { cut: true, delayMs: 0, jitterMs: 0 });
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
});
