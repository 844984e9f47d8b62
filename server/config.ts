/**
 * The server's configuration: the `Config` values main.ts builds from flags and environment,
 * and `ServerConfig`, the live ConfigStore behind CONFIG GET/SET (commands/context.ts).
 *
 * Parameters carry their redis.conf names and report what is TRUE for this server, so tools
 * that ask (redis-benchmark asks for `save` and `appendonly`) learn how it really behaves.
 * Error texts are Redis 7's. Listeners (`onChange`) let the server apply a change at once
 * (loglevel, timeout); other values are read where used (maxclients at accept,
 * proto-max-bulk-len at each request header, requirepass at each command).
 *
 * Must never read argv or env (main.ts does), touch sockets, or know commands.
 */
import type { ConfigStore } from '../commands/context.js';
import { ConfigError } from './errors.js';
import { fromRedisLevel, toRedisLevel, type LogLevel } from './log.js';

export interface Config {
  /** This node's id (data directory name, INFO, logs). */
  nodeId: string;
  port: number;
  bind: string;
  /**
   * The address clients and peers are told to reach this node at (CLUSTER SLOTS, CLUSTER
   * NODES, -MOVED, the founding member entry of a one-node cluster); null = the address the
   * cluster's member table has for it, else `bind` unless it is a wildcard (see ConcordNode).
   * Ports not given are the ones this node listens on.
   */
  advertise: AdvertisedAddress | null;
  dataDir: string;
  /** The password clients must AUTH with; null when none. */
  requirePass: string | null;
  maxClients: number;
  /** Close a client idle this long; 0 = never (Redis `timeout`). */
  timeoutSeconds: number;
  /** The largest argument accepted (Redis proto-max-bulk-len). */
  protoMaxBulkLen: number;
  /** Close a client whose unprocessed input exceeds this (Redis client-query-buffer-limit). */
  clientQueryBufferLimit: number;
  /** Refuse non-loopback clients while no password is set (Redis protected-mode). */
  protectedMode: boolean;
  /**
   * Answer `-MOVED <slot> <leader>` on a follower for key commands instead of forwarding them,
   * for cluster-mode clients (commands/cluster/redirect.ts). Off by default: plain clients
   * connected to a follower need forwarding.
   */
  clusterRedirect: boolean;
  logLevel: LogLevel;
  /** Close a client whose pending output exceeds this (client-output-buffer-limit normal hard). */
  clientOutputBufferLimit: number;
  /** Stop reading a client's requests while its pending output exceeds this. */
  clientOutputPauseBytes: number;
  /** Requests of one client being executed or waiting to be written, at most. */
  maxRequestsInFlight: number;
  /** This node's Raft peer port; null = RESP port + 10000 (as the Redis Cluster bus port). */
  peerPort: number | null;
  /** The shared secret peers authenticate with (>= 16 bytes); null = no peer transport. */
  clusterSecret: string | null;
  /** Names the cluster in the peer handshake (two clusters sharing a secret stay apart). */
  clusterId: string;
  /** A fresh cluster's founding members; used only when the data directory is empty. */
  bootstrap: readonly ClusterMember[] | null;
  /** Start empty and wait to be added (RAFT.NODE ADD on the leader). */
  join: boolean;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Take a Raft snapshot every this many applied entries. */
  snapshotEntries: number;
  /**
   * Port of the operations HTTP endpoint (/healthz, /readyz, /metrics; server/http.ts), on
   * `bind`. 0 = off; null = RESP port + HTTP_PORT_OFFSET (off when the RESP port is 0).
   */
  httpPort: number | null;
  /** Lease of a near-cache line (docs/cache.md): a node unreachable delays a write this long. */
  cacheLeaseMs: number;
  /** Near-cache bounds per node: lines, and bytes (keys + values + overhead). */
  cacheMaxEntries: number;
  cacheMaxBytes: number;
}

