// The mapping from the store's events to distribution's envelope events:
// which are pushes, pulls and deletes, which are not sent, and their targets.

import { describe, expect, it } from 'vitest';
import type { NotificationEvent } from 'regmeta';
import { toEnvelopeEvent } from '../../src/notify/envelope.js';

const source = { baseUrl: 'http://127.0.0.1:5000', instanceId: 'instance' };
const digest = `sha256:${'a'.repeat(64)}`;
const event = (fields: Partial<NotificationEvent> & Pick<NotificationEvent, 'type' | 'object'>): NotificationEvent => ({
  seq: 1,
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

  it('sends a PULL as a pull of the manifest, with its tag and the count of pulls it stands for', () => {
    const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10 };
    const byTag = toEnvelopeEvent(event({ type: 'PULL', object: { type: 'MANIFEST', id: `acme/app@${digest}` }, repository: 'acme/app', tag: 'v1', digest, actor: '', count: 7, ...manifest }), source);
    expect(byTag).toMatchObject({ action: 'pull', count: 7, actor: {}, target: { repository: 'acme/app', tag: 'v1', digest, ...manifest, url: `http://127.0.0.1:5000/v2/acme/app/manifests/${digest}` } });
    const byDigest = toEnvelopeEvent(event({ type: 'PULL', object: { type: 'MANIFEST', id: `acme/app@${digest}` }, repository: 'acme/app', digest, count: 1 }), source);
    expect(byDigest).toMatchObject({ action: 'pull', count: 1, target: { repository: 'acme/app', digest } });
    expect(byDigest!.target.tag).toBeUndefined();
    // Other actions carry no count.
    expect(toEnvelopeEvent(event({ type: 'CREATE', object: { type: 'MANIFEST', id: `acme/app@${digest}` }, repository: 'acme/app', digest }), source)).not.toHaveProperty('count');
  });
});
