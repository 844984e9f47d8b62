/**
 * Scripted Raft scenarios: a small deterministic harness that drives RaftCore instances one
 * step at a time from a text script and prints what happened, for golden-file tests
 * (model: etcd-io/raft `interaction_test.go` + `testdata/*.txt`, the datadriven format).
 *
 * A script is a sequence of blocks:
 *
 *     # comments and blank lines are kept as they are
 *     command arg key=value key=(a,b,c)
 *     optional input lines
 *     ----
 *     the output of the command (no blank lines), up to the next blank line
 *
 * The harness plays the driver's part of the Ready contract (messages.ts): it persists
 * entries and hard state into each node's MemoryStorage, queues messages on a simulated
 * network, applies committed entries (calling applyConfChange for membership changes) and
 * collects read states. Nothing moves unless a command says so: messages wait in the network
 * until `deliver`/`stabilize`, ticks happen only on `tick`.
 *
 * Commands (details on each method below):
 *   add-nodes ids=(..) [learners=(..)] [joining=(..) members=(..)] [election= heartbeat=
 *             max-size= max-inflight= seed= prevote= checkquorum= bugs=(..)]   + seed lines
 *   campaign <ids>            tick <ids> [n=] [stabilize=true] [until=campaign|leader]
 *   propose <id> <data>       propose-conf-change <id> add-voter=|add-learner=|remove=<node>
 *   read-index <id> <ctx>     transfer-leadership <from> <to>
 *   process-ready <ids>       stabilize [ids]
 *   deliver|drop|msgs [from=(..)] [to=(..)] [type=(..)]
 *   partition (a,b) (c,d)     heal      crash <ids>      restart <ids>
 *   status [ids]   raft-log [ids]   read-states [ids]   app-stats <leader>   mark <name>
 * Any command takes quiet=true: only role changes, violations and summaries are printed.
 * `UPDATE_GOLDEN=1` makes scenarios.spec.ts rewrite the outputs in testdata/*.txt.
 *
 * While it runs it checks three safety properties and prints a `!! VIOLATION` line (also kept
 * in `violations`) when one breaks: Election Safety (two leaders in one term, §5.2), State
 * Machine Safety (two different entries applied at one index, §5.4.3) and "a node never
 * truncates its own committed prefix" (Log Matching + Leader Completeness, §5.3/§5.4).
 *
 * It must never use Math.random, Date, timers or I/O: the same script gives byte-identical
 * output. Every queue it keeps is bounded; exceeding a bound throws (a runaway scenario is a
 * bug in the script or the core, not something to paper over).
 */

import assert from 'node:assert/strict';
import { RaftCore } from '../core.js';
import type { BugFlags, RaftConfig } from '../core.js';
import { NotLeaderError, ProposalDroppedError } from '../errors.js';
import { ConfChangeType, decodeConfChange, EntryType, MessageType, Role } from '../messages.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Ready,
} from '../messages.js';
import { MemoryStorage } from '../storage.js';
import { Prng } from './prng.js';

/** Bounds: the network queue, stabilize rounds, the delivery record and one command's output. */
export const MAX_QUEUED_MESSAGES = 10_000;
export const MAX_STABILIZE_ROUNDS = 1_000;
export const MAX_DELIVERED_RECORD = 100_000;
export const MAX_OUTPUT_LINES = 20_000;

/** One parsed block of a script. */
export interface ScriptBlock {
  /** Comment and blank lines that precede the command, kept verbatim for rewriting. */
  readonly preamble: readonly string[];
  readonly command: string;
  readonly input: readonly string[];
  /** Expected output lines as written in the file. */
  readonly expected: readonly string[];
  /** 1-based line of the command in the file. */
  readonly line: number;
}

export interface ParsedScript {
  readonly blocks: readonly ScriptBlock[];
  /** Lines after the last block (trailing comments). */
  readonly trailer: readonly string[];
}

/** Parses the datadriven-style text; throws on a command without its `----` separator. */
export function parseScript(text: string): ParsedScript {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const blocks: ScriptBlock[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (line.trim() === '' || line.startsWith('#')) {
      preamble.push(line);
      i++;
      continue;
    }
    const commandLine = i + 1;
    const command = line;
    i++;
    const input: string[] = [];
    while (i < lines.length && lines[i] !== '----') {
      input.push(lines[i] ?? '');
      i++;
    }
    if (i >= lines.length) throw new Error(`line ${commandLine}: command "${command}" has no ---- separator`);
    i++; // the separator
    const expected: string[] = [];
    while (i < lines.length && (lines[i] ?? '') !== '') {
      expected.push(lines[i] ?? '');
      i++;
    }
    blocks.push({ preamble, command, input, expected, line: commandLine });
    preamble = [];
  }
  return { blocks, trailer: preamble };
}

/** Renders a script with the given outputs in place of the expected ones. */
export function renderScript(script: ParsedScript, outputs: readonly (readonly string[])[]): string {
  const out: string[] = [];
  script.blocks.forEach((block, n) => {
    out.push(...block.preamble, block.command, ...block.input, '----', ...(outputs[n] ?? []));
  });
  out.push(...script.trailer);
  return out.join('\n') + '\n';
}

