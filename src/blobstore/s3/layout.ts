// Where things are in the bucket, under the prefix: blobs at
// blobs/<algorithm>/<2 hex>/<hex>/data, exactly distribution's layout under
// its docker/registry/v2 root (so a prefix of docker/registry/v2 serves a
// distribution bucket's blobs in place), and everything in progress under
// uploads/: a session's objects under uploads/<id>/, a put's temporary and
// the writability probe beside them. Nothing else is written or listed
// (a distribution bucket's repositories/ is not ours).

import { isDigest } from '../../store/index.js';
import { BlobStoreError } from '../errors.js';

/** The keys of one bucket prefix. */
export class Layout {
  /** '' or the prefix with a trailing slash. */
  readonly root: string;

  constructor(prefix: string) {
    const trimmed = prefix.replace(/^\/+|\/+$/g, '');
    this.root = trimmed === '' ? '' : `${trimmed}/`;
  }

  get blobs(): string {
    return `${this.root}blobs/`;
  }

  get uploads(): string {
    return `${this.root}uploads/`;
  }

  /**
   * The key of blob `digest`.
   * @throws BlobStoreError DIGEST_INVALID for a digest that does not pass the
   * grammar: nothing from outside reaches the bucket unchecked.
   */
  blob(digest: string): string {
    if (!isDigest(digest)) throw new BlobStoreError('DIGEST_INVALID', 'invalid digest');
    const [algorithm, hex] = digest.split(':');
    return `${this.blobs}${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
  }

  /** The digest a key under blobs/ names, or undefined for anything else there. */
  digestOf(key: string): string | undefined {
    const match = /^([a-z0-9]+)\/([0-9a-f]{2})\/([0-9a-f]+)\/data$/.exec(key.slice(this.blobs.length));
    if (!key.startsWith(this.blobs) || match === null) return undefined;
    const digest = `${match[1]}:${match[3]}`;
    return isDigest(digest) && match[3].startsWith(match[2]) ? digest : undefined;
  }

  /** Where upload session `id`'s objects are (its id is the store's UUID, never a client's text). */
  session(id: string): string {
    return `${this.uploads}${id}/`;
  }

  /** The session's object once its multipart upload is complete. */
  sessionData(id: string): string {
    return `${this.session(id)}data`;
  }

  /** The session's state at committed size `size`. */
  sessionState(id: string, size: number): string {
    return `${this.session(id)}state-${size}`;
  }

  /** The session's bytes not yet in a part, at committed size `size`. */
  sessionTail(id: string, size: number): string {
    return `${this.session(id)}tail-${size}`;
  }

  /** The session id a key under uploads/ belongs to, or undefined for a key not in a session's folder. */
  sessionOf(key: string): string | undefined {
    const match = /^([0-9a-f-]{36})\//.exec(key.slice(this.uploads.length));
    return key.startsWith(this.uploads) && match !== null ? match[1] : undefined;
  }
}
