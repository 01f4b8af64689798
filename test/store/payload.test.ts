// pushedMediaType: the type a pushed manifest is stored as, from its
// Content-Type or, failing that, from what the payload names.

import { describe, expect, it } from 'vitest';
import { pushedMediaType } from 'regmeta';
import { MediaType, caught, dockerManifest, ociManifest } from './fixtures.js';

describe('pushedMediaType', () => {
  const oci = ociManifest().payload;
  const unnamed = ociManifest({ omitMediaType: true }).payload;

  it('takes a Content-Type that names a manifest type, whatever the payload says, parameters and case aside', () => {
    expect(pushedMediaType(MediaType.OciManifest, oci)).toBe(MediaType.OciManifest);
    expect(pushedMediaType(`${MediaType.OciIndex.toUpperCase()}; charset=utf-8`, oci)).toBe(MediaType.OciIndex);
    expect(pushedMediaType(MediaType.DockerManifest, Buffer.from('not even JSON'))).toBe(MediaType.DockerManifest);
  });

  it('falls back to the manifest type the payload names, for no Content-Type or a generic one', () => {
    expect(pushedMediaType(undefined, oci)).toBe(MediaType.OciManifest);
    expect(pushedMediaType('application/json', dockerManifest().payload)).toBe(MediaType.DockerManifest);
    expect(pushedMediaType('text/plain', oci)).toBe(MediaType.OciManifest);
  });

  it('refuses with MANIFEST_INVALID when neither names a manifest type', () => {
    for (const [type, payload] of [
      [undefined, unnamed],
      ['application/json', unnamed],
      ['text/plain', Buffer.from('not JSON')],
      [undefined, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example+json' }))],
      ['', Buffer.from('null')],
    ] as const) {
      expect(caught(() => pushedMediaType(type, payload)).code).toBe('MANIFEST_INVALID');
    }
  });
});
