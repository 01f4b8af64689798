// Which backend a database location names, decided without loading either
// backend: a file path is SQLite's, a postgres:// URL PostgreSQL's.

/** Whether `url` names a PostgreSQL database: a parseable postgres:// or postgresql:// URL. */
export function isPostgresUrl(url: unknown): url is string {
  return typeof url === 'string' && /^postgres(ql)?:\/\//.test(url) && URL.canParse(url);
}
