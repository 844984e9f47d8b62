/**
 * The program's module graph has no value-import cycles. A cycle works only while no module
 * in it reads another's export at load time, and then breaks by load order alone: loading
 * server/cache/agent.js first once failed with "Cannot access 'FENCE_ARGUMENT' before
 * initialization" (commands/locks/fence -> locks/args -> keys/set -> locks/fence). Type-only
 * imports vanish in the emitted JavaScript, so the check reads dist/, not the sources.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROGRAM_DIRS = ['server', 'commands', 'raft'];
const IMPORT = /^\s*(?:import|export)\s+(?:[^'";]*?\s+from\s+)?'(\.[^']+)'/gm;

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return modules(p);
    return name.endsWith('.js') && !name.endsWith('.spec.js') ? [p] : [];
  });
}

describe('the module graph (server, commands, raft)', () => {
  it('has no value-import cycles', () => {
    const graph = new Map<string, string[]>();
    for (const file of PROGRAM_DIRS.flatMap((d) => modules(path.join(DIST, d)))) {
      const source = readFileSync(file, 'utf8');
      graph.set(
        file,
        [...source.matchAll(IMPORT)].map((m) => path.resolve(path.dirname(file), m[1]!)),
      );
    }
    expect(graph.size).to.be.greaterThan(50);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'open');
      stack.push(file);
      for (const dep of graph.get(file) ?? []) {
        if (state.get(dep) === 'open') {
          cycles.push(
            [...stack.slice(stack.indexOf(dep)), dep].map((f) => path.relative(DIST, f)).join(' -> '),
          );
        } else if (state.get(dep) === undefined && graph.has(dep)) visit(dep);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (state.get(file) === undefined) visit(file);
    expect(cycles).to.deep.equal([]);
  });
});
