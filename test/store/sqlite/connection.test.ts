// openStore: creating and migrating a file, refusing files that are not ours,
// the read-only open and probeDatabase, connection settings, close.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { asyncStore, openStore, probeDatabase, type MetadataStore } from 'regmeta';
import { caught, blobDigest, ociManifest, tempDir, UNDO_7 } from '../fixtures.js';

let dir: string;
let remove: () => void;
beforeEach(() => {
  ({ dir, remove } = tempDir());
});
afterEach(() => remove());


/**
 * A schema's text without its comments and the layout that ALTER TABLE
 * changes (it puts an added column's text right before the closing
 * parenthesis): what a migrated file and a new one must agree on.
 */
const normalizeSchema = (rows: unknown[]) =>
  JSON.stringify(rows)
    // A table copied into a new shape and renamed has its name quoted; and a
    // quote inside a comment must not end the comment's match below.
    .replace(/\\"/g, '')
    .replace(/\\n\s*--[^\\]*/g, '')
    .replace(/(\\n|\s)+/g, ' ')
    .replace(/ ?([,()]) ?/g, '$1');

function raw<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe('openStore on a new file', () => {
  it('creates the file with the schema, user_version 7 and WAL', () => {
    const file = join(dir, 'new.db');
    openStore(file).close();
    raw(file, (db) => {
      expect(db.pragma('user_version', { simple: true })).toBe(7);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('application_id', { simple: true })).toBe(0x72676d74);
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all();
      expect(tables).toEqual(expect.arrayContaining(['repository', 'manifest', 'tag', 'tag_history', 'blob', 'blob_link', 'event']));
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('foreign_key_check')).toEqual([]);
    });
  });

  it('takes an empty (zero-byte) file as a new database', () => {
    const file = join(dir, 'empty.db');
    writeFileSync(file, '');
    const store = openStore(file);
    store.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 });
    store.close();
    expect(raw(file, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
  });

  it('reopens an existing store with its data, without migrating again', () => {
    const file = join(dir, 'reopen.db');
    const m = ociManifest();
    const first = openStore(file);
    first.putManifest('acme/app', m.digest, m);
    first.putTag('acme/app', 'latest', { digest: m.digest });
    first.close();
    const second = openStore(file);
    try {
      expect(second.getTag('acme/app', 'latest').digest).toBe(m.digest);
      expect(second.getManifest('acme/app', m.digest).payload.equals(m.payload)).toBe(true);
    } finally {
      second.close();
    }
    expect(raw(file, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
  });

  it('works on :memory: too, each store its own', () => {
    const a = openStore(':memory:');
    const b = openStore(':memory:');
    try {
      a.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 });
      expect(a.catalog()).toEqual(['acme/app']);
      expect(b.catalog()).toEqual([]);
    } finally {
      a.close();
      b.close();
    }
  });

  it('creates the directories its file goes in', () => {
    const store = openStore(join(dir, 'missing', 'dir', 'x.db'));
    store.close();
    expect(readFileSync(join(dir, 'missing', 'dir', 'x.db')).subarray(0, 15).toString()).toBe('SQLite format 3');
  });

  it('a directory that cannot be created is a StoreError, not a raw exception', () => {
    writeFileSync(join(dir, 'a-file'), 'not a directory');
    const error = caught(() => openStore(join(dir, 'a-file', 'x.db')));
    expect(error.code).toBe('DATABASE_ERROR');
    expect(error.message).toMatch(/cannot create the directory/);
  });
});

