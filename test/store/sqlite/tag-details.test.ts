// tagDetails by pull time on SQLite, the tags' pull columns written directly
// (the statements walk tag_by_pull); see ../tag-pulls.ts.

import Database from 'better-sqlite3';
import { afterEach, describe, it } from 'vitest';
import { asyncStore } from 'regmeta';
import { tempStore } from '../fixtures.js';
import { checkPulledSort } from '../tag-pulls.js';

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

describe('tagDetails sorted by pull time (SQLite)', () => {
  it('puts tags never pulled first, breaks ties by name, and pages through ties', async () => {
    const opened = tempStore();
    cleanup = opened.cleanup;
    const raw = new Database(opened.file);
    try {
      await checkPulledSort(asyncStore(opened.store), async (repo, tag, at, count) => {
        raw
          .prepare('UPDATE tag SET pulled_at = ?, pull_count = ? WHERE name = ? AND repository_id = (SELECT id FROM repository WHERE name = ?)')
          .run(at, count, tag, repo);
      });
    } finally {
      raw.close();
    }
  });
});
