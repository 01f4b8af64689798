// Every statement the store runs, prepared once per connection with named
// parameters. No value is ever spliced into SQL text (the only splices are
// the fixed fragments below).

import type Database from 'better-sqlite3';

// What the garbage collector may take, as fixed SQL fragments shared by the
// listing and the re-check inside each delete, so that the two cannot drift.
// A manifest: last pushed before :before, and no tag, no index in its
// repository and no present subject keeps it alive.
const COLLECTABLE_MANIFEST = `
  m.pushed_at < :before
  AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id)
  AND NOT EXISTS (
    SELECT 1 FROM manifest_child c
    WHERE c.repository_id = m.repository_id AND c.digest = m.digest)
  AND NOT EXISTS (
    SELECT 1 FROM manifest s
    WHERE s.repository_id = m.repository_id AND s.digest = m.subject)`;
// A blob: known before :before, linked nowhere since, referenced by no manifest.
const COLLECTABLE_BLOB = `
  b.created_at < :before
  AND NOT EXISTS (SELECT 1 FROM manifest_blob mb WHERE mb.digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM blob_link l WHERE l.digest = b.digest AND l.linked_at >= :before)`;

/** @internal The store's own; not part of the published declarations. */
export function prepareStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    // --- repositories -------------------------------------------------------
    repositoryId: p('SELECT id FROM repository WHERE name = :repository').pluck(),
    insertRepository: p(`
      INSERT INTO repository (name, created_at)
      VALUES (:repository, :now)
      RETURNING id`).pluck(),
    deleteRepository: p('DELETE FROM repository WHERE id = :repositoryId'),
    catalog: p(`
      SELECT name
      FROM repository
      WHERE name > :last
      ORDER BY name
      LIMIT :limit`).pluck(),

    // --- manifests ----------------------------------------------------------
    manifestInfo: p(`
      SELECT
        m.digest,
        m.media_type,
        m.size,
        m.created_at
      FROM repository r
      JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
      WHERE r.name = :repository`),
    manifestWithPayload: p(`
      SELECT
        m.digest,
        m.media_type,
        m.size,
        m.created_at,
        p.payload
      FROM repository r
      JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
      JOIN manifest_payload p ON p.manifest_id = m.id
      WHERE r.name = :repository`),
    manifestId: p('SELECT id FROM manifest WHERE repository_id = :repositoryId AND digest = :digest').pluck(),
    // The repository and, when present there, the manifest: one probe for a write's not-found checks.
    resolve: p(`
      SELECT
        r.id AS repositoryId,
        m.id AS manifestId
      FROM repository r
      LEFT JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
      WHERE r.name = :repository`),
    insertManifest: p(`
      INSERT INTO manifest (
        repository_id,
        digest,
        media_type,
        artifact_type,
        annotations,
        subject,
        size,
        created_at,
        pushed_at
      ) VALUES (
        :repositoryId,
        :digest,
        :mediaType,
        :artifactType,
        :annotations,
        :subject,
        :size,
        :now,
        :now
      )
      RETURNING id`).pluck(),
    touchManifest: p('UPDATE manifest SET pushed_at = :now WHERE id = :manifestId'),
    insertPayload: p('INSERT INTO manifest_payload (manifest_id, payload) VALUES (:manifestId, :payload)'),
    insertManifestBlob: p('INSERT OR IGNORE INTO manifest_blob (manifest_id, digest) VALUES (:manifestId, :digest)'),
    insertManifestChild: p(`
      INSERT OR IGNORE INTO manifest_child (repository_id, parent_id, digest)
      VALUES (:repositoryId, :manifestId, :digest)`),
    // A parent in the same repository that lists the digest as a child.
    parentOf: p(`
      SELECT p.digest
      FROM manifest_child c
      JOIN manifest p ON p.id = c.parent_id
      WHERE c.repository_id = :repositoryId AND c.digest = :digest
      LIMIT 1`).pluck(),
    deleteManifest: p('DELETE FROM manifest WHERE id = :manifestId'),
    repositoryManifests: p('SELECT digest FROM manifest WHERE repository_id = :repositoryId ORDER BY digest').pluck(),
    referrers: p(`
      SELECT
        media_type,
        digest,
        size,
        artifact_type,
        annotations
      FROM manifest
      WHERE repository_id = :repositoryId
        AND subject = :digest
        AND (:artifactType IS NULL OR artifact_type = :artifactType)
      ORDER BY id`),
    // Manifests that no tag, no parent index and no present subject keep alive.
    untaggedManifests: p(`
      SELECT
        r.name AS repository,
        m.digest,
        m.created_at
      FROM manifest m
      JOIN repository r ON r.id = m.repository_id
      WHERE ${COLLECTABLE_MANIFEST}
      ORDER BY r.name, m.digest`),
    // The same rule for one manifest, checked again inside gc's delete.
    manifestCollectable: p(`SELECT 1 FROM manifest m WHERE m.id = :manifestId AND ${COLLECTABLE_MANIFEST}`).pluck(),

    // --- tags ---------------------------------------------------------------
    getTag: p(`
      SELECT
        m.media_type,
        m.digest,
        m.size
      FROM repository r
      JOIN tag t ON t.repository_id = r.id AND t.name = :tag
      JOIN manifest m ON m.id = t.manifest_id
      WHERE r.name = :repository`),
    currentTag: p(`
      SELECT
        m.id AS manifest_id,
        m.digest
      FROM tag t
      JOIN manifest m ON m.id = t.manifest_id
      WHERE t.repository_id = :repositoryId AND t.name = :tag`),
    upsertTag: p(`
      INSERT INTO tag (repository_id, name, manifest_id, created_at, updated_at)
      VALUES (:repositoryId, :tag, :manifestId, :now, :now)
      ON CONFLICT (repository_id, name) DO UPDATE SET
        manifest_id = excluded.manifest_id,
        updated_at = excluded.updated_at`),
    deleteTag: p('DELETE FROM tag WHERE repository_id = :repositoryId AND name = :tag'),
    insertTagHistory: p(`
      INSERT INTO tag_history (repository_id, tag, digest, tagged_at)
      VALUES (:repositoryId, :tag, :digest, :now)`),
    tagHistory: p(`
      SELECT
        digest,
        tagged_at
      FROM tag_history
      WHERE repository_id = :repositoryId AND tag = :tag
      ORDER BY id DESC`),
    allTags: p(`
      SELECT name
      FROM tag
      WHERE repository_id = (SELECT id FROM repository WHERE name = :repository)
        AND name > :last
      ORDER BY name
      LIMIT :limit`).pluck(),
    tagDescriptors: p(`
      SELECT
        t.name AS tag,
        m.media_type,
        m.digest,
        m.size
      FROM tag t
      JOIN manifest m ON m.id = t.manifest_id
      WHERE t.repository_id = (SELECT id FROM repository WHERE name = :repository)
        AND t.name > :last
      ORDER BY t.name
      LIMIT :limit`),
    lookupTags: p(`
      SELECT t.name
      FROM repository r
      JOIN manifest m ON m.repository_id = r.id AND m.digest = :digest
      JOIN tag t ON t.manifest_id = m.id
      WHERE r.name = :repository
      ORDER BY t.name`).pluck(),
    tagsOfManifest: p('SELECT name FROM tag WHERE manifest_id = :manifestId ORDER BY name').pluck(),
    tagsOfRepository: p(`
      SELECT
        t.name,
        m.digest
      FROM tag t
      JOIN manifest m ON m.id = t.manifest_id
      WHERE t.repository_id = :repositoryId
      ORDER BY t.name`),
    deleteTagsOfManifest: p('DELETE FROM tag WHERE manifest_id = :manifestId'),
    deleteTagsOfRepository: p('DELETE FROM tag WHERE repository_id = :repositoryId'),

    // --- blobs --------------------------------------------------------------
    blobSize: p('SELECT size FROM blob WHERE digest = :digest').pluck(),
    insertBlob: p('INSERT INTO blob (digest, size, created_at) VALUES (:digest, :size, :now)'),
    linkBlob: p(`
      INSERT INTO blob_link (repository_id, digest, linked_at)
      VALUES (:repositoryId, :digest, :now)
      ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = excluded.linked_at`),
    statBlob: p(`
      SELECT
        b.digest,
        b.size,
        b.created_at
      FROM repository r
      JOIN blob_link l ON l.repository_id = r.id AND l.digest = :digest
      JOIN blob b ON b.digest = l.digest
      WHERE r.name = :repository`),
    unlinkBlob: p('DELETE FROM blob_link WHERE repository_id = :repositoryId AND digest = :digest'),
    blobLinked: p('SELECT 1 FROM blob_link WHERE repository_id = :repositoryId AND digest = :digest').pluck(),
    blobReferenced: p('SELECT 1 FROM manifest_blob WHERE digest = :digest LIMIT 1').pluck(),
    // The same, by manifests of one repository only: what an unlink must not take from under them.
    blobReferencedIn: p(`
      SELECT 1
      FROM manifest_blob mb
      JOIN manifest m ON m.id = mb.manifest_id
      WHERE mb.digest = :digest AND m.repository_id = :repositoryId
      LIMIT 1`).pluck(),
    deleteBlob: p('DELETE FROM blob WHERE digest = :digest'),
    // Blobs no manifest references whose newest link (or upload) is older than :before.
    unreferencedBlobs: p(`
      SELECT
        b.digest,
        b.size,
        b.created_at
      FROM blob b
      WHERE ${COLLECTABLE_BLOB}
      ORDER BY b.digest`),
    blobCollectable: p(`SELECT 1 FROM blob b WHERE b.digest = :digest AND ${COLLECTABLE_BLOB}`).pluck(),

    // --- events -------------------------------------------------------------
    // published_at never goes below the newest event's, so time order is
    // commit order even when the clock steps back.
    insertEvent: p(`
      INSERT INTO event (
        id,
        published_at,
        actor,
        type,
        object_type,
        object_id,
        repository,
        tag,
        digest,
        previous_digest
      ) VALUES (
        :id,
        max(:now, coalesce((SELECT max(published_at) FROM event), 0)),
        :actor,
        :type,
        :objectType,
        :objectId,
        :repository,
        :tag,
        :digest,
        :previousDigest
      )
      RETURNING *`),
    eventsAfter: p(`
      SELECT *
      FROM event
      WHERE seq > :seq
      ORDER BY seq
      LIMIT 1000`),
    lastEventSeq: p('SELECT coalesce(max(seq), 0) FROM event').pluck(),
    // Changes whenever another connection commits: a cheap "anything new?".
    dataVersion: p('PRAGMA data_version').pluck(),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
