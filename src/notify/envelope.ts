// regmeta's events as distribution's notification envelope
// (application/vnd.docker.distribution.events.v1+json), so that receivers
// written for distribution's webhooks read them unchanged.

import type { NotificationEvent } from '../store/index.js';

/** The media type of the body, distribution's. */
export const ENVELOPE_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** One event of the envelope, as distribution's notifications.Event marshals it. */
export interface EnvelopeEvent {
  /** The store's event id (a UUIDv7): the same on every delivery of the event, for receivers to de-duplicate by. */
  id: string;
  timestamp: string;
  action: 'push' | 'pull' | 'delete';
  /** A pull's only: the pulls the event stands for (regmeta writes one event per pulled manifest or tag per batch, not one per pull). */
  count?: number;
  target: {
    mediaType?: string;
    digest?: string;
    size?: number;
    /** distribution's deprecated duplicate of size, still read by older receivers. */
    length?: number;
    repository: string;
    url?: string;
    tag?: string;
  };
  actor: { name?: string };
  source: { addr: string; instanceID: string };
}

/** Where the events come from: the registry's address (host:port) and this process's id. */
export interface EnvelopeSource {
  /** The registry's base URL, for target.url (`<baseUrl>/v2/<repo>/manifests/<digest>`). */
  baseUrl: string;
  instanceId: string;
}

/**
 * The envelope event of a store event, or undefined for those distribution
 * has no notification for and that are skipped: CREATE REPOSITORY (the
 * first push says it) and a garbage collector's DELETE BLOB of a digest in
 * no repository. Pushes: CREATE MANIFEST, and CREATE/UPDATE TAG with the
 * tag; pulls: PULL (of a manifest, with its tag when by tag, and its
 * count); deletes: of a manifest, a tag, a blob link, a repository.
 */
export function toEnvelopeEvent(event: NotificationEvent, source: EnvelopeSource): EnvelopeEvent | undefined {
  const repository = event.repository;
  if (repository === undefined) return undefined;
  const kind = event.object.type;
  if (kind === 'REPOSITORY' && event.type !== 'DELETE') return undefined;
  const target: EnvelopeEvent['target'] = { repository };
  if (event.mediaType !== undefined) target.mediaType = event.mediaType;
  else if (kind === 'BLOB') target.mediaType = 'application/octet-stream';
  if (event.digest !== undefined) target.digest = event.digest;
  if (event.size !== undefined) {
    target.size = event.size;
    target.length = event.size;
  }
  if (event.digest !== undefined && kind !== 'REPOSITORY') {
    target.url = `${source.baseUrl}/v2/${repository}/${kind === 'BLOB' ? 'blobs' : 'manifests'}/${event.digest}`;
  }
  if (event.tag !== undefined) target.tag = event.tag;
  const pull = event.type === 'PULL';
  const envelope: EnvelopeEvent = {
    id: event.id,
    timestamp: event.publishedAt.toISOString(),
    action: pull ? 'pull' : event.type === 'DELETE' ? 'delete' : 'push',
    target,
    actor: event.actor === '' ? {} : { name: event.actor },
    source: { addr: new URL(source.baseUrl).host, instanceID: source.instanceId },
  };
  if (pull) envelope.count = event.count ?? 1;
  return envelope;
}
