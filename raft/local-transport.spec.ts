/**
 * The in-process transport: asynchronous delivery, cuts and partitions, bounded links with
 * unreachable reports after send returns, and requests (answer, remote error, timeout across a
 * cut, unknown peer, close).
 */
import { expect } from 'chai';
import { LocalNetwork } from './local-transport.js';
import { MessageType, message } from './messages.js';
import type { Message, NodeId } from './messages.js';
import {
  PeerUnreachableError,
  RemoteRequestError,
  RequestTimeoutError,
  TransportClosedError,
} from './transport.js';

function heartbeat(from: NodeId, to: NodeId, term = 1): Message {
  return message({ type: MessageType.Heartbeat, from, to, term });
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

describe('raft/local-transport', () => {
  it('delivers after send returns, in order, only to the addressee', async () => {
    const net = new LocalNetwork();
    const a = net.connect('a');
    const b = net.connect('b');
    const c = net.connect('c');
    const got: string[] = [];
    b.onMessage((m) => got.push(`b:${m.term}`));
    c.onMessage((m) => got.push(`c:${m.term}`));
    a.send(heartbeat('a', 'b', 1));
    a.send(heartbeat('a', 'b', 2));
    expect(got).to.deep.equal([]);
    await turns(2);
    expect(got).to.deep.equal(['b:1', 'b:2']);
  });

  it('drops across cut links and partitions until healed, including messages in flight', async () => {
    const net = new LocalNetwork();
    const a = net.connect('a');
    const b = net.connect('b');
    net.connect('c');
    let received = 0;
    b.onMessage(() => received++);
    a.send(heartbeat('a', 'b'));
    net.cutLink('a', 'b', true); // cut while in flight
    await turns(2);
    expect(received).to.equal(0);
    net.heal();
    net.partition(['a'], ['b', 'c']);
    a.send(heartbeat('a', 'b'));
    await turns(2);
    expect(received).to.equal(0);
    net.heal();
    a.send(heartbeat('a', 'b'));
    await turns(2);
    expect(received).to.equal(1);
    expect(net.stats.dropped).to.equal(2);
  });

  it('bounds each link and reports the peer unreachable after send returns', async () => {
    const net = new LocalNetwork({ maxInFlightPerLink: 3 });
    const a = net.connect('a');
    const b = net.connect('b');
    let received = 0;
    b.onMessage(() => received++);
    const reported: NodeId[] = [];
    a.onUnreachable((p) => reported.push(p));
    for (let i = 0; i < 10; i++) a.send(heartbeat('a', 'b'));
    expect(reported).to.deep.equal([]);
    await turns(2);
    expect(received).to.equal(3);
    expect(reported).to.deep.equal(['b']); // once per turn, not once per drop
  });

  it('answers requests; remote errors, unknown peers, cuts (timeout) and close are typed', async () => {
    const net = new LocalNetwork();
    const a = net.connect('a');
    const b = net.connect('b');
    b.onRequest((from, payload) => {
      if (payload.toString() === 'boom') return Promise.reject(new Error('handler failed'));
      return Promise.resolve(Buffer.from(`${from}:${payload.toString()}`));
    });
    const answer = await a.request('b', Buffer.from('hi'), 1000);
    expect(answer.toString()).to.equal('a:hi');
    const remote = await failure(a.request('b', Buffer.from('boom'), 1000));
    expect(remote).to.be.instanceOf(RemoteRequestError);
    expect((remote as Error).message).to.contain('handler failed');
    expect(await failure(a.request('zz', Buffer.from('x'), 1000))).to.be.instanceOf(PeerUnreachableError);
    net.cutLink('a', 'b');
    expect(await failure(a.request('b', Buffer.from('x'), 30))).to.be.instanceOf(RequestTimeoutError);
    net.heal();
    const pending = failure(a.request('b', Buffer.from('x'), 1000));
    await a.close();
    expect(await pending).to.be.instanceOf(TransportClosedError);
    expect(await failure(a.request('b', Buffer.from('x'), 1000))).to.be.instanceOf(TransportClosedError);
  });
});
