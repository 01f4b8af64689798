// A writer that loses its claim while its body still streams (on PostgreSQL,
// its replica's holder connection cut: a server restart, a terminated
// backend) goes on appending to the session's file until it learns so. The
// writer that took the session over must never commit bytes interleaved with
// the other's: two blob stores on one directory, each with its own store on
// one real PostgreSQL database, stand for two replicas.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import { DirectoryBlobStore } from '../../../src/blobstore/fs/directory.js';
import { startPostgres, type PostgresServer } from '../../store/postgres/server.js';
import { sha256 } from '../helpers.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

/** Waits until `read()` gives `expected` (the file the writers append to). */
async function until(read: () => string, expected: string): Promise<void> {
  for (let waited = 0; read() !== expected; waited += 5) {
    if (waited > 20_000) throw new Error(`the file holds ${JSON.stringify(read())}, not ${JSON.stringify(expected)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

it('refuses a chunk that another writer, whose claim was taken, appended into; the session stays whole', async () => {
  const url = await server.createDatabase();
  const [storeA, storeB] = await Promise.all([openPostgresStore(url), openPostgresStore(url)]);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const dir = mkdtempSync(path.join(tmpdir(), 'regmeta-takeover-'));
  const a = new DirectoryBlobStore(dir, { sessions: storeA.uploads });
  const b = new DirectoryBlobStore(dir, { sessions: storeB.uploads });
  a.init();
  try {
    const upload = await a.startUpload('acme/app', '10.0.0.1');
    const file = path.join(dir, 'uploads', upload.id);
    const read = () => readFileSync(file, 'utf8');
    const bodyA = new PassThrough();
    const appendA = a.append(upload, bodyA).catch((error: unknown) => error);
    bodyA.write('aaa');
    await until(read, 'aaa');
    // A's holder connection is cut while its body streams on.
    const [{ holder }] = await sql<{ holder: number }[]>`SELECT holder FROM upload_session WHERE id = ${upload.id}`;
    await sql`SELECT pg_terminate_backend(${holder})`;
    const bodyB = new PassThrough();
    const appendB = b.append(await b.upload('acme/app', upload.id), bodyB).catch((error: unknown) => error);
    bodyB.write('bb');
    await until(read, 'bb');
    bodyA.write('AAAA');
    await until(read, 'bbAAAA');
    bodyB.end('BB');
    expect(await appendB).toMatchObject({ code: 'TOOMANYREQUESTS', retryAfter: 1 });
    bodyA.end();
    expect(await appendA).toBeInstanceOf(Error);
    // Nothing was committed; the chunk sent again goes in whole.
    const again = await b.upload('acme/app', upload.id);
    expect(again.size).toBe(0);
    await b.append(again, new PassThrough().end('bbBB'));
    (await b.finish(again, sha256('bbBB'))).place();
    expect(readFileSync(path.join(dir, 'blobs', 'sha256', sha256('bbBB').slice(7, 9), sha256('bbBB').slice(7)), 'utf8')).toBe('bbBB');
  } finally {
    a.close();
    b.close();
    await Promise.all([storeA.close(), storeB.close(), sql.end()]);
    rmSync(dir, { recursive: true, force: true });
  }
});
