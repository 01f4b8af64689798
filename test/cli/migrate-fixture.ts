// What the migrate tests share: the command, a store made through the API
// for volume, and what a target database holds of a migration.

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import postgres from 'postgres';
import { openStore } from '../../src/index.js';
import { OCI } from '../server/oci-layout.js';
import { regmeta, type Run } from './run.js';

export function migrate(args: string[]): Promise<Run> {
  return regmeta(['migrate', ...args]);
}

export interface Summary {
  resumed: boolean;
  tables: { table: string; rows: number; copied: number; verified: boolean }[];
  notCopied: { table: string; rows: number }[];
  mismatches: string[];
}

/** A store of `tags` tags made through the store's API, for volume. */
export function bulkStore(dir: string, tags: number): void {
  const store = openStore(join(dir, 'metadata.db'), { durability: 'normal' });
  try {
    for (let i = 0; i < tags; i++) {
      const config = Buffer.from(`config ${i}`);
      const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
      store.linkBlob('bulk/app', { digest, size: config.length });
      const payload = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI.manifest, config: { mediaType: OCI.config, digest, size: config.length }, layers: [] }));
      store.putManifest('bulk/app', undefined, { mediaType: OCI.manifest, payload }, undefined, { tag: `t${i}` });
    }
    // Text that COPY's format escapes (tab, newline, carriage return, backslash), and more than ASCII.
    store.notifications.open('http://hooks.example/bulk');
    store.notifications.recordFailure('http://hooks.example/bulk', 'HTTP 500:\n\tbody \\ "quoted"\r ☃ \\N');
  } finally {
    store.close();
  }
}

/** The rows of every table the migration copies, and its own state, in the database at `url`. */
export async function targetState(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [{ exists }] = await sql`SELECT to_regclass('regmeta_migration_table') IS NOT NULL AS exists`;
    const progress = exists ? await sql<{ name: string; copied: string; done: boolean }[]>`SELECT name, copied, done FROM regmeta_migration_table` : [];
    const [migration] = exists ? await sql<{ finished_at: string | null }[]>`SELECT finished_at FROM regmeta_migration` : [];
    return { exists, copied: progress.reduce((sum, p) => sum + Number(p.copied), 0), finished: migration?.finished_at != null };
  } finally {
    await sql.end();
  }
}
