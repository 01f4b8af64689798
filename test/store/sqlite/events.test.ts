// The event log's atomicity on SQLite, shown by a trigger that only SQLite's
// own connection can add: an event that cannot be written takes its change
// with it. (The log's semantics, on every backend: test/store/contract/.)

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { caught, dump, gcEvent, ociManifest, putBuilt, tempStore } from '../fixtures.js';

describe('events are written in the same transaction as the change', () => {
  it('when the event cannot be written, the change is not made either', () => {
    const t = tempStore();
    try {
      const a = putBuilt(t.store, 'acme/app', ociManifest({ seed: 'a' }));
      const b = putBuilt(t.store, 'acme/app', ociManifest({ seed: 'b' }));
      t.store.putTag('acme/app', 'latest', { digest: a.digest });
      // Another connection makes every further event insert fail.
      const raw = new Database(t.file);
      raw.exec("CREATE TRIGGER no_events BEFORE INSERT ON event BEGIN SELECT RAISE(ABORT, 'no events'); END");
      const before = dump(t.file);
      const attempts = [
        () => t.store.putTag('acme/app', 'latest', { digest: b.digest }),
        () => t.store.putTag('acme/app', 'new', { digest: b.digest }),
        () => t.store.deleteTag('acme/app', 'latest'),
        () => t.store.deleteManifest('acme/app', a.digest),
        () => t.store.putManifest('acme/other', b.digest, b),
        () => t.store.createEvent(gcEvent('gc')),
        () => t.store.deleteRepository('acme/app'),
      ];
      for (const attempt of attempts) {
        const error = caught(attempt);
        // SQLITE_CONSTRAINT_TRIGGER, translated by its code; the original stays as the cause.
        expect(error.code).toBe('DATABASE_ERROR');
        expect((error.cause as { code?: string }).code).toBe('SQLITE_CONSTRAINT_TRIGGER');
      }
      expect(dump(t.file)).toEqual(before);
      raw.exec('DROP TRIGGER no_events');
      raw.close();
      t.store.putTag('acme/app', 'latest', { digest: b.digest });
      expect(t.store.getTag('acme/app', 'latest').digest).toBe(b.digest);
    } finally {
      t.cleanup();
    }
  });
});
