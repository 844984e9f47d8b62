/**
 * redis-cli (Debian's /usr/bin/redis-cli) against a real server process: non-interactive mode
 * (formatted, --raw, -3 for RESP3, -x for binary stdin), --pipe with thousands of generated
 * commands, and an interactive session driven through tmux (prompt, replies, the argument
 * hints redis-cli builds from COMMAND DOCS, quit).
 * Runs against Concord, or against redis-server with COMPAT_TARGET=redis.
 * Owns a private tmux server (its own -L socket) and kills it in `after` hooks.
 */
import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { ALL_BYTES, ERRORS, uniqueKey, UTF8_TEXT } from './fixtures.js';
import {
  encodeCommand,
  onCleanup,
  rawConnection,
  redisCli,
  startTarget,
  TARGET,
  waitFor,
} from './harness.js';
import type { ServerHandle } from './harness.js';

const TMUX_TIMEOUT_MS = 5_000;
const TMUX_SOCKET = `concord-compat-${process.pid}`;

/** Runs `tmux -L <private socket> ...args`; resolves with stdout, rejects on a non-zero exit. */
function tmux(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'tmux',
      ['-L', TMUX_SOCKET, ...args],
      { timeout: TMUX_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null)
          reject(new Error(`tmux ${args.join(' ')}: ${stderr || error.message}`, { cause: error }));
        else resolve(stdout);
      },
    );
  });
}

async function killTmuxServer(): Promise<void> {
  await tmux('kill-server').catch(() => undefined);
}

/** The visible text of a tmux pane, trailing blank lines dropped. */
async function capture(session: string): Promise<string> {
  return (await tmux('capture-pane', '-p', '-t', session)).replace(/\s+$/, '');
}

