// The blob store's session table on the metadata database: what lets a
// chunked upload's requests land on any replica, and a restarted server
// resume them. The store's errors become the blob store's, so that the blob
// store sees one family whatever keeps its sessions.

import { BlobStoreError, tooManySessions, type SessionTable } from '../blobstore/index.js';
import { StoreError, type Store } from '../store/index.js';

/** `store`'s upload sessions as a blob store's SessionTable. */
export function storeSessions(store: Store): SessionTable {
  const sessions = store.uploads;
  return {
    // A store's UploadSession is a SessionRecord as it is.
    open: (repo, client, max) => translated(sessions.open(repo, client, max)),
    get: (repo, id) => translated(sessions.get(repo, id)),
    claim: (repo, id, owner, leaseMs) => translated(sessions.claim(repo, id, owner, leaseMs)),
    renew: (id, owner, leaseMs) => translated(sessions.renew(id, owner, leaseMs)),
    commit: (id, owner, size) => translated(sessions.commit(id, owner, size)),
    release: (id, owner) => translated(sessions.release(id, owner)),
    end: (repo, id) => translated(sessions.end(repo, id)),
    idle: (idleBefore, limit) => translated(sessions.idle(idleBefore, limit)),
    expire: (id, idleBefore) => translated(sessions.expire(id, idleBefore)),
    has: (id) => translated(sessions.has(id)),
    count: () => translated(sessions.count()),
  };
}

/** The store's codes for a session as the blob store's; every other error as it is. */
async function translated<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof StoreError && error.code === 'TOOMANYREQUESTS') {
      throw tooManySessions((error.detail as { held?: number } | undefined)?.held ?? 0);
    }
    if (error instanceof StoreError && error.code === 'BLOB_UPLOAD_UNKNOWN') {
      throw new BlobStoreError('BLOB_UPLOAD_UNKNOWN', error.message, { cause: error });
    }
    throw error;
  }
}
