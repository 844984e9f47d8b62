#!/usr/bin/env node
/**
 * The container health probe: `node scripts/healthcheck.mjs [/healthz|/readyz]` asks this
 * node's HTTP endpoint and exits 0 on HTTP 200, 1 otherwise (no curl in the slim image).
 * Used by the Dockerfile's HEALTHCHECK (/healthz) and docker-compose.yml (/readyz).
 *
 * The port is the node's own setting: CONCORD_HTTP_PORT, else CONCORD_PORT + 1000 (the
 * server's default), else 7379. No dependencies; gives up after 2 s.
 */
const path = process.argv[2] ?? '/healthz';
const respPort = Number(process.env.CONCORD_PORT ?? 6379);
const httpPort = Number(process.env.CONCORD_HTTP_PORT || respPort + 1000);
const controller = new AbortController();
setTimeout(() => controller.abort(), 2000).unref();
try {
  const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: controller.signal });
  process.stdout.write(`${res.status} ${(await res.text()).trim()}\n`);
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  process.stdout.write(`unreachable: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
