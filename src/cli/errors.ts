// What a command prints for an error the store threw: its exit code and a
// hint for the operator, by the error's stable code.

import type { StoreError } from '../store/index.js';
import { CliError, Exit } from './exit.js';

/** What to do with a database that a migration into it has not finished. */
export const UNFINISHED_MIGRATION_HINT = "run 'regmeta migrate --to <url>' again to finish it, or migrate into an empty database";

/** The exit code and hint for an error the store threw. */
export function fromStoreError(error: StoreError): CliError {
  switch (error.code) {
    case 'NAME_UNKNOWN':
    case 'MANIFEST_UNKNOWN':
    case 'BLOB_UNKNOWN':
      return new CliError(Exit.NOT_FOUND, error.message, "list what is there with 'regmeta repos' or 'regmeta tags <repo>'");
    case 'NAME_INVALID':
    case 'TAG_INVALID':
    case 'DIGEST_INVALID':
    case 'PAGINATION_NUMBER_INVALID':
    case 'EVENT_INVALID':
      return new CliError(Exit.USAGE, error.message, 'names are like library/nginx, tags like v1.2, digests like sha256:<64 hex>');
    case 'UNSUPPORTED':
      return new CliError(Exit.USAGE, error.message, "see the command's --help");
    case 'BACKUP_FAILED':
      return (error.detail as { check?: string } | undefined)?.check === undefined
        ? new CliError(Exit.IO, error.message, 'check that the target directory exists and is writable')
        : new CliError(Exit.PROBLEMS, error.message, "run 'regmeta check' on the source, then the backup again");
    case 'DATABASE_BUSY':
      return new CliError(Exit.DATABASE, error.message, 'another process holds the database lock; try again');
    case 'LOCK_LOST':
      return new CliError(Exit.DATABASE, error.message, "this process stalled for longer than a blob lock's lease; try again");
    case 'DATABASE_READONLY':
      return new CliError(Exit.DATABASE, error.message, 'check the permissions of the data directory');
    case 'DATABASE_UNAVAILABLE':
      return new CliError(Exit.DATABASE, error.message, 'check that the database server is up and takes connections, then try again');
    case 'DATABASE_TOO_NEW':
      return new CliError(Exit.DATABASE, error.message, 'use a newer regmeta');
    case 'DATABASE_INCOMPLETE':
      return new CliError(Exit.DATABASE, error.message, UNFINISHED_MIGRATION_HINT);
    case 'DATABASE_INVALID':
    case 'DATABASE_CORRUPT':
    case 'DATABASE_FULL':
    case 'DATABASE_ERROR':
      return new CliError(Exit.DATABASE, error.message, "run 'regmeta check' on it, or restore a backup");
    default:
      return new CliError(Exit.PROBLEMS, error.message, `store error ${error.code}`);
  }
}
