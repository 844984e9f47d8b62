/**
 * The peer transport contract: how a node's driver hands Raft messages to its peers and asks
 * them application requests (the follower-forwards-writes path), independent of the wire.
 * The TCP implementation is tcp-transport.ts; a simulation or test may supply another.
 *
 * Owns: the Transport interface, its typed operating errors (house style, kind 2) and the
 * small logger shape it needs. Must never: import the core, storage or commands, or block
 * the caller. Raft tolerates lost, duplicated and reordered messages (paper §5.1), so `send`
 * is fire-and-forget: a message that cannot be queued is dropped and the peer reported
 * unreachable, so the driver can call `RaftCore.reportUnreachable` (etcd `ReportUnreachable`).
 */
import type { Message, NodeId } from './messages.js';

export interface Transport {
  /** This node's id; messages whose `to` is another id are not delivered. */
  readonly id: NodeId;
  /**
   * Queues `m` for `m.to` and returns at once. Never throws for an unknown, unreachable or
   * slow peer: the message is dropped (bounded queue) and `m.to` reported to the unreachable
   * handler on a later tick (never from inside `send`, so the caller may be mid-Ready).
   * Messages to one peer leave in `send` order over one connection; across a reconnect some
   * may be lost. The transport keeps no reference to `m` after encoding it.
   */
  send(m: Message): void;
  /**
   * Writes what `send` queued now, instead of at the end of this event-loop turn (where sends
   * are coalesced). For a latency-critical batch the caller has finished queuing (a leader's
   * App to its followers, a follower's acknowledgement): the batch leaves one loop turn
   * earlier. Never throws; a peer whose socket is busy keeps its queue for the usual flush.
   */
  flush(): void;
  /**
   * The one handler of inbound messages. Called only with messages from an authenticated peer
   * whose `from` is that peer and whose `to` is this node; byte fields are owned by the handler.
   * A handler that throws is a broken invariant: the exception is not caught (the node fails).
   */
  onMessage(handler: (m: Message) => void): void;
  /** Called (asynchronously, at most once per peer per tick) when messages to `peer` were dropped. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /**
   * Sends an opaque application request to `peer` and resolves with its response. Rejects with
   * PeerUnreachableError (unknown peer, send queue full, too many requests in flight: nothing
   * was sent), RequestTimeoutError or ConnectionLostError (outcome unknown: the peer may have
   * acted on it), RemoteRequestError (the peer's handler failed), TransportClosedError.
   */
  request(peer: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Buffer>;
  /**
   * The one handler of inbound requests; its result (or its error's message) goes back to the
   * requester. Requests in flight per connection are bounded; over the bound the requester
   * gets a RemoteRequestError without the handler being called.
   */
  onRequest(handler: (from: NodeId, payload: Buffer) => Promise<Uint8Array>): void;
  /**
   * Adds or re-addresses a peer ("host:port"); messages to it are queued while a connection is
   * made. This node's own id is ignored. Throws on a malformed address (a configuration error).
   */
  addPeer(id: NodeId, address: string): void;
  /** Forgets a peer: closes its connections, drops its queue, rejects its requests. */
  removePeer(id: NodeId): void;
  /** Stops listening, closes every connection, rejects every pending request. Idempotent. */
  close(): Promise<void>;
}

/** The logger methods the transport uses (pino's `Logger` fits). */
export interface TransportLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const silentTransportLogger: TransportLogger = {
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};

/** Base of the transport's operating errors. */
export class TransportError extends Error {
  override readonly name: string = 'TransportError';
}

/** Nothing was sent: the peer is unknown, its queue is full or too many requests are in flight. */
export class PeerUnreachableError extends TransportError {
  override readonly name = 'PeerUnreachableError';
  constructor(
    readonly peer: NodeId,
    readonly reason: string,
  ) {
    super(`raft transport: peer ${peer} unreachable: ${reason}`);
  }
}

/** No response within the deadline. Outcome unknown: the peer may have acted on the request. */
export class RequestTimeoutError extends TransportError {
  override readonly name = 'RequestTimeoutError';
  constructor(
    readonly peer: NodeId,
    readonly timeoutMs: number,
  ) {
    super(`raft transport: request to ${peer} timed out after ${timeoutMs} ms`);
  }
}

/** The connection closed after the request was written. Outcome unknown. */
export class ConnectionLostError extends TransportError {
  override readonly name = 'ConnectionLostError';
  constructor(readonly peer: NodeId) {
    super(`raft transport: connection to ${peer} lost with the request in flight`);
  }
}

/** The peer answered with an error (its handler failed, or it is overloaded). */
export class RemoteRequestError extends TransportError {
  override readonly name = 'RemoteRequestError';
  constructor(
    readonly peer: NodeId,
    readonly remoteMessage: string,
  ) {
    super(`raft transport: ${peer} failed the request: ${remoteMessage}`);
  }
}

/** The transport is closed (or the peer was removed) before the request completed. */
export class TransportClosedError extends TransportError {
  override readonly name = 'TransportClosedError';
  constructor(reason = 'transport closed') {
    super(`raft transport: ${reason}`);
  }
}
