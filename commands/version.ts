/**
 * Version strings the server reports. REDIS_VERSION is the Redis version Concord answers as
 * (clients pick features by it: 7.2 means RESP3, HELLO, CLIENT SETINFO); CONCORD_VERSION is
 * this package's own version, read once from package.json.
 */
import { readFileSync } from 'node:fs';

export const REDIS_VERSION = '7.2.0';

function readPackageVersion(): string {
  // Runs compiled, as dist/commands/version.js: two levels below the package root.
  const url = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

export const CONCORD_VERSION = readPackageVersion();
