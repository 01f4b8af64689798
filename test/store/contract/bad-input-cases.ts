// Bad input of every kind, method by method, for the contract suite's
// bad-input test: each case names one call with exactly one bad argument and
// the code it must reject with. The valid arguments (repo, tag, m, blob) are
// present in the store the test seeds.

import type { StoreErrorCode } from 'regmeta';
import type { Store } from 'regmeta';
import { MediaType, blobDigest, built, digestOf, ociManifest } from '../fixtures.js';

const MB = 1024 * 1024;
const hex64 = 'a'.repeat(64);

// Valid arguments, present in the seeded store, so that each case has exactly one bad one.
export const repo = 'acme/app';
export const tag = 'latest';
export const m = ociManifest();
/** A valid manifest that is not in the store. */
const other = ociManifest({ seed: 'other' });
export const blob = blobDigest('linked');

const badNames: Array<[string, unknown]> = [
  ['uppercase', 'Acme/App'],
  ['a leading slash', '/acme/app'],
  ['a trailing slash', 'acme/app/'],
  ['an empty component', 'acme//app'],
  ['..', '..'],
  ['a .. component', 'acme/../app'],
  ['a leading separator', '-acme/app'],
  ['three underscores', 'acme___app'],
  ['256 characters', 'a'.repeat(256)],
  ['1 MB', 'a'.repeat(MB)],
  ['the empty string', ''],
  ['a single quote (SQL)', "acme/app'; DROP TABLE tag; --"],
  ['a double quote', 'acme/"app"'],
  ['a NUL', 'acme/app\0'],
  ['a NUL inside', 'acme\0/app'],
  ['unicode', 'acme/äpp'],
  ['a fullwidth letter', 'acme/ａpp'],
  ['a space', 'acme/my app'],
  ['a colon', 'acme/app:latest'],
  ['a number', 42],
  ['null', null],
  ['undefined', undefined],
  ['an object', {}],
  ['an array', ['acme/app']],
];

const badTags: Array<[string, unknown]> = [
  ['129 characters', 'a'.repeat(129)],
  ['1 MB', 'a'.repeat(MB)],
  ['a leading .', '.hidden'],
  ['a leading -', '-dash'],
  ['a space', 'has space'],
  ['a NUL', 'v1\0'],
  ['the empty string', ''],
  ['a slash', 'v1/x'],
  ['a colon', 'v1:x'],
  ['a quote (SQL)', "v1'--"],
  ['unicode', 'tä'],
  ['a number', 42],
  ['null', null],
  ['an object', {}],
];

const badDigests: Array<[string, unknown]> = [
  ['uppercase hex', `sha256:${'A'.repeat(64)}`],
  ['an uppercase algorithm', `SHA256:${hex64}`],
  ['short hex', 'sha256:abc'],
  ['65 hex digits', `sha256:${hex64}a`],
  ['sha512 with 64 digits', `sha512:${hex64}`],
  ['sha1', `sha1:${'a'.repeat(40)}`],
  ['md5', `md5:${'a'.repeat(32)}`],
  ['no colon', hex64],
  ['no algorithm', `:${hex64}`],
  ["64 'g's", `sha256:${'g'.repeat(64)}`],
  ['a leading space', ` sha256:${hex64}`],
  ['a NUL', `sha256:${hex64}\0`],
  ['a quote (SQL)', `sha256:${hex64}'--`],
  ['1 MB', `sha256:${'a'.repeat(MB)}`],
  ['the empty string', ''],
  ['a number', 42],
  ['null', null],
  ['an object', {}],
];

type Call = (s: Store) => Promise<unknown>;
type Case = [label: string, code: StoreErrorCode, call: Call];

// The casts are the point: callers from plain JavaScript or JSON pass anything.
const any = (value: unknown) => value as string;

export const cases: Case[] = [];

