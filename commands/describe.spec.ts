import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { argumentSyntax, commandSyntax } from './describe.js';
import { generateCommandsMarkdown } from './docs-gen.js';
import type { CommandSpec } from './spec.js';
import { COMMANDS, buildTable } from './table.js';

function everySpec(): CommandSpec[] {
  return COMMANDS.flatMap((c) => [c, ...(c.subcommands ?? [])]);
}

/** Local handlers that write through the cache agent (commands/keys/flushall.ts). */
const WRITES_THROUGH_CACHE = new Set(['flushall', 'flushdb']);

describe('command descriptions', () => {
  it("every command's Format line is what its argument docs render (redis-cli hints agree with the docs)", () => {
    for (const spec of everySpec()) {
      if (spec.subcommands !== undefined && spec.handler.kind === 'local' && spec.arity === -2) continue; // containers
      expect(commandSyntax(spec), spec.name).to.equal(spec.docs.format);
    }
  });

  it("every command's Format line appears in the Format: block of its file's header", () => {
    const root = fileURLToPath(new URL('../../commands/', import.meta.url));
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) => {
        const p = join(dir, f);
        return statSync(p).isDirectory() ? walk(p) : [p];
      });
    const blocks: string[] = [];
    for (const file of walk(root).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))) {
      const header = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(file, 'utf8'))?.[1];
      if (header === undefined) continue;
      const lines = header.split('\n').map((l) => l.replace(/^\s*\* ?/, '').trim());
      const start = lines.indexOf('Format:');
      if (start < 0) continue;
      const end = lines.indexOf('', start);
      blocks.push(lines.slice(start + 1, end < 0 ? undefined : end).join(' '));
    }
    expect(blocks.length).to.be.greaterThan(20);
    for (const spec of everySpec()) {
      if (spec.subcommands !== undefined && spec.arity === -2) continue; // containers
      const format = spec.docs.format.replace(/\s+/g, ' ');
      expect(
        blocks.some((b) => b.includes(format)),
        `${spec.name}: ${format}`,
      ).to.equal(true);
    }
  });

  it('renders arguments as redis-cli does', () => {
    expect(argumentSyntax({ name: 'key', type: 'key', multiple: true })).to.equal('key [key ...]');
    expect(
      argumentSyntax({
        name: 'c',
        type: 'oneof',
        arguments: [
          { name: 'a', type: 'pure-token', token: 'A' },
          { name: 'b', type: 'integer', token: 'B' },
        ],
      }),
    ).to.equal('<A | B b>');
    expect(
      argumentSyntax({ name: 'id', type: 'integer', token: 'ID', optional: true, multiple: true }),
    ).to.equal('[ID id [id ...]]');
    expect(
      argumentSyntax({ name: 'id', type: 'integer', token: 'ID', multiple: true, multipleToken: true }),
    ).to.equal('ID id [ID id ...]');
  });

  it('every spec is well formed: lower-case unique names, arity, flags consistent with kind', () => {
    buildTable();
    for (const spec of everySpec()) {
      expect(spec.name, spec.name).to.equal(spec.name.toLowerCase());
      expect(spec.arity, spec.name).not.to.equal(0);
      const kind = spec.handler.kind;
      if (kind === 'write') expect(spec.flags, spec.name).to.include('write');
      if (kind === 'read') expect(spec.flags, spec.name).to.include('readonly');
      // A blocking write (QPOP ... BLOCK) is a local handler: it registers a waiter, then writes.
      // FLUSHALL/FLUSHDB are local too: they write through the cache agent (its flush round).
      if (kind === 'local' && !spec.flags.includes('blocking') && !WRITES_THROUGH_CACHE.has(spec.name))
        expect(spec.flags, spec.name).not.to.include('write');
      if (spec.keys.first > 0)
        expect(
          spec.docs.arguments?.some((a) => JSON.stringify(a).includes('"key"')),
          spec.name,
        ).to.equal(true);
    }
  });

  it('docs/commands.md is generated from the current table', () => {
    const committed = readFileSync(new URL('../../docs/commands.md', import.meta.url), 'utf8');
    expect(committed, 'run: node dist/commands/docs-gen.js > docs/commands.md').to.equal(
      generateCommandsMarkdown(),
    );
  });
});
