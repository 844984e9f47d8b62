import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftCore } from './core.js';
import { FileStorage } from './file-storage.js';
import { EntryType, Role } from './messages.js';
import type { Message, NodeId } from './messages.js';

/** Three RaftCores over FileStorage in one process, driven by a minimal Ready loop. */
interface Node {
  id: NodeId;
  core: RaftCore;
  storage: FileStorage;
  inbox: Message[];
  applied: number;
  /** Payloads of applied Normal entries, in order. */
  payloads: string[];
}

const IDS = ['n1', 'n2', 'n3'];
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

function makeCore(id: NodeId, storage: FileStorage, applied: number): RaftCore {
  return new RaftCore({
    id,
    storage,
    electionTicks: 10,
    heartbeatTicks: 1,
    maxInflightMsgs: 64,
    maxSizePerMsg: 64 * 1024,
    preVote: true,
    checkQuorum: false,
    random: seeded(IDS.indexOf(id) + 7),
    applied,
  });
}

describe('RaftCore over FileStorage', function () {
  this.timeout(120_000);
  let root = '';

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'concord-fs-raft-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function start(): Promise<Map<NodeId, Node>> {
    const nodes = new Map<NodeId, Node>();
    for (const id of IDS) {
      const storage = await FileStorage.open(join(root, id), {
        peers: { voters: IDS },
        maxSegmentBytes: 64 * 1024,
      });
      const applied = storage.snapshot().metadata.index;
      nodes.set(id, { id, core: makeCore(id, storage, applied), storage, inbox: [], applied, payloads: [] });
    }
    return nodes;
  }

  /** One round: deliver each node's inbox, then handle its Ready (persist + sync, send, apply). */
  async function pump(nodes: Map<NodeId, Node>): Promise<boolean> {
    let busy = false;
    for (const n of nodes.values()) {
      const inbox = n.inbox.splice(0);
      for (const m of inbox) n.core.step(m);
      if (!n.core.hasReady()) continue;
      busy = true;
      const rd = n.core.ready();
      if (rd.snapshot !== null) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
      await n.storage.sync(); // persist before send (Figure 2)
      for (const m of rd.messages) nodes.get(m.to)!.inbox.push(m);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.Normal && e.data.length > 0) n.payloads.push(decoder.decode(e.data));
        n.applied = e.index;
      }
      n.core.advance();
    }
    return busy;
  }

  async function settle(nodes: Map<NodeId, Node>, done: () => boolean, what: string): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      if (done()) return;
      if (!(await pump(nodes))) for (const n of nodes.values()) n.core.tick();
    }
    expect.fail(`no progress: ${what}`);
  }

  function leaderOf(nodes: Map<NodeId, Node>): Node | undefined {
    return [...nodes.values()].find((n) => n.core.status().role === Role.Leader);
  }

  it('elects, commits 1000 proposals, and after close and reopen every node holds the same state', async () => {
    const nodes = await start();
    await settle(nodes, () => leaderOf(nodes) !== undefined, 'election');
    const sent: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const leader = leaderOf(nodes);
      expect(leader, 'a leader').to.not.equal(undefined);
      const payload = `p${i}`;
      leader!.core.propose(encoder.encode(payload));
      sent.push(payload);
      if (i % 50 === 49) {
        const target = leader!.core.status().lastIndex;
        await settle(nodes, () => [...nodes.values()].every((n) => n.applied >= target), `apply ${target}`);
      }
      if (i === 499) {
        // Snapshot and compact mid-way, as the driver will.
        for (const n of nodes.values()) {
          n.storage.createSnapshot(
            n.applied,
            n.core.status().confState,
            encoder.encode(`state@${n.applied}`),
          );
          n.storage.compact(n.applied - 10);
          await n.storage.sync();
        }
      }
    }
    for (const n of nodes.values()) expect(n.payloads).to.deep.equal(sent);

    const before = new Map<NodeId, unknown>();
    for (const n of nodes.values()) {
      const s = n.storage;
      before.set(n.id, {
        hardState: s.getHardState(),
        first: s.firstIndex(),
        last: s.lastIndex(),
        entries: s.entries(s.firstIndex(), s.lastIndex() + 1),
        snapshot: s.snapshot(),
      });
      await s.close();
    }
    const reopened = await start();
    const terms = new Set<number>();
    for (const n of reopened.values()) {
      const s = n.storage;
      expect(s.recovery.truncatedBytes).to.equal(0);
      expect({
        hardState: s.getHardState(),
        first: s.firstIndex(),
        last: s.lastIndex(),
        entries: s.entries(s.firstIndex(), s.lastIndex() + 1),
        snapshot: s.snapshot(),
      }).to.deep.equal(before.get(n.id));
      expect(s.snapshot().metadata.index).to.be.greaterThan(500);
      expect(s.getHardState().commit).to.be.at.least(1000);
      terms.add(s.getHardState().term);
    }
    expect(terms.size).to.equal(1);
    // The logs agree entry for entry where they overlap.
    const [a, b, c] = [...reopened.values()].map((n) => n.storage);
    const lo = Math.max(a!.firstIndex(), b!.firstIndex(), c!.firstIndex());
    const hi = Math.min(a!.lastIndex(), b!.lastIndex(), c!.lastIndex());
    expect(a!.entries(lo, hi + 1))
      .to.deep.equal(b!.entries(lo, hi + 1))
      .and.deep.equal(c!.entries(lo, hi + 1));

    // The restarted cluster elects again and keeps committing on the recovered logs.
    await settle(reopened, () => leaderOf(reopened) !== undefined, 're-election');
    leaderOf(reopened)!.core.propose(encoder.encode('after-restart'));
    const target = leaderOf(reopened)!.core.status().lastIndex;
    await settle(
      reopened,
      () => [...reopened.values()].every((n) => n.applied >= target),
      'apply after restart',
    );
    for (const n of reopened.values()) {
      expect(n.payloads).to.include('after-restart');
      expect(n.core.status().term).to.be.greaterThan([...terms][0]!);
      await n.storage.close();
    }
  });
});