/** Waits until the pane shows text matching `pattern`; returns the pane. */
function waitForPane(session: string, pattern: RegExp, what: string): Promise<string> {
  let last = '';
  return waitFor(
    `${what} (pane: ${JSON.stringify(last.slice(-600))})`,
    async () => {
      last = await capture(session);
      return pattern.test(last) ? last : undefined;
    },
    10_000,
  ).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- pane ---\n${last}`, {
      cause: err,
    });
  });
}

/** Types text literally (no key-name interpretation) into the pane. */
async function type(session: string, text: string): Promise<void> {
  await tmux('send-keys', '-t', session, '-l', text);
}

async function enter(session: string): Promise<void> {
  await tmux('send-keys', '-t', session, 'Enter');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** How redis-cli prints a bulk string in its formatted (non-raw) mode, like sdscatrepr. */
function cliRepr(bytes: Buffer): string {
  let out = '"';
  for (const byte of bytes) {
    const ch = String.fromCharCode(byte);
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (byte === 7) out += '\\a';
    else if (byte === 8) out += '\\b';
    else if (byte >= 0x20 && byte < 0x7f) out += ch;
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** A COMMAND DOCS argument, from its RESP2 flat key/value array. */
interface DocArgument {
  name: string;
  type: string;
  token?: string;
  flags: string[];
  arguments: DocArgument[];
}

function toFields(flat: unknown[]): Map<string, unknown> {
  const fields = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1]);
  return fields;
}

function toArgument(flat: unknown[]): DocArgument {
  const fields = toFields(flat);
  const token = fields.get('token') as string | undefined;
  return {
    name: String(fields.get('name')),
    type: String(fields.get('type')),
    ...(token !== undefined ? { token } : {}),
    flags: ((fields.get('flags') as unknown[] | undefined) ?? []).map(String),
    arguments: ((fields.get('arguments') as unknown[][] | undefined) ?? []).map(toArgument),
  };
}

/**
 * The argument hint redis-cli shows for a command, rendered from COMMAND DOCS the way the Redis
 * docs describe argument syntax: `[optional]`, `a|b` for oneof, blocks joined with spaces,
 * `TOKEN value`, `x [x ...]` for multiple.
 */
function renderHint(args: readonly DocArgument[]): string {
  return args.map(renderArgument).join(' ');
}

function renderArgument(arg: DocArgument): string {
  let text: string;
  if (arg.type === 'pure-token') text = arg.token ?? arg.name;
  else if (arg.type === 'oneof') text = arg.arguments.map(renderArgument).join('|');
  // A block's token leads it, as redis-cli shows SORT's [LIMIT offset count].
  else if (arg.type === 'block')
    text = arg.token !== undefined ? `${arg.token} ${renderHint(arg.arguments)}` : renderHint(arg.arguments);
  else text = arg.token !== undefined ? `${arg.token} ${arg.name}` : arg.name;
  if (arg.flags.includes('multiple')) {
    const repeated =
      arg.flags.includes('multiple_token') || arg.token === undefined
        ? text
        : text.slice(arg.token.length + 1);
    text = `${text} [${repeated} ...]`;
  }
  return arg.flags.includes('optional') ? `[${text}]` : text;
}

async function commandDocs(port: number, name: string): Promise<DocArgument[]> {
  const conn = await rawConnection(port);
  try {
    const reply = (await conn.call('COMMAND', 'DOCS', name)).value as unknown[];
    expect(reply[0]).to.equal(name);
    const docs = toFields(reply[1] as unknown[]);
    return ((docs.get('arguments') as unknown[][] | undefined) ?? []).map(toArgument);
  } finally {
    conn.close();
  }
}

describe(`redis-cli against ${TARGET}`, function () {
  let server: ServerHandle;

  before(async function () {
    server = await startTarget();
  });

  after(async function () {
    await server.stop();
  });

  describe('non-interactive', function () {
    it('runs a command per invocation; output is raw when stdout is not a terminal', async function () {
      const key = uniqueKey('cli');
      expect(await redisCli(server.port, ['SET', key, 'v'])).to.deep.equal({
        stdout: 'OK\n',
        stderr: '',
        code: 0,
      });
      expect((await redisCli(server.port, ['GET', key])).stdout).to.equal('v\n');
      expect((await redisCli(server.port, ['PING'])).stdout).to.equal('PONG\n');
      expect((await redisCli(server.port, ['ECHO', 'hello world'])).stdout).to.equal('hello world\n');
      expect((await redisCli(server.port, ['INCRBY', uniqueKey('n'), '5'])).stdout).to.equal('5\n');
      expect((await redisCli(server.port, ['DBSIZE'])).stdout).to.match(/^\d+\n$/);
    });

    it('formats replies like a terminal with --no-raw', async function () {
      const key = uniqueKey('cli');
      const counter = uniqueKey('n');
      await redisCli(server.port, ['SET', key, 'some value']);
      const run = async (...args: string[]) => (await redisCli(server.port, ['--no-raw', ...args])).stdout;
      expect(await run('GET', key)).to.equal('"some value"\n');
      expect(await run('GET', uniqueKey('missing'))).to.equal('(nil)\n');
      expect(await run('INCR', counter)).to.equal('(integer) 1\n');
      expect(await run('MGET', key, uniqueKey('missing'), counter)).to.equal(
        '1) "some value"\n2) (nil)\n3) "1"\n',
      );
      expect(await run('EXISTS', key, key)).to.equal('(integer) 2\n');
      expect(await run('NOSUCHCMD', 'x')).to.equal(`(error) ${ERRORS.unknownCommand('NOSUCHCMD', 'x')}\n`);
      expect(await run('GET')).to.equal(`(error) ${ERRORS.wrongArity('get')}\n`);
      const time = await run('TIME');
      expect(time).to.match(/^1\) "\d+"\n2\) "\d+"\n$/);
    });

    it('--raw prints bulk strings unquoted and errors as text', async function () {
      const key = uniqueKey('raw');
      await redisCli(server.port, ['SET', key, UTF8_TEXT]);
      expect((await redisCli(server.port, ['--raw', 'GET', key])).stdout).to.equal(`${UTF8_TEXT}\n`);
      expect((await redisCli(server.port, ['--no-raw', 'GET', key])).stdout).to.equal(
        `${cliRepr(Buffer.from(UTF8_TEXT))}\n`,
      );
      expect((await redisCli(server.port, ['--raw', 'MGET', key, key])).stdout).to.equal(
        `${UTF8_TEXT}\n${UTF8_TEXT}\n`,
      );
      const error = await redisCli(server.port, ['--raw', 'INCR', key]);
      expect(error.stdout).to.equal(`${ERRORS.notInteger}\n\n`);
    });

    it('-3 speaks RESP3: HELLO map, nulls, CONFIG GET as a map', async function () {
      const hello = (await redisCli(server.port, ['-3', '--no-raw', 'HELLO', '3'])).stdout;
      expect(hello).to.match(/^1# "server" => "[^"]+"\n/);
      expect(hello).to.match(/^3# "proto" => \(integer\) 3$/m);
      expect(hello).to.match(/^4# "id" => \(integer\) \d+$/m);
      expect(hello).to.match(/"modules" => /);
      expect((await redisCli(server.port, ['-3', '--no-raw', 'GET', uniqueKey('missing')])).stdout).to.equal(
        '(nil)\n',
      );
      expect(
        (await redisCli(server.port, ['-3', '--no-raw', 'CONFIG', 'GET', 'appendonly'])).stdout,
      ).to.match(/^1# "appendonly" => "(no|yes)"\n$/);
      expect((await redisCli(server.port, ['-3', '--no-raw', 'PING'])).stdout).to.equal('PONG\n');
    });

    it('-r repeats a command', async function () {
      const key = uniqueKey('repeat');
      const run = await redisCli(server.port, ['-r', '50', 'INCR', key]);
      expect(run.stdout.trim().split('\n')).to.deep.equal(
        Array.from({ length: 50 }, (_, i) => String(i + 1)),
      );
    });

    it('-x sends stdin as the last argument: all 256 byte values arrive intact', async function () {
      const key = uniqueKey('stdin');
      expect((await redisCli(server.port, ['-x', 'SET', key], ALL_BYTES)).stdout).to.equal('OK\n');
      expect((await redisCli(server.port, ['--no-raw', 'GET', key])).stdout).to.equal(
        `${cliRepr(ALL_BYTES)}\n`,
      );
      const conn = await rawConnection(server.port, { returnBuffers: true });
      try {
        const reply = await conn.call('GET', key);
        expect(Buffer.isBuffer(reply.value) && reply.value.equals(ALL_BYTES)).to.equal(true);
      } finally {
        conn.close();
      }
    });
  });

  describe('--pipe', function () {
    it('pipes 5,000 generated commands: errors: 0, replies: 5000', async function () {
      const prefix = uniqueKey('pipe');
      const commands: Buffer[] = [];
      for (let i = 0; i < 5_000; i++) {
        if (i % 5 === 4) commands.push(encodeCommand(['INCR', `${prefix}:counter`]));
        else commands.push(encodeCommand(['SET', `${prefix}:${i}`, `value-${i}`]));
      }
      const result = await redisCli(server.port, ['--pipe'], Buffer.concat(commands));
      expect(result.stdout).to.include('All data transferred. Waiting for the last reply...');
      expect(result.stdout).to.include('Last reply received from server.');
      expect(result.stdout).to.match(/^errors: 0, replies: 5000$/m);
      expect(result.code).to.equal(0);
      expect((await redisCli(server.port, ['GET', `${prefix}:counter`])).stdout).to.equal('1000\n');
      expect((await redisCli(server.port, ['GET', `${prefix}:4998`])).stdout).to.equal('value-4998\n');
    });

    it('counts error replies and exits non-zero; inline commands work in a pipe', async function () {
      const prefix = uniqueKey('pipe-err');
      let input = '';
      for (let i = 0; i < 3_000; i++) {
        if (i % 1_000 === 999) input += `NOSUCHCMD ${i}\r\n`;
        else input += `SET ${prefix}:${i} v${i}\r\n`;
      }
      const result = await redisCli(server.port, ['--pipe'], input);
      expect(result.stdout).to.match(/^errors: 3, replies: 3000$/m);
      expect(result.code).to.equal(1);
      expect((await redisCli(server.port, ['GET', `${prefix}:2998`])).stdout).to.equal('v2998\n');
    });
  });

  describe('interactive, through tmux', function () {
    let session: string;
    let sessions = 0;
    let unregister: (() => void) | undefined;

    before(async function () {
      unregister = onCleanup(killTmuxServer);
      await killTmuxServer();
      // One tmux server for the whole suite: by default it exits with its last session, and a
      // new-session racing that exit fails with "server exited unexpectedly".
      await tmux('start-server', ';', 'set-option', '-g', 'exit-empty', 'off');
    });

    beforeEach(async function () {
      sessions += 1;
      session = `cli-${process.pid}-${sessions}`;
      // History and rc files off: the test must not read or write the user's.
      const command = `env REDISCLI_HISTFILE=/dev/null REDISCLI_RCFILE=/dev/null redis-cli -h 127.0.0.1 -p ${server.port}`;
      await tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', command);
      await waitForPane(
        session,
        new RegExp(`^127\\.0\\.0\\.1:${server.port}> ?$`, 'm'),
        'the redis-cli prompt',
      );
    });

    afterEach(async function () {
      await tmux('kill-session', '-t', session).catch(() => undefined);
    });

    after(async function () {
      await killTmuxServer();
      unregister?.();
    });

    it('shows the prompt, runs commands and formats replies', async function () {
      const prompt = `127.0.0.1:${server.port}>`;
      const key = uniqueKey('tty');
      await type(session, `SET ${key} "hello tmux"`);
      await enter(session);
      await waitForPane(
        session,
        new RegExp(`${escapeRegExp(prompt)} SET ${escapeRegExp(key)} "hello tmux"\\nOK\\n`),
        'OK',
      );
      await type(session, `GET ${key}`);
      await enter(session);
      await waitForPane(session, /\n"hello tmux"\n/, 'the value');
      await type(session, `INCR ${key}`);
      await enter(session);
      await waitForPane(
        session,
        /\n\(error\) ERR value is not an integer or out of range\n/,
        'the error reply',
      );
      await type(session, 'PING');
      await enter(session);
      const pane = await waitForPane(session, /\nPONG\n/, 'PONG');
      expect(pane.trimEnd().split('\n').at(-1)).to.equal(prompt);
    });

    it('shows argument hints from COMMAND DOCS while typing SET and GET', async function () {
      const prompt = `127.0.0.1:${server.port}>`;
      for (const name of ['set', 'get', 'incrby']) {
        const expected = renderHint(await commandDocs(server.port, name));
        expect(expected.length, `rendered ${name} hint`).to.be.greaterThan(0);
        await type(session, `${name.toUpperCase()} `);
        const pane = await waitForPane(
          session,
          new RegExp(`^${escapeRegExp(prompt)} ${name.toUpperCase()} ${escapeRegExp(expected)}$`, 'm'),
          `the ${name} hint ${JSON.stringify(expected)}`,
        );
        expect(pane).to.include(expected);
        // Erase what was typed (C-u clears the line in linenoise).
        await tmux('send-keys', '-t', session, 'C-u');
        await waitForPane(session, new RegExp(`^${escapeRegExp(prompt)} ?$`, 'm'), 'an empty prompt');
      }
    });

    it('HELLO 3 in the session switches it to RESP3 output', async function () {
      await type(session, 'HELLO 3');
      await enter(session);
      await waitForPane(session, /^3# "proto" => \(integer\) 3$/m, 'the HELLO 3 map');
      await type(session, 'CONFIG GET appendonly');
      await enter(session);
      await waitForPane(session, /^1# "appendonly" => "(no|yes)"$/m, 'CONFIG GET as a map');
    });

    it('quit ends the session', async function () {
      await type(session, 'quit');
      await enter(session);
      await waitFor('the tmux session to end', async () => {
        const alive = await tmux('has-session', '-t', session).then(
          () => true,
          () => false,
        );
        return alive ? undefined : true;
      });
    });
  });
});
