/**
 * Locks across a network partition isolating the leader, made with iptables on loopback as in
 * compat-tests/cluster/partition.spec.ts (each node runs as its own uid; the rules drop the
 * isolated node's peer traffic only, carry a comment naming this run, and are deleted one by
 * one afterwards, even when the test fails). Skipped with a message when iptables is not
 * usable (not root, not installed).
 *
 * What a user checks: on the isolated (minority) node LOCK, UNLOCK and LOCK.RENEW answer an
 * error, never a grant and never a hang; the majority goes on, and grants the lock held on
 * the minority side only once that hold's lease has run out.
 */
import { execFile, execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import { waitFor } from '../harness.js';
import { Cluster, client, skipUnlessClusterSupported, type ClusterNode } from '../cluster/cluster-harness.js';
import { lock } from './lock-client.js';

const UIDS = [41011, 41012, 41013];
const COMMENT = `concord-locks-partition-test-${process.pid}`;
/** An answer slower than this from the isolated node counts as a hang. */
const FAIL_FAST_MS = 10_000;

function iptables(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'iptables',
      ['-w', '5', ...args],
      { timeout: 15_000, encoding: 'utf8' },
      (error, _stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stderr: stderr || (error?.message ?? '') });
      },
    );
  });
}

async function iptablesUnusable(): Promise<string | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const probe = await iptables(['-S', 'OUTPUT']);
  return probe.code === 0 ? undefined : `iptables -S OUTPUT failed: ${probe.stderr.trim()}`;
}

/** The same three rules as compat-tests/cluster/partition.spec.ts. */
function partitionRules(isolated: ClusterNode, others: readonly ClusterNode[]): string[][] {
  const base = ['-o', 'lo', '-p', 'tcp'];
  const tag = ['-m', 'comment', '--comment', COMMENT, '-j', 'DROP'];
  const uid = String(isolated.uid);
  return [
    [
      ...base,
      '-m',
      'owner',
      '--uid-owner',
      uid,
      '-m',
      'multiport',
      '--dports',
      others.map((o) => o.peerPort).join(','),
      ...tag,
    ],
    [...base, '-m', 'owner', '--uid-owner', uid, '--sport', String(isolated.peerPort), ...tag],
    [...base, '--dport', String(isolated.peerPort), ...tag],
  ];
}

describe('locks: partition isolating the leader (iptables)', function () {
  this.timeout(120_000);
  let cluster: Cluster | undefined;
  const installed: string[][] = [];

  before(async function () {
    await skipUnlessClusterSupported(this);
    const reason = await iptablesUnusable();
    if (reason !== undefined) {
      console.log(`      skipped: iptables unusable (${reason}); install it and run as root`);
      this.skip();
    }
  });

  const healAtExit = (): void => {
    for (const rule of installed.splice(0).reverse()) {
      try {
        execFileSync('iptables', ['-w', '5', '-D', 'OUTPUT', ...rule], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // Best effort at exit; the rule's comment names this run for manual removal.
      }
    }
  };
  process.on('exit', healAtExit);

  after(async () => {
    process.removeListener('exit', healAtExit);
    while (installed.length > 0) {
      const rule = installed.pop()!;
      const run = await iptables(['-D', 'OUTPUT', ...rule]);
      if (run.code !== 0) throw new Error(`iptables -D OUTPUT ${rule.join(' ')} failed: ${run.stderr}`);
    }
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

      for (const rule of partitionRules(oldLeader, majority)) {
        const run = await iptables(['-I', 'OUTPUT', ...rule]);
        if (run.code !== 0) throw new Error(`iptables -I OUTPUT ${rule.join(' ')} failed: ${run.stderr}`);
        installed.push(rule);
      }

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
