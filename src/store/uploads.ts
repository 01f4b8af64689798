// The rules of upload sessions, the same on every backend: what a session id
// is, what the fields of a claim must be, and the errors every backend gives.

import { StoreError } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** BLOB_UPLOAD_UNKNOWN: what every backend says of a session it does not have for that repository. */
export function unknownUpload(): StoreError {
  return new StoreError('BLOB_UPLOAD_UNKNOWN', 'unknown upload session');
}

/** Whether `id` looks like a session id the store issues (a UUID). */
export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && UUID.test(id);
}

/** A session id as the store issues them; anything else is a session no one has. @throws StoreError BLOB_UPLOAD_UNKNOWN. */
export function checkSessionId(id: unknown): void {
  if (!isSessionId(id)) throw unknownUpload();
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is a string of 0 (1 for an owner) to 255 characters. */
export function checkUploadText(value: unknown, field: 'client' | 'owner'): void {
  const min = field === 'owner' ? 1 : 0;
  if (typeof value === 'string' && value.length >= min && value.length <= 255 && !value.includes('\0')) return;
  throw new StoreError('ARGUMENT_INVALID', `${field} must be a string of ${min} to 255 characters`);
}

/** @throws StoreError ARGUMENT_INVALID unless `value` is a safe integer ≥ `min`. */
export function checkCount(value: unknown, field: string, min = 0): void {
  if (Number.isSafeInteger(value) && (value as number) >= min) return;
  throw new StoreError('ARGUMENT_INVALID', `${field} must be an integer ≥ ${min}`);
}

/** The arguments of claim and renew. @throws StoreError BLOB_UPLOAD_UNKNOWN, ARGUMENT_INVALID. */
export function checkClaim(id: string, owner: string, leaseMs: number): void {
  checkSessionId(id);
  checkUploadText(owner, 'owner');
  checkCount(leaseMs, 'leaseMs', 1);
}

/** @throws StoreError ARGUMENT_INVALID unless `idleBefore` is a valid Date. */
export function checkIdleBefore(idleBefore: Date): void {
  if (!(idleBefore instanceof Date) || Number.isNaN(idleBefore.getTime())) throw new StoreError('ARGUMENT_INVALID', 'idleBefore must be a valid Date');
}

/** How many idle sessions one call of idle() lists by default. */
export const DEFAULT_IDLE_LIMIT = 100;

/** TOOMANYREQUESTS for a client holding `held` sessions, the most it may. */
export function tooManyUploads(held: number, max: number): StoreError {
  return new StoreError('TOOMANYREQUESTS', `${held} upload sessions are open from this address, the most it may hold: finish or cancel some`, {
    held,
    max,
  });
}