/** A parsed command line: `name pos1 pos2 key=value key=(a,b)`. */
interface Command {
  readonly name: string;
  readonly positional: readonly string[];
  readonly named: ReadonlyMap<string, string[]>;
}

function parseCommand(line: string): Command {
  const tokens: string[] = [];
  // A token is a run of non-space characters, where parentheses group spaces: key=(a, b).
  const re = /[^\s(]*\([^)]*\)[^\s]*|[^\s]+/g;
  for (const match of line.matchAll(re)) tokens.push(match[0]);
  const [name, ...rest] = tokens;
  assert.ok(name !== undefined, 'empty command');
  const positional: string[] = [];
  const named = new Map<string, string[]>();
  for (const token of rest) {
    const eq = token.indexOf('=');
    if (eq > 0 && !token.startsWith('(')) {
      named.set(token.slice(0, eq), splitList(token.slice(eq + 1)));
    } else {
      positional.push(token);
    }
  }
  return { name, positional, named };
}

function splitList(value: string): string[] {
  const inner = value.startsWith('(') && value.endsWith(')') ? value.slice(1, -1) : value;
  return inner
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** What `mark <name>` records, for the spec's property assertions. */
export interface NodeSnapshot {
  readonly id: NodeId;
  readonly crashed: boolean;
  readonly role: Role | null;
  readonly term: number;
  readonly commit: number;
  readonly leader: NodeId | null;
  readonly lastIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Terms of the stored log, index 1.. (0 where compacted). */
  readonly logTerms: readonly number[];
  /** The stored log as printed by raft-log (one formatted entry per index from firstIndex). */
  readonly log: readonly string[];
  /** Index -> term of what this node's state machine has applied since its last restart. */
  readonly appliedTerms: readonly number[];
  readonly readStates: readonly { index: number; context: string }[];
}

export interface Mark {
  readonly name: string;
  readonly nodes: ReadonlyMap<NodeId, NodeSnapshot>;
  /** Number of messages delivered before this mark (an index into Scenario.delivered). */
  readonly deliveredCount: number;
  readonly violations: number;
  /** Leader per term seen so far. */
  readonly leaders: ReadonlyMap<number, NodeId>;
}

/**
 * The `quiet=true` form of a long command's output: violations, the command's summary lines
 * and every role change (as `round N: > id ready role=...`), then how much was left out.
 */
function summarize(lines: readonly string[]): string[] {
  const kept: string[] = [];
  let round = '';
  let header = '';
  for (const l of lines) {
    if (l.startsWith('-- round ')) round = l.slice(3);
    else if (l.startsWith('> ')) header = l;
    if (l.startsWith('!!') || /^(round |no )/.test(l)) kept.push(l);
    else if (l.startsWith('  role=')) kept.push(`${round === '' ? '' : `${round}: `}${header}: ${l.trim()}`);
  }
  kept.push(`(${lines.length - kept.length} lines of detail omitted)`);
  return kept;
}

/** Per-cluster options from add-nodes. */
interface NodeOptions {
  electionTicks: number;
  heartbeatTicks: number;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  /** Base seed of the nodes' random streams (election timeouts). */
  seed: number;
  preVote: boolean;
  checkQuorum: boolean;
  bugs: BugFlags;
}

interface SimNode {
  readonly id: NodeId;
  readonly seed: number;
  readonly storage: MemoryStorage;
  readonly options: NodeOptions;
  core: RaftCore | null;
  /** Random stream for the core; recreated from the seed and restart count on restart. */
  restarts: number;
  /** Terms of entries applied since the last restart, by index (sparse array avoided: a Map). */
  applied: Map<number, number>;
  readStates: ReadState[];
}

interface Queued {
  readonly message: Message;
  /** Monotonic sequence number, for stable printing. */
  readonly seq: number;
}

function confChangeVerb(type: ConfChangeType): string {
  switch (type) {
    case ConfChangeType.AddVoter:
      return 'add-voter';
    case ConfChangeType.AddLearner:
      return 'add-learner';
    case ConfChangeType.RemoveNode:
      return 'remove';
    default: {
      const never: never = type;
      throw new Error(`unknown conf change type ${String(never)}`);
    }
  }
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

export function formatEntry(e: Entry): string {
  const head = `${e.index}@t${e.term}`;
  switch (e.type) {
    case EntryType.Normal:
      return e.data.length === 0 ? head : `${head} "${textDecoder.decode(e.data)}"`;
    case EntryType.Empty:
      return `${head} noop`;
    case EntryType.ConfChange: {
      const cc = decodeConfChange(e.data);
      return `${head} conf(${confChangeVerb(cc.type)} ${cc.node})`;
    }
    default: {
      const never: never = e.type;
      throw new Error(`unknown entry type ${String(never)}`);
    }
  }
}

/** One line per message; only fields that carry information for its type are printed. */
export function formatMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  // (index, logTerm): the previous entry for App, the last entry for (Pre)Vote; responses
  // carry only an index (logTerm 0).
  if (m.logTerm !== 0) parts.push(`log=${m.index}@t${m.logTerm}`);
  else if (m.index !== 0) parts.push(`index=${m.index}`);
  if (m.commit !== 0) parts.push(`commit=${m.commit}`);
  if (m.reject) {
    parts.push(
      m.rejectHint !== 0 || m.hintTerm !== 0 ? `REJECT hint=${m.rejectHint}@t${m.hintTerm}` : 'REJECT',
    );
  }
  if (m.entries.length > 0) parts.push(`entries=[${m.entries.map(formatEntry).join(', ')}]`);
  if (m.snapshot !== null) parts.push(`snapshot=${m.snapshot.metadata.index}@t${m.snapshot.metadata.term}`);
  if (m.context !== null && m.context.length > 0) parts.push(`ctx="${textDecoder.decode(m.context)}"`);
  return parts.join(' ');
}

function formatHardState(hs: HardState): string {
  return `term=${hs.term} vote=${hs.vote ?? '-'} commit=${hs.commit}`;
}

function formatConf(cs: ConfState): string {
  const learners = cs.learners.length > 0 ? ` learners=(${cs.learners.join(',')})` : '';
  return `voters=(${cs.voters.join(',')})${learners}`;
}

function parseBool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`expected true/false, got ${value}`);
}

