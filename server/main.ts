#!/usr/bin/env node
/**
 * The command-line entry: `concord server --node-id n1 --port 7001 --data-dir ./data/n1
 * --cluster-secret-file S --bootstrap n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003`.
 * Without --bootstrap or --join, an empty data directory starts a one-node cluster.
 *
 * The ONLY place that reads argv and the environment. Every flag can also be set by an
 * environment variable (named in --help); a flag beats the environment, which beats the
 * default. Builds a Config, starts a ConcordNode, prints exactly one line to stdout once
 * listening (`Concord listening on <host>:<port>`, which scripts and tests wait for) and logs
 * the rest as JSON on stderr. SIGTERM/SIGINT (and the SHUTDOWN command) stop gracefully and
 * exit 0; a second signal exits at once. Other exits: 1 for any failure, 65 for a log that lost
 * acknowledged entries (exit-codes.ts), each with one `concord: ...` line on stderr.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import {
  DEFAULT_CONFIG,
  HTTP_PORT_OFFSET,
  parseBootstrap,
  parseAdvertise,
  parseMemory,
  type AdvertisedAddress,
  type ClusterMember,
  type Config,
} from './config.js';
import { EXIT_FAILURE, EXIT_LOST_ENTRIES, EXIT_OK } from './exit-codes.js';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './log.js';
import { LostEntriesError } from '../raft/errors.js';

function integer(min: number, max: number) {
  return (text: string): number => {
    if (!/^-?\d+$/.test(text)) throw new InvalidArgumentError('not an integer.');
    const value = Number(text);
    if (value < min || value > max) throw new InvalidArgumentError(`must be between ${min} and ${max}.`);
    return value;
  };
}

function memory(min: number) {
  return (text: string): number => {
    const value = parseMemory(text);
    if (value === null) throw new InvalidArgumentError('not a memory value (bytes, or with k/kb/m/mb/g/gb).');
    if (value < min) throw new InvalidArgumentError(`must be at least ${min} bytes.`);
    return value;
  };
}

function yesNo(text: string): boolean {
  const lower = text.toLowerCase();
  if (['yes', 'true', '1'].includes(lower)) return true;
  if (['no', 'false', '0'].includes(lower)) return false;
  throw new InvalidArgumentError("must be 'yes' or 'no'.");
}

function bootstrapList(text: string): ClusterMember[] {
  try {
    return parseBootstrap(text);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message} (expected id=host:port[@peerport],...).`);
  }
}

function advertiseAddress(text: string): AdvertisedAddress {
  try {
    return parseAdvertise(text);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
}

function option(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

interface ServerFlags {
  port: number;
  bind: string;
  advertise?: AdvertisedAddress;
  nodeId: string;
  dataDir?: string;
  requirepass?: string;
  maxclients: number;
  timeout: number;
  protectedMode: boolean;
  clusterRedirect: boolean;
  protoMaxBulkLen: number;
  clientQueryBufferLimit: number;
  clientOutputBufferLimit: number;
  logLevel: LogLevel;
  peerPort?: number;
  clusterSecret?: string;
  clusterSecretFile?: string;
  clusterId: string;
  bootstrap?: ClusterMember[];
  join?: boolean;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEntries: number;
  httpPort?: number;
  cacheLeaseMs: number;
  cacheMaxEntries: number;
  cacheMaxBytes: number;
}

/** The secret from the flag/env, or read from a file (trailing newline trimmed). */
function clusterSecret(flags: ServerFlags): string | null {
  if (flags.clusterSecret !== undefined && flags.clusterSecret !== '') return flags.clusterSecret;
  if (flags.clusterSecretFile === undefined || flags.clusterSecretFile === '') return null;
  const secret = readFileSync(flags.clusterSecretFile, 'utf8').trim();
  if (secret === '') throw new Error(`the cluster secret file ${flags.clusterSecretFile} is empty`);
  return secret;
}

