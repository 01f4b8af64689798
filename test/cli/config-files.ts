// What the configuration tests share: a config file written in a fresh
// directory, and the lines of the CliError a parse throws.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CliError } from '../../src/cli/exit.js';
import { tempDir } from './run.js';

/** Writes `text` to a file named `name` in `dir` (a fresh temporary directory by default). */
export function configFile(name: string, text: string, dir = tempDir('regmeta-config-')): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The lines of a CliError: its message and the further problems. */
export function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof CliError) return [error.message, ...error.more];
    throw error;
  }
  throw new Error('no error');
}
