/**
 * Follower -> leader routing: the wire format of the application requests a follower sends
 * its leader over the peer transport (transport.request), and the leader's handler.
 *
 * Requests: WRITE (an encoded Operation: the leader proposes it and answers with the
 * encoded Result once applied), WRITE_BATCH (the writes a follower forwards in one event-loop
 * turn: the leader proposes them in order, in one turn, and answers with one status and body
 * per write, in order) and TIME (the leader's clock, so a follower judges expiry by
 * leader time, never its own), and MEMBERS, the other way: the leader tells a learner that
 * has not caught up the peer addresses of the members (a node started with --join knows no
 * one, so its answers to the leader could not leave before it has replayed the log). Every answer carries a status that tells the follower whether
 * retrying is safe:
 *   OK           the Result (WRITE) or the time (TIME)
 *   NOT_LEADER   nothing was proposed; body = the leader this node knows of ('' if none)
 *   DROPPED      the leader refused it without appending (overload): safe to retry
 *   UNKNOWN      proposed, but leadership was lost or it timed out: the outcome is unknown
 *   BAD_REQUEST  the bytes did not decode (version skew or a bug); nothing was proposed
 * Layout: request [version u8][kind u8][body]; response [version u8][status u8][body].
 * WRITE_BATCH body: [count u32]([length u32][operation])*count; its OK response body:
 * [count u32]([status u8][length u32][body])*count, each item as a WRITE response would be.
 *
 * Must never propose bytes that do not decode as an Operation (every node would then fail to
 * apply the entry), and never report OK for an entry that did not apply.
 */
import { CodecError, decodeOperation, encodeResult } from '../commands/codec.js';
import type { Result } from '../commands/state-machine.js';
import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalTimeoutError,
} from '../raft/errors.js';

export const FORWARD_VERSION = 1;

export const ForwardKind = {
  Write: 1,
  Time: 2,
  Members: 3,
  WriteBatch: 4,
  // The coherent cache's protocol (server/cache/messages.ts), served by its agent, not here.
  CacheFetch: 5,
  CacheWrite: 6,
  CacheInvalidate: 7,
  CacheDowngrade: 8,
  CacheFlush: 9,
  CacheEvict: 10,
  CacheState: 11,
} as const;
export type ForwardKind = (typeof ForwardKind)[keyof typeof ForwardKind];

export const ForwardStatus = { Ok: 0, NotLeader: 1, Dropped: 2, Unknown: 3, BadRequest: 4 } as const;
export type ForwardStatus = (typeof ForwardStatus)[keyof typeof ForwardStatus];

export function encodeForwardRequest(kind: ForwardKind, body: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(2 + body.byteLength);
  out[0] = FORWARD_VERSION;
  out[1] = kind;
  out.set(body, 2);
  return out;
}

export function encodeForwardResponse(status: ForwardStatus, body: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(2 + body.byteLength);
  out[0] = FORWARD_VERSION;
  out[1] = status;
  out.set(body, 2);
  return out;
}

export interface ForwardResponse {
  readonly status: ForwardStatus;
  readonly body: Buffer;
}

export function decodeForwardResponse(data: Buffer): ForwardResponse {
  if (data.length < 2 || data[0] !== FORWARD_VERSION) throw new CodecError('bad forward response');
  const status = data[1]!;
  if (status > ForwardStatus.BadRequest) throw new CodecError(`unknown forward status ${status}`);
  return { status: status as ForwardStatus, body: data.subarray(2) };
}

/** WRITE_BATCH request body: the encoded operations, in order. */
export function encodeWriteBatch(operations: readonly Uint8Array[]): Buffer {
  let size = 4;
  for (const op of operations) size += 4 + op.byteLength;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(operations.length, 0);
  let at = 4;
  for (const op of operations) {
    out.writeUInt32BE(op.byteLength, at);
    out.set(op, at + 4);
    at += 4 + op.byteLength;
  }
  return out;
}