function parseIntArg(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`expected an integer, got ${value}`);
  return n;
}

const BUG_NAMES: readonly (keyof BugFlags)[] = [
  'commitOldTermEntries',
  'voteWithoutLogCheck',
  'forgetVote',
  'skipPrevLogCheck',
  'readIndexWithoutQuorumCheck',
  'commitRegression',
];

/** Filters for deliver/drop/msgs. */
interface MessageFilter {
  from?: ReadonlySet<NodeId>;
  to?: ReadonlySet<NodeId>;
  type?: ReadonlySet<string>;
}

export class Scenario {
  private readonly nodes = new Map<NodeId, SimNode>();
  private network: Queued[] = [];
  private seq = 0;
  /** Partition: node -> group number; nodes in different groups cannot talk. Empty = healed. */
  private groups = new Map<NodeId, number>();
  /** Everything delivered (bounded), for the spec's counting. */
  readonly delivered: Message[] = [];
  readonly violations: string[] = [];
  readonly marks = new Map<string, Mark>();
  /** term -> the node that led it (Election Safety). */
  private readonly leaders = new Map<number, NodeId>();
  /** index -> term of the entry first applied there by any node (State Machine Safety). */
  private readonly appliedAnywhere = new Map<number, { term: number; by: NodeId }>();
  private out: string[] = [];
  /** Index into `delivered` where the next app-stats starts counting. */
  private statsFrom = 0;
  /** Vote/PreVote campaigns seen in Ready messages since `tick` last cleared it (one per node). */
  private campaigns: { id: NodeId; type: MessageType; term: number }[] = [];

  /** Runs one block and returns its output lines. Errors in the script throw. */
  run(block: Pick<ScriptBlock, 'command' | 'input'>): string[] {
    this.out = [];
    const cmd = parseCommand(block.command);
    this.dispatch(cmd, block.input);
    if (parseBool(cmd.named.get('quiet')?.[0], false)) this.out = summarize(this.out);
    if (this.out.length === 0) this.out.push('ok');
    return this.out;
  }

  private dispatch(cmd: Command, input: readonly string[]): void {
    switch (cmd.name) {
      case 'add-nodes':
        return this.addNodes(cmd, input);
      case 'campaign':
        return this.withCore(cmd, (core) => core.campaign(), true);
      case 'tick':
        return this.tick(cmd);
      case 'process-ready':
        return this.processReady(this.ids(cmd));
      case 'deliver':
        this.deliver(this.filter(cmd), false);
        return;
      case 'drop':
        this.deliver(this.filter(cmd), true);
        return;
      case 'msgs':
        return this.printQueued(this.filter(cmd));
      case 'stabilize':
        return this.stabilize(this.ids(cmd));
      case 'propose':
        return this.propose(cmd);
      case 'propose-conf-change':
        return this.proposeConfChange(cmd);
      case 'read-index':
        return this.readIndex(cmd);
      case 'transfer-leadership':
        return this.transferLeadership(cmd);
      case 'partition':
        return this.partition(cmd);
      case 'heal':
        return this.heal();
      case 'crash':
        return this.crash(cmd);
      case 'restart':
        return this.restart(cmd);
      case 'status':
        for (const id of this.ids(cmd)) this.print(this.statusLine(id));
        return;
      case 'raft-log':
        for (const id of this.ids(cmd)) this.print(this.logLine(id));
        return;
      case 'read-states':
        return this.printReadStates(cmd);
      case 'mark':
        return this.mark(cmd);
      case 'app-stats':
        return this.appStats(cmd);
      default:
        throw new Error(`unknown command ${cmd.name}`);
    }
  }

  // ---- setup -------------------------------------------------------------------------------

