export { startPostgres, TEST_SETTINGS, type PostgresServer, type PostgresOptions } from '../../../bench/postgres.js';
