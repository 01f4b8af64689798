// The request line that `regmeta serve` builds by hand is byte for byte the
// line pino writes for the same entry, whatever its strings hold, and goes
// where pino's would: stdout at info, debug for probes and scrapes, nothing
// below the level.

import type { RequestLogEntry } from 'regmeta/server';
import { describe, expect, it } from 'vitest';
import { createServeLog } from '../../src/cli/log.js';

function capture(level: 'info' | 'debug' | 'warn') {
  const out: string[] = [];
  const err: string[] = [];
  const log = createServeLog(level, { write: (text: string) => out.push(text) }, { write: (text: string) => err.push(text) }, {});
  return { log, out, err };
}

const entry = (fields: Partial<RequestLogEntry> = {}): RequestLogEntry => ({
  method: 'GET',
  route: 'manifest',
  path: '/v2/library/alpine/manifests/latest',
  status: 200,
  bytes: 1234,
  ms: 0.37,
  actor: '',
  remoteAddress: '127.0.0.1',
  userAgent: 'docker/27.0 go/go1.22',
  requestId: 'abcDEF-1z',
  ...fields,
});

/** The lines each way, the time set aside (the two may fall in different milliseconds). */
function bothWays(level: 'info' | 'debug', e: RequestLogEntry): { fast: string; pino: string } {
  const { log, out } = capture(level);
  log.request(e);
  if (e.route === 'healthz' || e.route === 'readyz' || e.route === 'metrics') log.logger.debug(e, 'request');
  else log.logger.info(e, 'request');
  log.close();
  const lines = out.join('').split('\n');
  expect(lines).toHaveLength(3);
  const untimed = (line: string) => line.replace(/,"time":"[^"]*"/, '');
  return { fast: untimed(lines[0]), pino: untimed(lines[1]) };
}

describe('the request log line', () => {
  it('is the line pino writes, field for field and byte for byte', () => {
    const { fast, pino } = bothWays('info', entry());
    expect(fast).toBe(pino);
    expect(Object.keys(JSON.parse(fast))).toEqual(['level', ...Object.keys(entry()), 'msg']);
  });

  it('escapes what pino escapes: quotes, backslashes, control characters, long and Latin-1 strings', () => {
    const odd = [
      'say "hi" \\ back',
      'tab\there\nnewline\u0001',
      `long ${'x"'.repeat(80)}`,
      'caf\u00e9 \u00ff\u007f',
      '',
    ];
    for (const text of odd) {
      const { fast, pino } = bothWays('info', entry({ userAgent: text, path: `/v2/${text}`, actor: text, requestId: text }));
      expect(fast).toBe(pino);
      expect(JSON.parse(fast).userAgent).toBe(text);
    }
  });

  it('is debug for probes and scrapes, and not written below the level', () => {
    const probe = entry({ route: 'readyz', path: '/readyz' });
    const { fast, pino } = bothWays('debug', probe);
    expect(fast).toBe(pino);
    expect(JSON.parse(fast).level).toBe('debug');
    const quiet = capture('info');
    quiet.log.request(probe);
    quiet.log.close();
    expect(quiet.out).toEqual([]);
    const warnOnly = capture('warn');
    warnOnly.log.request(entry());
    warnOnly.log.close();
    expect(warnOnly.out).toEqual([]);
  });

  it('carries the time as toISOString() writes it, to the millisecond', async () => {
    for (let i = 0; i < 5; i++) {
      const { log, out } = capture('info');
      const before = Date.now();
      log.request(entry());
      const after = Date.now();
      log.close();
      const { time } = JSON.parse(out.join('')) as { time: string };
      expect(new Date(time).toISOString()).toBe(time);
      expect(Date.parse(time)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(time)).toBeLessThanOrEqual(after);
      await new Promise((resolve) => setTimeout(resolve, 7));
    }
  });

  it('a 499 and a request no route took are lines like any other', () => {
    const { fast, pino } = bothWays('info', entry({ status: 499, route: 'none', bytes: 0, ms: 12345.67 }));
    expect(fast).toBe(pino);
  });
});
