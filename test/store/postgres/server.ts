export { startPostgres, type PostgresServer, type PostgresOptions } from '../../../bench/postgres.js';
