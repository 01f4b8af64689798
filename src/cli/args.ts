// A subcommand's shape (its table of options and exit codes) and the strict
// parsing of its command line.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from './exit.js';

/** One option as parseArgs reads it. */
interface OptionConfig {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}

/**
 * A subcommand: its name, its --help text, its table (the options it parses,
 * which --help lists, and the exit codes --help names) and what it runs.
 * test/cli/help.test.ts holds --help and the operator docs to the table.
 */
export interface Command {
  name: string;
  usage: string;
  /** The options it takes, as it parses them (besides --help). */
  options: Readonly<Record<string, OptionConfig>>;
  /** The exit codes its --help names, besides 0, each with what it means here; the rest are Exit's shared meanings. */
  exits: Readonly<Record<number, string>>;
  /** Resolves to the exit code. @throws CliError, StoreError. */
  run(argv: string[]): Promise<number> | number;
}

export const JSON_OPTION = { json: { type: 'boolean' } } as const;

/**
 * parseArgs, strict, with `--help` built in: returns undefined after printing
 * the usage, so the caller returns 0.
 * @throws CliError USAGE on an unknown option, a missing value or a wrong number of positionals.
 */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  command: Pick<Command, 'name' | 'usage'>,
  options: T,
  positionals: { min: number; max: number },
) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    // Node's message goes on about '--'; its first sentence is the point.
    throw usageError(command.name, (error as Error).message.split('. ')[0]);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return undefined;
  }
  const count = parsed.positionals.length;
  if (count < positionals.min) throw usageError(command.name, 'missing argument');
  if (count > positionals.max) throw usageError(command.name, `unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`);
  return parsed as { values: { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : string }; positionals: string[] };
}
