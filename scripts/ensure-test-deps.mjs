#!/usr/bin/env node
/**
 * Makes sure the system tools the compatibility tests and benchmarks drive are installed:
 * redis-cli, redis-benchmark (Debian package redis-tools), redis-server (redis-server), tmux,
 * iptables, ip (iproute2: the network-namespace cluster test), docker-compose (Debian's 1.29:
 * the compose file's semantic check; no Docker engine is needed or installed), nft (nftables)
 * and faketime (libfaketime, for the fault suite's clock nemeses).
 * Run by `npm run pretest`, and in CI as root on a fresh Debian machine.
 *
 * Installs with apt-get only what is missing, only as root; otherwise prints the command to run
 * and exits non-zero. Prints exactly one line saying what it did. No dependencies.
 * Must never: install anything when all tools are present, or prompt.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Tool -> Debian package providing it. */
const TOOLS = [
  ['redis-cli', 'redis-tools'],
  ['redis-benchmark', 'redis-tools'],
  ['redis-server', 'redis-server'],
  ['tmux', 'tmux'],
  // The cluster partition test cuts peer links with iptables (it runs as root).
  ['iptables', 'iptables'],
  // The compose topology runs as processes in network namespaces (compat-tests/ops/netns.spec.ts).
  ['ip', 'iproute2'],
  // `docker-compose config -q` validates docker/docker-compose.yml (compat-tests/ops).
  ['docker-compose', 'docker-compose'],
  // The fault suite (faults/): packet loss with nftables `numgen random` inside namespaces, and
  // clock skew / rate through LD_PRELOAD of libfaketime (the package ships both the tool and
  // /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1).
  ['nft', 'nftables'],
  ['faketime', 'faketime'],
];
const APT_TIMEOUT_MS = 15 * 60 * 1000;

/** True when an executable `name` is on PATH (the tests run the tools from PATH or /usr/bin). */
function onPath(name) {
  const dirs = (process.env.PATH ?? '').split(path.delimiter);
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return false;
}

function missingTools() {
  return TOOLS.filter(([tool]) => !onPath(tool));
}

/** Runs a command with inherited output (apt's progress goes to stderr); exits on failure. */
function run(command, args) {
  const result = spawnSync(command, args, {
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: APT_TIMEOUT_MS,
  });
  if (result.error !== undefined || result.status !== 0) {
    const why = result.error !== undefined ? result.error.message : `exit code ${String(result.status)}`;
    console.error(`ensure-test-deps: '${command} ${args.join(' ')}' failed (${why})`);
    process.exit(1);
  }
}

const missing = missingTools();
if (missing.length === 0) {
  console.log(`ensure-test-deps: nothing to do (${TOOLS.map(([tool]) => tool).join(', ')} present)`);
  process.exit(0);
}

const packages = [...new Set(missing.map(([, pkg]) => pkg))];
const tools = missing.map(([tool]) => tool).join(', ');
const installCommand = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(' ')}`;

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(
    `ensure-test-deps: missing ${tools}; not root, so install them yourself: sudo sh -c '${installCommand}'`,
  );
  process.exit(1);
}
if (!onPath('apt-get')) {
  console.error(
    `ensure-test-deps: missing ${tools} and apt-get is not available; install packages ${packages.join(' ')} with your package manager`,
  );
  process.exit(1);
}

run('apt-get', ['update']);
run('apt-get', ['install', '-y', '--no-install-recommends', ...packages]);

const stillMissing = missingTools();
if (stillMissing.length > 0) {
  console.error(
    `ensure-test-deps: installed ${packages.join(' ')} but still missing ${stillMissing.map(([tool]) => tool).join(', ')}`,
  );
  process.exit(1);
}
console.log(`ensure-test-deps: installed ${packages.join(' ')} (was missing ${tools})`);
