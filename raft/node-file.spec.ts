/**
 * The node driver over the durable FileStorage (real files, real fsync) and the LocalNetwork:
 * a cluster replicates with snapshots and compaction, a follower restarts from its directory
 * and catches up, then the whole cluster restarts from disk with every applied value intact.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorage } from './file-storage.js';
import { LocalNetwork } from './local-transport.js';
import { EntryType } from './messages.js';
import type { NodeId, Snapshot } from './messages.js';
import { RaftNode } from './node.js';
import type { AppliedEntry, RaftApplication } from './node.js';

const IDS: readonly NodeId[] = ['n1', 'n2', 'n3'];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

class ListApp implements RaftApplication<number> {
  values: string[] = [];
  lastIndex = 0;
  restores = 0;

  apply(e: AppliedEntry): number {
    expect(e.index).to.equal(this.lastIndex + 1);
    this.lastIndex = e.index;
    if (e.type === EntryType.Normal) this.values.push(decoder.decode(e.payload));
    return e.index;
  }

  snapshot(): Promise<Uint8Array> {
    return Promise.resolve(encoder.encode(JSON.stringify({ index: this.lastIndex, values: this.values })));
  }

  restore(s: Snapshot): void {
    const state = JSON.parse(decoder.decode(s.data)) as { index: number; values: string[] };
    expect(state.index).to.equal(s.metadata.index);
    this.values = state.values;
    this.lastIndex = state.index;
    this.restores++;
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('raft/node over FileStorage', function () {
  this.timeout(30_000);
  let root = '';
  const net = new LocalNetwork();
  const nodes = new Map<NodeId, RaftNode<number>>();
  const storages = new Map<NodeId, FileStorage>();
  const apps = new Map<NodeId, ListApp>();

  async function start(id: NodeId): Promise<void> {
    const storage = await FileStorage.open(join(root, id));
    const app = new ListApp();
    storages.set(id, storage);
    apps.set(id, app);
    nodes.set(
      id,
      await RaftNode.start<number>({
        id,
        storage,
        transport: net.connect(id),
        application: app,
        tickMs: 10,
        electionTicks: 10,
        heartbeatTicks: 1,
        bootstrap: IDS,
        snapshotEntries: 40,
        snapshotCatchUpEntries: 10,
        onFatal: (error) => {
          throw error;
        },
      }),
    );
  }

  async function stop(id: NodeId): Promise<void> {
    await nodes.get(id)?.stop();
    nodes.delete(id);
    await storages.get(id)?.close();
    storages.delete(id);
  }

  async function leader(): Promise<RaftNode<number>> {
    let found: RaftNode<number> | undefined;
    await waitFor(() => {
      const leaders = [...nodes.values()].filter((n) => n.isLeader);
      found = leaders[0];
      return leaders.length === 1 && [...nodes.values()].every((n) => n.leaderId === found!.id);
    }, 'a leader');
    return found!;
  }

  async function converged(count: number): Promise<void> {
    const ids = [...nodes.keys()];
    await waitFor(
      () => ids.every((id) => apps.get(id)!.values.length >= count),
      `${count} values everywhere`,
    );
    const reference = apps.get(ids[0]!)!.values;
    for (const id of ids) expect(apps.get(id)!.values, id).to.deep.equal(reference);
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'concord-node-'));
  });

  after(async () => {
    for (const id of [...nodes.keys()]) await stop(id);
    await rm(root, { recursive: true, force: true });
  });

  it('replicates, snapshots, restarts a follower and then the whole cluster from disk', async () => {
    for (const id of IDS) await start(id);
    let n = await leader();
    await Promise.all(Array.from({ length: 100 }, (_, i) => n.propose(encoder.encode(`v${i}`))));
    await converged(100);
    // Snapshots are taken in the background (serialized, then their file written ahead).
    const leaderNode = n;
    await waitFor(() => leaderNode.status().snapshotIndex > 0, 'a snapshot on the leader');

    const follower = IDS.find((id) => id !== n.id)!;
    // The follower takes its own in the background too: stopped before that, it would have
    // nothing to restore from (a race this test lost once on a loaded machine).
    const followerNode = nodes.get(follower)!;
    await waitFor(() => followerNode.status().snapshotIndex > 0, 'a snapshot on the follower');
    await stop(follower);
    for (let i = 100; i < 150; i++) await n.propose(encoder.encode(`v${i}`));
    await start(follower);
    expect(apps.get(follower)!.restores).to.equal(1); // restored from its own snapshot file
    await converged(150);

    for (const id of IDS) await stop(id);
    for (const id of IDS) await start(id);
    n = await leader();
    await n.propose(encoder.encode('after-restart'));
    await converged(151);
    expect(apps.get(n.id)!.values.slice(0, 3)).to.deep.equal(['v0', 'v1', 'v2']);
    expect(apps.get(n.id)!.values[150]).to.equal('after-restart');
  });
});