  /**
   * `add-nodes ids=(a,b,c) [learners=(x)] [joining=(y) [members=(a,b,c)]] [prevote=] [checkquorum=] [election=10]
   * [heartbeat=1] [max-size=] [max-inflight=] [seed=1] [bugs=(commitOldTermEntries,...)]`.
   * Input lines seed a node's storage before its core starts (a restart from that state):
   * `<id> log=(1,1,4) term=7 vote=<id> commit=3`. `joining` nodes start with an empty log and
   * the voters in `members=` (default: none); they learn later changes from
   * the log once added by a ConfChange.
   */
  private addNodes(cmd: Command, input: readonly string[]): void {
    const ids = cmd.named.get('ids') ?? [];
    const learners = cmd.named.get('learners') ?? [];
    const joining = cmd.named.get('joining') ?? [];
    const bugs: BugFlags = {};
    for (const bug of cmd.named.get('bugs') ?? []) {
      if (!(BUG_NAMES as readonly string[]).includes(bug)) throw new Error(`unknown bug ${bug}`);
      bugs[bug as keyof BugFlags] = true;
    }
    const options: NodeOptions = {
      electionTicks: parseIntArg(cmd.named.get('election')?.[0], 10),
      heartbeatTicks: parseIntArg(cmd.named.get('heartbeat')?.[0], 1),
      maxInflightMsgs: parseIntArg(cmd.named.get('max-inflight')?.[0], 256),
      maxSizePerMsg: parseIntArg(cmd.named.get('max-size')?.[0], 1 << 20),
      seed: parseIntArg(cmd.named.get('seed')?.[0], 1),
      preVote: parseBool(cmd.named.get('prevote')?.[0], false),
      checkQuorum: parseBool(cmd.named.get('checkquorum')?.[0], false),
      bugs,
    };
    const seeds = new Map<NodeId, Command>();
    for (const line of input) {
      const seedCmd = parseCommand(line);
      seeds.set(seedCmd.name, seedCmd);
    }
    for (const id of [...ids, ...learners, ...joining]) {
      if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
      // A joining node starts with the voters the operator gives it (`members=`, as etcd's
      // --initial-cluster for an existing cluster), by default none at all.
      const storage = joining.includes(id)
        ? new MemoryStorage({ voters: cmd.named.get('members') ?? [] })
        : new MemoryStorage({ voters: ids, learners });
      const seed = seeds.get(id);
      if (seed !== undefined) this.seedStorage(storage, seed);
      const node: SimNode = {
        id,
        seed: this.nodes.size + 1,
        storage,
        options,
        core: null,
        restarts: 0,
        applied: new Map(),
        readStates: [],
      };
      this.nodes.set(id, node);
      node.core = this.newCore(node);
    }
    for (const id of this.nodes.keys()) this.print(this.statusLine(id));
  }

  private seedStorage(storage: MemoryStorage, seed: Command): void {
    const terms = (seed.named.get('log') ?? []).map((t) => parseIntArg(t, 0));
    const entries: Entry[] = terms.map((term, i) => ({
      term,
      index: i + 1,
      type: EntryType.Normal,
      data: new Uint8Array(0),
    }));
    storage.append(entries);
    storage.setHardState({
      term: parseIntArg(seed.named.get('term')?.[0], terms[terms.length - 1] ?? 0),
      vote: seed.named.get('vote')?.[0] ?? null,
      commit: parseIntArg(seed.named.get('commit')?.[0], 0),
    });
  }

  private newCore(node: SimNode): RaftCore {
    // One independent stream per (cluster seed, node, incarnation).
    const prng = new Prng(node.options.seed * 1_000_000 + node.seed * 1000 + node.restarts);
    const config: RaftConfig = {
      id: node.id,
      storage: node.storage,
      electionTicks: node.options.electionTicks,
      heartbeatTicks: node.options.heartbeatTicks,
      maxInflightMsgs: node.options.maxInflightMsgs,
      maxSizePerMsg: node.options.maxSizePerMsg,
      preVote: node.options.preVote,
      checkQuorum: node.options.checkQuorum,
      random: () => prng.float(),
      bugs: node.options.bugs,
    };
    return new RaftCore(config);
  }

  // ---- helpers -----------------------------------------------------------------------------

  private print(line: string): void {
    if (this.out.length >= MAX_OUTPUT_LINES)
      throw new Error(`command output exceeds ${MAX_OUTPUT_LINES} lines`);
    this.out.push(line);
  }

  private node(id: string | undefined): SimNode {
    const node = id === undefined ? undefined : this.nodes.get(id);
    if (node === undefined) throw new Error(`unknown node ${String(id)}`);
    return node;
  }

  private liveCore(id: string | undefined): RaftCore {
    const node = this.node(id);
    if (node.core === null) throw new Error(`node ${node.id} is crashed`);
    return node.core;
  }

  /** Positional ids, or every node when none are named. */
  private ids(cmd: Command): NodeId[] {
    if (cmd.positional.length === 0) return [...this.nodes.keys()];
    for (const id of cmd.positional) this.node(id);
    return [...cmd.positional];
  }

