/**
 * Lock benchmark: Concord's LOCK/UNLOCK on a three-node cluster next to etcd's lock API on a
 * three-node etcd cluster, started and measured in the same run, both fsyncing, on loopback.
 *
 * Run: `npm run bench:locks -- [--seconds 8] [--rounds 2] [--clients 50] [--contenders 10]
 *       [--out bench/results/locks.json]`
 * Needs /usr/bin/etcd (Debian's etcd-server) and a built dist/.
 *
 * Cases (each runs for --seconds per system per round; the order of systems alternates by
 * round so machine noise hits both):
 * - uncontended: --clients clients, each on its own lock, loop LOCK name owner + UNLOCK name
 *   owner (Concord), or /v3/lock/lock {name, lease} + /v3/lock/unlock {key} through etcd's
 *   JSON gateway with one lease per client granted beforehand (as an etcd session does).
 *   Reported: lock+unlock pairs per second.
 * - contended: --contenders clients on ONE lock, each looping acquire (Concord: LOCK ... WAIT,
 *   woken in the apply of the release; etcd: /v3/lock/lock, which returns when the client's
 *   key becomes the lowest revision, learned through a watch) + release. Reported: hand-offs
 *   (grants) per second. Concord's tokens are checked to rise strictly in grant order.
 * Load goes to each system's leader (as bench/cluster-vs-peers.ts does). Targets (reported,
 * never asserted): uncontended >= 3x etcd; contended >= 20x etcd.
 *
 * Owns: the server processes it starts (stopped at the end, killed on exit).
 * Must never: talk to anything but 127.0.0.1, or assert performance (only report it).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { HOST, REPO_ROOT, rawConnection, type RawConnection } from '../compat-tests/harness.js';
import { ETCD_BIN, median, round, startConcordCluster, startEtcdCluster, toolVersion } from './peers.js';
import type { ConcordCluster, EtcdCluster } from './peers.js';

interface Sample {
  system: 'concord' | 'etcd';
  case: 'uncontended' | 'contended' | 'set-50-clients' | 'set-1-client';
  round: number;
  seconds: number;
  operations: number;
  perSecond: number;
  errors: number;
}

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    clients: { type: 'string', default: '50' },
    contenders: { type: 'string', default: '10' },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results', 'locks.json') },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CLIENTS = Number(args.clients);
const CONTENDERS = Number(args.contenders);

// ------------------------------------------------------------------ the closed loop

/** What one client's step adds to: completed operations and errors. */
interface Tally {
  operations: number;
  errors: number;
}

/**
 * Runs `step` back to back on every client until SECONDS have passed (a closed loop: a client
 * sends its next step only after the last one's answer). `seconds` runs until the slowest
 * client's last step ended, so `perSecond` counts every operation in it.
 */
async function closedLoop<C>(
  clients: readonly C[],
  step: (client: C, i: number, tally: Tally) => Promise<void>,
): Promise<Pick<Sample, 'seconds' | 'operations' | 'perSecond' | 'errors'>> {
  const tally: Tally = { operations: 0, errors: 0 };
  const until = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client, i) => {
      while (performance.now() < until) await step(client, i, tally);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    seconds,
    operations: tally.operations,
    perSecond: tally.operations / seconds,
    errors: tally.errors,
  };
}

// ------------------------------------------------------------------ Concord

async function concordConnections(port: number, n: number): Promise<RawConnection[]> {
  return Promise.all(Array.from({ length: n }, () => rawConnection(port, { connectTimeoutMs: 5_000 })));
}

async function concordUncontended(port: number, r: number): Promise<Sample> {
  const conns = await concordConnections(port, CLIENTS);
  const run = await closedLoop(conns, async (c, i, tally) => {
    const name = `bench:u:${r}:${i}`;
    const owner = `o${i}`;
    const got = await c.call('LOCK', name, owner, 'TTL', 30_000);
    const released = await c.call('UNLOCK', name, owner);
    if (got.isError || typeof got.value !== 'number' || released.value !== 1) tally.errors++;
    else tally.operations++;
  });
  for (const c of conns) c.close();
  return { system: 'concord', case: 'uncontended', round: r, ...run };
}

async function concordContended(port: number, r: number): Promise<Sample & { tokensRising: boolean }> {
  const conns = await concordConnections(port, CONTENDERS);
  const name = `bench:c:${r}`;
  const grants: number[] = [];
  const run = await closedLoop(conns, async (c, i, tally) => {
    const owner = `o${i}`;
    const got = await c.call('LOCK', name, owner, 'TTL', 30_000, 'WAIT', 30_000);
    if (got.isError || typeof got.value !== 'number') {
      tally.errors++;
      return;
    }
    // Recorded while held: the order of this array is the grant order.
    grants.push(got.value);
    tally.operations++;
    const released = await c.call('UNLOCK', name, owner);
    if (released.value !== 1) tally.errors++;
  });
  for (const c of conns) c.close();
  const tokensRising = grants.every((t, i) => i === 0 || t > grants[i - 1]!);
  return { system: 'concord', case: 'contended', round: r, ...run, tokensRising };
}

/**
 * Reference points on the same cluster: plain SETs from `clients` connections (what 2 writes
 * per lock+unlock pair compare to), and from 1 connection (one commit after another: the floor
 * of a hand-off, which is one commit of the UNLOCK plus the woken client's round trip).
 */
