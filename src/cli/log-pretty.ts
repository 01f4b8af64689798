// The log of `regmeta serve` for a person at a terminal: one line per record,
// read from pino's JSON line. A request reads as a sentence of its fields
//   12:04:05.123 INFO  GET manifest /v2/app/manifests/1.0 200 1.4KiB 0.61ms alice 127.0.0.1 "curl/8.5.0" id=Qh3k-2
// and anything else as its message and fields
//   12:04:05.120 INFO  listening url=http://127.0.0.1:5000 port=5000 …
// with an error's stack indented under it. Times are UTC, as in the JSON.
//
// Why not pino-pretty: it would add about thirteen packages to pino's own
// (colorette, dateformat, fast-copy, help-me, joycon, minimist, pump,
// secure-json-parse, strip-json-comments, …) for what these few lines do for
// the few shapes of record this command writes.

const LEVEL_COLORS: Record<string, number> = { trace: 90, debug: 36, info: 32, warn: 33, error: 31, fatal: 35 };
/** The request line's own fields, shown in its sentence rather than as key=value. */
const REQUEST_FIELDS = new Set(['level', 'time', 'msg', 'method', 'route', 'path', 'status', 'bytes', 'ms', 'actor', 'remoteAddress', 'userAgent', 'requestId']);
const RECORD_FIELDS = new Set(['level', 'time', 'msg', 'err']);

/** Whether to color: a terminal, unless NO_COLOR (https://no-color.org) is set. */
export function wantsColor(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NO_COLOR === undefined || env.NO_COLOR === '';
}

/** `bytes` as 512B, 1.4KiB, 3.0MiB. */
function size(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)}${units[unit]}`;
}

// A value as key=value shows it: bare when it is a plain word, JSON otherwise (quoted, escaped).
function shown(value: unknown): string {
  if (typeof value === 'string' && /^[\w.:/@+-]+$/.test(value)) return value;
  return JSON.stringify(value) ?? String(value);
}

/**
 * One line (more, under an error with a stack) for the pino JSON line `json`;
 * the line itself, as given, when it is not JSON.
 */
export function prettyLine(json: string, color: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const paint = (code: number, text: string) => (color && code !== 0 ? `\x1b[${code}m${text}\x1b[0m` : text);
  const level = String(record.level ?? 'info');
  const time = typeof record.time === 'string' ? record.time.slice(11, 23) : '';
  const head = `${paint(2, time)} ${paint(LEVEL_COLORS[level] ?? 0, level.toUpperCase().padEnd(5))}`;
  const isRequest = record.msg === 'request' && typeof record.method === 'string';
  const body = isRequest ? requestSentence(record, paint) : String(record.msg ?? '');
  const skip = isRequest ? REQUEST_FIELDS : RECORD_FIELDS;
  const rest = Object.entries(record)
    .filter(([key]) => !skip.has(key))
    .map(([key, value]) => `${key}=${shown(value)}`);
  const stack = errorStack(record.err);
  return `${[head, body, ...rest].join(' ')}${stack === undefined ? '' : `\n${stack.replace(/^/gm, '    ')}`}\n`;
}

function requestSentence(r: Record<string, unknown>, paint: (code: number, text: string) => string): string {
  const status = Number(r.status);
  const statusText = paint(status >= 500 ? 31 : status >= 400 ? 33 : 0, String(r.status));
  const actor = r.actor === '' || r.actor === undefined ? '-' : String(r.actor);
  const agent = r.userAgent === '' || r.userAgent === undefined ? '-' : JSON.stringify(r.userAgent);
  return `${r.method} ${r.route} ${r.path} ${statusText} ${size(Number(r.bytes))} ${r.ms}ms ${actor} ${r.remoteAddress} ${agent} id=${r.requestId}`;
}

// pino's error serializer gives { type, message, stack, … }; the stack names the message already.
function errorStack(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return err === undefined ? undefined : String(err);
  const { stack, message } = err as { stack?: unknown; message?: unknown };
  return typeof stack === 'string' ? stack : typeof message === 'string' ? message : JSON.stringify(err);
}