  private filter(cmd: Command): MessageFilter {
    const f: MessageFilter = {};
    const from = cmd.named.get('from');
    const to = cmd.named.get('to');
    const type = cmd.named.get('type');
    if (from !== undefined) f.from = new Set(from);
    if (to !== undefined) f.to = new Set(to);
    if (type !== undefined) f.type = new Set(type);
    return f;
  }

  private matches(m: Message, f: MessageFilter): boolean {
    return (
      (f.from === undefined || f.from.has(m.from)) &&
      (f.to === undefined || f.to.has(m.to)) &&
      (f.type === undefined || f.type.has(m.type))
    );
  }

  private withCore(cmd: Command, action: (core: RaftCore) => void, all: boolean): void {
    const ids = all ? cmd.positional : cmd.positional.slice(0, 1);
    for (const id of ids) {
      action(this.liveCore(id));
      this.checkLeaders();
    }
  }

  // ---- clock and local requests -----------------------------------------------------------

  /**
   * `tick <ids...> [n=1] [stabilize=true] [until=campaign|leader]`: n rounds; in each round
   * every named node ticks once (in the order named), then with `stabilize=true` the named
   * nodes exchange messages until quiet (the round's output is headed `-- round N`; silent
   * rounds print nothing). `until=campaign` (implies stabilize) stops after the first round in
   * which a named node sent Vote or PreVote requests; `until=leader` (implies stabilize) stops
   * once a named node leads a term it did not lead before. Both say who and when.
   */
  private tick(cmd: Command): void {
    const n = parseIntArg(cmd.named.get('n')?.[0], 1);
    assert.ok(n >= 0 && n <= 10_000, `tick n=${n} out of range`);
    const until = cmd.named.get('until')?.[0];
    if (until !== undefined && until !== 'campaign' && until !== 'leader') {
      throw new Error(`tick until=${until}: only until=campaign or until=leader`);
    }
    const settle = until !== undefined || parseBool(cmd.named.get('stabilize')?.[0], false);
    const ledBefore = new Map<NodeId, number>();
    for (const id of cmd.positional) {
      const s = this.liveCore(id).status();
      ledBefore.set(id, s.role === Role.Leader ? s.term : -1);
    }
    const named = new Set(cmd.positional);
    for (let round = 1; round <= n; round++) {
      this.campaigns = [];
      for (const id of cmd.positional) {
        const core = this.liveCore(id);
        const before = core.status();
        core.tick();
        this.checkLeaders();
        const after = core.status();
        // A campaign that needs no votes (a one-voter configuration) sends no Vote message.
        if (after.role === Role.Leader && (before.role !== Role.Leader || before.term !== after.term)) {
          this.campaigns.push({ id, type: MessageType.Vote, term: after.term });
        }
      }
      if (settle) {
        const mark = this.out.length;
        this.print(`-- round ${round}`);
        this.stabilize(cmd.positional);
        if (this.out.length === mark + 1) this.out.pop();
      }
      const campaigners = this.campaigns.filter((c) => named.has(c.id));
      if (until === 'campaign' && campaigners.length > 0) {
        const who = campaigners.map((c) => `${c.id} campaigned (${c.type}) for term ${c.term}`);
        this.print(`round ${round}: ${who.join(', ')}`);
        return;
      }
      if (until === 'leader') {
        for (const id of cmd.positional) {
          const s = this.liveCore(id).status();
          if (s.role === Role.Leader && ledBefore.get(id) !== s.term) {
            this.print(`round ${round}: ${id} leads term ${s.term}`);
            return;
          }
        }
      }
    }
    if (until !== undefined) this.print(`no ${until} in ${n} rounds`);
  }

  /** `propose <id> <data>`: prints the (index, term) or the error. */
  private propose(cmd: Command): void {
    const [id, data] = cmd.positional;
    const core = this.liveCore(id);
    this.tryRequest(() => core.propose(textEncoder.encode(data ?? '')));
  }

  /** `propose-conf-change <id> add-voter=<n> | add-learner=<n> | remove=<n>`. */
  private proposeConfChange(cmd: Command): void {
    const core = this.liveCore(cmd.positional[0]);
    let cc: ConfChange | null = null;
    for (const [key, values] of cmd.named) {
      const target = values[0];
      if (target === undefined) continue;
      if (key === 'add-voter') cc = { type: ConfChangeType.AddVoter, node: target };
      if (key === 'add-learner') cc = { type: ConfChangeType.AddLearner, node: target };
      if (key === 'remove') cc = { type: ConfChangeType.RemoveNode, node: target };
    }
    if (cc === null) throw new Error('propose-conf-change needs add-voter=, add-learner= or remove=');
    const change = cc;
    this.tryRequest(() => core.proposeConfChange(change));
  }

  private tryRequest(request: () => { index: number; term: number }): void {
    try {
      const { index, term } = request();
      this.print(`proposed at ${index}@t${term}`);
    } catch (err) {
      if (err instanceof NotLeaderError) {
        this.print(`NotLeaderError leader=${err.leader ?? '-'}`);
      } else if (err instanceof ProposalDroppedError) {
        this.print(`ProposalDroppedError (${err.reason})`);
      } else {
        throw err;
      }
    }
  }

