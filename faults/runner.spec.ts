/**
 * The run report's latency plot (faults/runner.ts latencySvg) takes a soak's whole history: a
 * replay of seed 31 for 60 s recorded more ops than a spread `Math.max(...)` may take as
 * arguments, and the run died writing its report (RangeError) after every heal had passed.
 */
import { expect } from 'chai';
import type { BaseOp } from './history.js';
import { latencySvg } from './runner.js';

describe('faults/runner: the latency plot', () => {
  it('plots a history of a million ops (more than a call may take as arguments)', () => {
    const history: BaseOp[] = [];
    for (let i = 0; i < 1_000_000; i++) {
      history.push({
        id: i,
        process: i % 6,
        node: 'n1',
        kind: 'write',
        result: 'ok',
        invokeMs: i,
        completeMs: i + 2,
      });
    }
    const svg = latencySvg(history, []);
    expect(svg.startsWith('<svg')).to.equal(true);
    expect(svg.trimEnd().endsWith('</svg>')).to.equal(true);
  });
});