for (const [label, v] of badNames) {
  const name = any(v);
  const byName: Array<[string, Call]> = [
    ['putManifest', (s) => s.putManifest(name, m.digest, m)],
    ['getManifest', (s) => s.getManifest(name, m.digest)],
    ['statManifest', (s) => s.statManifest(name, m.digest)],
    ['getManifestByReference', (s) => s.getManifestByReference(name, tag)],
    ['deleteManifest', (s) => s.deleteManifest(name, m.digest)],
    ['collectManifest', (s) => s.collectManifest(name, m.digest)],
    ['referrers', (s) => s.referrers(name, m.digest)],
    ['putTag', (s) => s.putTag(name, tag, { digest: m.digest })],
    ['getTag', (s) => s.getTag(name, tag)],
    ['deleteTag', (s) => s.deleteTag(name, tag)],
    ['allTags', (s) => s.allTags(name)],
    ['lookupTags', (s) => s.lookupTags(name, m.digest)],
    ['tagHistory', (s) => s.tagHistory(name, tag)],
    ['deleteRepository', (s) => s.deleteRepository(name)],
    ['recordPulls', (s) => s.recordPulls([{ repo: name, at: new Date() }])],
    ['namespaceUsage', (s) => s.namespaceUsage(name)],
    ['repositoryLinks', (s) => s.repositoryLinks(name)],
    ['retireTags', (s) => s.retireTags(name, [])],
    ['retireManifests', (s) => s.retireManifests(name, [], undefined, { olderThan: new Date() })],
    ['linkBlob', (s) => s.linkBlob(name, { digest: blob, size: 10 })],
    ['statBlob', (s) => s.statBlob(name, blob)],
    ['unlinkBlob', (s) => s.unlinkBlob(name, blob)],
    ['createEvent repository', (s) => s.createEvent({ actor: 'a', type: 'CREATE', object: { type: 'REPOSITORY', id: 'x' }, repository: name })],
    ['getEvents repository', (s) => s.getEvents({ repository: name })],
  ];
  for (const [method, call] of byName) {
    // Where the name is optional (an event's repository, a filter, the
    // catalog's `last`), undefined means "none" and is no bad input.
    if (v === undefined && /Event|catalog/.test(method)) continue;
    cases.push([`${method} with a name of ${label}`, 'NAME_INVALID', call]);
  }
  if (v !== undefined) cases.push([`catalog with a last of ${label}`, 'NAME_INVALID', (s) => s.catalog({ last: name })]);
}

// A prefix is any run of name characters, so only what no name could start with is refused.
for (const [label, v] of [
  ['uppercase', 'A'],
  ['a space', 'a '],
  ['a NUL', 'a\0'],
  ['a quote (SQL)', "a'--"],
  ['a percent (LIKE)', 'a%'],
  ['256 characters', 'a'.repeat(256)],
  ['a number', 42],
  ['null', null],
] as Array<[string, unknown]>) {
  cases.push([`catalog with a prefix of ${label}`, 'NAME_INVALID', (s) => s.catalog({ prefix: any(v) })]);
}

for (const [label, v] of badTags) {
  const t = any(v);
  const byTag: Array<[string, Call]> = [
    ['putTag', (s) => s.putTag(repo, t, { digest: m.digest })],
    ['getTag', (s) => s.getTag(repo, t)],
    ['getManifestByReference', (s) => s.getManifestByReference(repo, { tag: t })],
    ['deleteTag', (s) => s.deleteTag(repo, t)],
    ['tagHistory', (s) => s.tagHistory(repo, t)],
    ['allTags last', (s) => s.allTags(repo, { last: t })],
    ['putManifest tag', (s) => s.putManifest(repo, other.digest, other, undefined, { tag: t })],
    ['retireTags', (s) => s.retireTags(repo, [{ tag: t, digest: m.digest, updatedAt: new Date(), pushedAt: new Date() }])],
  ];
  for (const [method, call] of byTag) cases.push([`${method} with a tag of ${label}`, 'TAG_INVALID', call]);
}

