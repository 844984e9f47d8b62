/**
 * The command table: the ONE registry of what Concord understands. Dispatch, arity checks,
 * COMMAND (COUNT, INFO, DOCS, LIST, GETKEYS) and docs/commands.md all read it.
 *
 * Must never hold behaviour of its own: each command lives in its own file (keys/set.ts,
 * admin/ping.ts ...) and is only listed here.
 */
import type { CommandSpec } from './spec.js';
import { ping } from './admin/ping.js';

/** Every top-level command, in documentation order. */
export const COMMANDS: readonly CommandSpec[] = [ping];

/** Lower-case name -> spec. */
export function buildTable(commands: readonly CommandSpec[] = COMMANDS): Map<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const spec of commands) {
    if (table.has(spec.name)) throw new Error(`duplicate command ${spec.name}`);
    table.set(spec.name, spec);
  }
  return table;
}
