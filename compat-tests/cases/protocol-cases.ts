/**
 * The case table of the differential protocol test (compat-tests/protocol-diff.spec.ts): byte
 * sequences sent identically to Concord and to redis-server, whose replies and connection state
 * must match. The cases follow the edge cases of Redis's tests/unit/protocol.tcl and
 * tests/unit/auth.tcl (learned from them, not copied), plus inline, pipelining and split-frame
 * cases of our own.
 *
 * Owns: data only. Must never: import the harness, start processes or open sockets; skip a case
 * to hide a difference (a deliberate difference is encoded in `difference`, with the same id as
 * its entry in docs/compatibility.md, section "Differential").
 */

/** Which pair of servers a case runs against. */
export type ServerMode =
  /** No password (redis-server defaults; Concord defaults). */
  | 'open'
  /** `requirepass foobar` on both (auth.tcl). */
  | 'requirepass';

/** The password the 'requirepass' servers are started with. */
export const PASSWORD = 'foobar';

/**
 * How the runner decides an exchange is over:
 * - 'probe': after the case's bytes it sends a probe request whose reply cannot be confused with
 *   anything else (`ECHO <nonce>`, preceded by `AUTH` in 'requirepass' mode); the exchange is
 *   over when that reply arrives (the connection is open and the parser back in sync) or when
 *   the server closes the connection.
 * - 'idle': the bytes leave a request incomplete on purpose, so nothing ends it; the exchange is
 *   over when the server closes, or after a quiet period with the connection still open.
 * - 'client-close': the client closes mid-frame; the outcome is whether the server still answers
 *   a probe on a new connection.
 * - 'flood-unread': the client never reads and sends its chunks again and again (up to a byte
 *   and a time limit); the outcome is whether the server closed the connection (the reply is not
 *   read, so it is always ''). Sent whole only.
 */
export type CaseEnd = 'probe' | 'idle' | 'client-close' | 'flood-unread';

/** What one server did with a case. */
export interface Outcome {
  /** Every reply byte received, as latin1 text (replies here are ASCII). */
  reply: string;
  /**
   * - 'open': the server kept the connection (the probe was answered, or the connection stayed
   *   open through the quiet period of an 'idle' case);
   * - 'closed': the server closed the connection;
   * - 'stuck': the connection stayed open but the probe got no answer before the deadline;
   * - 'alive' / 'dead': after a 'client-close' case, whether a new connection was answered.
   */
  state: 'open' | 'closed' | 'stuck' | 'alive' | 'dead';
}

/** A deliberate, documented difference: what each server is expected to do instead. */
export interface Difference {
  /** Id of the entry in docs/compatibility.md "Differential" (e.g. "D1"). */
  id: string;
  why: string;
  redis: Outcome;
  concord: Outcome;
}

export interface ProtocolCase {
  name: string;
  /** Where the case comes from: "protocol.tcl", "auth.tcl" or "concord". */
  source: 'protocol.tcl' | 'auth.tcl' | 'concord';
  mode: ServerMode;
  /**
   * The bytes, as latin1 text. Each element is one write in 'whole' runs (so a case can split a
   * frame on purpose); 'bytewise' runs send every byte on its own.
   */
  chunks: string[];
  end: CaseEnd;
  /** Set when Concord deliberately differs; both servers must then match their documented outcome. */
  difference?: Difference;
}

/** `n` bytes of the inline-desync filler protocol.tcl uses (no newline anywhere). */
function filler(prefix: string, n: number): string {
  return prefix + 'payload'.repeat(Math.ceil(n / 7)).slice(0, n);
}

/** A RESP multibulk request for argv. */
export function multibulk(...argv: string[]): string {
  return `*${argv.length}\r\n` + argv.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('');
}

