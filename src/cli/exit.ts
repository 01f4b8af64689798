// The exit codes of every subcommand, and the error that main() prints as
// one line and turns into one of them.

/** The exit codes of every subcommand; main.ts prints this table in its usage. */
export const Exit = {
  OK: 0,
  /** Problems found: check failed, import skipped something, a lookup found nothing to print. */
  PROBLEMS: 1,
  /** Bad arguments: unknown subcommand or option, malformed name, tag, digest, duration or database URL. */
  USAGE: 2,
  /** The database is missing, not a regmeta store, too new, damaged, busy or unwritable; its server cannot be reached. */
  DATABASE: 3,
  /** The repository, tag, manifest or blob asked for is not there. */
  NOT_FOUND: 4,
  /** A file or directory other than the database could not be read or written. */
  IO: 5,
  /** A bug: reported in one line all the same. */
  INTERNAL: 70,
} as const;

/**
 * An error that main() prints as one line (with a hint) and turns into an
 * exit code; `more` are further problems found at once (a config file's),
 * printed one line each after it, the hint after the last.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    readonly hint?: string,
    readonly more: readonly string[] = [],
  ) {
    super(message);
  }
}

/** A usage error of `command`, with the hint to read its --help. */
export function usageError(command: string, message: string): CliError {
  return new CliError(Exit.USAGE, message, `see 'regmeta ${command} --help'`);
}
