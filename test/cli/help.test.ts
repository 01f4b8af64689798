// Each subcommand's --help, run through the real command, against the
// command's own table (the options it parses, the exit codes it names), and
// the operator docs against both: what help and docs offer is what the
// command takes, and the exit codes they name are the ones it returns.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Exit } from '../../src/cli/exit.js';
import { COMMANDS, USAGE } from '../../src/cli/main.js';
import { commandsMarkdown } from '../../src/cli/reference.js';
import { regmeta } from './run.js';

const root = path.resolve(import.meta.dirname, '../..');
/** Where the CLI reference lives. */
const docsFile = path.join(root, 'docs/operations.md');

const commands = await Promise.all(COMMANDS.map(async (c) => c.load()));

/** The flags an --help text offers: each `--x` at the start of an option line, or after its comma (`--dry-run, -n`, `--read-only, --no-read-only`). */
function offered(help: string): Set<string> {
  const section = help.slice(help.indexOf('\noptions'));
  const flags = new Set<string>();
  for (const line of section.split('\n')) {
    const match = /^ {2,4}(--[a-z][a-z0-9-]*(?:[^,\n]*?, --[a-z][a-z0-9-]*)*)/.exec(line);
    if (match) for (const flag of match[1].matchAll(/--([a-z][a-z0-9-]*)/g)) flags.add(flag[1]);
  }
  flags.delete('help');
  return flags;
}

/** The flags of the usage line(s), up to the first blank line. */
function inUsage(help: string): string[] {
  return [...help.slice(0, help.indexOf('\n\n')).matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]);
}

/** The exit codes a text names: "exits 1", "exit 3", "exit status 2", "exit: 0 when …, 1 when". */
function exitCodes(text: string): number[] {
  const codes = new Set<number>();
  for (const m of text.matchAll(/\bexits? (?:status )?(?:is )?(\d+)/gi)) codes.add(Number(m[1]));
  for (const m of text.matchAll(/\bexit: ([^.]*)/gi)) for (const n of m[1].matchAll(/\b(\d+) when/g)) codes.add(Number(n[1]));
  codes.delete(0);
  return [...codes].sort((a, b) => a - b);
}

describe('each subcommand', () => {
  it('offers in --help exactly the options it parses, and names exactly the exit codes of its table', async () => {
    const runs = [];
    // Two at a time: a spawn each, on a small machine.
    for (let i = 0; i < commands.length; i += 2) runs.push(...(await Promise.all(commands.slice(i, i + 2).map((c) => regmeta([c.name, '--help'])))));
    for (const [i, command] of commands.entries()) {
      const help = runs[i];
      expect([command.name, help.status, help.stderr]).toEqual([command.name, 0, '']);
      expect([command.name, ...[...offered(help.stdout)].sort()]).toEqual([command.name, ...Object.keys(command.options).sort()]);
      for (const flag of inUsage(help.stdout)) expect(Object.keys(command.options), `${command.name}: --${flag} in its usage line`).toContain(flag);
      expect([command.name, ...exitCodes(help.stdout)]).toEqual([command.name, ...Object.keys(command.exits).map(Number).sort((a, b) => a - b)]);
      // Its usage ends in a newline, as every line it prints does.
      expect(help.stdout.endsWith('\n')).toBe(true);
    }
  });

  it('returns only exit codes of the shared table', () => {
    const shared = new Set<number>(Object.values(Exit));
    for (const command of commands) for (const code of Object.keys(command.exits)) expect(shared.has(Number(code)), `${command.name} ${code}`).toBe(true);
  });
});

describe('the overview and the operator docs', () => {
  it('list the shared exit codes as the table has them', () => {
    const overview = USAGE.slice(USAGE.indexOf('exit codes:'));
    const listed = [...overview.matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]));
    expect(listed).toEqual(Object.values(Exit));
    const docs = readFileSync(docsFile, 'utf8');
    const section = docs.slice(docs.indexOf('## Exit codes'));
    const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| code |')));
    expect([...table.matchAll(/^\| *(\d+) \|/gm)].map((m) => Number(m[1]))).toEqual(Object.values(Exit));
  });

  it('say which commands create the database: import and serve', () => {
    expect(USAGE.replace(/\s+/g, ' ')).toContain('import and serve create it');
  });

  it('hold the table of subcommands, their options and exit codes, word for word', () => {
    expect(readFileSync(docsFile, 'utf8')).toContain(commandsMarkdown(commands));
  });
});