describe('openStore refuses files that are not its databases, and leaves them unchanged', () => {
  it('a file that is not a database: DATABASE_INVALID with a clear message', () => {
    const file = join(dir, 'notes.txt');
    const content = 'These are my notes, not a database.\n'.repeat(200);
    writeFileSync(file, content);
    const error = caught(() => openStore(file));
    expect(error.code).toBe('DATABASE_INVALID');
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/not a SQLite database/);
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it("another program's SQLite database (a table of its own): DATABASE_INVALID, file unchanged", () => {
    const file = join(dir, 'other.db');
    raw(file, (db) => {
      db.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL); INSERT INTO invoices (amount) VALUES (9.5)");
    });
    const before = readFileSync(file);
    const error = caught(() => openStore(file));
    expect(error.code).toBe('DATABASE_INVALID');
    expect(error.message).toContain(file);
    expect(readFileSync(file).equals(before)).toBe(true);
    raw(file, (db) => {
      expect(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all()).toEqual(['invoices']);
      expect(db.pragma('journal_mode', { simple: true })).not.toBe('wal');
    });
  });

  it("another program's database marked with its own application_id: DATABASE_INVALID", () => {
    const file = join(dir, 'app.db');
    raw(file, (db) => db.pragma('application_id = 12345'));
    const before = readFileSync(file);
    expect(caught(() => openStore(file)).code).toBe('DATABASE_INVALID');
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('a database from a newer version (user_version 99): DATABASE_TOO_NEW, file unchanged', () => {
    const file = join(dir, 'future.db');
    openStore(file).close();
    raw(file, (db) => {
      db.pragma('user_version = 99');
      db.pragma('wal_checkpoint(TRUNCATE)');
    });
    const before = readFileSync(file);
    const error = caught(() => openStore(file));
    expect(error.code).toBe('DATABASE_TOO_NEW');
    expect(error.message).toMatch(/99/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(raw(file, (db) => db.pragma('user_version', { simple: true }))).toBe(99);
  });
});

describe('migrating a version-1 file', () => {
  /** A version-1 store: today's schema without what version 2 added. */
  function versionOne(file: string): void {
    openStore(file).close();
    raw(file, (db) => db.exec(UNDO_7 + 'DROP TABLE notification_cursor; DROP TABLE upload_session; DROP TABLE blob_lock; ALTER TABLE repository DROP COLUMN pulled_at; PRAGMA user_version = 1'));
  }
  const schemaOf = (file: string) =>
    raw(file, (db) => db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all());

  it('takes it to version 7 with the same schema a new file gets, keeping its data', () => {
    const old = join(dir, 'v1.db');
    versionOne(old);
    const m = ociManifest();
    raw(old, () => undefined);
    const writer = openStore(old);
    writer.putManifest('acme/app', m.digest, m, undefined, { tag: 'v1' });
    writer.close();
    expect(raw(old, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
    const fresh = join(dir, 'v2.db');
    openStore(fresh).close();
    expect(normalizeSchema(schemaOf(old))).toBe(normalizeSchema(schemaOf(fresh)));
    const store = openStore(old);
    try {
      expect(store.getTag('acme/app', 'v1').digest).toBe(m.digest);
      store.notifications.open('http://receiver.example/hook');
      expect(store.notifications.status()).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('reads it read-only without migrating (check and stats work after an upgrade), and a newer file is still DATABASE_TOO_NEW', () => {
    const old = join(dir, 'v1.db');
    const m = ociManifest();
    const writer = openStore(old);
    writer.putManifest('acme/app', m.digest, m, undefined, { tag: 'v1' });
    writer.close();
    raw(old, (db) => db.exec(UNDO_7 + 'DROP TABLE notification_cursor; DROP TABLE upload_session; DROP TABLE blob_lock; ALTER TABLE repository DROP COLUMN pulled_at; PRAGMA user_version = 1'));
    const before = readFileSync(old);
    const reader = openStore(old, { readOnly: true });
    try {
      expect(reader.getTag('acme/app', 'v1').digest).toBe(m.digest);
      expect(reader.check().complete).toBe(true);
    } finally {
      reader.close();
    }
    expect(readFileSync(old).equals(before)).toBe(true);
    expect(raw(old, (db) => db.pragma('user_version', { simple: true }))).toBe(1);
    const future = join(dir, 'v8.db');
    openStore(future).close();
    raw(future, (db) => db.pragma('user_version = 8'));
    expect(caught(() => openStore(future)).code).toBe('DATABASE_TOO_NEW');
  });
});

describe('migrating a version-2 file', () => {
  it('adds the upload sessions with the same schema a new file gets, keeping its webhook cursors', () => {
    const old = join(dir, 'v2.db');
    const writer = openStore(old);
    writer.notifications.open('http://receiver.example/hook');
    writer.close();
    raw(old, (db) => db.exec(UNDO_7 + 'DROP TABLE upload_session; DROP TABLE blob_lock; ALTER TABLE repository DROP COLUMN pulled_at; PRAGMA user_version = 2'));
    const reader = openStore(old, { readOnly: true });
    expect(reader.notifications.status()).toHaveLength(1);
    reader.close();
    const store = openStore(old);
    try {
      const session = store.uploads.open('acme/app', '10.0.0.1', 1);
      expect(store.uploads.get('acme/app', session.id)).toMatchObject({ size: 0, client: '10.0.0.1' });
      expect(store.notifications.status()).toHaveLength(1);
    } finally {
      store.close();
    }
    const fresh = join(dir, 'v3.db');
    openStore(fresh).close();
    const schemaOf = (file: string) =>
      raw(file, (db) => db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all());
    expect(normalizeSchema(schemaOf(old))).toBe(normalizeSchema(schemaOf(fresh)));
  });
});

describe('migrating a version-3 file', () => {
  it("adds the holder of an upload claim with the same schema a new file gets, keeping the sessions; a claim without a holder lasts its lease", () => {
    const old = join(dir, 'v3.db');
    const writer = openStore(old);
    const session = writer.uploads.open('acme/app', '10.0.0.1', 0);
    writer.close();
    raw(old, (db) => {
      db.exec(UNDO_7);
      db.exec(`
        CREATE TABLE upload_session_v3 (
          id          TEXT    PRIMARY KEY CHECK (length(id) = 36),
          repository  TEXT    NOT NULL CHECK (length(repository) BETWEEN 1 AND 255),
          client      TEXT    NOT NULL CHECK (length(client) <= 255),
          size        INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
          started_at  INTEGER NOT NULL,
          updated_at  INTEGER NOT NULL,
          owner       TEXT,
          lease_until INTEGER,
          CHECK ((owner IS NULL) = (lease_until IS NULL))
        ) WITHOUT ROWID;
        INSERT INTO upload_session_v3 SELECT id, repository, client, size, started_at, updated_at, owner, lease_until FROM upload_session;
        DROP TABLE upload_session;
        ALTER TABLE upload_session_v3 RENAME TO upload_session;
        CREATE INDEX upload_session_by_client ON upload_session (client);
        CREATE INDEX upload_session_by_time ON upload_session (updated_at);
        DROP TABLE blob_lock;
        ALTER TABLE repository DROP COLUMN pulled_at;
        PRAGMA user_version = 3;`);
      // A claim made by a version-3 process: no holder recorded.
      db.prepare("UPDATE upload_session SET owner = 'old', lease_until = ?").run(Date.now() + 60_000);
    });
    const store = openStore(old);
    try {
      expect(store.uploads.claim('acme/app', session.id, 'new', 60_000)).toBe('busy');
    } finally {
      store.close();
    }
    expect(raw(old, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
    const columns = (file: string) => raw(file, (db) => db.prepare('SELECT name, type, "notnull", dflt_value FROM pragma_table_info(\'upload_session\')').all());
    const fresh = join(dir, 'v4.db');
    openStore(fresh).close();
    expect(columns(old)).toEqual(columns(fresh));
  });
});

describe('migrating a version-4 file', () => {
  it('adds the digest locks with the same schema a new file gets, keeping the blobs; read-only, it is read as it is', async () => {
    const old = join(dir, 'v4.db');
    const known = { digest: blobDigest('known'), size: 1 };
    const writer = openStore(old);
    writer.linkBlob('acme/app', known);
    writer.close();
    raw(old, (db) => db.exec(UNDO_7 + 'DROP TABLE blob_lock; ALTER TABLE repository DROP COLUMN pulled_at; PRAGMA user_version = 4'));
    const before = readFileSync(old);
    const reader = openStore(old, { readOnly: true });
    try {
      expect(reader.statBlob('acme/app', known.digest).size).toBe(1);
      expect(reader.whileBlobUnknown(known.digest, () => {})).toBe(false);
    } finally {
      reader.close();
    }
    expect(readFileSync(old).equals(before)).toBe(true);
    const store = asyncStore(openStore(old));
    try {
      const pushed = { digest: blobDigest('pushed'), size: 2 };
      await store.linkBlob('acme/app', pushed, {}, { place: async () => {} });
      expect((await store.statBlob('acme/app', pushed.digest)).size).toBe(2);
      expect((await store.statBlob('acme/app', known.digest)).size).toBe(1);
    } finally {
      await store.close();
    }
    expect(raw(old, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
    const fresh = join(dir, 'v5.db');
    openStore(fresh).close();
    const schemaOf = (file: string) =>
      raw(file, (db) => db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all());
    expect(normalizeSchema(schemaOf(old))).toBe(normalizeSchema(schemaOf(fresh)));
  });
});

describe('migrating a version-5 file', () => {
  it('adds the repositories\' last pulls with the same schema a new file gets, keeping the repositories unpulled; read-only, it is read as it is', async () => {
    const old = join(dir, 'v5.db');
    const known = { digest: blobDigest('known'), size: 1 };
    const writer = openStore(old);
    writer.linkBlob('hub/app', known);
    writer.close();
    raw(old, (db) => db.exec(UNDO_7 + 'ALTER TABLE repository DROP COLUMN pulled_at; PRAGMA user_version = 5'));
    const before = readFileSync(old);
    const reader = openStore(old, { readOnly: true });
    try {
      expect(reader.statBlob('hub/app', known.digest).size).toBe(1);
      expect(reader.catalog()).toEqual(['hub/app']);
    } finally {
      reader.close();
    }
    expect(readFileSync(old).equals(before)).toBe(true);
    const store = openStore(old);
    try {
      expect(store.namespaceUsage('hub')).toEqual([{ name: 'hub/app', createdAt: expect.any(Date), blobs: [known] }]);
      expect(store.recordPulls([{ repo: 'hub/app', at: new Date(1000) }])).toBe(1);
      expect(store.namespaceUsage('hub')[0].pulledAt).toEqual(new Date(1000));
    } finally {
      store.close();
    }
    expect(raw(old, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
    const fresh = join(dir, 'v6.db');
    openStore(fresh).close();
    const schemaOf = (file: string) =>
      raw(file, (db) => db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all());
    expect(normalizeSchema(schemaOf(old))).toBe(normalizeSchema(schemaOf(fresh)));
  });
});

describe('migrating a version-6 file', () => {
  it('adds pull statistics and PULL events with the same schema a new file gets, keeping every event and never reusing a seq', () => {
    const old = join(dir, 'v6.db');
    const m = ociManifest();
    const writer = openStore(old);
    writer.putManifest('acme/app', m.digest, m, { actor: 'alice' }, { tag: 'v1' });
    writer.close();
    raw(old, (db) => db.exec(UNDO_7));
    // The newest events gone (as a hand prune would leave them): their seqs must still not come back.
    const seqs = raw(old, (db) => db.prepare('SELECT seq FROM event ORDER BY seq').pluck().all() as number[]);
    expect(seqs.length).toBeGreaterThan(1);
    raw(old, (db) => db.prepare('DELETE FROM event WHERE seq = ?').run(seqs.at(-1)));
    const reader = openStore(old, { readOnly: true });
    try {
      expect(reader.getEvents({}).events).toHaveLength(seqs.length - 1);
      expect(reader.getTag('acme/app', 'v1').digest).toBe(m.digest);
    } finally {
      reader.close();
    }
    const store = openStore(old);
    try {
      const events = store.getEvents({}).events;
      expect(events).toHaveLength(seqs.length - 1);
      expect(events.every((e) => e.actor === 'alice' && e.count === undefined && e.reason === undefined)).toBe(true);
      const pull = store.createEvent({ actor: '', type: 'PULL', object: { type: 'MANIFEST', id: `acme/app@${m.digest}` }, repository: 'acme/app', digest: m.digest, count: 3 });
      expect(pull).toMatchObject({ type: 'PULL', count: 3 });
    } finally {
      store.close();
    }
    const newSeq = raw(old, (db) => db.prepare('SELECT max(seq) FROM event').pluck().get() as number);
    expect(newSeq).toBe(seqs.at(-1)! + 1);
    expect(raw(old, (db) => db.pragma('user_version', { simple: true }))).toBe(7);
    const fresh = join(dir, 'v7.db');
    openStore(fresh).close();
    const schemaOf = (file: string) =>
      raw(file, (db) => db.prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all());
    expect(normalizeSchema(schemaOf(old))).toBe(normalizeSchema(schemaOf(fresh)));
  });
});

describe('openStore with readOnly', () => {
  it('reads an existing store, refuses every write with DATABASE_READONLY, and changes nothing', () => {
    const file = join(dir, 'ro.db');
    const m = ociManifest();
    const writer = openStore(file);
    writer.putManifest('acme/app', m.digest, m);
    writer.putTag('acme/app', 'latest', { digest: m.digest });
    writer.close();
    const before = readFileSync(file);
    const store = openStore(file, { readOnly: true });
    try {
      expect(store.getTag('acme/app', 'latest').digest).toBe(m.digest);
      expect(store.getManifestByReference('acme/app', 'latest').payload.equals(m.payload)).toBe(true);
      expect(caught(() => store.putTag('acme/app', 'v2', { digest: m.digest })).code).toBe('DATABASE_READONLY');
      expect(caught(() => store.deleteManifest('acme/app', m.digest)).code).toBe('DATABASE_READONLY');
    } finally {
      store.close();
    }
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('creates no file, and sets up no empty one', () => {
    const missing = join(dir, 'missing.db');
    expect(caught(() => openStore(missing, { readOnly: true })).code).toBe('DATABASE_ERROR');
    expect(existsSync(missing)).toBe(false);
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    expect(caught(() => openStore(empty, { readOnly: true })).code).toBe('DATABASE_INVALID');
    expect(readFileSync(empty).length).toBe(0);
  });

  it("refuses another program's database and a newer schema as the read-write open does", () => {
    const other = join(dir, 'other.db');
    raw(other, (db) => db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)'));
    expect(caught(() => openStore(other, { readOnly: true })).code).toBe('DATABASE_INVALID');
    const future = join(dir, 'future.db');
    openStore(future).close();
    raw(future, (db) => db.pragma('user_version = 99'));
    expect(caught(() => openStore(future, { readOnly: true })).code).toBe('DATABASE_TOO_NEW');
  });
});

describe('probeDatabase', () => {
  it('tells a regmeta store, an empty database and another program\'s apart, writing nothing', () => {
    const store = join(dir, 'store.db');
    openStore(store).close();
    const empty = join(dir, 'empty.db');
    raw(empty, () => undefined);
    const other = join(dir, 'other.db');
    raw(other, (db) => db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)'));
    const marked = join(dir, 'marked.db');
    raw(marked, (db) => db.pragma('application_id = 12345'));
    // Unmarked, with a user_version of its own: another program's all the same.
    const versioned = join(dir, 'versioned.db');
    raw(versioned, (db) => db.exec('CREATE TABLE notes (body TEXT); PRAGMA user_version = 1'));
    const files = [store, empty, other, marked, versioned];
    const before = files.map((f) => readFileSync(f));
    expect(files.map((f) => probeDatabase(f))).toEqual([
      { kind: 'regmeta', version: 7 },
      { kind: 'empty', version: 0 },
      { kind: 'foreign', version: 0 },
      { kind: 'foreign', version: 0 },
      { kind: 'foreign', version: 1 },
    ]);
    expect(files.map((f) => readFileSync(f))).toEqual(before);
    expect(caught(() => openStore(versioned)).code).toBe('DATABASE_INVALID');
  });

  it('answers DATABASE_INVALID for a file that is not SQLite, DATABASE_ERROR for one that is not there', () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database\n'.repeat(100));
    expect(caught(() => probeDatabase(text)).code).toBe('DATABASE_INVALID');
    expect(caught(() => probeDatabase(join(dir, 'none.db'))).code).toBe('DATABASE_ERROR');
    expect(existsSync(join(dir, 'none.db'))).toBe(false);
  });
});

describe('durability', () => {
  // The pragma is per connection: read it on the store's own connection,
  // caught as the `this` of its first pragma call.
  function synchronousOf(options?: Parameters<typeof openStore>[1]): number {
    const spy = vi.spyOn(Database.prototype, 'pragma');
    let store: MetadataStore | undefined;
    try {
      store = openStore(join(dir, 'd.db'), options);
      const connection = spy.mock.contexts[0] as Database.Database;
      spy.mockRestore();
      return connection.pragma('synchronous', { simple: true }) as number;
    } finally {
      spy.mockRestore();
      store?.close();
    }
  }

  it("'normal' sets synchronous = 1 (NORMAL)", () => {
    expect(synchronousOf({ durability: 'normal' })).toBe(1);
  });

  it("'full' sets synchronous = 2 (FULL)", () => {
    expect(synchronousOf({ durability: 'full' })).toBe(2);
  });

  it('the default is full', () => {
    expect(synchronousOf()).toBe(2);
  });
});

describe('SQLite failures', () => {
  it('a lock held past the busy timeout is DATABASE_BUSY, and the write is not made', () => {
    const file = join(dir, 'busy.db');
    const store = openStore(file, { busyTimeout: 50 });
    const m = ociManifest();
    store.putManifest('acme/app', m.digest, m);
    const holder = new Database(file);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const error = caught(() => store.putTag('acme/app', 'latest', { digest: m.digest }));
      expect(error.code).toBe('DATABASE_BUSY');
      holder.exec('ROLLBACK');
      expect(store.allTags('acme/app')).toEqual([]);
      // The store is still usable once the lock is gone.
      store.putTag('acme/app', 'latest', { digest: m.digest });
      expect(store.allTags('acme/app')).toEqual(['latest']);
    } finally {
      holder.close();
      store.close();
    }
  });
});

describe('close', () => {
  it('every method of a closed store throws STORE_CLOSED', () => {
    const store = openStore(join(dir, 'closed.db'));
    const m = ociManifest();
    store.putManifest('acme/app', m.digest, m);
    store.close();
    const calls: Array<() => unknown> = [
      () => store.putManifest('acme/app', m.digest, m),
      () => store.getManifest('acme/app', m.digest),
      () => store.statManifest('acme/app', m.digest),
      () => store.getManifestByReference('acme/app', 'latest'),
      () => store.deleteManifest('acme/app', m.digest),
      () => store.putTag('acme/app', 'latest', { digest: m.digest }),
      () => store.getTag('acme/app', 'latest'),
      () => store.deleteTag('acme/app', 'latest'),
      () => store.allTags('acme/app'),
      () => store.lookupTags('acme/app', m.digest),
      () => store.tagHistory('acme/app', 'latest'),
      () => store.referrers('acme/app', m.digest),
      () => store.catalog(),
      () => store.deleteRepository('acme/app'),
      () => store.linkBlob('acme/app', { digest: blobDigest('a'), size: 1 }),
      () => store.statBlob('acme/app', blobDigest('a')),
      () => store.unlinkBlob('acme/app', blobDigest('a')),
      () => store.deleteBlob(blobDigest('a')),
      () => store.untaggedManifests(),
      () => store.unreferencedBlobs(),
      () => store.collectManifest('acme/app', m.digest),
      () => store.collectBlob(blobDigest('a')),
      () => store.allBlobs(),
      () => store.check(),
      () => store.stats(),
      () => store.createEvent({ actor: '', type: 'CREATE', object: { type: 'REPOSITORY', id: 'x' } }),
      () => store.getEvents({}),
      () => store.subscribe(() => {}),
    ];
    for (const call of calls) expect(caught(call).code).toBe('STORE_CLOSED');
  });

  it('closing twice is harmless', () => {
    const store = openStore(':memory:');
    store.close();
    expect(() => store.close()).not.toThrow();
  });
});
