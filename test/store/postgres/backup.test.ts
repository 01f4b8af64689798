// The PostgreSQL store makes no copy of itself: backup rejects with the
// typed UNSUPPORTED, naming pg_dump, and writes nothing.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from 'regmeta/postgres';
import { rejection } from '../fixtures.js';
import { startPostgres, type PostgresServer } from './server.js';

let server: PostgresServer;
const dir = mkdtempSync(join(tmpdir(), 'regmeta-pg-backup-'));
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

describe('PostgreSQL store backup', () => {
  it('rejects with StoreError UNSUPPORTED, telling the operator to use pg_dump, and creates no file', async () => {
    const store = await openPostgresStore(await server.createDatabase());
    try {
      const target = join(dir, 'copy.db');
      const refused = await rejection(store.backup(target, { onProgress: () => {} }));
      expect(refused.name).toBe('StoreError');
      expect(refused.code).toBe('UNSUPPORTED');
      expect(refused.message).toContain('pg_dump');
      expect(existsSync(target)).toBe(false);
    } finally {
      await store.close();
    }
  });
});
