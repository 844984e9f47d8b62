/**
 * Tests for the simulated network: delay, FIFO versus reordering, loss, duplication, cut
 * links (symmetric and asymmetric), crash drops and the in-flight bound.
 */
import { expect } from 'chai';
import { MessageType, message } from '../messages.js';
import type { Message } from '../messages.js';
import { SimNetwork } from './network.js';
import type { NetworkOptions } from './network.js';
import { Prng } from './prng.js';

const quiet: NetworkOptions = {
  reorderRate: 0,
  lossRate: 0,
  duplicateRate: 0,
  minDelayTicks: 0,
  maxDelayTicks: 0,
  maxInFlight: 100,
};

function msg(from: string, to: string, index: number): Message {
  return message({ type: MessageType.App, from, to, term: 1, index });
}

function drain(net: SimNetwork): Message[] {
  const out: Message[] = [];
  for (let m = net.takeDue(); m !== undefined; m = net.takeDue()) out.push(m);
  return out;
}

describe('raft/sim/network', () => {
  it('delivers in FIFO order without reordering, and holds delayed messages until due', () => {
    const net = new SimNetwork(new Prng(1), { ...quiet, minDelayTicks: 2, maxDelayTicks: 2 });
    for (let i = 0; i < 5; i++) net.send(msg('a', 'b', i));
    expect(net.takeDue()).to.equal(undefined);
    net.advanceTo(1);
    expect(net.takeDue()).to.equal(undefined);
    net.advanceTo(2);
    expect(drain(net).map((m) => m.index)).to.deep.equal([0, 1, 2, 3, 4]);
    expect(net.inFlight).to.equal(0);
  });

  it('reorders when reorderRate is 1, deterministically per seed', () => {
    const run = (seed: number): number[] => {
      const net = new SimNetwork(new Prng(seed), { ...quiet, reorderRate: 1 });
      for (let i = 0; i < 20; i++) net.send(msg('a', 'b', i));
      return drain(net).map((m) => m.index);
    };
    const order = run(3);
    expect([...order].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    expect(order).to.not.deep.equal([...order].sort((x, y) => x - y));
    expect(run(3)).to.deep.equal(order);
  });

  it('loses and duplicates at about the configured rates', () => {
    const net = new SimNetwork(new Prng(5), {
      ...quiet,
      lossRate: 0.2,
      duplicateRate: 0.1,
      maxInFlight: 100_000,
    });
    for (let i = 0; i < 10_000; i++) net.send(msg('a', 'b', i));
    expect(net.stats.lost).to.be.within(1800, 2200);
    expect(net.stats.duplicated).to.be.within(650, 950);
    expect(drain(net).length).to.equal(10_000 - net.stats.lost + net.stats.duplicated);
  });

  it('drops messages over cut links at delivery: asymmetric cuts and symmetric partitions', () => {
    const net = new SimNetwork(new Prng(7), quiet);
    net.cutLink('a', 'b');
    net.send(msg('a', 'b', 1));
    net.send(msg('b', 'a', 2));
    expect(drain(net).map((m) => m.index)).to.deep.equal([2]);
    net.healLinks();
    net.partition([['a'], ['b', 'c']]);
    expect(net.isCut('a', 'c') && net.isCut('c', 'a') && net.isCut('b', 'a')).to.equal(true);
    expect(net.isCut('b', 'c')).to.equal(false);
    net.send(msg('c', 'a', 3));
    net.send(msg('c', 'b', 4));
    expect(drain(net).map((m) => m.index)).to.deep.equal([4]);
    expect(net.stats.cut).to.equal(2);
  });

  it('drops a crashed node in-flight messages, due or delayed, and bounds what is in flight', () => {
    const net = new SimNetwork(new Prng(9), { ...quiet, maxDelayTicks: 3, maxInFlight: 10 });
    for (let i = 0; i < 6; i++) net.send(msg('a', 'b', i));
    for (let i = 0; i < 6; i++) net.send(msg('c', 'd', 10 + i));
    expect(net.inFlight).to.equal(10);
    expect(net.stats.overflow).to.equal(2);
    net.dropNode('b');
    net.advanceTo(3);
    const left = drain(net);
    expect(left.every((m) => m.from === 'c')).to.equal(true);
    expect(left.length).to.equal(4);
    expect(net.inFlight).to.equal(0);
  });
});
