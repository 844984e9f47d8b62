/**
 * NodeMetrics: a family's figures registered through the FamilyMetrics hook appear as
 * `concord_<section>_<field>` (counters with `_total`), read at each scrape from the state
 * machine given; a field the family does not report is left out, never shown as 0. Counter
 * sources read at scrape time move between scrapes.
 */
import { expect } from 'chai';
import { StateMachine } from '../commands/state-machine.js';
import { cacheInfoLines } from '../commands/cache/common.js';
import type { CacheFigures } from '../commands/cache/service.js';
import {
  CACHE_METRICS,
  KEYSPACE_METRICS,
  NodeMetrics,
  type FamilyMetrics,
  type MetricsSources,
} from './metrics.js';

function sources(
  sm: StateMachine,
  families: readonly FamilyMetrics[],
  calls: Map<string, number>,
): MetricsSources {
  return {
    nodeId: 'u1',
    raft: () => null,
    server: () => ({
      totalConnectionsReceived: 0,
      totalCommandsProcessed: [...calls.values()].reduce((a, b) => a + b, 0),
      rejectedConnections: 0,
      totalNetInputBytes: 0,
      totalNetOutputBytes: 0,
      connectedClients: 0,
    }),
    errors: () => new Map([['WRONGTYPE', 2]]),
    commands: () => calls,
    stateMachine: () => sm,
    families,
  };
}

describe('server/metrics NodeMetrics', () => {
  it('exports a family registered through the hook, read from the state machine at each scrape', async () => {
    const sm = new StateMachine();
    let held = 3;
    const family: FamilyMetrics = {
      section: 'widgets',
      fields: [
        { field: 'held', help: 'Widgets held now.', type: 'gauge' },
        { field: 'made', help: 'Widgets made since start.', type: 'counter' },
        { field: 'unreported', help: 'Not in read().', type: 'gauge' },
      ],
      read: (machine) => {
        expect(machine).to.equal(sm);
        return { held, made: 10 + held };
      },
    };
    const calls = new Map([['get', 5]]);
    const metrics = new NodeMetrics(sources(sm, [KEYSPACE_METRICS, family], calls), 0);
    let text = await metrics.scrape();
    expect(text).to.include('concord_widgets_held{node="u1"} 3\n');
    expect(text).to.include('# TYPE concord_widgets_made_total counter\n');
    expect(text).to.include('concord_widgets_made_total{node="u1"} 13\n');
    expect(text).to.not.match(/^concord_widgets_unreported\{/m);
    expect(text).to.include('concord_keyspace_keys{node="u1"} 0\n');
    expect(text).to.include('concord_commands_total{command="get",node="u1"} 5\n');
    expect(text).to.include('concord_error_replies_total{prefix="WRONGTYPE",node="u1"} 2\n');
    // Before Raft runs, the node is not a member and knows no leader.
    expect(text).to.include('concord_raft_member{node="u1"} 0\n');
    // ...and has no Raft figures at all rather than invented zeros.
    expect(text).to.not.match(/^concord_raft_(term|commit_index|proposals_total)\{/m);

    held = 4;
    calls.set('get', 7);
    calls.set('set', 1);
    metrics.observeFsyncMs(2);
    text = await metrics.scrape();
    expect(text).to.include('concord_widgets_held{node="u1"} 4\n');
    expect(text).to.include('concord_widgets_made_total{node="u1"} 14\n');
    expect(text).to.include('concord_commands_total{command="get",node="u1"} 7\n');
    expect(text).to.include('concord_commands_total{command="set",node="u1"} 1\n');
    expect(text).to.include('concord_raft_fsync_duration_seconds_bucket{le="0.0025",node="u1"} 1\n');
    expect(text).to.include('concord_raft_fsync_duration_seconds_bucket{le="0.001",node="u1"} 0\n');
    expect(text).to.include('concord_raft_fsync_duration_seconds_count{node="u1"} 1\n');
  });

  it('near-cache: /metrics and INFO cache print the one figures object (no INFO text parsed)', async () => {
    const sm = new StateMachine();
    let reads = 0;
    const figures: CacheFigures = {
      hits: 41,
      misses: 3,
      hitRatio: 41 / 44,
      leaseExpiries: 1,
      fetches: 5,
      refreshes: 2,
      missesJoined: 7,
      writes: 9,
      writesWithoutRound: 4,
      writesFenced: 0,
      invalidationsSent: 6,
      invalidationsReceived: 8,
      invalidationsTimedOut: 1,
      updatesSent: 0,
      updatesReceived: 0,
      downgradesSent: 2,
      downgradesReceived: 0,
      evictions: 11,
      flushesSent: 2,
      flushesReceived: 1,
      dataFlushes: 1,
      lines: 12,
      linesM: 1,
      linesE: 2,
      linesS: 3,
      bytes: 1300,
      maxLines: 100,
      maxBytes: 4096,
      leaseMs: 2000,
      writeLatencyP50Ms: 1.25,
      writeLatencyP99Ms: 3.5,
      invalidationWaitP50Ms: 0.25,
      invalidationWaitP99Ms: 0.5,
      directoryLeader: true,
      directoryKeys: 4,
      directoryHolders: 6,
    };
    const metrics = new NodeMetrics(
      {
        ...sources(sm, [CACHE_METRICS], new Map()),
        cacheFigures: () => {
          reads++;
          return figures;
        },
      },
      0,
    );
    const text = await metrics.scrape();
    expect(reads, 'one read of the figures per scrape').to.equal(1);
    const info = new Map(cacheInfoLines(figures).map((l) => l.split(':') as [string, string]));
    for (const [metric, field] of [
      ['concord_cache_hits_total', 'cache_hits'],
      ['concord_cache_misses_joined_total', 'cache_misses_joined'],
      ['concord_cache_refreshes_total', 'cache_refreshes'],
      ['concord_cache_evictions_total', 'cache_evictions'],
      ['concord_cache_data_flushes_total', 'cache_data_flushes'],
      ['concord_cache_lines_s', 'cache_lines_s'],
      ['concord_cache_bytes', 'cache_bytes'],
      ['concord_cache_lease_ms', 'cache_lease_ms'],
    ] as const) {
      expect(text, metric).to.include(`${metric}{node="u1"} ${info.get(field)}\n`);
    }
    expect(info.get('cache_hit_ratio')).to.equal('0.9318');
    expect(info.get('cache_write_latency_p99_ms')).to.equal('3.500');
    expect(info.get('cache_directory_leader')).to.equal('1');
  });

  it('scrapes within the minimum interval share one rendering; a later one reads afresh', async () => {
    const sm = new StateMachine();
    const calls = new Map([['get', 1]]);
    const cached = new NodeMetrics(sources(sm, [], calls), 60_000);
    const [first, concurrent] = await Promise.all([cached.scrape(), cached.scrape()]);
    expect(concurrent).to.equal(first);
    calls.set('get', 2);
    expect(await cached.scrape()).to.equal(first);
    expect(first).to.include('concord_commands_total{command="get",node="u1"} 1\n');
    const fresh = new NodeMetrics(sources(sm, [], calls), 0);
    expect(await fresh.scrape()).to.include('concord_commands_total{command="get",node="u1"} 2\n');
  });
});
