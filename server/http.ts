/**
 * The operations HTTP endpoint of one node, on its own port (never the client port):
 * - `GET /healthz`: 200 `ok` while the process runs its event loop (liveness: restart on failure);
 * - `GET /readyz`: 200 when this node is a member of a cluster that has a leader it knows, else
 *   503 with the reason (readiness: send clients here only when 200);
 * - `GET /metrics`: the Prometheus text exposition (server/metrics.ts).
 * Anything else: 404; a method other than GET/HEAD: 405. Answers are small JSON or text.
 *
 * Owns the HTTP listener and its limits: at most MAX_CONNECTIONS sockets, short header and
 * request timeouts, no request bodies read. Must never serve client data, change state or wait
 * on consensus: every answer is this node's local view, computed at once.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';

/** What /readyz decides from; computed per request (cheap). */
export interface Readiness {
  ready: boolean;
  /** Why not ready (or 'ok'), for the operator reading the 503 body. */
  reason: string;
  leader: string | null;
  role: string;
  term: number;
}

export interface HttpEndpointOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  log: Logger;
  readiness(): Readiness;
  metrics(): Promise<string>;
  metricsContentType: string;
}

/** Scrapers and probes need few sockets; more are refused by the kernel backlog, not queued here. */
const MAX_CONNECTIONS = 64;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;

export class HttpEndpoint {
  private readonly server: http.Server;

  constructor(private readonly options: HttpEndpointOptions) {
    this.server = http.createServer(
      { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
      (req, res) => this.handle(req, res),
    );
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.keepAliveTimeout = 5_000;
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  async listen(): Promise<AddressInfo> {
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (err) => this.options.log.error({ err }, 'http endpoint error'));
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting and closes every socket (idle keep-alive ones at once). Idempotent. */
  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Bodies are never read: drain them so keep-alive works, but bounded by the request timeout.
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    switch (path) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const r = this.options.readiness();
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify(r) + '\n');
        return;
      }
      case '/metrics':
        this.options.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.options.metricsContentType }).end(text);
          },
          (err: unknown) => {
            this.options.log.error({ err }, 'metrics scrape failed');
            res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics scrape failed\n');
          },
        );
        return;
      default:
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found: try /healthz, /readyz or /metrics\n');
    }
  }
}
