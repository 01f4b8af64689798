// What deleteRepository leaves in SQLite's own tables: nothing (the
// repository semantics, on every backend: test/store/contract/).

import { describe, expect, it } from 'vitest';
import { blobDesc, dump, ociIndex, ociManifest, tempStore, putBuilt } from '../fixtures.js';

describe('deleteRepository on SQLite', () => {
  it('leaves no row of the repository in any of its tables, the blob row aside', () => {
    const t = tempStore();
    try {
      const s = t.store;
      const layer = blobDesc('layer');
      s.linkBlob('acme/app', { digest: layer.digest, size: layer.size });
      const child = putBuilt(s, 'acme/app', ociManifest({ layers: [layer] }));
      const idx = putBuilt(s, 'acme/app', ociIndex([child.descriptor]));
      putBuilt(s, 'acme/app', ociManifest({ seed: 'sig', subject: child.descriptor, artifactType: 'x/sig' }));
      s.putTag('acme/app', 'v1', { digest: child.digest });
      s.putTag('acme/app', 'latest', { digest: idx.digest });
      s.deleteRepository('acme/app', { actor: 'admin' });
      const rows = dump(t.file);
      for (const table of ['repository', 'manifest', 'manifest_payload', 'tag', 'tag_history', 'blob_link', 'manifest_blob', 'manifest_child']) {
        expect(rows[table], table).toEqual([]);
      }
      expect(rows.blob).toHaveLength(1);
    } finally {
      t.cleanup();
    }
  });
});