function buildConfig(flags: ServerFlags): Config {
  return {
    ...DEFAULT_CONFIG,
    nodeId: flags.nodeId,
    port: flags.port,
    bind: flags.bind,
    advertise: flags.advertise ?? null,
    dataDir: flags.dataDir ?? `./data/${flags.nodeId}`,
    requirePass: flags.requirepass === undefined || flags.requirepass === '' ? null : flags.requirepass,
    maxClients: flags.maxclients,
    timeoutSeconds: flags.timeout,
    protectedMode: flags.protectedMode,
    clusterRedirect: flags.clusterRedirect,
    protoMaxBulkLen: flags.protoMaxBulkLen,
    clientQueryBufferLimit: flags.clientQueryBufferLimit,
    clientOutputBufferLimit: flags.clientOutputBufferLimit,
    logLevel: flags.logLevel,
    peerPort: flags.peerPort ?? null,
    clusterSecret: clusterSecret(flags),
    clusterId: flags.clusterId,
    bootstrap: flags.bootstrap ?? null,
    join: flags.join ?? false,
    tickMs: flags.tickMs,
    electionTicks: flags.electionTicks,
    heartbeatTicks: flags.heartbeatTicks,
    snapshotEntries: flags.snapshotEntries,
    httpPort: flags.httpPort ?? null,
    cacheLeaseMs: flags.cacheLeaseMs,
    cacheMaxEntries: flags.cacheMaxEntries,
    cacheMaxBytes: flags.cacheMaxBytes,
  };
}

/**
 * The one message for a node whose log lost acknowledged entries (on start or at run time), and
 * its distinct exit code: a supervisor restarting it gets the same refusal at once (the data
 * directory records the loss), never an assertion or a node that serves.
 */
function exitLostEntries(log: Logger, dataDir: string, err: LostEntriesError): never {
  const text = `${dataDir}: ${err.message}`;
  log.fatal({ dataDir, first: err.first, last: err.last, revealedBy: err.revealedBy }, text);
  process.stderr.write(`concord: ${text}\n`);
  process.exit(EXIT_LOST_ENTRIES);
}

