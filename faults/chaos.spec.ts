/**
 * `npm run chaos` argument handling (the long runs themselves are soak runs, not CI tests):
 * bad arguments are refused with exit code 2 and a message naming the option, before any
 * cluster starts; --help lists the families and nemeses a user can pick.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHAOS = fileURLToPath(new URL('./chaos.js', import.meta.url));

function chaos(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CHAOS, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('npm run chaos: arguments', () => {
  it('refuses a non-positive --minutes with exit code 2', () => {
    const r = chaos('--minutes', '0');
    expect(r.status).to.equal(2);
    expect(r.out).to.match(/--minutes must be a positive number/);
  });

  it('refuses an unknown family or nemesis by name', () => {
    const f = chaos('--families', 'registers,nosuch');
    expect(f.status).to.equal(2);
    expect(f.out).to.match(/--families: .*nosuch/);
    const n = chaos('--nemeses', 'kill-one,explode');
    expect(n.status).to.equal(2);
    expect(n.out).to.match(/unknown explode/);
  });

  it('lists families and nemeses in --help', () => {
    const r = chaos('--help');
    expect(r.status).to.equal(0);
    expect(r.out).to.match(/registers,locks,queues,cache/);
    expect(r.out).to.match(/partition-leader/);
  });
});
