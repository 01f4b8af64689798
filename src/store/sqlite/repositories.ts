// Repositories: created by their first manifest or blob, listed in byte
// order, deleted with everything in them. Also the lookups every other
// concern starts from: a repository's id, and a manifest's within it.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import { actorOf, pageOf } from '../arguments.js';
import type { StoreContext } from './context.js';
import { NotFoundError } from '../errors.js';
import { recordEvent } from './events.js';
import { guardTags } from '../immutable.js';
import { catalogBounds } from '../grammar.js';
import type { CatalogOptions, Context } from '../types.js';

const REPOSITORY_SQL = {
  repositoryId: 'SELECT id FROM repository WHERE name = :repository',
  insertRepository: `
    INSERT INTO repository (name, created_at)
    VALUES (:repository, :now)
    RETURNING id`,
  deleteRepository: 'DELETE FROM repository WHERE id = :repositoryId',
  // One lower and one upper bound on the column, so the index seeks to the
  // range and stops at its end (with two lower bounds SQLite seeks by one).
  catalog: `
    SELECT name
    FROM repository
    WHERE name >= :low AND name < :high AND name <> :last
    ORDER BY name
    LIMIT :limit`,
  // The repository and, when present there, the manifest: one probe for a write's not-found checks.
  resolve: `
    SELECT
      r.id AS repositoryId,
      m.id AS manifestId
    FROM repository r
    LEFT JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
    WHERE r.name = :repository`,
  repositoryManifests: 'SELECT digest FROM manifest WHERE repository_id = :repositoryId ORDER BY digest',
};

/** @internal */
export function prepareRepositoryStatements(db: Database.Database): Record<keyof typeof REPOSITORY_SQL, Database.Statement> {
  return prepareAll(db, REPOSITORY_SQL, ['repositoryId', 'insertRepository', 'catalog', 'repositoryManifests']);
}

// --- inside a transaction -----------------------------------------------------

/** The id of `repo`. @throws NotFoundError NAME_UNKNOWN. */
export function requireRepository(cx: StoreContext, repo: string): number {
  const id = cx.sql.repositories.repositoryId.get({ repository: repo }) as number | undefined;
  if (id === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
  return id;
}

/** The id of `repo`, created (with its CREATE event) when missing. */
export function ensureRepository(cx: StoreContext, repo: string, actor: string, now: number): number {
  const sql = cx.sql.repositories;
  const id = sql.repositoryId.get({ repository: repo }) as number | undefined;
  if (id !== undefined) return id;
  const created = sql.insertRepository.get({ repository: repo, now }) as number;
  recordEvent(cx, actor, now, 'CREATE', 'REPOSITORY', repo, { repository: repo });
  return created;
}

/** The ids of `repo` and of its manifest `digest`. @throws NotFoundError NAME_UNKNOWN or MANIFEST_UNKNOWN. */
export function resolveManifest(cx: StoreContext, repo: string, digest: string): { repositoryId: number; manifestId: number } {
  const row = cx.sql.repositories.resolve.get({ repository: repo, digest }) as
    | { repositoryId: number; manifestId: number | null }
    | undefined;
  if (row === undefined) throw new NotFoundError('NAME_UNKNOWN', `repository ${repo} is not known`);
  if (row.manifestId === null) throw new NotFoundError('MANIFEST_UNKNOWN', `manifest ${repo}@${digest} is not known`);
  return row as { repositoryId: number; manifestId: number };
}

/**
 * After a read found nothing: NAME_UNKNOWN when the repository is missing,
 * else MANIFEST_UNKNOWN with `message`.
 * @throws NotFoundError always.
 */
export function notFound(cx: StoreContext, repo: string, message: string): never {
  requireRepository(cx, repo);
  throw new NotFoundError('MANIFEST_UNKNOWN', message);
}

// --- the store's methods ------------------------------------------------------

/** See Store.catalog. */
export function catalog(cx: StoreContext, page?: CatalogOptions): string[] {
  const { limit, last } = pageOf(page);
  const { low, high } = catalogBounds(page, last);
  return cx.read(() => cx.sql.repositories.catalog.all({ last, limit, low, high }) as string[]);
}

/** See Store.deleteRepository. */
export function deleteRepository(cx: StoreContext, repo: string, ctx?: Context): void {
  const actor = actorOf(ctx);
  cx.write(() => {
    const repositoryId = requireRepository(cx, repo);
    const now = Date.now();
    const tags = cx.sql.tags.tagsOfRepository.all({ repositoryId }) as { name: string; digest: string }[];
    const reasons = guardTags(cx.policy, repo, tags.map((t) => t.name), ctx?.admin === true);
    cx.sql.tags.deleteTagsOfRepository.run({ repositoryId });
    tags.forEach(({ name: tag, digest }, i) => {
      recordEvent(cx, actor, now, 'DELETE', 'TAG', `${repo}:${tag}`, { repository: repo, tag, digest, reason: reasons[i] });
    });
    for (const digest of cx.sql.repositories.repositoryManifests.all({ repositoryId }) as string[]) {
      recordEvent(cx, actor, now, 'DELETE', 'MANIFEST', `${repo}@${digest}`, { repository: repo, digest });
    }
    cx.sql.repositories.deleteRepository.run({ repositoryId });
    recordEvent(cx, actor, now, 'DELETE', 'REPOSITORY', repo, { repository: repo });
  });
}