for (const [label, v] of badDigests) {
  const d = any(v);
  const byDigest: Array<[string, Call]> = [
    ['putManifest', (s) => s.putManifest(repo, d, m)],
    ['getManifest', (s) => s.getManifest(repo, d)],
    ['statManifest', (s) => s.statManifest(repo, d)],
    ['getManifestByReference', (s) => s.getManifestByReference(repo, { digest: d })],
    ['deleteManifest', (s) => s.deleteManifest(repo, d)],
    ['collectManifest', (s) => s.collectManifest(repo, d)],
    ['referrers', (s) => s.referrers(repo, d)],
    ['putTag', (s) => s.putTag(repo, tag, { digest: d })],
    ['lookupTags (digest)', (s) => s.lookupTags(repo, d)],
    ['lookupTags (descriptor)', (s) => s.lookupTags(repo, { digest: d })],
    ['linkBlob', (s) => s.linkBlob(repo, { digest: d, size: 10 })],
    ['statBlob', (s) => s.statBlob(repo, d)],
    ['unlinkBlob', (s) => s.unlinkBlob(repo, d)],
    ['deleteBlob', (s) => s.deleteBlob(d)],
    ['collectBlob', (s) => s.collectBlob(d)],
    ['retireTags', (s) => s.retireTags(repo, [{ tag, digest: d, updatedAt: new Date(), pushedAt: new Date() }])],
    ['retireManifests', (s) => s.retireManifests(repo, [{ digest: d }], undefined, { olderThan: new Date() })],
  ];
  for (const [method, call] of byDigest) cases.push([`${method} with a digest of ${label}`, 'DIGEST_INVALID', call]);
}

// Payloads whose digest is right, so that only the content is wrong.
const badPayloads: Array<[string, string | Buffer]> = [
  ['not JSON', 'not json at all'],
  ['truncated JSON', '{"schemaVersion": 2, "config": '],
  ['JSON with a NUL byte outside a string', `{"schemaVersion":2,\0}`],
  ['a JSON array', '[]'],
  ['a JSON number', '2'],
  ['JSON null', 'null'],
  ['empty', ''],
  ['invalid UTF-8', Buffer.from([0xc3, 0x28, 0x7b, 0x7d])],
  ['schemaVersion 1', JSON.stringify({ schemaVersion: 1, mediaType: MediaType.OciManifest })],
  ['a manifest with no layers', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: blob, size: 1 } })],
  ['a manifest with a layer of negative size', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: blob, size: 1 }, layers: [{ mediaType: 'x', digest: blob, size: -1 }] })],
  ['a manifest whose annotations are not strings', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: blob, size: 1 }, layers: [], annotations: { a: 1 } })],
  ['a manifest with a malformed subject', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: blob, size: 1 }, layers: [], subject: { digest: 'nope' } })],
  ['an OCI index body', JSON.stringify({ schemaVersion: 2, manifests: [] })],
  // Valid manifests that Go clients cannot parse.
  ['a valid manifest behind a UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), m.payload])],
  ['a valid manifest with a field nested 20,000 levels deep', `${m.payload.toString().slice(0, -1)},"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`],
];
for (const [label, payload] of badPayloads) {
  const p = built(MediaType.OciManifest, payload);
  cases.push([`putManifest with a payload that is ${label}`, 'MANIFEST_INVALID', (s) => s.putManifest(repo, p.digest, p)]);
}
const wrongType = built(MediaType.OciIndex, m.payload);
cases.push(['putManifest of a manifest declared as an index', 'MANIFEST_INVALID', (s) => s.putManifest(repo, wrongType.digest, wrongType)]);
const unknownType = built('application/json', m.payload);
cases.push(['putManifest with an unsupported media type', 'MANIFEST_INVALID', (s) => s.putManifest(repo, unknownType.digest, unknownType)]);
const hugeType = built('x'.repeat(MB), m.payload);
cases.push(['putManifest with a 1 MB media type', 'MANIFEST_INVALID', (s) => s.putManifest(repo, hugeType.digest, hugeType)]);
const badManifests: Array<[string, unknown]> = [
  ['null', null],
  ['an empty object', {}],
  ['a string payload', { mediaType: MediaType.OciManifest, payload: m.payload.toString() }],
  ['no mediaType', { payload: m.payload }],
  ['a numeric mediaType', { mediaType: 7, payload: m.payload }],
];
for (const [label, manifest] of badManifests) {
  cases.push([`putManifest with a manifest that is ${label}`, 'MANIFEST_INVALID', (s) => s.putManifest(repo, m.digest, manifest as never)]);
}

