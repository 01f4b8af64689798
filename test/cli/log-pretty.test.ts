// The terminal's line for the records `regmeta serve` writes.

import { describe, expect, it } from 'vitest';
import { prettyLine } from '../../src/cli/log-pretty.js';

describe('prettyLine', () => {
  it('writes a message with its fields as key=value, quoting what is not a plain word', () => {
    const json = JSON.stringify({ level: 'warn', time: '2026-12-01T12:04:05.120Z', count: 3, note: 'two words', msg: 'something odd' });
    expect(prettyLine(json, false)).toBe('12:04:05.120 WARN  something odd count=3 note="two words"\n');
  });

  it('indents an error\'s stack under its line, and keeps its request id', () => {
    const err = { type: 'Error', message: 'ENOTDIR: not a directory', code: 'ENOTDIR', stack: 'Error: ENOTDIR: not a directory\n    at open (node:fs)' };
    const json = JSON.stringify({ level: 'error', time: '2026-12-01T12:04:05.120Z', err, requestId: 'abc-1', msg: err.message });
    expect(prettyLine(json, false)).toBe(
      '12:04:05.120 ERROR ENOTDIR: not a directory requestId=abc-1\n    Error: ENOTDIR: not a directory\n        at open (node:fs)\n',
    );
  });

  it('colors the level and a failed status on a terminal, and passes a line that is not JSON through', () => {
    const json = JSON.stringify({
      level: 'info', time: '2026-12-01T12:04:05.120Z', method: 'PUT', route: 'manifest', path: '/v2/a/manifests/1', status: 500,
      bytes: 3 * 1024 * 1024, ms: 2.5, actor: 'alice', remoteAddress: '::1', userAgent: '', requestId: 'r-9', msg: 'request',
    });
    expect(prettyLine(json, true)).toBe('\x1b[2m12:04:05.120\x1b[0m \x1b[32mINFO \x1b[0m PUT manifest /v2/a/manifests/1 \x1b[31m500\x1b[0m 3.0MiB 2.5ms alice ::1 - id=r-9\n');
    expect(prettyLine('not json\n', true)).toBe('not json\n');
  });
});
