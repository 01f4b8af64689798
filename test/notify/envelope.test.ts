// The mapping from the store's events to distribution's envelope events:
// which are pushes, which deletes, which are not sent, and their targets.

import { describe, expect, it } from 'vitest';
import type { NotificationEvent } from 'regmeta';
import { toEnvelopeEvent } from '../../src/notify/envelope.js';

const source = { baseUrl: 'http://127.0.0.1:5000', instanceId: 'instance' };
const digest = `sha256:${'a'.repeat(64)}`;
const event = (fields: Partial<NotificationEvent> & Pick<NotificationEvent, 'type' | 'object'>): NotificationEvent => ({
  id: '0193e0a0-0000-7000-8000-000000000000',
  publishedAt: new Date(0),
  actor: 'alice',
  ...fields,
});

describe('toEnvelopeEvent', () => {
  it('sends a blob link delete with the blob URL, and a repository delete with the repository only', () => {
    const blob = toEnvelopeEvent(event({ type: 'DELETE', object: { type: 'BLOB', id: `acme/app@${digest}` }, repository: 'acme/app', digest }), source);
    expect(blob).toMatchObject({ action: 'delete', target: { repository: 'acme/app', digest, mediaType: 'application/octet-stream', url: `http://127.0.0.1:5000/v2/acme/app/blobs/${digest}` } });
    const repo = toEnvelopeEvent(event({ type: 'DELETE', object: { type: 'REPOSITORY', id: 'acme/app' }, repository: 'acme/app' }), source);
    expect(repo).toMatchObject({ action: 'delete', target: { repository: 'acme/app' }, actor: { name: 'alice' }, source: { addr: '127.0.0.1:5000', instanceID: 'instance' } });
    expect(repo!.target).toEqual({ repository: 'acme/app' });
  });

  it('skips CREATE REPOSITORY and the garbage collector\'s delete of a blob in no repository', () => {
    expect(toEnvelopeEvent(event({ type: 'CREATE', object: { type: 'REPOSITORY', id: 'acme/app' }, repository: 'acme/app' }), source)).toBeUndefined();
    expect(toEnvelopeEvent(event({ type: 'DELETE', object: { type: 'BLOB', id: digest }, digest, actor: 'GARBAGE_COLLECTOR' }), source)).toBeUndefined();
  });

  it('sends a tag move as a push with the tag, and an anonymous actor as {}', () => {
    const moved = toEnvelopeEvent(event({ type: 'UPDATE', object: { type: 'TAG', id: 'acme/app:v1' }, repository: 'acme/app', tag: 'v1', digest, actor: '', mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10 }), source);
    expect(moved).toMatchObject({ action: 'push', actor: {}, target: { tag: 'v1', digest, size: 10, length: 10, url: `http://127.0.0.1:5000/v2/acme/app/manifests/${digest}` } });
  });
});
