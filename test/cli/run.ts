// Runs the real `regmeta` command as a child process, and builds temporary
// data directories whose database is populated through the store's API.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';

export const BIN = resolve(import.meta.dirname, '../../bin/regmeta.js');

export interface Run {
  status: number | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

/** `node bin/regmeta.js ...args`, with REGMETA_DATA unset unless `env` sets it; `input`, when given, is its standard input. */
export function regmeta(args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<Run> {
  const env = { ...process.env, ...options.env };
  if (!options.env?.REGMETA_DATA) delete env.REGMETA_DATA;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: options.cwd ?? tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] });
    // No input: stdin at its end at once, as 'ignore' would leave it.
    child.stdin.end(options.input ?? '');
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (status) => {
      const stdoutBytes = Buffer.concat(out);
      resolvePromise({ status, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** A `regmeta serve` child listening on a port the kernel chose. */
export interface Served {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** The "listening" line's fields. */
  listening: Record<string, unknown>;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** What it wrote to stdout after the "listening" line so far: the request log. */
  stdout(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * `regmeta serve --listen 127.0.0.1:0 --data <data>`: the port comes from the
 * server's JSON "listening" line on stdout, so no port is picked beforehand.
 * `options.node`: arguments for node itself (a module hook); `options.env`: variables added.
 * @throws when the server exits before that line.
 */
export async function serve(data: string, args: string[] = [], options: { node?: string[]; env?: Record<string, string> } = {}): Promise<Served> {
  const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
  const child = spawn(process.execPath, [...(options.node ?? []), BIN, 'serve', '--listen', '127.0.0.1:0', '--data', data, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
  const listening = await new Promise<Record<string, unknown>>((resolveListening, reject) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += String(c);
      for (const line of out.split('\n').slice(0, -1)) {
        let parsed: { msg?: unknown; port?: unknown } = {};
        try {
          parsed = JSON.parse(line) as typeof parsed;
        } catch {
          // not a log line: ignore it
        }
        if (parsed.msg === 'listening' && typeof parsed.port === 'number') {
          child.stdout.off('data', onData);
          // Keep reading stdout: the server logs every request there.
          stdout = out.slice(out.indexOf(line) + line.length + 1);
          child.stdout.on('data', (more: Buffer) => (stdout += String(more)));
          resolveListening(parsed);
          return;
        }
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`regmeta serve exited (${code}) before listening: ${out}${stderr}`)));
  });
  return {
    child,
    url: `http://127.0.0.1:${listening.port as number}`,
    listening,
    stderr: () => stderr,
    stdout: () => stdout,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export function tempDir(prefix = 'regmeta-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Asserts the shape of a CLI error: exactly one line on stderr, no stack trace. */
export function isOneLineError(stderr: string): boolean {
  const lines = stderr.split('\n').filter((l) => l !== '');
  return lines.length === 1 && lines[0].startsWith('regmeta') && !/\n\s+at /.test(stderr) && !stderr.includes('    at ');
}

/**
 * The store's state, without times and event ids: what two imports that did
 * the same work must agree on.
 */
export function dumpState(file: string) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const all = (sql: string) => db.prepare(sql).all();
    return {
      repositories: all('SELECT name FROM repository ORDER BY name'),
      manifests: all(`SELECT r.name, m.digest, m.media_type, m.size, hex(p.payload) AS payload
        FROM manifest m JOIN repository r ON r.id = m.repository_id
        JOIN manifest_payload p ON p.manifest_id = m.id ORDER BY r.name, m.digest`),
      tags: all(`SELECT r.name, t.name AS tag, m.digest FROM tag t JOIN repository r ON r.id = t.repository_id
        JOIN manifest m ON m.id = t.manifest_id ORDER BY r.name, t.name`),
      history: all(`SELECT r.name, h.tag, h.digest FROM tag_history h JOIN repository r ON r.id = h.repository_id
        ORDER BY r.name, h.tag, h.id`),
      blobs: all('SELECT digest, size FROM blob ORDER BY digest'),
      links: all(`SELECT r.name, l.digest FROM blob_link l JOIN repository r ON r.id = l.repository_id ORDER BY r.name, l.digest`),
      references: all(`SELECT r.name, m.digest, mb.digest AS blob FROM manifest_blob mb JOIN manifest m ON m.id = mb.manifest_id
        JOIN repository r ON r.id = m.repository_id ORDER BY 1, 2, 3`),
      events: all(`SELECT type, object_type, object_id, actor, tag, digest, previous_digest FROM event
        ORDER BY object_type, object_id, type, digest, previous_digest`),
    };
  } finally {
    db.close();
  }
}

/** Overwrites the stored bytes of manifest `digest` (in every repository). */
export function tamperPayload(db: Database.Database, digest: string, payload: Buffer): void {
  db.prepare('UPDATE manifest_payload SET payload = :payload WHERE manifest_id IN (SELECT id FROM manifest WHERE digest = :digest)').run({ payload, digest });
}