function decodeWriteBatch(body: Buffer): Buffer[] {
  if (body.length < 4) throw new CodecError('bad write batch');
  const count = body.readUInt32BE(0);
  const out: Buffer[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) throw new CodecError('truncated write batch');
    const length = body.readUInt32BE(at);
    if (at + 4 + length > body.length) throw new CodecError('truncated write batch');
    out.push(body.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  if (at !== body.length) throw new CodecError('trailing bytes after write batch');
  return out;
}

function encodeBatchResponse(items: readonly ForwardResponse[]): Buffer {
  let size = 4;
  for (const item of items) size += 5 + item.body.byteLength;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(items.length, 0);
  let at = 4;
  for (const item of items) {
    out[at] = item.status;
    out.writeUInt32BE(item.body.byteLength, at + 1);
    out.set(item.body, at + 5);
    at += 5 + item.body.byteLength;
  }
  return out;
}

/** The per-write answers of an OK WRITE_BATCH response, in request order. */
export function decodeBatchResponse(body: Buffer): ForwardResponse[] {
  if (body.length < 4) throw new CodecError('bad write batch response');
  const count = body.readUInt32BE(0);
  const out: ForwardResponse[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 5 > body.length) throw new CodecError('truncated write batch response');
    const status = body[at]!;
    if (status > ForwardStatus.BadRequest) throw new CodecError(`unknown forward status ${status}`);
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) throw new CodecError('truncated write batch response');
    out.push({ status: status as ForwardStatus, body: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

export function encodeTime(timeMs: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(timeMs, 0);
  return out;
}

export function decodeTime(body: Buffer): number {
  if (body.length !== 8) throw new CodecError('bad forwarded time');
  return body.readDoubleBE(0);
}

/** What the leader side needs of the Raft node. */
export interface ForwardTarget {
  readonly isLeader: boolean;
  readonly leaderId: string | null;
  propose(payload: Uint8Array): Promise<Result | null>;
  /** The leader's clock for expiry (never below applied time). */
  leaderTimeMs(): number;
  /** Peer addresses (`host:peerPort`) sent by the leader to a node still catching up. */
  learnPeers(peers: readonly { id: string; address: string }[]): void;
}

export function encodeMembersHint(peers: readonly { id: string; address: string }[]): Buffer {
  return encodeForwardRequest(ForwardKind.Members, Buffer.from(JSON.stringify(peers), 'utf8'));
}

function decodeMembersHint(body: Buffer): { id: string; address: string }[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length > 1000) return null;
  const out: { id: string; address: string }[] = [];
  for (const item of parsed as unknown[]) {
    if (typeof item !== 'object' || item === null) return null;
    const { id, address } = item as { id?: unknown; address?: unknown };
    if (typeof id !== 'string' || typeof address !== 'string') return null;
    out.push({ id, address });
  }
  return out;
}

/** The leader's handler of forwarded requests (TcpTransport.onRequest). Never rejects. */
export async function serveForwarded(target: ForwardTarget, payload: Buffer): Promise<Uint8Array> {
  if (payload.length < 2 || payload[0] !== FORWARD_VERSION) {
    return encodeForwardResponse(ForwardStatus.BadRequest, Buffer.from('unknown forward version'));
  }
  const kind = payload[1]!;
  const body = payload.subarray(2);
  if (kind === ForwardKind.Members) {
    const peers = decodeMembersHint(body);
    if (peers === null)
      return encodeForwardResponse(ForwardStatus.BadRequest, Buffer.from('bad members hint'));
    target.learnPeers(peers);
    return encodeForwardResponse(ForwardStatus.Ok);
  }
  if (!target.isLeader) {
    return encodeForwardResponse(ForwardStatus.NotLeader, Buffer.from(target.leaderId ?? '', 'utf8'));
  }
  switch (kind) {
    case ForwardKind.Time:
      return encodeForwardResponse(ForwardStatus.Ok, encodeTime(target.leaderTimeMs()));
    case ForwardKind.Write: {
      const item = await serveWrite(target, body);
      return encodeForwardResponse(item.status, item.body);
    }
    case ForwardKind.WriteBatch: {
      let operations: Buffer[];
      try {
        operations = decodeWriteBatch(body);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return encodeForwardResponse(ForwardStatus.BadRequest, Buffer.from(message, 'utf8'));
      }
      // Proposed in order within this turn (serveWrite proposes before its first await).
      const items = await Promise.all(operations.map((op) => serveWrite(target, op)));
      return encodeForwardResponse(ForwardStatus.Ok, encodeBatchResponse(items));
    }
    default:
      return encodeForwardResponse(ForwardStatus.BadRequest, Buffer.from(`unknown forward kind ${kind}`));
  }
}

/** One forwarded write: proposes it synchronously (before any await), answers once applied. */
async function serveWrite(target: ForwardTarget, operation: Buffer): Promise<ForwardResponse> {
  try {
    decodeOperation(operation);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { status: ForwardStatus.BadRequest, body: Buffer.from(message, 'utf8') };
  }
  try {
    const result = await target.propose(operation);
    if (result === null) {
      return { status: ForwardStatus.Unknown, body: Buffer.from('entry applied without a result') };
    }
    return { status: ForwardStatus.Ok, body: encodeResult(result) };
  } catch (error) {
    return errorResponse(error, target);
  }
}

function errorResponse(error: unknown, target: ForwardTarget): ForwardResponse {
  if (error instanceof NotLeaderError) {
    return { status: ForwardStatus.NotLeader, body: Buffer.from(error.leader ?? '', 'utf8') };
  }
  if (error instanceof ProposalDroppedError) {
    return { status: ForwardStatus.Dropped, body: Buffer.from(error.message, 'utf8') };
  }
  if (
    error instanceof LeadershipLostError ||
    error instanceof ProposalTimeoutError ||
    error instanceof NodeStoppedError
  ) {
    return { status: ForwardStatus.Unknown, body: Buffer.from(error.message, 'utf8') };
  }
  // Anything else after propose was called: we cannot say it did not apply.
  const message = error instanceof Error ? error.message : String(error);
  return {
    status: ForwardStatus.Unknown,
    body: Buffer.from(`${message} (leader ${target.leaderId ?? 'unknown'})`, 'utf8'),
  };
}