// Digests that are well formed but not the payload's.
cases.push(['putManifest with the digest of other bytes', 'DIGEST_INVALID', (s) => s.putManifest(repo, other.digest, m)]);
cases.push(['putManifest with a sha512 of other bytes', 'DIGEST_INVALID', (s) => s.putManifest(repo, digestOf('x', 'sha512'), m)]);

// Sizes.
const huge = built(MediaType.OciManifest, `{"schemaVersion":2,"pad":"${'x'.repeat(4 * MB)}"}`);
cases.push(['putManifest above the 4 MiB default limit', 'SIZE_INVALID', (s) => s.putManifest(repo, huge.digest, huge)]);
for (const [label, size] of [['-1', -1], ['1.5', 1.5], ['NaN', Number.NaN], ['2^60', 2 ** 60], ['a string', '10'], ['null', null]] as const) {
  cases.push([`linkBlob with a size of ${label}`, 'SIZE_INVALID', (s) => s.linkBlob(repo, { digest: blobDigest('new'), size: size as number })]);
  if (size !== null) {
    cases.push([`putTag with a descriptor size of ${label}`, 'SIZE_INVALID', (s) => s.putTag(repo, 'new', { digest: m.digest, size: size as number })]);
  }
}
cases.push(['linkBlob of a known blob with another size', 'SIZE_INVALID', (s) => s.linkBlob('acme/new', { digest: blob, size: 11 })]);

// Pages.
for (const [label, n] of [['-1', -1], ['1.5', 1.5], ['NaN', Number.NaN], ['Infinity', Infinity], ['a string', '3']] as const) {
  cases.push([`allTags with n ${label}`, 'PAGINATION_NUMBER_INVALID', (s) => s.allTags(repo, { n: n as number })]);
  cases.push([`catalog with n ${label}`, 'PAGINATION_NUMBER_INVALID', (s) => s.catalog({ n: n as number })]);
  cases.push([`getEvents with perPage ${label}`, 'PAGINATION_NUMBER_INVALID', (s) => s.getEvents({ perPage: n as number })]);
}
for (const [label, page] of [['garbage', '%%%'], ['1 MB', 'A'.repeat(MB)], ['a forged huge number', Buffer.from('9'.repeat(40) + '.1').toString('base64url')]] as const) {
  cases.push([`getEvents with a page token of ${label}`, 'PAGINATION_NUMBER_INVALID', (s) => s.getEvents({ page })]);
}

// Events and actors.
const event = { actor: 'a', type: 'CREATE', object: { type: 'TAG', id: 'acme/app:x' } };
const badEvents: Array<[string, unknown]> = [
  ['null', null],
  ['a lowercase type', { ...event, type: 'create' }],
  ['an unknown object type', { ...event, object: { type: 'USER', id: 'x' } }],
  ['an object without id', { ...event, object: { type: 'TAG' } }],
  ['a numeric object id', { ...event, object: { type: 'TAG', id: 42 } }],
  ['a 1 MB object id', { ...event, object: { type: 'TAG', id: 'x'.repeat(MB) } }],
  ['a 1 MB actor', { ...event, actor: 'x'.repeat(MB) }],
  ['a NUL in the actor', { ...event, actor: 'a\0' }],
];
for (const [label, e] of badEvents) {
  cases.push([`createEvent with ${label}`, 'EVENT_INVALID', (s) => s.createEvent(e as never)]);
}
// An event's tag, digest and repository follow the one grammar.
cases.push(['createEvent with a NUL in the tag', 'TAG_INVALID', (s) => s.createEvent({ ...event, tag: 'x\0' } as never)]);
cases.push(['createEvent with a numeric digest', 'DIGEST_INVALID', (s) => s.createEvent({ ...event, digest: 42 } as never)]);
cases.push(['createEvent with an uppercase previousDigest', 'DIGEST_INVALID', (s) =>
  s.createEvent({ ...event, previousDigest: `sha256:${'A'.repeat(64)}` } as never)]);
