/**
 * NodeMetrics: a family's figures registered through the FamilyMetrics hook appear as
 * `concord_<section>_<field>` (counters with `_total`), read at each scrape from the state
 * machine given; a field the family does not report is left out, never shown as 0. Counter
 * sources read at scrape time move between scrapes.
 */
import { expect } from 'chai';
import { StateMachine } from '../commands/state-machine.js';
import { KEYSPACE_METRICS, NodeMetrics, type FamilyMetrics, type MetricsSources } from './metrics.js';

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
