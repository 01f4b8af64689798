// A replica starting: opens the PostgreSQL store at argv[2] at the moment
// argv[3] (epoch ms), so that several processes migrate at the same time,
// writes once, and prints 'opened' (or the error's code).

import { openPostgresStore } from '../../../../src/postgres.js';

const [url, at] = process.argv.slice(2);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(at) - Date.now())));
try {
  const store = await openPostgresStore(url);
  await store.createEvent({ actor: `pid${process.pid}`, type: 'CREATE', object: { type: 'REPOSITORY', id: 'started' } });
  await store.close();
  console.log('opened');
} catch (error) {
  console.log((error as { code?: string }).code ?? String(error));
  process.exitCode = 1;
}
