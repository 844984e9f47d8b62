/**
 * Fencing end to end on a real three-node cluster (Kleppmann's "How to do distributed
 * locking"): client A (on n1) holds lock L with token t1 and stalls past its lease; client B
 * (on n2) is granted L with t2 > t1 and writes with FENCE L t2 through SET, QACK and CSET; then
 * A wakes and sends its delayed writes with FENCE L t1: every one is refused with -FENCED, and
 * what is stored (keys, acks, the cache on every node) is B's. The stall is real: B's LOCK
 * waits in the queue until A's lease runs out in leader time.
 */
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { Cluster, client, skipUnlessClusterSupported, type ClusterNode } from '../cluster/cluster-harness.js';
import { retrying } from './lock-client.js';

const LEASE_MS = 1_500;

/** The reply, or the error's message for a client error (ioredis rejects with it). */
async function answer(redis: Redis, ...args: string[]): Promise<unknown> {
  try {
    return await retrying(() => redis.call(args[0]!, ...args.slice(1)));
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/^(FENCED|ERR|LEASELOST)/.test(message)) return { error: message };
    throw e;
  }
}

describe('locks: fencing SET, QACK and CSET on a three-node cluster', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  const clients: Redis[] = [];

  before(async function () {
    await skipUnlessClusterSupported(this);
    cluster = await Cluster.start({
      size: 3,
      tickMs: 50,
      electionTicks: 10,
      extraArgs: ['--cache-lease-ms', '1000'],
    });
    await cluster.waitForLeader(20_000);
    await cluster.waitUntilServing(20_000);
  });

  after(async () => {
    for (const r of clients.splice(0)) r.disconnect();
    await cluster?.destroy();
  });

  it("refuses every delayed write of a client whose lease ran out: the stored values and acks are the new holder's", async () => {
    const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const a = client(n1.port, 40_000);
    const b = client(n2.port, 40_000);
    const observer = client(n3.port, 40_000);
    clients.push(a, b, observer);

    // A takes L and starts its work: a job popped, the shared values written under t1.
    await answer(b, 'QPUSH', 'jobs', 'job-1', 'job-2');
    const t1 = (await answer(a, 'LOCK', 'L', 'A', 'TTL', String(LEASE_MS))) as number;
    expect(t1).to.be.a('number');
    const popped = (await answer(
      a,
      'QPOP',
      'jobs',
      'COUNT',
      '2',
      'VISIBILITY',
      String(LEASE_MS),
      'CONSUMER',
      'A',
    )) as [number, string, number, string][];
    expect(popped.map((m) => m[3])).to.deep.equal(['1-1', '2-1']);
    expect(await answer(a, 'SET', 'report', 'A-early', 'FENCE', 'L', String(t1))).to.equal('OK');
    expect(await answer(a, 'CSET', 'report:cache', 'A-early', 'FENCE', 'L', String(t1))).to.equal('OK');
    // The observer's node holds the cached value (a line that a write must invalidate).
    expect(await answer(observer, 'CGET', 'report:cache')).to.equal('A-early');

    // A stalls (a GC pause). B's LOCK waits in the queue until A's lease has run out.
    const t2 = (await answer(b, 'LOCK', 'L', 'B', 'TTL', '60000', 'WAIT', '30000')) as number;
    expect(t2).to.be.a('number').and.greaterThan(t1);
    // job-1's lease ran out with A's: B gets it again (a blocked pop, woken in leader time).
    const again = (await answer(b, 'QPOP', 'jobs', 'BLOCK', '20000', 'CONSUMER', 'B')) as [
      number,
      string,
      number,
      string,
    ][];
    expect(again[0]![1]).to.equal('job-1');
    const receiptB = again[0]![3];
    expect(receiptB)
      .to.match(/^1-\d+$/)
      .and.not.equal('1-1');
    expect(await answer(b, 'SET', 'report', 'B', 'FENCE', 'L', String(t2))).to.equal('OK');
    expect(await answer(b, 'QACK', 'jobs', 'FENCE', 'L', String(t2), receiptB)).to.equal(1);
    expect(await answer(b, 'CSET', 'report:cache', 'B', 'FENCE', 'L', String(t2))).to.equal('OK');
    expect(await answer(observer, 'CGET', 'report:cache')).to.equal('B');

    // A wakes up and sends what it had in flight, still fenced by t1: all refused.
    const refused = `FENCED token ${t1} is older than lock 'L' current token ${t2}`;
    expect(await answer(a, 'SET', 'report', 'A-late', 'FENCE', 'L', String(t1))).to.deep.equal({
      error: refused,
    });
    expect(await answer(a, 'QACK', 'jobs', 'FENCE', 'L', String(t1), '1-1', '2-1')).to.deep.equal({
      error: refused,
    });
    expect(await answer(a, 'CSET', 'report:cache', 'A-late', 'FENCE', 'L', String(t1))).to.deep.equal({
      error: refused,
    });
    expect(await answer(a, 'CDEL', 'report:cache', 'FENCE', 'L', String(t1))).to.deep.equal({
      error: refused,
    });

    // What is stored is B's, as seen from every node.
    for (const node of cluster.nodes) {
      const r = client(node.port, 40_000);
      clients.push(r);
      expect(await answer(r, 'GET', 'report'), `GET on ${node.id}`).to.equal('B');
      expect(await answer(r, 'CGET', 'report:cache'), `CGET on ${node.id}`).to.equal('B');
    }
    // job-1 was acked once, by B; A's refused ack left job-2 in the queue (pending or ready
    // again), not acked.
    expect(await answer(observer, 'QLEN', 'jobs')).to.equal(1);
    const job2 = (await answer(b, 'QPOP', 'jobs', 'BLOCK', '20000', 'CONSUMER', 'B')) as [number, string][];
    expect(job2[0]![1]).to.equal('job-2');
    // The leader counted both refused cache writes (and ran no invalidation round for them);
    // summed over the nodes in case leadership moved during the test.
    let fencedWrites = 0;
    for (const node of cluster.nodes) {
      const r = client(node.port, 40_000);
      clients.push(r);
      const info = String(await answer(r, 'INFO', 'cache'));
      fencedWrites += Number(/cache_writes_fenced:(\d+)/.exec(info)?.[1] ?? 'NaN');
    }
    expect(fencedWrites).to.equal(2);
  });
});
