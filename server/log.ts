/**
 * Structured, levelled logs (pino, JSON lines on stderr). Quiet by default: level 'warn'
 * unless --log-level / CONCORD_LOG_LEVEL says otherwise; stdout stays free for the one
 * "Concord listening on ..." line tests wait for.
 *
 * Owns the logger instances and the level names. Must never read argv or env (main.ts does)
 * and never log request payloads (they may hold secrets or megabytes).
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Levels accepted by --log-level and CONFIG SET loglevel (pino's names). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Redis's loglevel names (CONFIG GET/SET loglevel) mapped to pino's and back. Redis has no
 * 'error': 'warning' is its quietest level short of nothing.
 */
export function fromRedisLevel(value: string): LogLevel | null {
  switch (value) {
    case 'debug':
      return 'debug';
    case 'verbose':
      return 'debug';
    case 'notice':
      return 'info';
    case 'warning':
      return 'warn';
    case 'nothing':
      return 'silent';
    default:
      return isLogLevel(value) ? value : null;
  }
}

export function toRedisLevel(level: string): string {
  switch (level) {
    case 'trace':
    case 'debug':
      return 'debug';
    case 'info':
      return 'notice';
    case 'warn':
      return 'warning';
    case 'silent':
      return 'nothing';
    default:
      // fatal, error: quieter than anything Redis names; report them as 'warning'.
      return 'warning';
  }
}

/** What every line carries besides its message: the node, and its Raft term and role now. */
export interface LogContext {
  readonly nodeId?: string;
  /** Called for every line written (pino mixin): must be cheap and never throw. */
  readonly raft?: () => { term: number; role: string };
}

/**
 * The process logger: JSON to stderr (fd 2), synchronous so a crash line is not lost. With a
 * context, every line carries `nodeId` (a base binding) and `term` and `role` (a mixin, read
 * when the line is written), so lines from several nodes can be merged and read in order.
 */
export function createLogger(
  level: LogLevel = 'warn',
  destination: number = 2,
  context: LogContext = {},
): Logger {
  const raft = context.raft;
  return pino(
    {
      level,
      base:
        context.nodeId === undefined ? { pid: process.pid } : { pid: process.pid, nodeId: context.nodeId },
      timestamp: pino.stdTimeFunctions.isoTime,
      ...(raft === undefined ? {} : { mixin: () => raft() }),
    },
    pino.destination({ dest: destination, sync: true }),
  );
}

/** A logger that writes nothing, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