  /** `read-index <id> <context>`. */
  private readIndex(cmd: Command): void {
    const [id, context] = cmd.positional;
    this.liveCore(id).readIndex(textEncoder.encode(context ?? ''));
  }

  /** `transfer-leadership <from> <to>`. */
  private transferLeadership(cmd: Command): void {
    const [from, to] = cmd.positional;
    if (to === undefined) throw new Error('transfer-leadership <from> <to>');
    try {
      this.liveCore(from).transferLeadership(to);
    } catch (err) {
      if (!(err instanceof NotLeaderError)) throw err;
      this.print(`NotLeaderError leader=${err.leader ?? '-'}`);
    }
    this.checkLeaders();
  }

  /** `read-states [ids]`: the read states each node received so far (the last 1000). */
  private printReadStates(cmd: Command): void {
    for (const id of this.ids(cmd)) {
      const node = this.node(id);
      const states = node.readStates.map((r) => `${r.index}:"${textDecoder.decode(r.context)}"`);
      this.print(`${id}: [${states.join(' ')}]`);
    }
  }

  // ---- Ready loop --------------------------------------------------------------------------

  /** `process-ready <ids...>`: handle one Ready on each node that has one. */
  private processReady(ids: readonly NodeId[]): void {
    for (const id of ids) {
      const node = this.node(id);
      if (node.core?.hasReady() === true) this.handleReady(node, node.core);
    }
  }

  /** Plays the driver (Ready contract in messages.ts): persist, send, apply, read, advance. */
  private handleReady(node: SimNode, core: RaftCore): void {
    const rd: Ready = core.ready();
    this.print(`> ${node.id} ready`);
    const line = (s: string): void => this.print(`  ${s}`);
    if (rd.softState !== null) line(`role=${rd.softState.role} leader=${rd.softState.leader ?? '-'}`);
    if (rd.hardState !== null) line(`HardState ${formatHardState(rd.hardState)}`);
    if (rd.snapshot !== null) line(`Snapshot ${rd.snapshot.metadata.index}@t${rd.snapshot.metadata.term}`);
    if (rd.entries.length > 0) line(`Entries: ${rd.entries.map(formatEntry).join(', ')}`);
    // 1. persist
    if (rd.snapshot !== null) node.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.appendChecked(node, rd.entries);
    if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
    // 2. send
    for (const m of rd.messages) {
      line(`send ${formatMessage(m)}`);
      this.enqueue(m);
      const campaign = m.type === MessageType.Vote || m.type === MessageType.PreVote;
      if (campaign && m.from === node.id && !this.campaigns.some((c) => c.id === node.id)) {
        this.campaigns.push({ id: node.id, type: m.type, term: m.term });
      }
    }
    // 3. apply
    if (rd.committedEntries.length > 0) {
      line(`Apply: ${rd.committedEntries.map(formatEntry).join(', ')}`);
    }
    for (const e of rd.committedEntries) this.apply(node, core, e, line);
    // 4. reads
    for (const rs of rd.readStates) {
      line(`ReadState ${rs.index}:"${textDecoder.decode(rs.context)}"`);
      if (node.readStates.length >= 1000) node.readStates.shift();
      node.readStates.push(rs);
    }
    // 5. advance
    core.advance();
    if (rd.softState !== null && rd.softState.role === Role.Leader)
      this.noteLeader(node.id, core.status().term);
  }

  /** Appends, flagging any change to an entry at or below this node's durable commit index. */
  private appendChecked(node: SimNode, entries: readonly Entry[]): void {
    const commit = node.storage.initialState().hardState.commit;
    const first = node.storage.firstIndex();
    const last = node.storage.lastIndex();
    for (const e of entries) {
      if (e.index > commit || e.index < first || e.index > last) continue;
      const stored = node.storage.term(e.index);
      if (stored !== e.term) {
        this.violation(
          `${node.id} overwrites its committed entry ${e.index}@t${stored} with ${e.index}@t${e.term} (commit=${commit})`,
        );
      }
    }
    node.storage.append(entries);
  }

  private apply(node: SimNode, core: RaftCore, e: Entry, line: (s: string) => void): void {
    node.applied.set(e.index, e.term);
    const seen = this.appliedAnywhere.get(e.index);
    if (seen === undefined) {
      this.appliedAnywhere.set(e.index, { term: e.term, by: node.id });
    } else if (seen.term !== e.term) {
      this.violation(
        `State Machine Safety: ${node.id} applies ${e.index}@t${e.term} but ${seen.by} applied ${e.index}@t${seen.term}`,
      );
    }
    if (e.type === EntryType.ConfChange) {
      const cs = core.applyConfChange(decodeConfChange(e.data));
      line(`ConfState ${formatConf(cs)}`);
    }
  }

