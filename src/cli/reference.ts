// The operator docs' table of subcommands, written from each command's own
// table (the options it parses, the exit codes its --help names), so that
// the docs cannot offer an option a command refuses or miss an exit code.
// test/cli/help.test.ts holds the docs to it, word for word.

import type { Command } from './args.js';

/** The synopsis: the usage up to its first blank line, without the bracketed options. */
function synopsis(command: Command): string {
  const usage = command.usage.slice('usage: '.length, command.usage.indexOf('\n\n'));
  // Brackets nest once at most ([--files | --no-files]); the options are in their own column.
  return usage.replace(/\[[^\]]*\]/g, '').replace(/\s+/g, ' ').trim();
}

function optionsCell(command: Command): string {
  // serve's options are the Options table's, each with its variable and key.
  if (command.name === 'serve') return 'the [options](registry.md#options)';
  const flags = Object.entries(command.options).map(([name, o]) => `\`--${name}\`${o.short ? ` (\`-${o.short}\`)` : ''}`);
  return flags.length === 0 ? '—' : flags.join(', ');
}

function exitsCell(command: Command): string {
  const codes = Object.entries(command.exits);
  return codes.length === 0 ? '—' : codes.map(([code, meaning]) => `${code}: ${meaning}`).join('; ');
}

/** A cell's text with its pipes escaped (`<tag|digest>`), which would end the cell. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The Markdown table of `commands`: synopsis, options, exit codes of their own. */
export function commandsMarkdown(commands: readonly Command[]): string {
  const rows = [
    '| command | options (besides `--help`) | exit codes of its own |',
    '| --- | --- | --- |',
    ...commands.map((c) => `| \`${cell(synopsis(c))}\` | ${optionsCell(c)} | ${cell(exitsCell(c))} |`),
  ];
  return `${rows.join('\n')}\n`;
}
