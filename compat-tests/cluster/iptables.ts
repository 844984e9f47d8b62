/**
 * Network partitions for cluster tests, made with iptables on loopback (shared by
 * compat-tests/cluster/partition.spec.ts, compat-tests/locks/partition.spec.ts and
 * compat-tests/cache/coherence.spec.ts).
 *
 * Each node runs as its own uid (ClusterOptions.uids), so the isolated node's peer traffic can
 * be matched exactly: OUTPUT rules drop (1) every packet the isolated node's uid sends to the
 * other nodes' peer ports, (2) every packet it sends from its own peer port, and (3) every
 * packet sent to its peer port. Client (RESP) ports are untouched.
 *
 * Owns: the rules a Partition inserted, and only those. Each carries a comment naming the test
 * run, and they are deleted one by one, last first, by heal(), or at process exit when a run
 * ends early (a signal). Must never: flush a chain or delete a rule it did not insert, touch
 * anything but the `lo` interface, or leave a rule behind.
 */
import { execFile, execFileSync } from 'node:child_process';
import type { ClusterNode } from './cluster-harness.js';

interface Run {
  code: number | null;
  stderr: string;
}

/** Runs `iptables -w 5 <args>`; never rejects (the exit code says how it went). */
function iptables(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'iptables',
      ['-w', '5', ...args],
      { timeout: 15_000, encoding: 'utf8' },
      (error, _stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stderr: stderr || (error?.message ?? '') });
      },
    );
  });
}

/** Why iptables cannot be used here (not root, not installed), or undefined. */
export async function iptablesUnusable(): Promise<string | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const probe = await iptables(['-S', 'OUTPUT']);
  if (probe.code !== 0) return `iptables -S OUTPUT failed: ${probe.stderr.trim()}`;
  return undefined;
}

/** For a suite's `before`: skips the suite with the reason when iptables is not usable. */
export async function skipUnlessIptablesUsable(context: Mocha.Context): Promise<void> {
  const reason = await iptablesUnusable();
  if (reason !== undefined) {
    console.log(
      `      skipped: iptables unusable (${reason}); install it (apt-get install iptables) and run as root`,
    );
    context.skip();
  }
}

/** The rules (`iptables -I OUTPUT` arguments after the chain) that cut `isolated` off. */
function partitionRules(isolated: ClusterNode, others: readonly ClusterNode[], comment: string): string[][] {
  if (isolated.uid === undefined) {
    throw new Error(
      `${isolated.id} runs as the test's own uid: start the cluster with \`uids\` to partition it`,
    );
  }
  const base = ['-o', 'lo', '-p', 'tcp'];
  const tag = ['-m', 'comment', '--comment', comment, '-j', 'DROP'];
  const uid = String(isolated.uid);
  return [
    [
      ...base,
      '-m',
      'owner',
      '--uid-owner',
      uid,
      '-m',
      'multiport',
      '--dports',
      others.map((o) => o.peerPort).join(','),
      ...tag,
    ],
    [...base, '-m', 'owner', '--uid-owner', uid, '--sport', String(isolated.peerPort), ...tag],
    [...base, '--dport', String(isolated.peerPort), ...tag],
  ];
}

/**
 * The partitions of one suite. `comment` names the run in every rule (include the pid), so a
 * rule left by a killed run can be found and removed by hand.
 */
export class Partition {
  private readonly installed: string[][] = [];
  private exitHook = false;
  /** A run ended early (exit after a signal) still removes its rules. */
  private readonly healAtExit = (): void => {
    for (const rule of this.installed.splice(0).reverse()) {
      try {
        execFileSync('iptables', ['-w', '5', '-D', 'OUTPUT', ...rule], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // Best effort at exit; the rule's comment names this run for manual removal.
      }
    }
  };

  constructor(private readonly comment: string) {}

  /** Cuts `isolated` off from `others` (their peer traffic only). Throws if a rule fails. */
  async isolate(isolated: ClusterNode, others: readonly ClusterNode[]): Promise<void> {
    if (!this.exitHook) process.on('exit', this.healAtExit);
    this.exitHook = true;
    for (const rule of partitionRules(isolated, others, this.comment)) {
      const run = await iptables(['-I', 'OUTPUT', ...rule]);
      if (run.code !== 0) throw new Error(`iptables -I OUTPUT ${rule.join(' ')} failed: ${run.stderr}`);
      this.installed.push(rule);
    }
  }

  /** Deletes every rule this Partition inserted, last first. Throws if a delete fails. */
  async heal(): Promise<void> {
    while (this.installed.length > 0) {
      const rule = this.installed.pop();
      if (rule === undefined) break;
      const run = await iptables(['-D', 'OUTPUT', ...rule]);
      if (run.code !== 0) {
        this.installed.push(rule);
        throw new Error(`iptables -D OUTPUT ${rule.join(' ')} failed: ${run.stderr}`);
      }
    }
    process.removeListener('exit', this.healAtExit);
    this.exitHook = false;
  }
}