  /** Records and prints a broken safety property, once per distinct description. */
  private violation(text: string): void {
    if (this.violations.includes(text)) return;
    if (this.violations.length >= 1000) throw new Error('more than 1000 distinct violations');
    this.violations.push(text);
    this.print(`!! VIOLATION ${text}`);
  }

  private noteLeader(id: NodeId, term: number): void {
    const previous = this.leaders.get(term);
    if (previous === undefined) {
      this.leaders.set(term, id);
    } else if (previous !== id) {
      this.violation(`Election Safety: ${previous} and ${id} both lead term ${term}`);
    }
  }

  /** After every input to a core: a node that believes it leads is recorded for its term. */
  private checkLeaders(): void {
    for (const node of this.nodes.values()) {
      if (node.core === null) continue;
      const s = node.core.status();
      if (s.role === Role.Leader) this.noteLeader(node.id, s.term);
    }
  }

  // ---- network -----------------------------------------------------------------------------

  private enqueue(m: Message): void {
    if (this.network.length >= MAX_QUEUED_MESSAGES) {
      throw new Error(`network queue exceeds ${MAX_QUEUED_MESSAGES} messages`);
    }
    this.network.push({ message: m, seq: this.seq++ });
  }

  private canTalk(from: NodeId, to: NodeId): boolean {
    if (this.groups.size === 0) return true;
    return (this.groups.get(from) ?? -1) === (this.groups.get(to) ?? -2) || from === to;
  }

  /**
   * Delivers (or drops) every queued message matching the filter, in send order. Messages a
   * delivery produces stay in the nodes' Ready until processed, so they are not delivered by
   * the same command. Returns whether anything was delivered.
   */
  private deliver(f: MessageFilter, drop: boolean): boolean {
    const chosen = this.network.filter((q) => this.matches(q.message, f));
    const chosenSeqs = new Set(chosen.map((q) => q.seq));
    this.network = this.network.filter((q) => !chosenSeqs.has(q.seq));
    for (const { message: m } of chosen) {
      const target = this.nodes.get(m.to);
      if (drop) {
        this.print(`dropped ${formatMessage(m)}`);
      } else if (target === undefined) {
        this.print(`dropped (no such node) ${formatMessage(m)}`);
      } else if (target.core === null) {
        this.print(`dropped (${m.to} crashed) ${formatMessage(m)}`);
      } else if (!this.canTalk(m.from, m.to)) {
        this.print(`dropped (partition) ${formatMessage(m)}`);
      } else {
        this.print(`deliver ${formatMessage(m)}`);
        if (this.delivered.length >= MAX_DELIVERED_RECORD) {
          throw new Error(`more than ${MAX_DELIVERED_RECORD} deliveries in one scenario`);
        }
        this.delivered.push(m);
        target.core.step(m);
        this.checkLeaders();
      }
    }
    return chosen.length > 0;
  }

  private printQueued(f: MessageFilter): void {
    for (const { message } of this.network) {
      if (this.matches(message, f)) this.print(formatMessage(message));
    }
  }