async function concordSets(port: number, r: number, clients: number): Promise<Sample> {
  const conns = await concordConnections(port, clients);
  const run = await closedLoop(conns, async (c, i, tally) => {
    const reply = await c.call('SET', `bench:set:${i}`, 'xxx');
    if (reply.isError) tally.errors++;
    else tally.operations++;
  });
  for (const c of conns) c.close();
  return { system: 'concord', case: clients === 1 ? 'set-1-client' : 'set-50-clients', round: r, ...run };
}

// ------------------------------------------------------------------ etcd (JSON gateway)

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function post(port: number, urlPath: string, body: unknown): Promise<Record<string, unknown>> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        path: urlPath,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`POST ${urlPath}: HTTP ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text) as Record<string, unknown>);
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`POST ${urlPath} timed out`)));
    req.end(data);
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function etcdLeases(port: number, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async () => String((await post(port, '/v3/lease/grant', { TTL: 60 }))['ID'])),
  );
}

async function etcdPair(port: number, name: string, lease: string): Promise<boolean> {
  const locked = await post(port, '/v3/lock/lock', { name: b64(name), lease });
  const key = locked['key'];
  if (typeof key !== 'string') return false;
  await post(port, '/v3/lock/unlock', { key });
  return true;
}

async function etcdUncontended(port: number, r: number): Promise<Sample> {
  const leases = await etcdLeases(port, CLIENTS);
  const run = await closedLoop(leases, async (lease, i, tally) => {
    if (await etcdPair(port, `bench-u-${r}-${i}`, lease).catch(() => false)) tally.operations++;
    else tally.errors++;
  });
  return { system: 'etcd', case: 'uncontended', round: r, ...run };
}

async function etcdContended(port: number, r: number): Promise<Sample> {
  const leases = await etcdLeases(port, CONTENDERS);
  const run = await closedLoop(leases, async (lease, _i, tally) => {
    if (await etcdPair(port, `bench-c-${r}`, lease).catch(() => false)) tally.operations++;
    else tally.errors++;
  });
  return { system: 'etcd', case: 'contended', round: r, ...run };
}

async function main(): Promise<void> {
  let concord: ConcordCluster | undefined;
  let etcd: EtcdCluster | undefined;
  const samples: Sample[] = [];
  let tokensRising = true;
  try {
    concord = await startConcordCluster(3);
    etcd = await startEtcdCluster(3);
    const concordPort = (await concord.leader()).port;
    const etcdPort = (await etcd.leader()).clientPort;
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['concord', 'etcd'] as const) : (['etcd', 'concord'] as const);
      for (const system of order) {
        if (system === 'concord') {
          samples.push(await concordUncontended(concordPort, r));
          const c = await concordContended(concordPort, r);
          tokensRising &&= c.tokensRising;
          samples.push(c);
          samples.push(await concordSets(concordPort, r, CLIENTS));
          samples.push(await concordSets(concordPort, r, 1));
        } else {
          samples.push(await etcdUncontended(etcdPort, r));
          samples.push(await etcdContended(etcdPort, r));
        }
        const last = samples.slice(system === 'concord' ? -4 : -2);
        for (const s of last)
          console.log(
            `round ${r} ${s.system} ${s.case}: ${round(s.perSecond, 1)}/s (${s.operations} in ${round(s.seconds, 2)} s, ${s.errors} errors)`,
          );
      }
    }
  } finally {
    agent.destroy();
    await concord?.stop();
    await etcd?.stop();
  }
  const med = (system: Sample['system'], c: Sample['case']): number =>
    median(samples.filter((s) => s.system === system && s.case === c).map((s) => s.perSecond));
  const summary = {
    uncontendedPairsPerSec: {
      concord: round(med('concord', 'uncontended'), 1),
      etcd: round(med('etcd', 'uncontended'), 1),
    },
    contendedHandoffsPerSec: {
      concord: round(med('concord', 'contended'), 1),
      etcd: round(med('etcd', 'contended'), 1),
    },
    ratios: {
      uncontended: round(med('concord', 'uncontended') / med('etcd', 'uncontended'), 2),
      contended: round(med('concord', 'contended') / med('etcd', 'contended'), 2),
    },
    targets: { uncontended: 3, contended: 20 },
    concordReference: {
      setsPerSec50Clients: round(med('concord', 'set-50-clients'), 1),
      setsPerSec1Client: round(med('concord', 'set-1-client'), 1),
      lockUnlockPairsPerSetPair: round(
        (2 * med('concord', 'uncontended')) / med('concord', 'set-50-clients'),
        2,
      ),
      handoffsPerSerialSet: round(med('concord', 'contended') / med('concord', 'set-1-client'), 2),
    },
    concordTokensRisingInGrantOrder: tokensRising,
  };
  const out = {
    generatedAt: new Date().toISOString(),
    command: `node dist/bench/locks-vs-etcd.js --seconds ${SECONDS} --rounds ${ROUNDS} --clients ${CLIENTS} --contenders ${CONTENDERS}`,
    machine: { cpus: (await import('node:os')).cpus().length, loadavg: (await import('node:os')).loadavg() },
    etcdVersion: toolVersion(ETCD_BIN, ['--version']).split('\n')[0],
    settings: { seconds: SECONDS, rounds: ROUNDS, clients: CLIENTS, contenders: CONTENDERS },
    summary,
    samples: samples.map((s) => ({ ...s, perSecond: round(s.perSecond, 1), seconds: round(s.seconds, 3) })),
  };
  mkdirSync(path.dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(summary, null, 2));
  if (samples.some((s) => s.operations === 0)) process.exitCode = 1;
}

await main();
