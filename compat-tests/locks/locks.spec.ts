/**
 * The lock manager on a real three-node cluster, with ioredis clients spread over all nodes.
 * What a user checks: mutual exclusion under contention (from the recorded grant/release
 * history and tokens, and a fenced read-modify-write counter that loses no update), sharers
 * coexisting and excluding writers, FIFO service, lease expiry and renewal, each deadlock
 * shape refused exactly once when its requests race from different nodes, a disconnected
 * waiter leaving the queue, and kill -9 of the leader keeping every hold, waiter and token.
 */
import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported, type ClusterNode } from '../cluster/cluster-harness.js';
import {
  acquire,
  exclusionViolations,
  infoLocks,
  lock,
  lockInfo,
  release,
  retrying,
  type Hold,
} from './lock-client.js';

describe('locks: three-node cluster', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  const clients: Redis[] = [];
  const connect = (node: ClusterNode, timeoutMs = 40_000): Redis => {
    const r = client(node.port, timeoutMs);
    clients.push(r);
    return r;
  };
  /** A client on node i mod 3 (spreads clients over all nodes). */
  const on = (i: number, timeoutMs?: number): Redis =>
    connect(cluster.nodes[i % cluster.nodes.length]!, timeoutMs);

  before(async function () {
    await skipUnlessClusterSupported(this);
    cluster = await Cluster.start({ size: 3, tickMs: 50, electionTicks: 10 });
    await cluster.waitForLeader(20_000);
    await cluster.waitUntilServing(20_000);
  });

  afterEach(() => {
    for (const r of clients.splice(0)) r.disconnect();
  });

  after(async () => {
    await cluster?.destroy();
  });

  /** Polls LOCK.INFO (through `via`) until `check` holds. */
  const waitForInfo = (
    via: Redis,
    name: string,
    what: string,
    check: (i: Awaited<ReturnType<typeof lockInfo>>) => boolean,
  ): Promise<true> =>
    waitFor(what, async () => (check(await lockInfo(via, name)) ? true : undefined), 20_000);

  it('keeps 50 clients on 3 nodes mutually exclusive: no overlapping holds, tokens rising in grant order, no lost update', async () => {
    const name = 'mutex';
    const rounds = 4;
    const holds: Hold[] = [];
    const workers = Array.from({ length: 50 }, (_, i) => on(i));
    await Promise.all(
      workers.map(async (redis, i) => {
        for (let r = 0; r < rounds; r++) {
          const hold = await acquire(redis, name, `w${i}`, 60_000);
          expect(hold, `w${i} granted within WAIT`).to.not.equal(null);
          holds.push(hold!);
          // A read-modify-write that only mutual exclusion keeps exact; fenced by the token.
          const v = Number((await redis.get('mutex:counter')) ?? '0');
          expect(
            await redis.call('SET', 'mutex:counter', String(v + 1), 'FENCE', name, String(hold!.token)),
          ).to.equal('OK');
          await release(redis, name, hold!);
        }
      }),
    );
    expect(holds).to.have.length(50 * rounds);
    expect(exclusionViolations(holds)).to.deep.equal([]);
    expect(await workers[0]!.get('mutex:counter')).to.equal(String(50 * rounds));
    // Every node applied the same history: same grant count and last token.
    const tokens = await Promise.all(
      [0, 1, 2].map(async (i) =>
        waitFor(`node ${i} caught up`, async () => {
          const t = await infoLocks(on(i), 'lock_last_token');
          return t >= Math.max(...holds.map((h) => h.token)) ? t : undefined;
        }),
      ),
    );
    expect(new Set(tokens).size).to.equal(1);
  });

  it('lets sharers coexist and excludes a writer; a reader behind the waiting writer waits too', async () => {
    const name = 'rw';
    const readers = [on(0), on(1), on(2)];
    const tokens = await Promise.all(readers.map((r, i) => lock(r, name, `r${i}`, 'SHARED')));
    expect(tokens.every((t) => typeof t === 'number')).to.equal(true);
    expect((await lockInfo(readers[0]!, name)).holders.map((h) => h.owner)).to.have.members([
      'r0',
      'r1',
      'r2',
    ]);
    const events: string[] = [];
    const writer = on(1);
    const writing = lock(writer, name, 'w', 'EXCLUSIVE', 'WAIT', 30_000).then((t) => {
      events.push('writer granted');
      return t;
    });
    await waitForInfo(readers[0]!, name, 'the writer queued', (i) => i.waiters.length === 1);
    const late = on(2);
    const lateRead = lock(late, name, 'r3', 'SHARED', 'WAIT', 30_000).then((t) => {
      events.push('late reader granted');
      return t;
    });
    await waitForInfo(readers[0]!, name, 'the late reader queued', (i) => i.waiters.length === 2);
    expect(await lock(on(0), name, 'r4', 'SHARED')).to.equal(null); // try-once behind the writer: no
    for (const [i, r] of readers.entries()) {
      expect(events).to.deep.equal([]);
      await r.call('UNLOCK', name, `r${i}`);
    }
    const wt = await writing;
    expect(wt).to.be.greaterThan(Math.max(...(tokens as number[])));
    expect(events).to.deep.equal(['writer granted']);
    await writer.call('UNLOCK', name, 'w');
    expect(await lateRead).to.be.greaterThan(wt!);
    expect(events).to.deep.equal(['writer granted', 'late reader granted']);
    await late.call('UNLOCK', name, 'r3');
  });

  it('serves waiters in FIFO order across nodes', async () => {
    const name = 'fifo';
    const holder = on(0);
    await lock(holder, name, 'h');
    const order: string[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 6; i++) {
      const r = on(i);
      pending.push(
        (async () => {
          const t = await lock(r, name, `q${i}`, 'WAIT', 30_000);
          order.push(`q${i}:${String(t)}`);
          await r.call('UNLOCK', name, `q${i}`);
        })(),
      );
      await waitForInfo(holder, name, `q${i} queued`, (info) => info.waiters.length === i + 1);
    }
    await holder.call('UNLOCK', name, 'h');
    await Promise.all(pending);
    const owners = order.map((o) => o.split(':')[0]);
    const grantTokens = order.map((o) => Number(o.split(':')[1]));
    expect(owners).to.deep.equal(['q0', 'q1', 'q2', 'q3', 'q4', 'q5']);
    expect([...grantTokens].sort((a, b) => a - b)).to.deep.equal(grantTokens);
  });

  it('expires a lease no sooner than its TTL after the last renewal; the late holder gets -LOCKLOST', async () => {
    const name = 'lease';
    const owner = on(0);
    const ttl = 1_500;
    const first = await lock(owner, name, 'a', 'TTL', ttl);
    let lastRenewSentAt = 0;
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      lastRenewSentAt = performance.now();
      expect(await owner.call('LOCK.RENEW', name, 'a')).to.equal(first);
    }
    const other = on(1);
    const t = await lock(other, name, 'b', 'WAIT', 20_000);
    const grantedAt = performance.now();
    expect(t).to.be.greaterThan(first!);
    expect(grantedAt - lastRenewSentAt, 'ms from the last renewal to the next grant').to.be.at.least(ttl);
    const lost = await owner.call('LOCK.RENEW', name, 'a').then(
      () => 'renewed',
      (e: Error) => e.message,
    );
    expect(lost).to.match(/^LOCKLOST /);
    // A fenced write with the expired holder's token is refused now that b holds the lock.
    const fenced = await owner.call('SET', 'lease:data', 'x', 'FENCE', name, String(first)).then(
      () => 'written',
      (e: Error) => e.message,
    );
    expect(fenced).to.match(/^FENCED token \d+ is older than lock 'lease' current token \d+/);
    await other.call('UNLOCK', name, 'b');
    expect(await infoLocks(other, 'lock_expiries')).to.be.at.least(1);
  });

  /** Sends `requests` at once from different nodes; returns each one's answer or error text. */
  async function race(requests: [Redis, ...string[]][]): Promise<string[]> {
    return Promise.all(
      requests.map(([r, ...args]) =>
        lock(r, ...args).then(
          (t) => `token ${String(t)}`,
          (e: Error) => e.message,
        ),
      ),
    );
  }

  async function deadlockShape(
    setup: [Redis, ...string[]][],
    closing: [Redis, ...string[]][],
    cleanup: [Redis, string, string][],
  ): Promise<void> {
    const before = await infoLocks(on(0), 'lock_deadlocks');
    for (const [r, ...args] of setup) expect(await lock(r, ...args)).to.be.a('number');
    const answers = race(closing);
    // Exactly one refused at once; the others stay blocked until the cycle's locks are freed.
    const refused = await waitFor('one request refused', async () => {
      const n = await infoLocks(on(0), 'lock_deadlocks');
      return n > before ? n : undefined;
    });
    expect(refused).to.equal(before + 1);
    for (const [r, name, owner] of cleanup) await r.call('UNLOCK', name, owner);
    const results = await answers;
    const deadlocks = results.filter((a) => a.startsWith('DEADLOCK '));
    expect(deadlocks, results.join(' | ')).to.have.length(1);
    expect(
      results.filter((a) => a.startsWith('token ')),
      results.join(' | '),
    ).to.have.length(closing.length - 1);
    // The same decision on every node.
    for (let i = 0; i < 3; i++)
      await waitFor(`node ${i} counted the deadlock`, async () =>
        (await infoLocks(on(i), 'lock_deadlocks')) === before + 1 ? true : undefined,
      );
    // Whoever was granted lets go.
    for (const [r, name, owner] of closing.map(([r, name, owner]) => [r, name!, owner!] as const))
      await r.call('UNLOCK', name, owner);
  }

  it('refuses exactly one request of a two-owner cycle raced from two nodes', async () => {
    const [a, b] = [on(0), on(1)];
    await deadlockShape(
      [
        [a, 'd2x', 'a'],
        [b, 'd2y', 'b'],
      ],
      [
        [on(0), 'd2y', 'a', 'WAIT', '30000'],
        [on(1), 'd2x', 'b', 'WAIT', '30000'],
      ],
      [
        [a, 'd2x', 'a'],
        [b, 'd2y', 'b'],
      ],
    );
  });

  it('refuses exactly one request of a three-owner cycle raced from three nodes', async () => {
    const [a, b, c] = [on(0), on(1), on(2)];
    await deadlockShape(
      [
        [a, 'd3x', 'a'],
        [b, 'd3y', 'b'],
        [c, 'd3z', 'c'],
      ],
      [
        [on(0), 'd3y', 'a', 'WAIT', '30000'],
        [on(1), 'd3z', 'b', 'WAIT', '30000'],
        [on(2), 'd3x', 'c', 'WAIT', '30000'],
      ],
      [
        [a, 'd3x', 'a'],
        [b, 'd3y', 'b'],
        [c, 'd3z', 'c'],
      ],
    );
  });

  it('refuses exactly one of two sharers upgrading at once; the other upgrades', async () => {
    const [a, b] = [on(0), on(1)];
    const before = await infoLocks(a, 'lock_deadlocks');
    expect(await lock(a, 'dup', 'a', 'SHARED')).to.be.a('number');
    expect(await lock(b, 'dup', 'b', 'SHARED')).to.be.a('number');
    const answers = race([
      [on(0), 'dup', 'a', 'EXCLUSIVE', 'WAIT', '30000'],
      [on(1), 'dup', 'b', 'EXCLUSIVE', 'WAIT', '30000'],
    ]);
    await waitFor('one upgrade refused', async () =>
      (await infoLocks(a, 'lock_deadlocks')) > before ? true : undefined,
    );
    // The refused sharer still holds SHARED; releasing it lets the other upgrade.
    const info = await lockInfo(a, 'dup');
    expect(info.waiters).to.have.length(1);
    const waiting = info.waiters[0]!.owner;
    const refusedOwner = waiting === 'a' ? 'b' : 'a';
    await (refusedOwner === 'a' ? a : b).call('UNLOCK', 'dup', refusedOwner);
    const results = await answers;
    expect(
      results.filter((r) => r.startsWith('DEADLOCK ')),
      results.join(' | '),
    ).to.have.length(1);
    expect((await lockInfo(a, 'dup')).mode).to.equal('exclusive');
    expect(await infoLocks(a, 'lock_deadlocks')).to.equal(before + 1);
    await a.call('UNLOCK', 'dup', waiting);
    await b.call('UNLOCK', 'dup', waiting);
  });

  it('removes a waiter whose client disconnects', async () => {
    const name = 'gone';
    const holder = on(0);
    await lock(holder, name, 'h');
    const leaver = on(1);
    void lock(leaver, name, 'l', 'WAIT', 30_000).catch(() => undefined);
    await waitForInfo(holder, name, 'the waiter queued', (i) => i.waiters.length === 1);
    leaver.disconnect();
    await waitForInfo(holder, name, 'the waiter removed', (i) => i.waiters.length === 0);
    // The lock goes to the next live waiter, not the one that left.
    const next = on(2);
    const t = lock(next, name, 'n', 'WAIT', 30_000);
    await waitForInfo(holder, name, 'the next waiter queued', (i) => i.waiters.length === 1);
    await holder.call('UNLOCK', name, 'h');
    expect(await t).to.be.a('number');
    expect((await lockInfo(holder, name)).holders.map((h) => h.owner)).to.deep.equal(['n']);
    await next.call('UNLOCK', name, 'n');
  });

  it('keeps every hold, waiter and token order through kill -9 of the leader mid-contention', async () => {
    const leader = await cluster.waitForLeader();
    const followers = cluster.nodes.filter((n) => n !== leader);
    const viaFollower = (i: number): Redis => connect(followers[i % followers.length]!);
    // A held lock with a queue, all of it through the followers.
    const name = 'failover';
    const holder = viaFollower(0);
    const held = await lock(holder, name, 'h', 'TTL', 60_000);
    const queued: Promise<number | null>[] = [];
    for (let i = 0; i < 4; i++) {
      const r = viaFollower(i);
      queued.push(retrying(() => lock(r, name, `q${i}`, 'TTL', 60_000, 'WAIT', 60_000)));
      await waitForInfo(holder, name, `q${i} queued`, (info) => info.waiters.length === i + 1);
    }
    const before = await lockInfo(holder, name);
    // Contention on a second lock by 10 clients on the followers while the leader dies.
    const holds: Hold[] = [];
    let stop = false;
    const contenders = Array.from({ length: 10 }, (_, i) =>
      (async () => {
        const r = viaFollower(i);
        while (!stop) {
          const hold = await acquire(r, 'contended', `c${i}`, 30_000);
          if (hold === null) continue;
          holds.push(hold);
          await release(r, 'contended', hold);
        }
      })(),
    );
    await waitFor('contention under way', () => (holds.length >= 20 ? true : undefined), 30_000);
    await leader.kill9();
    await cluster.waitForLeader(20_000, followers);
    const afterCount = holds.length;
    await waitFor(
      'contention goes on under the new leader',
      () => (holds.length >= afterCount + 20 ? true : undefined),
      30_000,
    );
    stop = true;
    await Promise.all(contenders);
    expect(exclusionViolations(holds)).to.deep.equal([]);
    // The held lock and its queue survived unchanged (leases only renewed).
    const after = await lockInfo(holder, name);
    expect(after.holders.map((h) => [h.owner, h.token])).to.deep.equal(
      before.holders.map((h) => [h.owner, h.token]),
    );
    expect(after.waiters.map((w) => w.owner)).to.deep.equal(before.waiters.map((w) => w.owner));
    // Served in order after the release, with tokens above every earlier one.
    await retrying(() => holder.call('UNLOCK', name, 'h'));
    const grants: number[] = [];
    for (const [i, q] of queued.entries()) {
      const t = await q;
      expect(t, `q${i} granted`).to.be.a('number');
      grants.push(t!);
      await retrying(() => viaFollower(i).call('UNLOCK', name, `q${i}`));
    }
    expect(grants[0]).to.be.greaterThan(held!);
    expect([...grants].sort((x, y) => x - y)).to.deep.equal(grants);
  });

  it('keeps holds, waiters and the token counter through kill -9 of every node and a restart', async () => {
    // The leader killed by the previous test comes back first.
    await Promise.all(cluster.nodes.filter((n) => !n.isRunning()).map((n) => n.start()));
    await cluster.waitUntilServing(30_000);
    const name = 'restart';
    const a = on(0);
    const held = await lock(a, name, 'h', 'TTL', 120_000);
    // A queued waiter whose wait outlives the restart (its client is gone after the kill).
    const w = on(1);
    void lock(w, name, 'q', 'WAIT', 120_000).catch(() => undefined);
    await waitForInfo(a, name, 'q queued', (i) => i.waiters.length === 1);
    const beforeInfo = await lockInfo(a, name);
    const lastToken = await infoLocks(a, 'lock_last_token');
    // Killed under the clients (a clean disconnect first would withdraw q's wait).
    await Promise.all(cluster.nodes.map((n) => n.kill9()));
    await Promise.all(cluster.nodes.map((n) => n.start()));
    await cluster.waitForLeader(30_000);
    const b = on(2);
    const afterInfo = await retrying(() => lockInfo(b, name));
    expect(afterInfo.holders.map((h) => [h.owner, h.token])).to.deep.equal([['h', held]]);
    expect(afterInfo.waiters.map((x) => x.owner)).to.deep.equal(beforeInfo.waiters.map((x) => x.owner));
    expect(await retrying(() => infoLocks(b, 'lock_last_token'))).to.equal(lastToken);
    // The counter goes on from where it was: the next grant is above every earlier token.
    const next = await retrying(() => lock(b, 'restart-2', 'n'));
    expect(next).to.equal(lastToken + 1);
    await retrying(() => b.call('UNLOCK', name, 'h'));
    await retrying(() => b.call('UNLOCK', 'restart-2', 'n'));
  });
});