/** A cluster member as `--bootstrap` names it: `id=host:port[@peerPort]`. */
export interface ClusterMember {
  readonly id: string;
  readonly host: string;
  /** RESP port. */
  readonly port: number;
  /** Raft peer port (port + 10000 unless given). */
  readonly peerPort: number;
}

/** `--advertise host[:port[@peerPort]]`: the ports are null when not given. */
export interface AdvertisedAddress {
  readonly host: string;
  readonly port: number | null;
  readonly peerPort: number | null;
}

/** Addresses that mean "every interface": listening on them is fine, telling anyone to dial them is not. */
export function isWildcardHost(host: string): boolean {
  return (
    host === '' || host === '0.0.0.0' || host === '::' || host === '[::]' || host === '*' || host === '::0'
  );
}

/**
 * Parses `--advertise`: `host`, `host:port` or `host:port@peerPort` (IPv6 in brackets when a
 * port follows). Throws Error with a readable reason.
 */
export function parseAdvertise(text: string): AdvertisedAddress {
  const t = text.trim();
  const bare = /^(\[[^\]]+\]|[^:@\s[\]]+|[0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F:.]*)$/.exec(t);
  let host: string;
  let port: number | null = null;
  let peerPort: number | null = null;
  if (bare !== null) {
    host = t;
  } else {
    const m = /^(\[[^\]]+\]|[^:@\s[\]]+):(\d{1,5})(?:@(\d{1,5}))?$/.exec(t);
    if (m === null) throw new Error(`'${text}' is not host, host:port or host:port@peerport`);
    host = m[1]!;
    port = Number(m[2]);
    peerPort = m[3] === undefined ? null : Number(m[3]);
    if (port < 1 || port > 65535 || (peerPort !== null && (peerPort < 1 || peerPort > 65535))) {
      throw new Error(`'${text}': ports must be between 1 and 65535`);
    }
  }
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (isWildcardHost(host)) throw new Error(`'${host}' is a wildcard, not an address anyone can dial`);
  return { host, port, peerPort };
}

/** The peer port a member gets when none is given: RESP port + 10000 (Redis Cluster bus port). */
export const PEER_PORT_OFFSET = 10000;

/** The HTTP port a node gets when none is given: RESP port + 1000 (7001 -> 8001, 6379 -> 7379). */
export const HTTP_PORT_OFFSET = 1000;

/**
 * The HTTP endpoint's port for a config and the RESP port actually bound: null = off.
 * `derived` tells that no port was given (a busy derived port is then not fatal).
 */
export function httpPortFor(c: Pick<Config, 'httpPort' | 'port'>): { port: number; derived: boolean } | null {
  if (c.httpPort === 0) return null;
  if (c.httpPort !== null) return { port: c.httpPort, derived: false };
  if (c.port === 0 || c.port + HTTP_PORT_OFFSET > 65535) return null;
  return { port: c.port + HTTP_PORT_OFFSET, derived: true };
}

/**
 * Parses a member address `host:port` or `host:port@peerPort` (IPv6 hosts in brackets).
 * Returns null when malformed.
 */
export function parseMemberAddress(text: string): { host: string; port: number; peerPort: number } | null {
  const match = /^(\[[^\]]+\]|[^:@\s]+):(\d{1,5})(?:@(\d{1,5}))?$/.exec(text.trim());
  if (match === null) return null;
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  const port = Number(match[2]);
  const peerPort = match[3] === undefined ? port + PEER_PORT_OFFSET : Number(match[3]);
  if (port < 1 || port > 65535 || peerPort < 1 || peerPort > 65535) return null;
  return { host, port, peerPort };
}

