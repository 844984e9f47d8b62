/**
 * Time passes inside the replicated state even when nobody writes: the leader proposes a
 * sys.tick when a TTL is due (server/leader-ticker.ts), so expired keys are reclaimed on every
 * node at the same log index, not only when later writes happen to arrive.
 */
import { expect } from 'chai';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported } from './cluster-harness.js';

describe('cluster: expiry without writes', function () {
  this.timeout(60_000);
  let cluster: Cluster | undefined;

  before(async function () {
    await skipUnlessClusterSupported(this);
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('reclaims keys whose TTL ran out on every node though no client writes after them', async () => {
    const c = (cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 }));
    await c.waitForLeader();
    const clients = c.nodes.map((n) => client(n.port));
    try {
      const pipeline = clients[1]!.pipeline();
      for (let i = 0; i < 300; i++) pipeline.set(`ttl:${i}`, 'v', 'PX', 300);
      pipeline.set('durable', 'v');
      const results = await pipeline.exec();
      expect(results?.every(([err]) => err === null)).to.equal(true);
      // DBSIZE counts keys held, expired or not (as Redis's does): it falls to 1 only once
      // the expired ones were deleted from the replicated state.
      for (const r of clients) {
        await waitFor(
          'expired keys reclaimed',
          async () => ((await r.dbsize()) === 1 ? true : undefined),
          15_000,
        );
        expect(await r.get('durable')).to.equal('v');
      }
    } finally {
      for (const r of clients) r.disconnect();
    }
  });
});
