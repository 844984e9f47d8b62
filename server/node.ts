/**
 * One Concord node: wires the state machine, the executor, the dispatcher and the RESP
 * listener. This issue runs a single node with the LocalExecutor (writes apply at once); the
 * next issue adds the Raft node, its storage in `config.dataDir` and the peer transport HERE,
 * swapping in a Raft-backed Executor without touching the commands or the listener.
 *
 * Owns the lifetime of those pieces (start, graceful stop). Must never read argv/env (main.ts)
 * or exit the process.
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Dispatcher } from '../commands/dispatch.js';
import { LocalExecutor, type Executor } from '../commands/executor.js';
import { ServerConfig, type Config } from './config.js';
import { RespServer } from './listener.js';
import type { Logger } from './log.js';

export interface NodeOptions {
  config: Config;
  log: Logger;
  /** Called when a client sends SHUTDOWN; defaults to stopping this node. */
  onShutdown?: (reason: string) => void;
  shutdownGraceMs?: number;
}

export class ConcordNode {
  readonly config: ServerConfig;
  readonly executor: Executor;
  readonly dispatcher: Dispatcher;
  readonly server: RespServer;
  private readonly log: Logger;
  private stopping: Promise<void> | null = null;

  constructor(options: NodeOptions) {
    this.log = options.log;
    this.config = new ServerConfig(options.config);
    const config = this.config;
    this.executor = new LocalExecutor();
    this.dispatcher = new Dispatcher({
      executor: this.executor,
      requirePass: () => config.current.requirePass,
    });
    this.server = new RespServer({
      config,
      handler: this.dispatcher,
      log: options.log,
      onShutdown: options.onShutdown ?? ((reason) => void this.stop(reason)),
      ...(options.shutdownGraceMs !== undefined ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
    });
  }

  /** Creates the data directory and starts listening; resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    await mkdir(this.config.current.dataDir, { recursive: true });
    const address = await this.server.listen();
    this.log.info(
      { node: this.config.current.nodeId, address: address.address, port: address.port },
      'listening',
    );
    return address;
  }

  /** Graceful stop (idempotent): the listener finishes in-flight replies and closes clients. */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.server.close(reason);
    return this.stopping;
  }
}