/** `host:port@peerPort`, the form recorded in the log and shown by CLUSTER NODES. */
export function formatMemberAddress(a: { host: string; port: number; peerPort: number }): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${host}:${a.port}@${a.peerPort}`;
}

/** Parses `--bootstrap n1=host:port,n2=host:port@peer,...`. Throws Error with a readable reason. */
export function parseBootstrap(text: string): ClusterMember[] {
  const members: ClusterMember[] = [];
  const seen = new Set<string>();
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`'${item}' is not id=host:port`);
    const id = item.slice(0, eq);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new Error(`bad node id '${id}'`);
    if (seen.has(id)) throw new Error(`node id '${id}' given twice`);
    seen.add(id);
    const address = parseMemberAddress(item.slice(eq + 1));
    if (address === null) throw new Error(`'${item.slice(eq + 1)}' is not host:port or host:port@peerport`);
    members.push({ id, ...address });
  }
  if (members.length === 0) throw new Error('no members');
  return members;
}

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze({
  nodeId: 'n1',
  port: 7001,
  bind: '127.0.0.1',
  advertise: null,
  dataDir: './data/n1',
  requirePass: null,
  maxClients: 10000,
  timeoutSeconds: 0,
  protoMaxBulkLen: 512 * 1024 * 1024,
  clientQueryBufferLimit: 1024 * 1024 * 1024,
  protectedMode: true,
  clusterRedirect: false,
  logLevel: 'warn',
  clientOutputBufferLimit: 256 * 1024 * 1024,
  clientOutputPauseBytes: 1024 * 1024,
  maxRequestsInFlight: 1024,
  peerPort: null,
  clusterSecret: null,
  clusterId: 'concord',
  bootstrap: null,
  join: false,
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotEntries: 10000,
  httpPort: null,
  cacheLeaseMs: 2000,
  cacheMaxEntries: 100_000,
  cacheMaxBytes: 64 * 1024 * 1024,
});

/** SO_KEEPALIVE idle time on client sockets, as Redis's default `tcp-keepalive 300`. */
export const TCP_KEEPALIVE_SECONDS = 300;

const INT_MAX = 2147483647;
const LONG_MAX = Number.MAX_SAFE_INTEGER;

/**
 * Parses a redis.conf memory value: bytes, or a number with k/kb/m/mb/g/gb (k = 1000,
 * kb = 1024, as Redis's memtoull). Returns null when it is not one.
 */
export function parseMemory(text: string): number | null {
  const match = /^(\d+)(k|kb|m|mb|g|gb|b)?$/i.exec(text.trim());
  if (match === null) return null;
  const units: Record<string, number> = {
    b: 1,
    k: 1e3,
    kb: 1024,
    m: 1e6,
    mb: 1024 ** 2,
    g: 1e9,
    gb: 1024 ** 3,
  };
  const value = Number(match[1]) * (units[(match[2] ?? 'b').toLowerCase()] ?? 1);
  return Number.isSafeInteger(value) ? value : null;
}

/**
 * Redis's glob (stringmatchlen): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`. Case-insensitive,
 * as CONFIG GET matches. Iterative with backtracking on the last `*` only, so it is linear-ish
 * and cannot blow the stack on hostile patterns.
 */
export function globMatch(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const s = text.toLowerCase();
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    if (pi < p.length) {
      const pc = p[pi]!;
      if (pc === '*') {
        while (p[pi] === '*') pi++;
        if (pi === p.length) return true;
        starP = pi;
        starS = si;
        continue;
      }
      const step = matchOne(p, pi, s[si]!);
      if (step > 0) {
        pi += step;
        si++;
        continue;
      }
    }
    if (starP === -1) return false;
    pi = starP;
    si = ++starS;
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/** Matches one character of `s` at pattern position pi; returns the pattern length used, or 0. */
function matchOne(p: string, pi: number, ch: string): number {
  const pc = p[pi]!;
  if (pc === '?') return 1;
  if (pc === '\\' && pi + 1 < p.length) return p[pi + 1] === ch ? 2 : 0;
  if (pc !== '[') return pc === ch ? 1 : 0;
  let i = pi + 1;
  const negate = p[i] === '^';
  if (negate) i++;
  let matched = false;
  while (i < p.length && p[i] !== ']') {
    if (p[i] === '\\' && i + 1 < p.length) {
      if (p[i + 1] === ch) matched = true;
      i += 2;
    } else if (i + 2 < p.length && p[i + 1] === '-' && p[i + 2] !== ']') {
      let lo = p[i]!;
      let hi = p[i + 2]!;
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) matched = true;
      i += 3;
    } else {
      if (p[i] === ch) matched = true;
      i++;
    }
  }
  // An unterminated class ends at the end of the pattern, as in Redis.
  const used = i - pi + (i < p.length ? 1 : 0);
  return matched !== negate ? used : 0;
}