export const PROTOCOL_CASES: readonly ProtocolCase[] = [
  // --- protocol.tcl ---------------------------------------------------------------------------
  { name: 'empty query', source: 'protocol.tcl', mode: 'open', chunks: ['\r\n'], end: 'probe' },
  {
    name: 'negative multibulk length',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*-10\r\n'],
    end: 'probe',
  },
  {
    name: 'multibulk length above INT_MAX',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*3000000000\r\n'],
    end: 'probe',
  },
  {
    name: 'multibulk length INT_MAX+1',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*2147483648\r\n'],
    end: 'probe',
  },
  {
    name: 'multibulk claim of 2 billion elements is accepted, not preallocated',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*2000000000\r\n', multibulk('PING').slice(4)],
    end: 'idle',
  },
  {
    name: 'multibulk claim of INT_MAX elements, then one element that is not a bulk',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*2147483647\r\nPING\r\n'],
    end: 'probe',
  },
  {
    name: 'wrong multibulk payload header',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n'],
    end: 'probe',
  },
  {
    name: 'negative multibulk payload length',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n'],
    end: 'probe',
  },
  {
    name: 'bulk length -1 inside a request',
    source: 'concord',
    mode: 'open',
    chunks: ['*2\r\n$4\r\nECHO\r\n$-1\r\n'],
    end: 'probe',
  },
  {
    name: 'out of range multibulk payload length',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n'],
    end: 'probe',
  },
  {
    name: 'bulk length at proto-max-bulk-len (512 MB) waits for the payload',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$536870912\r\n', 'abc'],
    end: 'idle',
  },
  {
    name: 'bulk length one above proto-max-bulk-len',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$536870913\r\n'],
    end: 'probe',
  },
  {
    name: 'non-number multibulk payload length',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n'],
    end: 'probe',
  },
  {
    name: 'multi bulk request not followed by bulk arguments',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: ['*1\r\nfoo\r\n'],
    end: 'probe',
  },
  {
    name: 'generic wrong number of args',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: [multibulk('PING', 'x', 'y', 'z')],
    end: 'probe',
  },
  {
    name: 'protocol desync #1: NUL then 70 KB without a newline',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: [filler('\x00', 70_000)],
    end: 'idle',
  },
  {
    name: 'protocol desync #2: "*" NUL then 70 KB without a newline',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: [filler('*\x00', 70_000)],
    end: 'idle',
  },
  {
    name: 'protocol desync #3: "$" NUL then 70 KB without a newline',
    source: 'protocol.tcl',
    mode: 'open',
    chunks: [filler('$\x00', 70_000)],
    end: 'idle',
  },

  // --- malformed numbers and missing CRLF -------------------------------------------------------
  { name: 'empty multibulk count', source: 'concord', mode: 'open', chunks: ['*\r\nPING\r\n'], end: 'probe' },
  { name: 'non-number multibulk count', source: 'concord', mode: 'open', chunks: ['*abc\r\n'], end: 'probe' },
  {
    name: 'multibulk count with a plus sign',
    source: 'concord',
    mode: 'open',
    chunks: ['*+1\r\n$4\r\nPING\r\n'],
    end: 'probe',
  },
  {
    name: 'multibulk count with a leading zero',
    source: 'concord',
    mode: 'open',
    chunks: ['*01\r\n$4\r\nPING\r\n'],
    end: 'probe',
  },
  { name: 'empty bulk length', source: 'concord', mode: 'open', chunks: ['*1\r\n$\r\n'], end: 'probe' },
  {
    name: 'bulk length with a leading zero',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$04\r\nPING\r\n'],
    end: 'probe',
  },
  {
    name: 'bulk length with trailing garbage',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$4x\r\n'],
    end: 'probe',
  },
  {
    name: 'multibulk count line ended by LF only',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\n$4\r\nPING\r\n'],
    end: 'probe',
  },
  {
    name: 'bulk payload not followed by CRLF: the two bytes after it are skipped unread',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$4\r\nPINGxxPING\r\n'],
    end: 'probe',
  },
  {
    name: 'bulk payload shorter than its length swallows the next bytes',
    source: 'concord',
    mode: 'open',
    chunks: ['*2\r\n$4\r\nECHO\r\n$1\r\nxy\r\n'],
    end: 'probe',
  },
  {
    name: 'bulk payload followed by LF only waits for one more byte',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$4\r\nPING\n'],
    end: 'idle',
  },
  {
    name: 'bulk count string longer than 64 KB',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$' + '1'.repeat(70_000)],
    end: 'idle',
  },
  {
    name: 'multibulk count string longer than 64 KB',
    source: 'concord',
    mode: 'open',
    chunks: ['*' + '1'.repeat(70_000)],
    end: 'idle',
  },
  {
    name: 'inline request longer than 64 KB without a newline',
    source: 'concord',
    mode: 'open',
    chunks: ['PING ' + 'a'.repeat(70_000)],
    end: 'idle',
  },

  // --- inline commands ------------------------------------------------------------------------
  { name: 'inline PING', source: 'concord', mode: 'open', chunks: ['PING\r\n'], end: 'probe' },
  { name: 'inline PING ended by LF only', source: 'concord', mode: 'open', chunks: ['PING\n'], end: 'probe' },
  {
    name: 'inline command with surrounding spaces and blank lines',
    source: 'concord',
    mode: 'open',
    chunks: ['\r\n   \r\n  PING  \r\n\n'],
    end: 'probe',
  },
  {
    name: 'inline quoted argument with escapes',
    source: 'concord',
    mode: 'open',
    chunks: ['ECHO "a\\x41\\n\\t\\"b"\r\n'],
    end: 'probe',
  },
  {
    name: 'inline single-quoted argument',
    source: 'concord',
    mode: 'open',
    chunks: ["ECHO 'it\\'s \"raw\"'\r\n"],
    end: 'probe',
  },
  {
    name: 'inline empty quoted argument',
    source: 'concord',
    mode: 'open',
    chunks: ['ECHO ""\r\n'],
    end: 'probe',
  },
  {
    name: 'inline tab separates arguments',
    source: 'concord',
    mode: 'open',
    chunks: ['ECHO a\tb\r\n'],
    end: 'probe',
  },
  {
    name: 'unbalanced double quote in inline command',
    source: 'concord',
    mode: 'open',
    chunks: ['set "foo bar\r\n'],
    end: 'probe',
  },
  {
    name: 'unbalanced single quote in inline command',
    source: 'concord',
    mode: 'open',
    chunks: ["PING 'x\r\n"],
    end: 'probe',
  },
  {
    name: 'closing quote not followed by a space',
    source: 'concord',
    mode: 'open',
    chunks: ['PING "a"b\r\n'],
    end: 'probe',
  },
  {
    name: 'inline unknown command with arguments',
    source: 'concord',
    mode: 'open',
    chunks: ['FOO bar baz\r\n'],
    end: 'probe',
  },
  {
    name: 'inline NUL byte before the newline',
    source: 'concord',
    mode: 'open',
    chunks: ['\x00\r\nPING\r\n'],
    end: 'idle',
    difference: {
      id: 'D1',
      why:
        'Redis looks for the inline newline with strchr, which stops at a NUL byte, so it waits for ' +
        'more input (until 64 KB: too big inline request); Concord finds the newline, and the line ' +
        'up to the NUL is empty, so it is skipped and the PING after it is answered.',
      redis: { reply: '', state: 'open' },
      concord: { reply: '+PONG\r\n', state: 'open' },
    },
  },

  // --- requests, pipelining, splits -----------------------------------------------------------
  {
    name: 'lower-case command name',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$4\r\nping\r\n'],
    end: 'probe',
  },
  {
    name: 'empty command name',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$0\r\n\r\n'],
    end: 'probe',
  },
  { name: 'empty multibulk', source: 'concord', mode: 'open', chunks: ['*0\r\n*-1\r\n'], end: 'probe' },
  {
    name: 'binary-safe bulk with CRLF inside',
    source: 'concord',
    mode: 'open',
    chunks: ['*2\r\n$4\r\nECHO\r\n$3\r\na\r\n\r\n'],
    end: 'probe',
  },
  {
    name: 'arity errors',
    source: 'concord',
    mode: 'open',
    chunks: ['GET\r\n', multibulk('SET', 'k'), multibulk('ECHO')],
    end: 'probe',
  },
  {
    name: 'pipelined mix of inline and multibulk, blank lines between',
    source: 'concord',
    mode: 'open',
    chunks: [
      'PING\r\n' +
        multibulk('PING') +
        '\r\n' +
        multibulk('ECHO', 'hi') +
        'ECHO x\r\n' +
        multibulk('SET', 'diff:k', 'v1') +
        'GET diff:k\r\n' +
        multibulk('DEL', 'diff:k'),
    ],
    end: 'probe',
  },
  {
    name: 'request split inside the count, the length and the payload',
    source: 'concord',
    mode: 'open',
    chunks: ['*', '2\r', '\n$4\r\nEC', 'HO\r\n$1', '1\r\nhello', ' world\r', '\n'],
    end: 'probe',
  },
  {
    name: 'pipelined requests, then a protocol error: replies before it, then close',
    source: 'concord',
    mode: 'open',
    chunks: [multibulk('PING') + 'ECHO a\r\n' + '*1\r\n$x\r\n' + multibulk('PING')],
    end: 'probe',
  },
  {
    name: 'QUIT replies then closes, later requests are not answered',
    source: 'concord',
    mode: 'open',
    chunks: ['QUIT\r\nPING\r\n'],
    end: 'probe',
  },
  {
    name: 'client disconnects inside a bulk payload',
    source: 'concord',
    mode: 'open',
    chunks: ['*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc'],
    end: 'client-close',
  },
  {
    name: 'client disconnects after a 2-billion-element claim',
    source: 'concord',
    mode: 'open',
    chunks: ['*2000000000\r\n$4\r\nPING\r\n'],
    end: 'client-close',
  },
  {
    name: 'client disconnects after a 512 MB bulk claim',
    source: 'concord',
    mode: 'open',
    chunks: ['*1\r\n$536870912\r\nabcdef'],
    end: 'client-close',
  },
  {
    name: 'client disconnects inside an inline request',
    source: 'concord',
    mode: 'open',
    chunks: ['ECHO "half'],
    end: 'client-close',
  },

  // --- auth.tcl -------------------------------------------------------------------------------
  {
    name: 'AUTH without a password configured',
    source: 'auth.tcl',
    mode: 'open',
    chunks: ['AUTH foo\r\n'],
    end: 'probe',
  },
  {
    name: 'AUTH arity: three arguments',
    source: 'auth.tcl',
    mode: 'open',
    chunks: ['AUTH a b c\r\n'],
    end: 'probe',
  },
  { name: 'AUTH without arguments', source: 'auth.tcl', mode: 'open', chunks: ['AUTH\r\n'], end: 'probe' },
  {
    name: 'AUTH with a wrong password',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: [multibulk('AUTH', 'wrong!')],
    end: 'probe',
  },
  {
    name: 'command before AUTH',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['SET foo bar\r\n', 'PING\r\n'],
    end: 'probe',
  },
  {
    name: 'AUTH with the right password, then commands work',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['AUTH foobar\r\n' + multibulk('SET', 'diff:auth', '100') + 'GET diff:auth\r\nDEL diff:auth\r\n'],
    end: 'probe',
  },
  {
    name: 'unauthenticated multibulk length above 10',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['*100\r\n'],
    end: 'probe',
  },
  {
    name: 'unauthenticated multibulk length 11',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['*11\r\n'],
    end: 'probe',
  },
  {
    name: 'unauthenticated multibulk length 10 is accepted',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['*10\r\n'],
    end: 'idle',
  },
  {
    name: 'unauthenticated bulk length of 100 MB',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['*1\r\n$100000000\r\n'],
    end: 'probe',
  },
  {
    name: 'unauthenticated bulk length 16385',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['*1\r\n$16385\r\n'],
    end: 'probe',
  },
  {
    name: 'unauthenticated bulk length 16384 is accepted',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['*1\r\n$16384\r\n'],
    end: 'idle',
  },
  {
    name: 'after AUTH a big multibulk claim is accepted',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['AUTH foobar\r\n*100\r\n'],
    end: 'idle',
  },
  {
    name: 'HELLO before AUTH',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['HELLO 3\r\n'],
    end: 'probe',
    difference: {
      id: 'D2',
      why:
        'Concord uses the wording of Redis 7.2 and later ("HELLO <proto> AUTH <user> <pass>"); the ' +
        'reference redis-server here is 7.0, which says "HELLO AUTH <user> <pass>". Same NOAUTH prefix.',
      redis: {
        reply:
          '-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH ' +
          '<user> <pass> option can be used to authenticate the client and select the RESP protocol ' +
          'version at the same time\r\n',
        state: 'open',
      },
      concord: {
        reply:
          '-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> ' +
          'AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol ' +
          'version at the same time\r\n',
        state: 'open',
      },
    },
  },
  {
    name: 'unauthenticated client that never reads its replies (NOAUTH flood)',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['SET x 5\r\n'.repeat(10_000)],
    end: 'flood-unread',
    difference: {
      id: 'D3',
      why:
        'Redis closes an unauthenticated client whose unread replies pass a small limit; Concord ' +
        'stops reading from any client with more than 1 MB of unsent replies, so the client stalls ' +
        'with bounded memory and is not closed.',
      redis: { reply: '', state: 'closed' },
      concord: { reply: '', state: 'open' },
    },
  },
  {
    name: 'QUIT before AUTH',
    source: 'auth.tcl',
    mode: 'requirepass',
    chunks: ['QUIT\r\n'],
    end: 'probe',
  },
];
