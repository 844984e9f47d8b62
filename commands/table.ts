/**
 * The command table: the ONE registry of what Concord understands. Dispatch, arity checks,
 * COMMAND (COUNT, INFO, DOCS, LIST, GETKEYS) and docs/commands.md all read it.
 *
 * Must never hold behaviour of its own: each command lives in its own file (keys/set.ts,
 * admin/ping.ts ...) and is only listed here.
 */
import type { CommandSpec } from './spec.js';
import { auth } from './admin/auth.js';
import { client } from './admin/client.js';
import { command } from './admin/command.js';
import { config } from './admin/config.js';
import { echo } from './admin/echo.js';
import { hello } from './admin/hello.js';
import { info } from './admin/info.js';
import { ping } from './admin/ping.js';
import { quit } from './admin/quit.js';
import { reset } from './admin/reset.js';
import { select } from './admin/select.js';
import { shutdown } from './admin/shutdown.js';
import { time } from './admin/time.js';
import { cluster } from './cluster/cluster.js';
import { raftInfo } from './cluster/raft-info.js';
import { raftNode } from './cluster/raft-node.js';
import { raftSnapshot } from './cluster/raft-snapshot.js';
import { raftTransferLeader } from './cluster/raft-transfer-leader.js';
import { readonly, readwrite } from './cluster/readonly.js';
import { dbsize } from './keys/dbsize.js';
import { del } from './keys/del.js';
import { exists } from './keys/exists.js';
import { expire, expireat, persist, pexpire, pexpireat } from './keys/expire.js';
import { getdel } from './keys/getdel.js';
import { strlen } from './keys/strlen.js';
import { pttl, ttl } from './keys/ttl.js';
import { type } from './keys/type.js';
import { flushall, flushdb } from './keys/flushall.js';
import { get } from './keys/get.js';
import { decr, decrby, incr, incrby } from './keys/incr.js';
import { mget } from './keys/mget.js';
import { mset } from './keys/mset.js';
import { set } from './keys/set.js';
import { lock } from './locks/lock.js';
import { lockForceRelease } from './locks/lock-forcerelease.js';
import { lockInfo } from './locks/lock-info.js';
import { lockRenew } from './locks/lock-renew.js';
import { lockWaitsFor } from './locks/lock-waitsfor.js';
import { unlock } from './locks/unlock.js';
import { qack } from './queues/qack.js';
import { qconfig } from './queues/qconfig.js';
import { qinfo } from './queues/qinfo.js';
import { qlen } from './queues/qlen.js';
import { qnack } from './queues/qnack.js';
import { qpending } from './queues/qpending.js';
import { qpop } from './queues/qpop.js';
import { qpush } from './queues/qpush.js';
import { qreplay } from './queues/qreplay.js';
import { qtouch } from './queues/qtouch.js';
import { cdel } from './cache/cdel.js';
import { cget } from './cache/cget.js';
import { cpolicy } from './cache/cpolicy.js';
import { cset } from './cache/cset.js';
import { cstate } from './cache/cstate.js';

/** Every top-level command, in documentation order. */
export const COMMANDS: readonly CommandSpec[] = [
  // keyspace
  get,
  set,
  del,
  exists,
  incr,
  incrby,
  decr,
  decrby,
  mget,
  mset,
  getdel,
  strlen,
  expire,
  pexpire,
  expireat,
  pexpireat,
  persist,
  ttl,
  pttl,
  type,
  dbsize,
  flushall,
  flushdb,
  // locks
  lock,
  unlock,
  lockRenew,
  lockInfo,
  lockWaitsFor,
  lockForceRelease,
  // queues (commands/queues/)
  qpush,
  qpop,
  qack,
  qnack,
  qtouch,
  qlen,
  qinfo,
  qpending,
  qconfig,
  qreplay,
  // coherent cache (MESI near-caches)
  cget,
  cset,
  cdel,
  cpolicy,
  cstate,
  // connection
  ping,
  echo,
  hello,
  auth,
  select,
  quit,
  reset,
  client,
  // server
  info,
  config,
  time,
  shutdown,
  command,
  // cluster (Redis Cluster's view of the Raft group) and Raft administration
  cluster,
  readonly,
  readwrite,
  raftInfo,
  raftNode,
  raftTransferLeader,
  raftSnapshot,
];

/** Lower-case name -> spec. Throws on a duplicate or a malformed spec (a programming error). */
export function buildTable(commands: readonly CommandSpec[] = COMMANDS): Map<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const spec of commands) {
    if (table.has(spec.name)) throw new Error(`duplicate command ${spec.name}`);
    if (spec.name !== spec.name.toLowerCase() || spec.name.includes('|')) {
      throw new Error(`bad top-level command name ${spec.name}`);
    }
    if (spec.arity === 0) throw new Error(`command ${spec.name} has arity 0`);
    table.set(spec.name, spec);
  }
  return table;
}
