#!/usr/bin/env node
/**
 * `npm start`: a local three-node Concord cluster on 127.0.0.1:7001-7003 (peer ports
 * 17001-17003, HTTP /healthz /readyz /metrics on 8001-8003), data under ./data/n1..n3. Builds
 * nothing itself (`prestart` builds).
 *
 * The cluster secret is generated once into ./data/cluster-secret (mode 0600) and passed to
 * every node by file, never on the command line. Each node's stderr (JSON logs) is forwarded
 * with a `[n1]` prefix; stdout lines too. Ctrl-C / SIGTERM stops all three cleanly: SIGTERM to
 * each child by PID, wait for them to exit (SIGKILL after a deadline), then exit. If a node
 * exits on its own, the others are stopped too.
 *
 * Environment: CONCORD_LOG_LEVEL (default info), CONCORD_DATA_ROOT (default ./data).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'dist', 'server', 'main.js');
const DATA = path.resolve(process.env.CONCORD_DATA_ROOT ?? path.join(ROOT, 'data'));
const NODES = [
  { id: 'n1', port: 7001 },
  { id: 'n2', port: 7002 },
  { id: 'n3', port: 7003 },
];
const STOP_DEADLINE_MS = 10_000;

if (!existsSync(MAIN)) {
  process.stderr.write(`start-cluster: ${MAIN} is missing: run \`npm run build\` first\n`);
  process.exit(1);
}

mkdirSync(DATA, { recursive: true });
const secretFile = path.join(DATA, 'cluster-secret');
if (!existsSync(secretFile)) {
  writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
}
chmodSync(secretFile, 0o600);

const bootstrap = NODES.map((n) => `${n.id}=127.0.0.1:${n.port}`).join(',');
const children = new Map();
let stopping = false;

function prefixLines(stream, prefix, out) {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) =>
    out.write(`${prefix} ${line}\n`),
  );
}

for (const node of NODES) {
  // The child's environment without CONCORD_* variables: flags decide, not a stray variable.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONCORD_')));
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'server',
      '--node-id',
      node.id,
      '--port',
      String(node.port),
      '--data-dir',
      path.join(DATA, node.id),
      '--cluster-secret-file',
      secretFile,
      '--bootstrap',
      bootstrap,
      '--log-level',
      process.env.CONCORD_LOG_LEVEL ?? 'info',
    ],
    // Own process group: a terminal's Ctrl-C reaches only this script, which then stops each
    // node once (a node given SIGINT and then SIGTERM would take the second as "exit now").
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  children.set(node.id, child);
  prefixLines(child.stdout, `[${node.id}]`, process.stdout);
  prefixLines(child.stderr, `[${node.id}]`, process.stderr);
  child.once('exit', (code, signal) => {
    children.delete(node.id);
    process.stderr.write(`[${node.id}] exited (${signal ?? `code ${code}`})\n`);
    if (!stopping) void stopAll(`node ${node.id} exited`, 1);
    else if (children.size === 0) process.exit(exitCode);
  });
}

process.stdout.write(
  `Concord cluster starting: ${NODES.map((n) => `${n.id} on 127.0.0.1:${n.port}`).join(', ')}\n` +
    `Data in ${DATA}. Connect with: redis-cli -p 7001   (any node; writes go to the leader)\n` +
    'Press Ctrl-C to stop all three.\n',
);

let exitCode = 0;

async function stopAll(reason, code) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  process.stderr.write(`start-cluster: stopping (${reason})\n`);
  for (const child of children.values()) {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  }
  const deadline = setTimeout(() => {
    for (const child of children.values()) {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }
  }, STOP_DEADLINE_MS);
  deadline.unref();
  if (children.size === 0) process.exit(exitCode);
}

process.on('SIGINT', () => void stopAll('SIGINT', 0));
process.on('SIGTERM', () => void stopAll('SIGTERM', 0));
