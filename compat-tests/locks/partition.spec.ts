/**
 * Locks across a network partition isolating the leader, made with iptables on loopback by
 * compat-tests/cluster/iptables.ts (each node runs as its own uid; the rules drop the
 * isolated node's peer traffic only, carry a comment naming this run, and are deleted one by
 * one afterwards, even when the test fails). Skipped with a message when iptables is not
 * usable (not root, not installed).
 *
 * What a user checks: on the isolated (minority) node LOCK, UNLOCK and LOCK.RENEW answer an
 * error, never a grant and never a hang; the majority goes on, and grants the lock held on
 * the minority side only once that hold's lease has run out.
 */
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported } from '../cluster/cluster-harness.js';
import { Partition, skipUnlessIptablesUsable } from '../cluster/iptables.js';
import { lock } from './lock-client.js';

const UIDS = [41011, 41012, 41013];
const COMMENT = `concord-locks-partition-test-${process.pid}`;
/** An answer slower than this from the isolated node counts as a hang. */
const FAIL_FAST_MS = 10_000;

describe('locks: partition isolating the leader (iptables)', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;
  const partition = new Partition(COMMENT);

  before(async function () {
    await skipUnlessClusterSupported(this);
    await skipUnlessIptablesUsable(this);
  });

  after(async () => {
    await partition.heal();
    await cluster?.destroy();
  });

  it('fails lock commands on the isolated node with an error; the majority grants its lock only after the lease ran out', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10, uids: UIDS }));
    const oldLeader = await c.waitForLeader(20_000);
    await c.waitUntilServing(20_000);
    const majority = c.nodes.filter((n) => n !== oldLeader);
    const isolated = client(oldLeader.port, 30_000);
    const majorityClient = client(majority[0]!.port, 30_000);
    try {
      const ttlMs = 4_000;
      const holdSentAt = performance.now();
      const held = await lock(isolated, 'part', 'minority', 'TTL', ttlMs);
      expect(held).to.be.a('number');

      await partition.isolate(oldLeader, majority);

      // The majority elects a leader of its own.
      await c.waitForLeader(20_000, majority);

      // The isolated node answers errors, fast, for each lock write (never a grant).
      const attempts: [string, string[]][] = [
        ['LOCK', ['part-2', 'minority']],
        ['LOCK', ['part', 'someone', 'WAIT', '1000']],
        ['LOCK.RENEW', ['part', 'minority']],
        ['UNLOCK', ['part', 'minority']],
      ];
      for (const [cmd, args] of attempts) {
        const sent = Date.now();
        const answer = await isolated.call(cmd, ...args).then(
          (r) => `reply ${String(r)}`,
          (e: Error) => e.message,
        );
        const tookMs = Date.now() - sent;
        console.log(`      ${cmd} ${args.join(' ')} on the isolated node: "${answer}" after ${tookMs} ms`);
        expect(answer, `${cmd} on the isolated node`).to.not.match(/^reply /);
        expect(answer).to.match(/CLUSTERDOWN|TRYAGAIN|NOQUORUM|LEADER/);
        expect(tookMs, `ms for ${cmd} to fail on the isolated node`).to.be.below(FAIL_FAST_MS);
      }

      // The majority grants the lock only once the minority's lease has run out (a new
      // leader renews leases when it takes office, so it may be later, never sooner).
      const t = await waitFor(
        'the majority to grant the lock',
        async () => {
          const r = await lock(majorityClient, 'part', 'majority', 'WAIT', 20_000);
          return r === null ? undefined : r;
        },
        40_000,
      );
      const grantedAt = performance.now();
      expect(t).to.be.greaterThan(held!);
      expect(grantedAt - holdSentAt, 'ms from the minority hold to the majority grant').to.be.at.least(ttlMs);
      // The minority holder's fencing token is refused from now on.
      const fenced = await majorityClient.call('SET', 'part:data', 'x', 'FENCE', 'part', String(held)).then(
        () => 'written',
        (e: Error) => e.message,
      );
      expect(fenced).to.match(/^FENCED /);
    } finally {
      isolated.disconnect();
      majorityClient.disconnect();
    }
  });
});
