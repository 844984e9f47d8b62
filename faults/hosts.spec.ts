/**
 * Fault-suite hosts in real network namespaces (skipped, with the reason, where they cannot be
 * made): a cut is a real packet drop (a TCP connect from one namespace to another stalls and
 * times out, the other direction still works for a one-way cut), packet loss installs an
 * nftables numgen rule, heal() restores traffic, and cleanup() leaves no namespace, link or
 * rule behind; sweepStale() removes what a dead runner left.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Hosts, must, netnsUnusable, run, sweepStale, type Host } from './hosts.js';

/** A TCP connect from inside `from`'s namespace to `to`'s proxy port: 'ok' or 'timeout'/'refused'. */
async function probe(from: Host, to: Host, timeoutS = 1): Promise<string> {
  // bash's /dev/tcp inside the namespace, bounded by `timeout`.
  const r = await from.exec('timeout', [String(timeoutS), 'bash', '-c', `exec 3<>/dev/tcp/${to.ip}/${to.peerPort}`]);
  return r.code === 0 ? 'ok' : r.code === 124 ? 'timeout' : `refused(${r.code})`;
}

describe('faults/hosts: network namespaces on a bridge', function () {
  this.timeout(60_000);
  let hosts: Hosts | undefined;
  let dir: string;

  before(async function () {
    const why = await netnsUnusable();
    if (why !== undefined) {
      console.log(`      skipped: network namespaces unavailable (${why}); the loopback fallback is tested in faults.spec`);
      this.skip();
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-hosts-'));
  });

  after(async () => {
    await hosts?.cleanup();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('cuts, drops and heals real traffic between namespaces, then removes everything', async () => {
    const h = (hosts = await Hosts.create({ slots: 3, runDir: dir, seed: 1, mode: 'netns' }));
    const [a, b, c] = h.hosts as [Host, Host, Host];
    expect(a.ns).to.match(/^cfz[0-9a-z]+n1$/);
    expect(h.bridge!.length).to.be.at.most(15);
    // The proxies listen on every host: connects work both ways.
    expect(await probe(a, b)).to.equal('ok');
    expect(await probe(b, a)).to.equal('ok');

    await h.cut(a, b); // a -> b dropped at b
    expect(await probe(a, b)).to.equal('timeout');
    expect(await probe(a, c)).to.equal('ok');
    // Only packets from a are dropped, but b's connects to a fail too: a's SYN-ACK is a packet
    // from a. A one-way packet cut breaks TCP both ways, as on a real network; what stays
    // one-way is which messages are lost while the connections stall.
    expect(await probe(b, a)).to.equal('timeout');
    await h.heal();
    expect(await probe(a, b)).to.equal('ok');

    await h.loss(b, 100);
    const rules = await b.exec('nft', ['list', 'ruleset']);
    if (h.useNft) expect(rules.stdout).to.include('numgen random mod 100 <= 99 drop');
    expect(await probe(a, b)).to.equal('timeout');
    await h.heal();
    expect(await probe(a, b)).to.equal('ok');

    const names = [a.ns!, b.ns!, c.ns!];
    const bridge = h.bridge!;
    await h.cleanup();
    hosts = undefined;
    const left = await run('ip', ['netns', 'list']);
    for (const ns of names) expect(left.stdout).to.not.include(ns);
    expect((await run('ip', ['link', 'show', bridge])).code).to.not.equal(0);
    expect((await must('iptables', ['-w', '5', '-S', 'FORWARD'])).includes(bridge)).to.equal(false);
  });

  it('sweepStale removes the namespaces and links of a runner that died', async () => {
    // A pid above kernel.pid_max cannot be running (the kernel's ceiling is 4194304).
    const pidMax = Number((await must('cat', ['/proc/sys/kernel/pid_max'])).trim());
    const pid = pidMax + 1;
    const tag = pid.toString(36);
    await must('ip', ['netns', 'add', `cfz${tag}n1`]);
    await must('ip', ['link', 'add', `cfz${tag}b`, 'type', 'bridge']);
    const removed = await sweepStale();
    expect(removed).to.include(`cfz${tag}n1`);
    expect(removed).to.include(`cfz${tag}b`);
    expect((await run('ip', ['netns', 'list'])).stdout).to.not.include(`cfz${tag}n1`);
  });
});