async function runServer(flags: ServerFlags): Promise<void> {
  let config: Config;
  try {
    config = buildConfig(flags);
  } catch (err) {
    process.stderr.write(`concord: ${(err as Error).message}\n`);
    process.exit(EXIT_FAILURE);
  }
  if (config.heartbeatTicks >= config.electionTicks) {
    process.stderr.write('concord: --heartbeat-ticks must be less than --election-ticks\n');
    process.exit(EXIT_FAILURE);
  }
  // Every line carries nodeId, term and role; term/role read from the node once it exists.
  let logContext: (() => { term: number; role: string }) | null = null;
  const log = createLogger(config.logLevel, 2, {
    nodeId: config.nodeId,
    raft: () => (logContext === null ? { term: 0, role: 'starting' } : logContext()),
  });
  // Tests only (the fault suite): simulate a power cut on this signal; see raft/failpoints.ts.
  const powerCut = process.env['CONCORD_POWER_CUT_SIGNAL'];
  if (powerCut !== undefined && powerCut !== '') {
    if (powerCut !== 'SIGUSR1' && powerCut !== 'SIGUSR2') {
      process.stderr.write('concord: CONCORD_POWER_CUT_SIGNAL must be SIGUSR1 or SIGUSR2\n');
      process.exit(EXIT_FAILURE);
    }
    const { installPowerCut } = await import('../raft/failpoints.js');
    installPowerCut(powerCut);
    log.warn({ signal: powerCut }, 'power-cut failpoint armed (tests only)');
  }
  // Loaded only to run a server, so --help and flag errors answer without loading the commands.
  const { ConcordNode } = await import('./node.js');
  let exiting = false;
  const node = new ConcordNode({
    config,
    log,
    onShutdown: (reason) => void stopAndExit(reason),
    onFatal: (err) => {
      if (err instanceof LostEntriesError) exitLostEntries(log, config.dataDir, err);
      log.fatal({ err }, 'raft node failed: exiting');
      process.stderr.write(
        `concord: raft node failed: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      process.exit(EXIT_FAILURE);
    },
  });

  logContext = () => node.logContext();

  async function stopAndExit(reason: string): Promise<void> {
    if (exiting) return;
    exiting = true;
    await node.stop(reason);
    log.info({ reason }, 'stopped');
    process.exit(EXIT_OK);
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (exiting) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(EXIT_FAILURE);
    }
    void stopAndExit(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(EXIT_FAILURE);
  });

  try {
    const address = await node.start();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    log.info(
      { node: config.nodeId, dataDir: config.dataDir },
      `Concord listening on ${host}:${address.port}`,
    );
    process.stdout.write(`Concord listening on ${host}:${address.port}\n`);
  } catch (err) {
    if (err instanceof LostEntriesError) exitLostEntries(log, config.dataDir, err);
    log.fatal({ err }, 'could not start');
    process.stderr.write(`concord: could not start: ${(err as Error).message}\n`);
    process.exit(EXIT_FAILURE);
  }
}

export function buildProgram(): Command {
  const program = new Command('concord').description(
    'Concord: a coordination server (locks, queues, coherent cache) speaking the Redis protocol.',
  );
  program
    .command('server')
    .description(
      'Run a Concord node. Every option can also be set by the environment variable shown; a flag beats the environment, which beats the default.',
    )
    .addOption(
      option('-p, --port <port>', 'TCP port for clients (0 = any free port)', 'CONCORD_PORT')
        .argParser(integer(0, 65535))
        .default(DEFAULT_CONFIG.port),
    )
    .addOption(
      option('--bind <address>', 'address to listen on', 'CONCORD_BIND').default(DEFAULT_CONFIG.bind),
    )
    .addOption(
      option(
        '--advertise <host[:port[@peerport]]>',
        "address clients and peers are told to reach this node at (CLUSTER SLOTS/NODES, MOVED); default: the node's address in the cluster's member table, else --bind unless it is 0.0.0.0 or ::; ports not given are the ones it listens on",
        'CONCORD_ADVERTISE',
      ).argParser(advertiseAddress),
    )
    .addOption(option('--node-id <id>', "this node's id", 'CONCORD_NODE_ID').default(DEFAULT_CONFIG.nodeId))
    .addOption(option('--data-dir <path>', 'data directory (default: ./data/<node-id>)', 'CONCORD_DATA_DIR'))
    .addOption(
      option(
        '--requirepass <password>',
        'password clients must AUTH with (default: none)',
        'CONCORD_REQUIREPASS',
      ),
    )
    .addOption(
      option('--maxclients <n>', 'most clients connected at once', 'CONCORD_MAXCLIENTS')
        .argParser(integer(1, 1_000_000))
        .default(DEFAULT_CONFIG.maxClients),
    )
    .addOption(
      option('--timeout <seconds>', 'close clients idle this long (0 = never)', 'CONCORD_TIMEOUT')
        .argParser(integer(0, 2147483647))
        .default(DEFAULT_CONFIG.timeoutSeconds),
    )
    .addOption(
      option(
        '--protected-mode <yes|no>',
        'with no password, accept clients from loopback addresses only',
        'CONCORD_PROTECTED_MODE',
      )
        .argParser(yesNo)
        .default(DEFAULT_CONFIG.protectedMode, 'yes'),
    )
    .addOption(
      option(
        '--cluster-redirect <yes|no>',
        'on a follower, answer key commands with -MOVED to the leader (for cluster-mode clients) instead of forwarding them',
        'CONCORD_CLUSTER_REDIRECT',
      )
        .argParser(yesNo)
        .default(DEFAULT_CONFIG.clusterRedirect, 'no'),
    )
    .addOption(
      option(
        '--proto-max-bulk-len <bytes>',
        'largest request argument (k/kb/m/mb/g/gb)',
        'CONCORD_PROTO_MAX_BULK_LEN',
      )
        .argParser(memory(1024 * 1024))
        .default(DEFAULT_CONFIG.protoMaxBulkLen, '512mb'),
    )
    .addOption(
      option(
        '--client-query-buffer-limit <bytes>',
        'close a client whose unprocessed input exceeds this',
        'CONCORD_CLIENT_QUERY_BUFFER_LIMIT',
      )
        .argParser(memory(1024 * 1024))
        .default(DEFAULT_CONFIG.clientQueryBufferLimit, '1gb'),
    )
    .addOption(
      option(
        '--client-output-buffer-limit <bytes>',
        'close a client whose unsent replies exceed this',
        'CONCORD_CLIENT_OUTPUT_BUFFER_LIMIT',
      )
        .argParser(memory(1024 * 1024))
        .default(DEFAULT_CONFIG.clientOutputBufferLimit, '256mb'),
    )
    .addOption(
      option(
        '--peer-port <port>',
        "this node's Raft peer port (default: port + 10000)",
        'CONCORD_PEER_PORT',
      ).argParser(integer(0, 65535)),
    )
    .addOption(
      option(
        '--cluster-secret <secret>',
        'shared secret peers authenticate with (at least 16 bytes)',
        'CONCORD_CLUSTER_SECRET',
      ),
    )
    .addOption(
      option(
        '--cluster-secret-file <path>',
        'read the cluster secret from this file',
        'CONCORD_CLUSTER_SECRET_FILE',
      ),
    )
    .addOption(
      option(
        '--cluster-id <name>',
        'cluster name checked in the peer handshake',
        'CONCORD_CLUSTER_ID',
      ).default(DEFAULT_CONFIG.clusterId),
    )
    .addOption(
      option(
        '--bootstrap <members>',
        'founding members id=host:port[@peerport],... (used only with an empty data dir)',
        'CONCORD_BOOTSTRAP',
      ).argParser(bootstrapList),
    )
    .addOption(
      // An optional yes|no value, so CONCORD_JOIN=no means no (a bare boolean flag would take
      // any value of its variable, "no" included, as yes).
      option(
        '--join [yes|no]',
        'start empty and wait to be added by the leader (RAFT.NODE ADD)',
        'CONCORD_JOIN',
      )
        .argParser(yesNo)
        .preset('yes'),
    )
    .addOption(
      option('--tick-ms <ms>', 'Raft tick length', 'CONCORD_TICK_MS')
        .argParser(integer(1, 60_000))
        .default(DEFAULT_CONFIG.tickMs),
    )
    .addOption(
      option('--election-ticks <n>', 'election timeout in ticks', 'CONCORD_ELECTION_TICKS')
        .argParser(integer(2, 10_000))
        .default(DEFAULT_CONFIG.electionTicks),
    )
    .addOption(
      option('--heartbeat-ticks <n>', 'heartbeat interval in ticks', 'CONCORD_HEARTBEAT_TICKS')
        .argParser(integer(1, 10_000))
        .default(DEFAULT_CONFIG.heartbeatTicks),
    )
    .addOption(
      option(
        '--snapshot-entries <n>',
        'snapshot after n applied entries and as many bytes as the last snapshot (0 = never)',
        'CONCORD_SNAPSHOT_ENTRIES',
      )
        .argParser(integer(0, 1_000_000_000))
        .default(DEFAULT_CONFIG.snapshotEntries),
    )
    .addOption(
      option(
        '--http-port <port>',
        `HTTP port for /healthz, /readyz and /metrics, on --bind (0 = off; default: port + ${HTTP_PORT_OFFSET}, off when port is 0)`,
        'CONCORD_HTTP_PORT',
      ).argParser(integer(0, 65535)),
    )
    .addOption(
      option('--cache-lease-ms <ms>', 'lease of a near-cache line (CGET)', 'CONCORD_CACHE_LEASE_MS')
        .argParser(integer(10, 600_000))
        .default(DEFAULT_CONFIG.cacheLeaseMs),
    )
    .addOption(
      option('--cache-max-entries <n>', 'near-cache lines per node', 'CONCORD_CACHE_MAX_ENTRIES')
        .argParser(integer(1, 100_000_000))
        .default(DEFAULT_CONFIG.cacheMaxEntries),
    )
    .addOption(
      option('--cache-max-bytes <n>', 'near-cache bytes per node', 'CONCORD_CACHE_MAX_BYTES')
        .argParser(integer(1024, Number.MAX_SAFE_INTEGER))
        .default(DEFAULT_CONFIG.cacheMaxBytes),
    )
    .addOption(
      option('--log-level <level>', 'log level (JSON logs on stderr)', 'CONCORD_LOG_LEVEL')
        .choices(LOG_LEVELS)
        .default(DEFAULT_CONFIG.logLevel),
    )
    .action((flags: ServerFlags) => runServer(flags));
  return program;
}

await buildProgram().parseAsync(process.argv);
