// The blob methods of the asynchronous face (asyncStore): those whose
// callback may return a promise, awaited under the digest's lock
// (locks.ts). The synchronous MetadataStore refuses such a callback.

import * as blobs from './blobs.js';
import { STORE_CHECKS, applyChecks } from '../checks.js';
import type { LockedAction } from '../contract.js';
import type { StoreContext } from './context.js';
import * as gc from './gc.js';
import type { Context } from '../types.js';

/** @internal linkBlob, whileBlobUnknown and collectBlob as Store's, on a MetadataStore's connection. */
export class AwaitingBlobs {
  readonly #cx: StoreContext;
  constructor(cx: StoreContext) {
    this.#cx = cx;
  }

  linkBlob(repo: string, blob: { digest: string; size: number }, ctx?: Context, options?: { place?: LockedAction }): Promise<void> {
    return blobs.linkBlobAwaiting(this.#cx, repo, blob, ctx, options);
  }

  whileBlobUnknown(digest: string, fn: LockedAction): Promise<boolean> {
    return blobs.whileBlobUnknownAwaiting(this.#cx, digest, fn);
  }

  collectBlob(digest: string, ctx?: Context, options?: { olderThan?: Date; removeFile?: LockedAction }): Promise<void> {
    return gc.collectBlobAwaiting(this.#cx, digest, ctx, options);
  }
}

const { linkBlob, whileBlobUnknown, collectBlob } = STORE_CHECKS;
applyChecks(AwaitingBlobs.prototype, { linkBlob, whileBlobUnknown, collectBlob }, 'reject');