export interface Parameter {
  readonly name: string;
  get(): string;
  /** Absent for immutable parameters. Throws ConfigError for a bad value. */
  set?(value: string): void;
  /**
   * A cluster-wide parameter (replicated state, not this node's Config): checks the value at
   * once (throws ConfigError) and returns the function that applies it through the Raft log.
   */
  setReplicated?(value: string): () => Promise<void>;
}

export type ConfigListener = (name: string, config: Readonly<Config>) => void;

/** The live configuration: typed values for the server, redis.conf names for CONFIG. */
export class ServerConfig implements ConfigStore {
  private readonly values: Config;
  private readonly parameters = new Map<string, Parameter>();
  private readonly listeners: ConfigListener[] = [];

  constructor(initial: Config) {
    this.values = { ...initial };
    const v = this.values;
    const define = (parameter: Parameter): void => this.define(parameter);
    define({ name: 'port', get: () => String(v.port) });
    define({ name: 'bind', get: () => v.bind });
    define({ name: 'dir', get: () => v.dataDir });
    define({
      name: 'requirepass',
      get: () => v.requirePass ?? '',
      set: (value) => {
        v.requirePass = value === '' ? null : value;
      },
    });
    define({
      name: 'maxclients',
      get: () => String(v.maxClients),
      set: (value) => {
        v.maxClients = integerIn('maxclients', value, 1, LONG_MAX);
      },
    });
    define({
      name: 'timeout',
      get: () => String(v.timeoutSeconds),
      set: (value) => {
        v.timeoutSeconds = integerIn('timeout', value, 0, INT_MAX);
      },
    });
    define({
      name: 'proto-max-bulk-len',
      get: () => String(v.protoMaxBulkLen),
      set: (value) => {
        v.protoMaxBulkLen = memoryIn('proto-max-bulk-len', value, 1024 * 1024, LONG_MAX);
      },
    });
    define({
      name: 'client-query-buffer-limit',
      get: () => String(v.clientQueryBufferLimit),
      set: (value) => {
        v.clientQueryBufferLimit = memoryIn('client-query-buffer-limit', value, 1024 * 1024, LONG_MAX);
      },
    });
    define({
      name: 'protected-mode',
      get: () => (v.protectedMode ? 'yes' : 'no'),
      set: (value) => {
        v.protectedMode = yesNo('protected-mode', value);
      },
    });
    define({
      name: 'cluster-redirect',
      get: () => (v.clusterRedirect ? 'yes' : 'no'),
      set: (value) => {
        v.clusterRedirect = yesNo('cluster-redirect', value);
      },
    });
    define({
      name: 'loglevel',
      get: () => toRedisLevel(v.logLevel),
      set: (value) => {
        const level = fromRedisLevel(value.toLowerCase());
        if (level === null) {
          throw failed(
            'loglevel',
            'argument(s) must be one of the following: debug, verbose, notice, warning, nothing',
          );
        }
        v.logLevel = level;
      },
    });
    // The near-cache's bounds on this node (docs/cache.md); the node resizes it on a change.
    define({
      name: 'cache-max-entries',
      get: () => String(v.cacheMaxEntries),
      set: (value) => {
        v.cacheMaxEntries = integerIn('cache-max-entries', value, 1, 100_000_000);
      },
    });
    define({
      name: 'cache-max-bytes',
      get: () => String(v.cacheMaxBytes),
      set: (value) => {
        v.cacheMaxBytes = memoryIn('cache-max-bytes', value, 1024, LONG_MAX);
      },
    });
    // Keepalive probes on client sockets after this many idle seconds (fixed).
    define({ name: 'tcp-keepalive', get: () => String(TCP_KEEPALIVE_SECONDS) });
    // One logical database: SELECT 0 only.
    define({ name: 'databases', get: () => '1' });
    // No RDB snapshots are taken on a schedule: durability comes from the Raft log (fsynced
    // before every acknowledgement), not from `save` points. An empty `save` means "never".
    define({ name: 'save', get: () => '' });
    // No append-only file: the Raft log (raft/file-storage.ts) plays that role; no AOF exists.
    define({ name: 'appendonly', get: () => 'no' });
    // Normal clients are closed above the hard limit; there is no soft limit with a time (the
    // server pauses reading instead), and no replica or pubsub clients exist.
    define({
      name: 'client-output-buffer-limit',
      get: () => `normal ${v.clientOutputBufferLimit} 0 0 slave 0 0 0 pubsub 0 0 0`,
    });
  }

