/** The HELP reply of container commands (CLIENT HELP, CONFIG HELP, COMMAND HELP), as Redis. */
import { array, simple, type Reply } from './reply.js';
import type { LocalHandler } from './spec.js';

export function helpReply(container: string, lines: readonly string[]): Reply {
  return array([
    simple(`${container.toUpperCase()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`),
    ...lines.map((line) => simple(line)),
    simple('HELP'),
    simple('    Print this help.'),
  ]);
}

/** The handler of a container that needs a subcommand: dispatch never runs it (arity -2). */
export function containerHandler(container: string): LocalHandler {
  return {
    kind: 'local',
    run: () => {
      throw new Error(`container ${container} run without a subcommand`);
    },
  };
}
