// The package entry regmeta/postgres: the metadata store on PostgreSQL, for
// several registry replicas sharing one database. A separate entry so that
// what it costs (the client library, loaded on first open) is paid only by
// those who use it. What it returns is regmeta's `Store`, and its errors are
// regmeta's StoreError: both come from 'regmeta'.

export { openPostgresStore, DEFAULT_POSTGRES_TIMEOUTS, type PostgresStoreOptions } from './store/index.js';
