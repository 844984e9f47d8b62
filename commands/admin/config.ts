/**
 * CONFIG: reads and changes the server's parameters through ServerContext.config (the server
 * owns the parameters and their validation; this file owns the command syntax).
 *
 * Format:
 *   CONFIG GET parameter [parameter ...]
 *   CONFIG SET parameter value [parameter value ...]
 *   CONFIG RESETSTAT
 *   CONFIG REWRITE
 *   CONFIG HELP
 *
 * Reply:
 *   GET: map (flat array in RESP2) of each matching parameter (glob patterns) to its value.
 *   SET: OK; all or nothing — when one parameter is refused, those already set are put back
 *   and the refusal (`-ERR CONFIG SET failed (possibly related to argument 'x') - ...`) is the
 *   reply. Cluster-wide parameters (cache-policy, cache-lease-ms) are applied through the Raft
 *   log after every value was checked; the reply then waits for their commit (and, if one
 *   fails, reports that failure: this node's parameters are put back, cluster-wide ones
 *   already committed stay). RESETSTAT and REWRITE: an error, Concord supports neither (its statistics are
 *   counters owned by the server, and it has no config file to rewrite).
 */
import { wrongArity } from '../args.js';
import { containerHandler, helpReply } from '../help.js';
import { OK, bulk, error, map, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';

const FLAGS = ['admin', 'noscript', 'loading', 'stale'] as const;
const ACL = ['@admin', '@slow', '@dangerous'];

const HELP_LINES = [
  'GET <pattern>',
  '    Return parameters matching the glob-like <pattern> and their values.',
  'SET <directive> <value>',
  '    Set the configuration <directive> to <value>.',
  'RESETSTAT',
  '    Not supported by Concord.',
  'REWRITE',
  '    Not supported by Concord.',
];

const configGet: CommandSpec = {
  name: 'config|get',
  arity: -3,
  flags: ['admin', 'noscript', 'loading', 'stale'],
  aclCategories: ACL,
  keys: NO_KEYS,
  docs: {
    summary: 'Returns the effective values of configuration parameters.',
    since: '2.0.0',
    group: 'server',
    complexity: 'O(N) when N is the number of configuration parameters provided',
    arguments: [{ name: 'parameter', type: 'string', multiple: true }],
    format: 'CONFIG GET parameter [parameter ...]',
    reply: 'Map (flat array in RESP2) of matching parameters to their values.',
  },
  handler: {
    kind: 'local',
    run(ctx, args): Reply {
      const seen = new Map<string, string>();
      for (const pattern of args.rest()) {
        for (const [name, value] of ctx.server.config.get(pattern.toString())) {
          if (!seen.has(name)) seen.set(name, value);
        }
      }
      return map([...seen].map(([name, value]) => [bulk(name), bulk(value)] as const));
    },
  },
};

const configSet: CommandSpec = {
  name: 'config|set',
  arity: -4,
  flags: ['admin', 'noscript', 'loading', 'stale'],
  aclCategories: ACL,
  keys: NO_KEYS,
  docs: {
    summary: 'Sets configuration parameters in-flight.',
    since: '2.0.0',
    group: 'server',
    complexity: 'O(N) when N is the number of configuration parameters provided',
    arguments: [
      {
        name: 'data',
        type: 'block',
        multiple: true,
        arguments: [
          { name: 'parameter', type: 'string' },
          { name: 'value', type: 'string' },
        ],
      },
    ],
    format: 'CONFIG SET parameter value [parameter value ...]',
    reply: 'Simple string OK; on a refusal nothing is changed and the refusal is the reply.',
  },
  handler: {
    kind: 'local',
    run(ctx, args): Reply | Promise<Reply> {
      if (args.remaining % 2 !== 0) wrongArity('config|set');
      const config = ctx.server.config;
      const pairs: [string, string][] = [];
      const names = new Set<string>();
      while (args.hasMore()) {
        const name = args.requiredString().toLowerCase();
        const value = args.requiredString();
        if (names.has(name)) {
          return error(
            `ERR CONFIG SET failed (possibly related to argument '${name}') - duplicate parameter`,
          );
        }
        names.add(name);
        pairs.push([name, value]);
      }
      const applied: [string, string][] = [];
      const commits: (() => Promise<void>)[] = [];
      const putBack = (): void => {
        for (const [name, value] of applied.reverse()) config.set(name, value);
      };
      try {
        for (const [name, value] of pairs) {
          const before = config.get(name).find(([n]) => n === name);
          const commit = config.set(name, value);
          if (typeof commit === 'function') commits.push(commit);
          else if (before !== undefined) applied.push([name, before[1]]);
        }
      } catch (e) {
        // Put back what was already set, then let the refusal (a ConfigError) become the reply.
        putBack();
        throw e;
      }
      if (commits.length === 0) return OK;
      // Cluster-wide parameters go through the Raft log once every value was checked, in order.
      // If one fails, this node's own parameters are put back; cluster-wide ones already
      // committed stay (they are replicated: undoing them would be another write that can fail).
      return (async (): Promise<Reply> => {
        try {
          for (const commit of commits) await commit();
        } catch (e) {
          putBack();
          throw e;
        }
        return OK;
      })();
    },
  },
};

function unsupported(name: string, summary: string, since: string, message: string): CommandSpec {
  return {
    name: `config|${name}`,
    arity: 2,
    flags: FLAGS,
    aclCategories: ACL,
    keys: NO_KEYS,
    docs: {
      summary,
      since,
      group: 'server',
      complexity: 'O(1)',
      format: `CONFIG ${name.toUpperCase()}`,
      reply: `An error: ${message}`,
    },
    handler: { kind: 'local', run: () => error(`ERR ${message}`) },
  };
}

export const config: CommandSpec = {
  name: 'config',
  arity: -2,
  flags: [],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  docs: {
    summary: 'A container for server configuration commands.',
    since: '2.0.0',
    group: 'server',
    complexity: 'Depends on subcommand.',
    format: 'CONFIG <subcommand> [arguments]',
    reply: 'Depends on the subcommand.',
  },
  handler: containerHandler('config'),
  subcommands: [
    configGet,
    configSet,
    unsupported(
      'resetstat',
      "Resets the server's statistics.",
      '2.0.0',
      'CONFIG RESETSTAT is not supported by Concord',
    ),
    unsupported(
      'rewrite',
      'Persists the effective configuration to file.',
      '2.8.0',
      'CONFIG REWRITE is not supported by Concord: it has no config file to rewrite',
    ),
    {
      name: 'config|help',
      arity: 2,
      flags: ['loading', 'stale'],
      aclCategories: ['@slow'],
      keys: NO_KEYS,
      docs: {
        summary: 'Returns helpful text about the different subcommands.',
        since: '5.0.0',
        group: 'server',
        complexity: 'O(1)',
        format: 'CONFIG HELP',
        reply: 'Array of simple strings.',
      },
      handler: { kind: 'local', run: () => helpReply('config', HELP_LINES) },
    },
  ],
};
