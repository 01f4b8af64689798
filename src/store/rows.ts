// The rows both backends read, and the one mapping from each to what the
// store returns: the tables are the same on SQLite and PostgreSQL, and so
// are their columns' names and meanings.

import type { Descriptor, Event, EventObjectType, EventType, ManifestInfo, NotificationEvent, NotificationStatus } from './types.js';
import type { BlobInfo, StoredManifest, TagHistoryEntry, UploadSession } from './types.js';
import { missedOf, type MissedEvents } from './maintenance.js';
import type { ManifestLinks, TagLink } from './types.js';

export interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  created_at: number;
  payload?: Buffer;
}

export interface ReferrerRow {
  media_type: string;
  digest: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

export interface TagRow {
  tag: string;
  media_type: string;
  digest: string;
  size: number;
}

export interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
}

export interface EventRow {
  seq: number;
  id: string;
  published_at: number;
  actor: string;
  type: EventType;
  object_type: EventObjectType;
  object_id: string;
  repository: string | null;
  tag: string | null;
  digest: string | null;
  previous_digest: string | null;
  count: number | string | null;
  reason: string | null;
}

/** An event row with the media type and size of the manifest or blob it names, when still stored. */
export interface TargetRow extends EventRow {
  target_media_type: string | null;
  target_size: number | null;
}

export interface CursorRow {
  endpoint: string;
  seq: number;
  published_at: number | null;
  event_id: string | null;
  created_at: number;
  delivered_at: number | null;
  failures: number;
  last_error: string | null;
  last_failure_at: number | null;
  backlog: number;
  /** The horizon and the gaps stepped over (absent from a store older than the horizon). */
  horizon?: number | null;
  missed?: number | null;
  missed_from?: number | null;
  missed_to?: number | null;
  missed_at?: number | null;
}

/** An upload_session row. */
export interface UploadRow {
  id: string;
  repository: string;
  client: string;
  size: number;
  started_at: number;
  updated_at: number;
}

/** The one mapping from a manifest row to a domain object. */
export function toManifest(repo: string, row: ManifestRow): ManifestInfo {
  const info: ManifestInfo = {
    repo,
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    createdAt: new Date(row.created_at),
  };
  if (row.payload) (info as StoredManifest).payload = row.payload;
  return info;
}

/** The one mapping from a referrer's row to its descriptor. */
export function toReferrer(row: ReferrerRow): Descriptor {
  const descriptor: Descriptor = { mediaType: row.media_type, digest: row.digest, size: row.size };
  if (row.artifact_type !== null) descriptor.artifactType = row.artifact_type;
  if (row.annotations !== null) descriptor.annotations = JSON.parse(row.annotations) as Record<string, string>;
  return descriptor;
}

/** The one mapping from a tag's row to the descriptor of its manifest. */
export function toDescriptor(row: Omit<TagRow, 'tag'>): Descriptor {
  return { mediaType: row.media_type, digest: row.digest, size: row.size };
}

/** The one mapping from a tag_history row to an entry. */
export function toHistoryEntry(row: { digest: string; tagged_at: number }): TagHistoryEntry {
  return { digest: row.digest, taggedAt: new Date(row.tagged_at) };
}

/** The one mapping from a blob row to a domain object. */
export function toBlob(row: BlobRow): BlobInfo {
  return { digest: row.digest, size: row.size, createdAt: new Date(row.created_at) };
}

/** The one mapping from an event row to an Event. */
export function toEvent(row: EventRow): Event {
  const event: Event = {
    id: row.id,
    publishedAt: new Date(row.published_at),
    actor: row.actor,
    type: row.type,
    object: { type: row.object_type, id: row.object_id },
  };
  if (row.repository !== null) event.repository = row.repository;
  if (row.tag !== null) event.tag = row.tag;
  if (row.digest !== null) event.digest = row.digest;
  if (row.previous_digest !== null) event.previousDigest = row.previous_digest;
  // A version-6 file read as it is has neither column: undefined, not null.
  if (row.count != null) event.count = Number(row.count);
  if (row.reason != null) event.reason = row.reason;
  return event;
}

/** The one mapping from an event row with its target's columns to what a webhook delivers. */
export function toNotificationEvent(row: TargetRow): NotificationEvent {
  const event: NotificationEvent = { ...toEvent(row), seq: row.seq };
  if (row.target_media_type !== null) event.mediaType = row.target_media_type;
  if (row.target_size !== null) event.size = row.target_size;
  return event;
}

const date = (ms: number | null) => (ms === null ? undefined : new Date(ms));

/** The one mapping from a cursor row (with its backlog) to its status. */
export function toNotificationStatus(row: CursorRow): NotificationStatus {
  return {
    endpoint: row.endpoint,
    eventId: row.event_id ?? undefined,
    publishedAt: date(row.published_at),
    createdAt: new Date(row.created_at),
    backlog: row.backlog,
    failures: row.failures,
    lastError: row.last_error ?? undefined,
    lastFailureAt: date(row.last_failure_at),
    lastSuccessAt: date(row.delivered_at),
    ...missedField(row),
  };
}

/** The status's `missed`, present only when the endpoint missed events. */
function missedField(row: CursorRow): { missed?: MissedEvents } {
  const missed = missedOf({
    seq: row.seq,
    horizon: row.horizon ?? null,
    missed: row.missed ?? null,
    missed_from: row.missed_from ?? null,
    missed_to: row.missed_to ?? null,
    missed_at: row.missed_at ?? null,
  });
  return missed === undefined ? {} : { missed };
}

/** The one mapping from a row to an UploadSession. */
export function toUploadSession(row: UploadRow): UploadSession {
  return {
    id: row.id,
    repo: row.repository,
    client: row.client,
    size: row.size,
    startedAt: new Date(row.started_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** A tag as repositoryLinks reads it. */
export interface TagLinkRow {
  tag: string;
  digest: string;
  updated_at: number;
  pulled_at: number | null;
}

export function toTagLink(row: TagLinkRow): TagLink {
  const link: TagLink = { tag: row.tag, digest: row.digest, updatedAt: new Date(row.updated_at) };
  if (row.pulled_at !== null) link.pulledAt = new Date(row.pulled_at);
  return link;
}

/** A manifest as repositoryLinks reads it, and a child an index of it lists. */
export interface ManifestLinksRow {
  digest: string;
  pushed_at: number;
  subject: string | null;
}
export interface ChildRow {
  parent: string;
  digest: string;
}

/** The manifests of a repository with the children each lists. */
export function toManifestLinks(rows: readonly ManifestLinksRow[], children: readonly ChildRow[]): ManifestLinks[] {
  const byDigest = new Map<string, ManifestLinks>();
  for (const row of rows) {
    const links: ManifestLinks = { digest: row.digest, pushedAt: new Date(row.pushed_at), children: [] };
    if (row.subject !== null) links.subject = row.subject;
    byDigest.set(row.digest, links);
  }
  for (const { parent, digest } of children) byDigest.get(parent)?.children.push(digest);
  return [...byDigest.values()];
}