for (const [label, actor] of [['a NUL', 'al\0ice'], ['1 MB', 'x'.repeat(MB)], ['a number', 42]] as const) {
  const ctx = { actor: actor as string };
  cases.push([`putManifest with an actor of ${label}`, 'EVENT_INVALID', (s) => s.putManifest('acme/new', other.digest, other, ctx)]);
  cases.push([`putTag with an actor of ${label}`, 'EVENT_INVALID', (s) => s.putTag(repo, 'new', { digest: m.digest }, ctx)]);
  cases.push([`deleteTag with an actor of ${label}`, 'EVENT_INVALID', (s) => s.deleteTag(repo, tag, ctx)]);
  cases.push([`deleteManifest with an actor of ${label}`, 'EVENT_INVALID', (s) => s.deleteManifest(repo, m.digest, ctx)]);
  cases.push([`deleteRepository with an actor of ${label}`, 'EVENT_INVALID', (s) => s.deleteRepository(repo, ctx)]);
  cases.push([`linkBlob with an actor of ${label}`, 'EVENT_INVALID', (s) => s.linkBlob('acme/new', { digest: blob, size: 10 }, ctx)]);
  cases.push([`deleteBlob with an actor of ${label}`, 'EVENT_INVALID', (s) => s.deleteBlob(blobDigest('unreferenced'), ctx)]);
  cases.push([`collectBlob with an actor of ${label}`, 'EVENT_INVALID', (s) => s.collectBlob(blobDigest('unreferenced'), ctx)]);
  cases.push([`getEvents with an actor filter of ${label}`, 'EVENT_INVALID', (s) => s.getEvents({ actor: actor as string })]);
}
cases.push(['getEvents with an unknown type filter', 'EVENT_INVALID', (s) => s.getEvents({ type: 'MOVE' as never })]);
cases.push(['getEvents with a string date', 'EVENT_INVALID', (s) => s.getEvents({ publishedAfter: '2024-01-01' as never })]);
cases.push(['getEvents with no query', 'EVENT_INVALID', (s) => s.getEvents(null as never)]);
cases.push(['untaggedManifests with an invalid Date', 'ARGUMENT_INVALID', (s) => s.untaggedManifests({ olderThan: new Date(Number.NaN) })]);
cases.push(['unreferencedBlobs with a number for a Date', 'ARGUMENT_INVALID', (s) => s.unreferencedBlobs({ olderThan: 5 as never })]);
cases.push(['collectManifest with an invalid Date', 'ARGUMENT_INVALID', (s) => s.collectManifest(repo, m.digest, {}, { olderThan: new Date(Number.NaN) })]);
cases.push(['retireTags with an invalid Date', 'ARGUMENT_INVALID', (s) => s.retireTags(repo, [{ tag, digest: m.digest, updatedAt: new Date(Number.NaN), pushedAt: new Date() }])]);
cases.push(['retireManifests without olderThan', 'ARGUMENT_INVALID', (s) => s.retireManifests(repo, [], undefined, {} as never)]);
cases.push(['collectBlob with a number for a Date', 'ARGUMENT_INVALID', (s) => s.collectBlob(blobDigest('unreferenced'), {}, { olderThan: 5 as never })]);