  /** The current typed values (do not keep the object: it changes with CONFIG SET). */
  get current(): Readonly<Config> {
    return this.values;
  }

  onChange(listener: ConfigListener): void {
    this.listeners.push(listener);
  }

  /**
   * Adds a parameter owned elsewhere (the node adds the cache's cluster-wide ones, which live
   * in the replicated state). A name is defined once.
   */
  define(parameter: Parameter): void {
    if (this.parameters.has(parameter.name))
      throw new Error(`config parameter ${parameter.name} defined twice`);
    this.parameters.set(parameter.name, parameter);
  }

  /** CONFIG GET: every parameter whose name matches the glob (case-insensitive). */
  get(pattern: string): [string, string][] {
    const exact = this.parameters.get(pattern.toLowerCase());
    if (exact !== undefined) return [[exact.name, exact.get()]];
    const out: [string, string][] = [];
    for (const parameter of this.parameters.values()) {
      if (globMatch(pattern, parameter.name)) out.push([parameter.name, parameter.get()]);
    }
    return out;
  }

  /**
   * CONFIG SET of one parameter; throws ConfigError with Redis's text when refused. A
   * cluster-wide parameter is only checked here: the function returned applies it.
   */
  set(name: string, value: string): void | (() => Promise<void>) {
    const parameter = this.parameters.get(name.toLowerCase());
    if (parameter === undefined) {
      throw new ConfigError(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
    }
    if (parameter.setReplicated !== undefined) return parameter.setReplicated(value);
    if (parameter.set === undefined) throw failed(parameter.name, "can't set immutable config");
    parameter.set(value);
    for (const listener of this.listeners) listener(parameter.name, this.values);
  }
}

/** Redis's CONFIG SET refusal text. */
export function failed(name: string, reason: string): ConfigError {
  return new ConfigError(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${reason}`);
}

export function integerIn(name: string, text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text)) throw failed(name, "argument couldn't be parsed into an integer");
  const value = Number(text);
  if (value < min || value > max) throw failed(name, `argument must be between ${min} and ${max} inclusive`);
  return value;
}

function memoryIn(name: string, text: string, min: number, max: number): number {
  const value = parseMemory(text);
  if (value === null) throw failed(name, 'argument must be a memory value');
  if (value < min || value > max) throw failed(name, `argument must be between ${min} and ${max} inclusive`);
  return value;
}

function yesNo(name: string, text: string): boolean {
  const lower = text.toLowerCase();
  if (lower === 'yes') return true;
  if (lower === 'no') return false;
  throw failed(name, "argument must be 'yes' or 'no'");
}
