/**
 * The very topology docker/docker-compose.yml describes, run without a container engine: each
 * service a process in its own network namespace, reached by its service name, configured by
 * the environment the compose file and .env.example give it (compat-tests/ops/netns.ts).
 * Checks that the cluster forms and elects one leader, that the compose health check passes in
 * every namespace, that redis-cli works against every node by hostname from another namespace,
 * and that the procedures of docs/operations.md work as written: the `five` profile grows the
 * cluster with RAFT.NODE ADD, a dead node is replaced (REMOVE, empty volume, start, ADD), a
 * stopped follower's volume copied after RAFT.SNAPSHOT restores the whole cluster; and that
 * SIGTERM (docker stop) ends each node with exit code 0.
 *
 * Needs root, iproute2 and redis-cli (CI has them); skipped with the reason otherwise.
 */
import { expect } from 'chai';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../harness.js';
import { DOCKERFILE, ENV_EXAMPLE, dockerfileCommand, loadCompose, type ComposeService } from './compose.js';
import { NetnsProject, netnsUnsupported } from './netns.js';

const START_MS = 30_000;

/** `field:value` lines of an INFO reply. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return out;
}

describe('compose topology in network namespaces (docker-compose.yml without Docker)', function () {
  this.timeout(120_000);
  const project = loadCompose(ENV_EXAMPLE);
  const command = dockerfileCommand(readFileSync(DOCKERFILE, 'utf8'));
  const founders = project.services.filter((s) => s.profiles.length === 0);
  const later = project.services.filter((s) => s.profiles.includes('five'));
  let net: NetnsProject | null = null;

  const portOf = (s: ComposeService): number => Number(s.environment.get('CONCORD_PORT'));
  const password = (s: ComposeService): string | undefined => s.environment.get('CONCORD_REQUIREPASS');
  /** INFO raft of `target`, asked from `from`'s namespace by hostname. */
  async function raftInfo(from: ComposeService, target: ComposeService): Promise<Map<string, string>> {
    const text = await net!.redisCli(from.name, target.hostname, portOf(target), password(target), [
      'INFO',
      'raft',
    ]);
    return infoFields(text);
  }

  before(function () {
    const reason = netnsUnsupported();
    if (reason !== undefined) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    expect(command, 'the image command').to.deep.equal(['node', '/app/dist/server/main.js', 'server']);
    expect(founders).to.have.length(3);
    net = new NetnsProject(project.services);
  });

  after(async function () {
    this.timeout(60_000);
    if (net === null) return;
    await net.destroy();
    expect(net.leftovers(), 'namespaces, links, hosts files or dirs left behind').to.deep.equal([]);
  });

  it('the three founding services form a cluster with one leader, healthy in every namespace', async () => {
    for (const s of founders) net!.start(s.name, command);
    for (const s of founders) {
      const p = net!.get(s.name);
      await waitFor(
        `${s.name} listening`,
        () => {
          if (p.child === null) throw new Error(`${s.name} exited: ${p.stderr.slice(-2000)}`);
          return p.stdout.includes('Concord listening on 0.0.0.0:6379') ? true : undefined;
        },
        START_MS,
      );
    }
    // Each node, asked from the NEXT service's namespace by hostname, reports the same leader.
    const leader = await waitFor(
      'one leader known to all three',
      async () => {
        const views = await Promise.all(
          founders.map((s, i) => raftInfo(founders[(i + 1) % founders.length]!, s)),
        );
        const leaders = new Set(views.map((v) => v.get('raft_leader_id')));
        if (leaders.size !== 1 || leaders.has('') || leaders.has(undefined)) return undefined;
        const roles = views.map((v) => v.get('raft_role')).sort();
        if (roles.join() !== 'follower,follower,leader') return undefined;
        for (const v of views)
          expect(v.get('raft_voters')!.split(',').sort()).to.deep.equal(['n1', 'n2', 'n3']);
        return [...leaders][0]!;
      },
      START_MS,
    );
    expect(['n1', 'n2', 'n3']).to.include(leader);

    // The compose health check (/readyz through scripts/healthcheck.mjs) passes in each namespace.
    for (const s of founders) {
      const r = await net!.healthcheck(s.name);
      expect(r.code, `${s.name} health check: ${r.stdout}${r.stderr}`).to.equal(0);
      expect(r.stdout).to.match(/^200 /);
    }

    // redis-cli on every node: a write through one, read back on each from another namespace.
    const [a, b, c] = founders as [ComposeService, ComposeService, ComposeService];
    expect(
      await net!.redisCli(b.name, c.hostname, portOf(c), password(c), ['SET', 'compose:k', 'v1']),
    ).to.equal('OK');
    for (const [i, s] of founders.entries()) {
      const from = founders[(i + 2) % founders.length]!;
      await waitFor(
        `${s.name} serves the write`,
        async () =>
          (await net!.redisCli(from.name, s.hostname, portOf(s), password(s), ['GET', 'compose:k'])) === 'v1'
            ? true
            : undefined,
        10_000,
      );
    }
    expect(await net!.redisCli(a.name, a.hostname, portOf(a), password(a), ['INCR', 'compose:n'])).to.equal(
      '1',
    );
    // Without the password from the env file, a client from another host is refused.
    const denied = await net!.exec(b.name, [
      'redis-cli',
      '-h',
      a.hostname,
      '-p',
      String(portOf(a)),
      'GET',
      'compose:k',
    ]);
    expect(denied.stdout + denied.stderr).to.match(/NOAUTH/);
  });

  /** The service that is leader, as a running service sees it (asked from `from`'s namespace). */
  async function leaderView(from: ComposeService = founders[0]!): Promise<ComposeService> {
    const view = await raftInfo(from, from);
    const id = view.get('raft_leader_id');
    const s = project.services.find((f) => f.environment.get('CONCORD_NODE_ID') === id);
    if (s === undefined || net!.get(s.name).child === null) throw new Error(`no running leader (${id})`);
    return s;
  }
  const running = (): ComposeService[] => project.services.filter((s) => net!.get(s.name).child !== null);
  const get = (from: ComposeService, target: ComposeService, key: string): Promise<string> =>
    net!.redisCli(from.name, target.hostname, portOf(target), password(target), ['GET', key]);
  async function onLeader(args: string[]): Promise<string> {
    const leader = await leaderView(running()[0]);
    return net!.redisCli(running()[0]!.name, leader.hostname, portOf(leader), password(leader), args);
  }

  it('the `five` profile: nodes 4 and 5 join, RAFT.NODE ADD makes them voters', async () => {
    expect(later.map((s) => s.name)).to.deep.equal(['concord4', 'concord5']);
    for (const s of later) {
      net!.start(s.name, command);
      await waitFor(
        `${s.name} listening`,
        () => (net!.get(s.name).stdout.includes('Concord listening') ? true : undefined),
        START_MS,
      );
      const id = s.environment.get('CONCORD_NODE_ID')!;
      // As docs/operations.md: RAFT.NODE ADD <id> <service>:<port> on the leader.
      await waitFor(
        `RAFT.NODE ADD ${id}`,
        async () => {
          const leader = await leaderView();
          const reply = await net!.redisCli(
            later[0]!.name,
            leader.hostname,
            portOf(leader),
            password(leader),
            ['RAFT.NODE', 'ADD', id, `${s.hostname}:${portOf(s)}`],
          );
          if (reply === 'OK' || /already a member/.test(reply)) return true;
          throw new Error(reply);
        },
        START_MS,
      );
    }
    const all = [...founders, ...later];
    await waitFor(
      'five voters everywhere',
      async () => {
        for (const s of all) {
          const v = await raftInfo(later[1]!, s);
          if ((v.get('raft_voters') ?? '').split(',').length !== 5) return undefined;
        }
        return true;
      },
      START_MS,
    );
    const n5 = later[1]!;
    expect(
      await net!.redisCli(founders[0]!.name, n5.hostname, portOf(n5), password(n5), ['GET', 'compose:k']),
    ).to.equal('v1');
  });

  it('replacing a dead node as docs/operations.md says: REMOVE, empty volume, start, ADD', async () => {
    const dead = founders[2]!;
    const id = dead.environment.get('CONCORD_NODE_ID')!;
    // Not the leader: losing it must not cost an election in the middle of the procedure.
    await waitFor('a leader other than the node to kill', async () =>
      (await leaderView()).name !== dead.name ? true : (await onLeader(['RAFT.TRANSFER-LEADER']), undefined),
    );
    await net!.kill(dead.name);
    await waitFor(
      `RAFT.NODE REMOVE ${id}`,
      async () => ((await onLeader(['RAFT.NODE', 'REMOVE', id])) === 'OK' ? true : undefined),
      START_MS,
    );
    rmSync(net!.dataDir(dead.name), { recursive: true, force: true });
    expect(await onLeader(['SET', 'compose:during', 'x'])).to.equal('OK');
    net!.start(dead.name, command);
    await waitFor(
      `${dead.name} listening`,
      () => (net!.get(dead.name).stdout.includes('Concord listening') ? true : undefined),
      START_MS,
    );
    await waitFor(
      `RAFT.NODE ADD ${id}`,
      async () => {
        const reply = await onLeader(['RAFT.NODE', 'ADD', id, `${dead.hostname}:${portOf(dead)}`]);
        if (reply === 'OK' || /already a member/.test(reply)) return true;
        throw new Error(reply);
      },
      START_MS,
    );
    await waitFor(
      `${id} a voter again, serving the data`,
      async () => {
        const view = await raftInfo(founders[0]!, dead);
        if (!(view.get('raft_voters') ?? '').split(',').includes(id)) return undefined;
        if ((await get(founders[0]!, dead, 'compose:during')) !== 'x') return undefined;
        return (await get(founders[0]!, dead, 'compose:k')) === 'v1' ? true : undefined;
      },
      START_MS,
    );
    expect((await net!.healthcheck(dead.name)).code).to.equal(0);
  });

  it('backup of a stopped follower after RAFT.SNAPSHOT, restored onto every node', async () => {
    const leader = await leaderView();
    const follower = running().find((s) => s.name !== leader.name)!;
    const index = await net!.redisCli(
      follower.name,
      follower.hostname,
      portOf(follower),
      password(follower),
      ['RAFT.SNAPSHOT'],
    );
    expect(Number(index)).to.be.above(0);
    // docker compose stop <follower>; tar its volume; docker compose start <follower>.
    expect(await net!.stop(follower.name)).to.equal(0);
    const backup = mkdtempSync(path.join(tmpdir(), 'concord-backup-'));
    try {
      cpSync(net!.dataDir(follower.name), backup, { recursive: true });
      expect(readdirSync(path.join(backup, 'raft', 'snap')).some((f) => f.endsWith('.snap'))).to.equal(true);
      net!.start(follower.name, command);
      await waitFor(
        `${follower.name} healthy again`,
        async () => ((await net!.healthcheck(follower.name)).code === 0 ? true : undefined),
        START_MS,
      );
      expect(await onLeader(['SET', 'compose:after-backup', 'y'])).to.equal('OK');

      // Restore: stop everything, the backup into every volume, start everything.
      const nodes = running();
      for (const s of nodes) expect(await net!.stop(s.name), `${s.name} exit code`).to.equal(0);
      for (const s of nodes) {
        rmSync(net!.dataDir(s.name), { recursive: true, force: true });
        cpSync(backup, net!.dataDir(s.name), { recursive: true });
      }
      for (const s of nodes) net!.start(s.name, command);
      await waitFor(
        'the restored cluster serves the backup',
        async () => {
          for (const s of nodes) if ((await net!.healthcheck(s.name)).code !== 0) return undefined;
          return true;
        },
        START_MS,
      );
      for (const [i, s] of nodes.entries()) {
        const from = nodes[(i + 1) % nodes.length]!;
        expect(await get(from, s, 'compose:k'), s.name).to.equal('v1');
        expect(await get(from, s, 'compose:during'), s.name).to.equal('x');
        // Written after the backup: gone.
        expect(await get(from, s, 'compose:after-backup'), s.name).to.equal('');
      }
      expect(await onLeader(['SET', 'compose:restored', 'z'])).to.equal('OK');
    } finally {
      rmSync(backup, { recursive: true, force: true });
    }
  });

  it('SIGTERM (docker stop) stops every node with exit code 0', async () => {
    for (const s of project.services) {
      if (net!.get(s.name).child === null) continue;
      expect(await net!.stop(s.name), `${s.name} exit code`).to.equal(0);
    }
  });
});
