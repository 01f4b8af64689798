// How many connections the server may hold in all, from the process's limit
// on open file descriptors: past that limit every accept, blob file, database
// connection and webhook fails at once with EMFILE, for every client.

import { readFileSync } from 'node:fs';

/** Descriptors kept back from connections: the database, the log, threads, webhooks, Node's own. */
const RESERVED = 128;
/** The limit assumed where the process's cannot be read (no /proc): the usual soft limit. */
const FALLBACK_LIMIT = 1024;
/** Where a limit is "unlimited": more connections than any one process should hold. */
const UNLIMITED = 1 << 20;

/**
 * The soft limit on open files (RLIMIT_NOFILE) of this process, as Linux
 * reports it in /proc/self/limits (Node raises the soft limit to the hard
 * one at startup); FALLBACK_LIMIT where that cannot be read.
 */
export function openFileLimit(limits = '/proc/self/limits'): number {
  let text: string;
  try {
    text = readFileSync(limits, 'utf8');
  } catch {
    return FALLBACK_LIMIT;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === 'unlimited') return UNLIMITED;
  const value = Number(soft);
  return Number.isSafeInteger(value) && value > 0 ? value : FALLBACK_LIMIT;
}

/**
 * The connections a process with `limit` descriptors may hold: half of what
 * is left after RESERVED, since a connection may hold a blob file open too
 * (a download, an upload); at least 16.
 */
export function connectionsFor(limit: number): number {
  return Math.max(16, Math.floor((Math.min(limit, UNLIMITED) - RESERVED) / 2));
}
