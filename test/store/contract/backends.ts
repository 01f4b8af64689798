// The backends the contract suite runs against: every test of
// test/store/contract/ runs once per entry of `backends`, through Store
// only, with the backend's name in the test's name (as zot runs its
// RunMetaDBTests against every MetaDB).

import { join } from 'node:path';
import Database from 'better-sqlite3';
import postgresClient from 'postgres';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { asyncStore, openStore, type Store, type StorePolicy } from 'regmeta';
import { openPostgresStore } from 'regmeta/postgres';
import { tempDir } from '../fixtures.js';
import { startPostgres } from '../postgres/server.js';

/** What a contract test may ask of the database it gets. */
export interface OpenOptions {
  /**
   * Another store must be able to reach the same database (Opened.connect):
   * SQLite then uses a temporary file instead of ':memory:'.
   */
  shared?: boolean;
  /** As StoreOptions.maxManifestSize. */
  maxManifestSize?: number;
  /** As StoreOptions.policy. */
  policy?: StorePolicy;
}

/** A fresh, empty database of one backend, with its store open. */
export interface Opened {
  store: Store;
  /**
   * Another store on the same database: another connection (SQLite, opened
   * with `shared`) or another replica (PostgreSQL). cleanup closes it.
   */
  connect(): Promise<Store>;
  /**
   * Runs a read of `text` (SQL both backends read alike) on the database
   * itself, not through a store (SQLite: opened with `shared`): what a test
   * checks of the columns the store writes and no method of its reads.
   */
  query(text: string): Promise<Record<string, unknown>[]>;
  /** Closes every store of this database and removes what it left behind. */
  cleanup(): Promise<void>;
}

/** One metadata backend, as the contract suite drives it. */
export interface Backend {
  /** Appears in every test's name. */
  name: string;
  /** A fresh, empty database with a store on it. */
  open(options?: OpenOptions): Promise<Opened>;
}

// How often a shared SQLite store looks for the other connection's commits:
// short, so that the subscription tests wait milliseconds, not a tenth of a second.
const POLL_INTERVAL = 5;

const sqlite: Backend = {
  name: 'sqlite',
  async open(options = {}) {
    const { shared = false, ...limits } = options;
    if (!shared) {
      // The cheap default: a private in-memory database per test.
      const store = asyncStore(openStore(':memory:', limits));
      const shared = () => Promise.reject(new Error('needs open({ shared: true })'));
      return { store, connect: shared, query: shared, cleanup: () => store.close() };
    }
    const { dir, remove } = tempDir();
    const file = join(dir, 'metadata.db');
    const opened: Store[] = [asyncStore(openStore(file, { ...limits, pollInterval: POLL_INTERVAL }))];
    return {
      store: opened[0],
      connect: async () => {
        const other = asyncStore(openStore(file, { ...limits, pollInterval: POLL_INTERVAL }));
        opened.push(other);
        return other;
      },
      query: async (text) => {
        const db = new Database(file, { readonly: true });
        try {
          return db.prepare(text).all() as Record<string, unknown>[];
        } finally {
          db.close();
        }
      },
      cleanup: async () => {
        for (const store of opened) await store.close();
        remove();
      },
    };
  },
};

/**
 * A fresh, empty store of `backend` for each test of the calling describe,
 * opened before the test and cleaned up after it. The Store returned
 * stands for the store of the test that is running.
 */
export function storePerTest(backend: Backend, options?: OpenOptions): Store {
  let current: Opened | undefined;
  beforeEach(async () => {
    current = await backend.open(options);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return new Proxy({} as Store, {
    get(_target, property) {
      if (current === undefined) throw new Error('a contract test used its store outside a test');
      const value: unknown = Reflect.get(current.store, property);
      return typeof value === 'function' ? value.bind(current.store) : value;
    },
  });
}

// One server per test file (vitest runs each file in its own worker), one
// database per test; started on first use, so a file that never opens a
// PostgreSQL store starts nothing.
let server: ReturnType<typeof startPostgres> | undefined;
afterAll(async () => {
  const started = server;
  server = undefined;
  if (started !== undefined) await (await started).stop();
});

// The PostgreSQL backend is not guarded by a try/catch or an existence
// check: a machine without PostgreSQL (initdb, pg_ctl) must fail the suite,
// never skip it silently; .ci/run installs Debian's `postgresql` package.
const postgres: Backend = {
  name: 'postgres',
  async open(options = {}) {
    // Every database is reachable by other replicas: `shared` needs nothing more.
    const { shared: _shared, ...limits } = options;
    server ??= startPostgres();
    const url = await (await server).createDatabase();
    const opened: Store[] = [await openPostgresStore(url, limits)];
    return {
      store: opened[0],
      connect: async () => {
        const other = await openPostgresStore(url, limits);
        opened.push(other);
        return other;
      },
      query: async (text) => {
        const sql = postgresClient(url, { max: 1, onnotice: () => {} });
        try {
          const rows = await sql.unsafe(text);
          // bigint (oid 20) as numbers, as SQLite answers them: postgres.js reads them as strings.
          const bigints = rows.columns.filter((c) => c.type === 20).map((c) => c.name);
          return rows.map((row) => ({ ...row, ...Object.fromEntries(bigints.map((name) => [name, row[name] === null ? null : Number(row[name])])) }));
        } finally {
          await sql.end();
        }
      },
      cleanup: async () => {
        for (const store of opened) await store.close();
      },
    };
  },
};

/** Every backend the contract suite runs against. */
export const backends: Backend[] = [sqlite, postgres];