  /**
   * `stabilize [ids...]`: until nothing changes, handle every Ready of the named nodes, then
   * deliver every queued message addressed to them (from anyone). Messages to other nodes stay
   * queued. Partitioned or crashed destinations drop their messages.
   */
  private stabilize(ids: readonly NodeId[]): void {
    const set = new Set(ids);
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let progressed = false;
      for (const id of ids) {
        const node = this.node(id);
        if (node.core?.hasReady() === true) {
          this.handleReady(node, node.core);
          progressed = true;
        }
      }
      if (this.deliver({ to: set }, false)) progressed = true;
      if (!progressed) return;
    }
    throw new Error(`stabilize did not settle in ${MAX_STABILIZE_ROUNDS} rounds`);
  }

  /** `partition (a,b) (c,d,e)`: nodes in different groups cannot talk; unnamed nodes are alone. */
  private partition(cmd: Command): void {
    this.groups = new Map();
    cmd.positional.forEach((group, n) => {
      for (const id of splitList(group)) {
        this.node(id);
        this.groups.set(id, n);
      }
    });
    let alone = cmd.positional.length;
    for (const id of this.nodes.keys()) if (!this.groups.has(id)) this.groups.set(id, alone++);
    const byGroup = new Map<number, NodeId[]>();
    for (const [id, g] of this.groups) byGroup.set(g, [...(byGroup.get(g) ?? []), id]);
    this.print(`partition ${[...byGroup.values()].map((g) => `(${g.join(',')})`).join(' ')}`);
  }

  /** `heal`: everyone can talk again; messages sent across the partition were lost in it. */
  private heal(): void {
    const lost = this.network.filter((q) => !this.canTalk(q.message.from, q.message.to));
    this.network = this.network.filter((q) => this.canTalk(q.message.from, q.message.to));
    this.groups = new Map();
    this.print(`healed (${lost.length} messages sent across the partition were lost)`);
  }

  // ---- crash and restart -------------------------------------------------------------------

  /** `crash <id>`: the core and its unpersisted state vanish; messages queued to it are lost. */
  private crash(cmd: Command): void {
    for (const id of cmd.positional) {
      const node = this.node(id);
      node.core = null;
      node.applied = new Map();
      node.readStates = [];
      const lost = this.network.filter((q) => q.message.to === id).length;
      this.network = this.network.filter((q) => q.message.to !== id);
      this.print(`${id} crashed (${lost} queued messages to it lost)`);
    }
  }

  /** `restart <id>`: a new core from the node's storage (term, vote, commit, log). */
  private restart(cmd: Command): void {
    for (const id of cmd.positional) {
      const node = this.node(id);
      if (node.core !== null) throw new Error(`${id} is not crashed`);
      node.restarts++;
      node.core = this.newCore(node);
      this.print(this.statusLine(id));
    }
  }

  // ---- inspection --------------------------------------------------------------------------

  private logTerms(node: SimNode): number[] {
    const terms: number[] = [];
    const first = node.storage.firstIndex();
    const last = node.storage.lastIndex();
    for (let i = 1; i <= last; i++) terms.push(i < first ? 0 : node.storage.term(i));
    return terms;
  }

  private statusLine(id: NodeId): string {
    const node = this.node(id);
    if (node.core === null) return `${id}: crashed`;
    const s = node.core.status();
    return (
      `${id}: ${s.role} term=${s.term} vote=${s.vote ?? '-'} commit=${s.commit} applied=${s.applied} ` +
      `leader=${s.leader ?? '-'} last=${s.lastIndex} ${formatConf(s.confState)}`
    );
  }

  private storedEntries(node: SimNode): Entry[] {
    const first = node.storage.firstIndex();
    const last = node.storage.lastIndex();
    return last >= first ? node.storage.entries(first, last + 1) : [];
  }

  private logLine(id: NodeId): string {
    const node = this.node(id);
    const first = node.storage.firstIndex();
    const entries = this.storedEntries(node);
    const commit = node.storage.initialState().hardState.commit;
    const compacted = first > 1 ? `[..${first - 1}] ` : '';
    return `${id}: ${compacted}${entries.map(formatEntry).join(' | ')} (commit=${commit})`;
  }

  /**
   * `app-stats <leader>`: per follower, the App messages the leader got delivered to it and
   * how many the follower rejected, since the previous app-stats (or the start); followers
   * with neither are not listed.
   */
  private appStats(cmd: Command): void {
    const leader = cmd.positional[0];
    this.node(leader);
    const since = this.statsFrom;
    this.statsFrom = this.delivered.length;
    for (const id of this.nodes.keys()) {
      if (id === leader) continue;
      let apps = 0;
      let rejected = 0;
      for (const m of this.delivered.slice(since)) {
        if (m.type === MessageType.App && m.from === leader && m.to === id) apps++;
        if (m.type === MessageType.AppResp && m.from === id && m.to === leader && m.reject) rejected++;
      }
      if (apps > 0 || rejected > 0)
        this.print(`${leader}->${id}: ${apps} App delivered, ${rejected} rejected`);
    }
  }

  /** `mark <name>`: records every node's state for the spec. */
  private mark(cmd: Command): void {
    const name = cmd.positional[0];
    if (name === undefined) throw new Error('mark <name>');
    const nodes = new Map<NodeId, NodeSnapshot>();
    for (const node of this.nodes.values()) {
      const s = node.core?.status() ?? null;
      const applied: number[] = [];
      for (const [index, term] of [...node.applied].sort((a, b) => a[0] - b[0])) applied[index - 1] = term;
      nodes.set(node.id, {
        id: node.id,
        crashed: node.core === null,
        role: s?.role ?? null,
        term: s?.term ?? node.storage.initialState().hardState.term,
        commit: s?.commit ?? node.storage.initialState().hardState.commit,
        leader: s?.leader ?? null,
        lastIndex: node.storage.lastIndex(),
        voters: s?.confState.voters ?? node.storage.initialState().confState.voters,
        learners: s?.confState.learners ?? node.storage.initialState().confState.learners,
        logTerms: this.logTerms(node),
        log: this.storedEntries(node).map(formatEntry),
        appliedTerms: applied,
        readStates: node.readStates.map((r) => ({ index: r.index, context: textDecoder.decode(r.context) })),
      });
    }
    this.marks.set(name, {
      name,
      nodes,
      deliveredCount: this.delivered.length,
      violations: this.violations.length,
      leaders: new Map(this.leaders),
    });
  }
}

/** The result of a whole script: the rewritten text, each block's output, the final harness. */
export interface ScriptRun {
  readonly actual: string;
  readonly outputs: readonly (readonly string[])[];
  readonly scenario: Scenario;
  readonly script: ParsedScript;
}

/** Runs a whole script; returns the rewritten text (actual outputs) and the scenario. */
export function runScript(text: string): ScriptRun {
  const script = parseScript(text);
  const scenario = new Scenario();
  const outputs = script.blocks.map((block) => {
    try {
      return scenario.run(block);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`line ${block.line} "${block.command}": ${message}`, { cause: err });
    }
  });
  return { actual: renderScript(script, outputs), outputs, scenario, script };
}
