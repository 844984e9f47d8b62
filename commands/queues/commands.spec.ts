import { expect } from 'chai';
import { LocalExecutor } from '../executor.js';
import type { Reply } from '../reply.js';
import { Harness, plain } from '../testing.js';
import { deadLetterName } from './store.js';

/** Two clients of one in-memory server (LocalExecutor, clock moved by the test). */
function setup(): { h: Harness; other: Harness; executor: LocalExecutor } {
  const h = new Harness();
  const executor = h.executor as LocalExecutor;
  const other = new Harness(executor);
  return { h, other, executor };
}

async function pollUntil<T>(what: string, f: () => T | undefined, deadlineMs = 2_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('queue commands', () => {
  it('QPUSH returns ids; QPOP leases with receipts; QACK removes; QLEN counts', async () => {
    const { h } = setup();
    expect(plain(await h.run('QPUSH', 'q', 'a', 'b', 'c'))).to.deep.equal([1n, 2n, 3n]);
    expect(plain(await h.run('QPOP', 'q', 'COUNT', '2', 'CONSUMER', 'me'))).to.deep.equal([
      [1n, 'a', 1n, '1-1'],
      [2n, 'b', 1n, '2-1'],
    ]);
    expect(plain(await h.run('QPENDING', 'q'))).to.deep.equal([
      [1n, 'me', 1n, BigInt(h.nowMs + 30_000), 30_000n, '1-1'],
      [2n, 'me', 1n, BigInt(h.nowMs + 30_000), 30_000n, '2-1'],
    ]);
    expect(plain(await h.run('QACK', 'q', '1-1', '2-1', '1-1'))).to.equal(2n);
    expect(plain(await h.run('QLEN', 'q'))).to.equal(1n);
    expect(plain(await h.run('QACK', 'q', '1-1'))).to.equal(0n);
    expect(plain(await h.run('QPOP', 'empty'))).to.equal(null);
  });

  it('QACK FENCE: acks with the current token; an older token acks nothing and answers -FENCED', async () => {
    const { h } = setup();
    await h.run('QPUSH', 'q', 'a', 'b', 'c');
    await h.run('QPOP', 'q', 'COUNT', '3', 'CONSUMER', 'me');
    expect(plain(await h.run('LOCK', 'L', 'A'))).to.equal(1n);
    expect(plain(await h.run('QACK', 'q', 'FENCE', 'L', '1', '1-1'))).to.equal(1n);
    await h.run('UNLOCK', 'L', 'A');
    expect(plain(await h.run('LOCK', 'L', 'B'))).to.equal(2n);
    // A's late ack of two receipts: refused whole, both messages stay pending.
    expect(plain(await h.run('QACK', 'q', 'fence', 'L', '1', '2-1', '3-1'))).to.deep.equal({
      error: "FENCED token 1 is older than lock 'L' current token 2",
    });
    expect(plain(await h.run('QLEN', 'q'))).to.equal(2n);
    expect((plain(await h.run('QPENDING', 'q')) as unknown[]).length).to.equal(2);
    // A token never issued is refused too; the current one acks.
    expect((plain(await h.run('QACK', 'q', 'FENCE', 'L', '9', '2-1')) as { error: string }).error).to.equal(
      'FENCED token 9 was never issued',
    );
    expect(plain(await h.run('QACK', 'q', 'FENCE', 'L', '2', '2-1', '3-1'))).to.equal(2n);
    expect(plain(await h.run('QLEN', 'q'))).to.equal(0n);
    // FENCE goes right after the queue; elsewhere it is not a receipt. Missing parts: errors.
    expect((plain(await h.run('QACK', 'q', '1-1', 'FENCE', 'L', '2')) as { error: string }).error).to.match(
      /^ERR invalid receipt 'FENCE'/,
    );
    expect(plain(await h.run('QACK', 'q', 'FENCE', 'L', '2'))).to.deep.equal({ error: 'ERR syntax error' });
    expect(plain(await h.run('QACK', 'q', 'FENCE', 'L', '0', '1-1'))).to.deep.equal({
      error: 'ERR FENCE token must be a positive integer',
    });
    expect(plain(await h.run('COMMAND', 'GETKEYS', 'QACK', 'q', 'FENCE', 'L', '2', '1-1'))).to.deep.equal([
      'q',
    ]);
  });

  it('answers clear errors for bad arguments and keeps going', async () => {
    const { h } = setup();
    const err = async (...words: string[]): Promise<string> => {
      const r = plain(await h.run(...words)) as { error?: string };
      return r.error ?? 'no error';
    };
    expect(await err('QACK', 'q', '7')).to.match(/^ERR invalid receipt '7'/);
    expect(await err('QPOP', 'q', 'COUNT', '0')).to.match(/^ERR COUNT must be an integer from 1 to 10000/);
    expect(await err('QPOP', 'q', 'BLOCK', '-1')).to.match(/^ERR BLOCK/);
    expect(await err('QPOP', 'q', 'NOPE', '1')).to.equal('ERR syntax error');
    expect(await err('QPUSH', 'q', 'DELAY', 'x', 'p')).to.match(/^ERR DELAY/);
    // QNACK and QTOUCH share their parser (common.ts receiptWithDuration): each keeps its keyword and bounds.
    expect(await err('QNACK', 'q', '1-1', 'VISIBILITY', '5')).to.equal('ERR syntax error');
    expect(await err('QNACK', 'q', '1-1', 'DELAY', '-1')).to.match(
      /^ERR DELAY \(ms\) must be an integer from 0 to/,
    );
    expect(await err('QNACK', 'q', '1-1', 'DELAY', '5', 'more')).to.equal('ERR syntax error');
    expect(await err('QTOUCH', 'q', '1-1', 'DELAY', '5')).to.equal('ERR syntax error');
    expect(await err('QTOUCH', 'q', '1-1', 'VISIBILITY', '0')).to.match(
      /^ERR VISIBILITY \(ms\) must be an integer from 1 to/,
    );
    expect(await err('QTOUCH', 'q', 'x')).to.match(/^ERR invalid receipt 'x'/);
    expect(await err('QCONFIG', 'q', 'MAXLEN', '0')).to.match(/^ERR MAXLEN/);
    expect(await err('QINFO', 'nothing')).to.equal('ERR no such queue');
    expect(await err('QPUSH', 'q')).to.match(/wrong number of arguments/);
    expect(await err('QCONFIG', 'q', 'MAXLEN', '1')).to.equal('no error');
    await h.run('QPUSH', 'q', 'x');
    expect(await err('QPUSH', 'q', 'y')).to.match(/^QFULL queue 'q' holds 1 of at most 1 messages/);
  });

  it('QPUSH options: DELAY holds messages back; IDEMP resends return the first ids; DELAY 0 escapes a keyword payload', async () => {
    const { h, executor } = setup();
    expect(plain(await h.run('QPUSH', 'q', 'IDEMP', 'k', 'DELAY', '100', 'a'))).to.deep.equal([1n]);
    expect(plain(await h.run('QPUSH', 'q', 'IDEMP', 'k', 'a'))).to.deep.equal([1n]);
    expect(plain(await h.run('QPOP', 'q'))).to.equal(null);
    h.nowMs += 100;
    executor.tick();
    expect(plain(await h.run('QPOP', 'q'))).to.deep.equal([[1n, 'a', 1n, '1-1']]);
    expect(plain(await h.run('QPUSH', 'q', 'DELAY', '0', 'IDEMP'))).to.deep.equal([2n]);
    expect(plain(await h.run('QPOP', 'q'))).to.deep.equal([[2n, 'IDEMP', 1n, '2-1']]);
  });

  it('a blocked QPOP is woken by a push from another client, in arrival order', async () => {
    const { h, other } = setup();
    const third = new Harness(h.executor);
    const first = h.run('QPOP', 'q', 'BLOCK', '1000');
    const second = third.run('QPOP', 'q', 'BLOCK', '1000', 'COUNT', '5');
    expect(h.executor.waiters.size).to.equal(2);
    expect(plain(await other.run('QPUSH', 'q', 'a', 'b', 'c'))).to.deep.equal([1n, 2n, 3n]);
    expect(plain(await first)).to.deep.equal([[1n, 'a', 1n, '1-1']]);
    expect(plain(await second)).to.deep.equal([
      [2n, 'b', 1n, '2-1'],
      [3n, 'c', 1n, '3-1'],
    ]);
    expect(h.executor.waiters.size).to.equal(0);
  });

  it('a blocked QPOP times out with nil at its deadline (leader time)', async () => {
    const { h, executor } = setup();
    let reply: Reply | undefined;
    void h.run('QPOP', 'q', 'BLOCK', '200').then((r) => (reply = r));
    h.nowMs += 199;
    executor.tick();
    await new Promise((r) => setImmediate(r));
    expect(reply).to.equal(undefined);
    h.nowMs += 1;
    executor.tick();
    const r = await pollUntil('timeout reply', () => reply);
    expect(plain(r)).to.equal(null);
  });

  it('a client that disconnects while blocked withdraws its wait', async () => {
    const { h, other } = setup();
    const blocked = h.run('QPOP', 'q', 'BLOCK', '5000');
    expect(plain(await other.run('QINFO', 'q'))).to.deep.include({ 'waiting-consumers': 1n });
    h.session.close();
    await blocked;
    expect(plain(await other.run('QINFO', 'q'))).to.deep.include({ 'waiting-consumers': 0n });
    await other.run('QPUSH', 'q', 'a');
    expect(plain(await other.run('QPOP', 'q'))).to.deep.equal([[1n, 'a', 1n, '1-1']]);
  });

  it('QTOUCH extends; QNACK gives back; a superseded receipt is refused with LEASELOST', async () => {
    const { h, executor } = setup();
    await h.run('QPUSH', 'q', 'a');
    await h.run('QPOP', 'q', 'VISIBILITY', '100');
    expect(plain(await h.run('QTOUCH', 'q', '1-1', 'VISIBILITY', '500'))).to.equal(BigInt(h.nowMs + 500));
    h.nowMs += 499;
    executor.tick();
    expect(plain(await h.run('QPOP', 'q'))).to.equal(null);
    expect(plain(await h.run('QNACK', 'q', '1-1'))).to.equal(1n);
    expect(plain(await h.run('QPOP', 'q'))).to.deep.equal([[1n, 'a', 2n, '1-2']]);
    const lost = plain(await h.run('QACK', 'q', '1-1')) as { error: string };
    expect(lost.error).to.match(/^LEASELOST the lease of delivery 1 of message 1 ran out/);
    expect(plain(await h.run('QTOUCH', 'q', '1-1')))
      .to.have.property('error')
      .that.match(/^LEASELOST/);
    expect(plain(await h.run('QACK', 'q', '1-2'))).to.equal(1n);
  });

  it('dead-letters after MAXDELIVERIES; the dead-letter queue is a queue; QREPLAY moves back', async () => {
    const { h } = setup();
    await h.run('QCONFIG', 'q', 'MAXDELIVERIES', '1');
    await h.run('QPUSH', 'q', 'a');
    await h.run('QPOP', 'q');
    expect(plain(await h.run('QNACK', 'q', '1-1'))).to.equal(1n);
    const dlq = deadLetterName(Buffer.from('q')).toString();
    const info = plain(await h.run('QINFO', 'q')) as Record<string, unknown>;
    expect(info).to.deep.include({
      'dead-lettered': 1n,
      'dead-letter-queue': dlq,
      ready: 0n,
      'dead-lettered-total': 1n,
    });
    expect(plain(await h.run('QLEN', dlq))).to.equal(1n);
    expect(plain(await h.run('QREPLAY', 'q'))).to.equal(1n);
    expect(plain(await h.run('QPOP', 'q'))).to.deep.equal([[2n, 'a', 1n, '2-1']]);
  });

  it('INFO queues shows totals', async () => {
    const { h } = setup();
    await h.run('QPUSH', 'q', 'a', 'b');
    await h.run('QPOP', 'q');
    const text = String(plain(await h.run('INFO', 'queues')));
    expect(text).to.match(/^# Queues\r\n/);
    expect(text).to.include('queues:1\r\n');
    expect(text).to.include('queue_messages_ready:1\r\n');
    expect(text).to.include('queue_messages_leased:1\r\n');
    expect(text).to.include('queue_pushed_total:2\r\n');
  });

  it('declares the queue as the first key, so cluster clients route by its slot', async () => {
    const { h } = setup();
    for (const cmd of ['QPUSH q a', 'QPOP q BLOCK 10', 'QACK q 1-1', 'QINFO q', 'QREPLAY q'])
      expect(plain(await h.run('COMMAND', 'GETKEYS', ...cmd.split(' '))), cmd).to.deep.equal(['q']);
  });
});
