// The package entry regmeta/postgres: the metadata store on PostgreSQL, for
// several registry replicas sharing one database. A separate entry so that
// what it costs (the client library, loaded on first open) is paid only by
// those who use it; everything else (errors, types) is regmeta's own.

export {
  openPostgresStore,
  DEFAULT_POSTGRES_TIMEOUTS,
  StoreError,
  NotFoundError,
  type Store,
  type NotificationCursors,
  type LockedAction,
  type PostgresStoreOptions,
  type StoreErrorCode,
} from './store/index.js';
