// The log of `regmeta serve`: pino, at --log-level. JSON lines, or the
// readable line of log-pretty.ts on a terminal. Requests and the command's
// own lines go to stdout through the batching LineBuffer (log-buffer.ts: not
// a write(2) per request line); warnings and faults go to stderr at once,
// after whatever stdout holds, so the two keep the order of events. A
// request's line, written for every request, is built by hand (requestLine),
// the same bytes pino would write.

import pino, { type Logger } from 'pino';
import type { FaultContext, RequestLogEntry } from '../server/index.js';
import type { LogLevel } from './config/options.js';
import { LineBuffer } from './log-buffer.js';
import { prettyLine, wantsColor } from './log-pretty.js';

const WARN = pino.levels.values.warn;
const INFO = pino.levels.values.info;
const DEBUG = pino.levels.values.debug;

/** Where lines go: a stream, which may be a terminal. */
interface LogOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** The logger and its stdout buffer. */
export interface ServeLog {
  logger: Logger;
  /** A finished request's line: info, or debug for a probe or a scrape; what logRequest writes, written more cheaply. */
  request(entry: RequestLogEntry): void;
  /** Writes what stdout's buffer holds now. */
  flush(): void;
  /** Flushes, and stops flushing on the process's exit. */
  close(): void;
}

/** The line as it goes to `output`: pino's JSON, or the readable line on a terminal. */
function shaper(output: LogOutput, env: NodeJS.ProcessEnv): (line: string) => string {
  if (output.isTTY !== true) return (line) => line;
  const color = wantsColor(env);
  return (line) => prettyLine(line, color);
}

// The time of a line, formatted once per millisecond: a busy server logs
// several requests in one, and each Date formatted costs about a microsecond;
// its date and second, once per second.
let lastMs = 0;
let lastTime = '';
let lastSecond = -1;
let secondPrefix = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const second = Math.floor(now / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      // "YYYY-MM-DDTHH:MM:SS." of toISOString()
      secondPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
    }
    const ms = now - second * 1000;
    lastTime = `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  }
  return lastTime;
}

/** Machines' routine requests (probes every few seconds, scrapes every few dozen): their lines are debug, not info. */
const ROUTINE = new Set(['healthz', 'readyz', 'metrics']);

/**
 * The log at `level`: trace to info on `out`, warn and above on `err`.
 * Never throws.
 */
export function createServeLog(level: LogLevel, out: LogOutput = process.stdout, err: LogOutput = process.stderr, env = process.env): ServeLog {
  const buffer = new LineBuffer((text) => out.write(text));
  const toOut = shaper(out, env);
  const toErr = shaper(err, env);
  // One destination that routes by level (pino tells it the line's level
  // when asked to), rather than pino.multistream's general fan-out.
  const destination = {
    [pino.symbols.needsMetadataGsym]: true as const,
    lastLevel: 0,
    write(line: string) {
      if (this.lastLevel < WARN) return buffer.write(toOut(line));
      buffer.flush();
      err.write(toErr(line));
    },
  };
  const logger = pino(
    {
      level,
      // No pid or hostname on every line: the process supervisor knows them.
      base: undefined,
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as pino.DestinationStream,
  );
  const request = (entry: RequestLogEntry) => {
    const debug = ROUTINE.has(entry.route);
    if (!logger.isLevelEnabled(debug ? 'debug' : 'info')) return;
    destination.lastLevel = debug ? DEBUG : INFO;
    destination.write(requestLine(debug ? '{"level":"debug"' : '{"level":"info"', entry));
  };
  return { logger, request, flush: () => buffer.flush(), close: () => buffer.close() };
}

/** Printable ASCII but '"' and '\\': what JSON.stringify writes between quotes as it is. */
const PLAIN = /^[ !#-[\]-~]*$/;

/** `text` as a JSON string, as JSON.stringify writes it; a plain string (nearly every field of every line) without calling it. */
function quoted(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
}

/**
 * The request's line as pino writes it for `logger.info(entry, 'request')`
 * with the options above (the level, the time, the entry's fields in order,
 * the message), built without pino's general walk over the object: a request
 * line per request is most of what the log writes. Its fields are strings
 * and finite numbers, for which JSON.stringify writes what pino does.
 */
function requestLine(level: string, e: RequestLogEntry): string {
  const j = quoted;
  return (
    `${level}${isoTime()},"method":${j(e.method)},"route":${j(e.route)},"path":${j(e.path)},"status":${e.status},"bytes":${e.bytes},` +
    `"ms":${e.ms},"actor":${j(e.actor)},"remoteAddress":${j(e.remoteAddress)},"userAgent":${j(e.userAgent)},"requestId":${j(e.requestId)},"msg":"request"}\n`
  );
}



/** A server fault, once, at error level: its detail (pino's `err`: type, message, stack) and the request it happened in. */
export function logFault(logger: Logger, error: unknown, request?: FaultContext): void {
  const message = error instanceof Error ? error.message : String(error);
  logger.error({ err: error, ...request }, message);
}
