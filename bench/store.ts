// The store benchmark: each operation through the
// store against the same SQL run directly with better-sqlite3 on an identical
// database file, at 1k, 100k and 1M tags in one repository (BENCH_SCALES, a
// comma-separated list, picks others).
//
// How it measures, and why:
// - Both files are one populated file and its copy: same schema (schema.sql),
//   same rows, same page layout. Both connections get the store's pragmas with
//   synchronous=NORMAL (the store opens with durability 'normal'), so fsync
//   noise does not drown what the store itself adds.
// - The direct side runs the store's own prepared statements (statements.ts;
//   the getEvents query as EventQueries builds it), in the order store.ts runs
//   them, each write in one IMMEDIATE transaction. The ratio is then what the
//   store adds: validation, mapping, error translation. Direct putManifest
//   hashes the payload (a registry must verify the digest) and JSON.parses it
//   for the blob digests it records, but validates nothing else.
// - Every round runs every operation as four batches (store and direct, at
//   both scales) in a rotating order, so machine noise hits both sides and
//   both scales alike; a figure is the median of the rounds' per-op means.
// - Time is the process's CPU time (user+system) unless BENCH_CLOCK=wall:
//   on a machine shared with other work, wall time mostly measures how long
//   the process waited for a core. With synchronous=NORMAL a commit does no
//   fsync, so little real work waits off-CPU.
// - Writes that add rows are undone in the same round (putTag new then
//   deleteTag, putManifest then deleteManifest), so the tag count stays at the
//   scale being measured.

import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MediaType, openStore, type MetadataStore } from 'regmeta';
import { eventId } from '../src/store/events.js';
import { prepareStatements, type Statements } from '../src/store/sqlite/statements.js';
import {
  formatNumber,
  formatRatio,
  markdownTable,
  median,
  progress,
  progressDone,
  randomInt,
  seededRandom,
  timePerOp,
  clockFromEnv,
} from './lib.js';

// 1M tags: the scale a big registry's busiest repository reaches. Populated
// with the store's own statements in one transaction, it takes about a minute.
const SCALES = (process.env.BENCH_SCALES ?? '1000,100000,1000000').split(',').map(Number);
const BATCH = 200;
const ROUNDS = 21; // measured rounds, after one warm-up round
const REPO = 'bench/app';
const ACTOR = 'bench';
const PAGE = 100;
/** Tags per manifest, the same at every scale, so lookupTags returns as many names at 100k as at 1k. */
const TAGS_PER_MANIFEST = 4;
// Manifests with a role: the two that moved tags alternate between, and the one new tags point at.
const MOVE_A = 0;
const MOVE_B = 1;
const NEW_TARGET = 2;
const FIRST_PLAIN = 3;
const AIM = { read: 1.3, write: 1.5, scaling: 1.5 };
const CLOCK = clockFromEnv();

const schema = readFileSync(new URL('../schema.sql', import.meta.url), 'utf8');

// --- data -------------------------------------------------------------------

interface Built {
  digest: string;
  payload: Buffer;
}

const fakeDigest = (seed: string) => `sha256:${createHash('sha256').update(seed).digest('hex')}`;

/** An OCI image manifest (config and three layers) unique to `seed`, about 800 bytes. */
function imageManifest(seed: string): Built {
  const blob = (mediaType: string, name: string, size: number) => ({ mediaType, digest: fakeDigest(`${seed}/${name}`), size });
  const payload = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: blob('application/vnd.oci.image.config.v1+json', 'config', 1469),
      layers: [
        blob('application/vnd.oci.image.layer.v1.tar+gzip', 'base', 3_623_807),
        blob('application/vnd.oci.image.layer.v1.tar+gzip', 'deps', 21_554_112),
        blob('application/vnd.oci.image.layer.v1.tar+gzip', 'app', 732_001),
      ],
    }),
  );
  return { digest: `sha256:${createHash('sha256').update(payload).digest('hex')}`, payload };
}

const tagName = (i: number) => `t${String(i).padStart(6, '0')}`;

/** What a scale's database holds, to draw arguments from. */
interface Population {
  tags: number;
  manifests: Built[];
  /** Tags that putTag move moves, one per op of a batch; they start on MOVE_A. */
  moveTags: string[];
  /** Middle of the event log's time range, where the getEvents page starts. */
  midEventTime: number;
}

/** Writes `tags` tags (and their manifests, history and events) into a new store file, in one transaction. */
function populate(file: string, tags: number): Population {
  const manifestCount = FIRST_PLAIN + Math.ceil((tags - BATCH) / TAGS_PER_MANIFEST);
  const manifests = Array.from({ length: manifestCount }, (_, i) => imageManifest(`${tags}/m${i}`));
  const moveIndex = new Set(Array.from({ length: BATCH }, (_, k) => Math.floor((k * tags) / BATCH)));
  const db = openDirect(file);
  db.exec(schema);
  const sql = prepareStatements(db);
  const start = Date.now() - 30 * 24 * 3600 * 1000;
  let now = start;
  const event = (type: string, objectType: string, objectId: string, fields: { tag?: string; digest?: string }) =>
    sql.events.insertEvent.run({
      id: eventId(now),
      now: now++,
      actor: ACTOR,
      type,
      objectType,
      objectId,
      repository: REPO,
      tag: fields.tag ?? null,
      digest: fields.digest ?? null,
      previousDigest: null,
    });
  const moveTags: string[] = [];
  db.transaction(() => {
    const repositoryId = sql.repositories.insertRepository.get({ repository: REPO, now });
    event('CREATE', 'REPOSITORY', REPO, {});
    const ids = manifests.map(({ digest, payload }) => {
      const manifestId = sql.manifests.insertManifest.get({
        repositoryId,
        digest,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/vnd.oci.image.config.v1+json',
        annotations: null,
        subject: null,
        size: payload.byteLength,
        now,
      });
      sql.manifests.insertPayload.run({ manifestId, payload });
      const json = JSON.parse(payload.toString()) as { config: { digest: string }; layers: { digest: string }[] };
      for (const blob of [json.config, ...json.layers]) sql.manifests.insertManifestBlob.run({ manifestId, digest: blob.digest });
      event('CREATE', 'MANIFEST', `${REPO}@${digest}`, { digest });
      return manifestId;
    });
    let plain = 0;
    for (let i = 0; i < tags; i++) {
      const tag = tagName(i);
      let target: number;
      if (moveIndex.has(i)) {
        target = MOVE_A;
        moveTags.push(tag);
      } else {
        target = FIRST_PLAIN + (plain++ % (manifestCount - FIRST_PLAIN));
      }
      const digest = manifests[target].digest;
      sql.tags.upsertTag.run({ repositoryId, tag, manifestId: ids[target], now });
      sql.tags.insertTagHistory.run({ repositoryId, tag, digest, now });
      event('CREATE', 'TAG', `${REPO}:${tag}`, { tag, digest });
    }
  }).immediate();
  db.close(); // checkpoints the WAL into the file, so a plain copy is the whole database
  return { tags, manifests, moveTags, midEventTime: Math.floor((start + now) / 2) };
}

// --- the two sides ------------------------------------------------------------

/** The store's connection settings (connection.ts) with durability 'normal'. */
function openDirect(file: string): Database.Database {
  const db = new Database(file, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('temp_store = MEMORY');
  db.pragma('mmap_size = 268435456'); // as src/store/sqlite/connection.ts
  return db;
}

/** The operations, as a benchmark calls them on either side. */
interface Side {
  readonly name: 'store' | 'direct';
  putManifest(m: Built): void;
  putTag(tag: string, digest: string): void;
  getTag(tag: string): { digest: string };
  getManifest(digest: string): { payload: Buffer };
  lookupTags(digest: string): string[];
  allTags(last: string): string[];
  deleteTag(tag: string): void;
  deleteManifest(digest: string): void;
  /** Fixes the page getEventsPage reads: the second page of the user's events before `time`. */
  startEventsAt(time: number): void;
  getEventsPage(): { id: string }[];
  close(): void;
}

class StoreSide implements Side {
  readonly name = 'store';
  readonly #store: MetadataStore;
  readonly #ctx = { actor: ACTOR };
  #page: string | undefined;
  constructor(file: string) {
    this.#store = openStore(file, { durability: 'normal' });
  }
  putManifest(m: Built) {
    this.#store.putManifest(REPO, m.digest, { mediaType: MediaType.OciManifest, payload: m.payload }, this.#ctx);
  }
  putTag(tag: string, digest: string) {
    this.#store.putTag(REPO, tag, { digest }, this.#ctx);
  }
  getTag(tag: string) {
    return this.#store.getTag(REPO, tag);
  }
  getManifest(digest: string) {
    return this.#store.getManifest(REPO, digest);
  }
  lookupTags(digest: string) {
    return this.#store.lookupTags(REPO, digest);
  }
  allTags(last: string) {
    return this.#store.allTags(REPO, { n: PAGE, last });
  }
  deleteTag(tag: string) {
    this.#store.deleteTag(REPO, tag, this.#ctx);
  }
  deleteManifest(digest: string) {
    this.#store.deleteManifest(REPO, digest, this.#ctx);
  }
  startEventsAt(time: number) {
    this.#page = this.#store.getEvents({ actor: ACTOR, publishedBefore: new Date(time), perPage: PAGE }).next;
    if (this.#page === undefined) throw new Error('the event log is too short for a second page');
  }
  getEventsPage() {
    return this.#store.getEvents({ actor: ACTOR, page: this.#page, perPage: PAGE }).events;
  }
  close() {
    this.#store.close();
  }
}

interface EventRow {
  id: string;
  published_at: number;
  seq: number;
}

/** The store's statements and transactions, without the store. */
class DirectSide implements Side {
  readonly name = 'direct';
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #tx: Database.Transaction<(fn: () => void) => void>;
  // The statements EventQueries builds for a non-admin's own events: the
  // first page before a time, and a page after a cursor.
  readonly #eventsBefore: Database.Statement;
  readonly #eventsAfterCursor: Database.Statement;
  #cursor = { at: 0, seq: 0 };

  constructor(file: string) {
    this.#db = openDirect(file);
    this.#sql = prepareStatements(this.#db);
    this.#tx = this.#db.transaction((fn: () => void) => fn());
    this.#eventsBefore = this.#db.prepare(`
      SELECT * FROM event WHERE actor = :actor AND published_at < :before
      ORDER BY published_at DESC, seq DESC LIMIT :limit`);
    this.#eventsAfterCursor = this.#db.prepare(`
      SELECT * FROM event
      WHERE actor = :actor AND (published_at < :cursorAt OR (published_at = :cursorAt AND seq < :cursorSeq))
      ORDER BY published_at DESC, seq DESC LIMIT :limit`);
  }

  #event(type: string, objectType: string, objectId: string, tag: string | null, digest: string, previousDigest: string | null) {
    const now = Date.now();
    this.#sql.events.insertEvent.run({
      id: eventId(now),
      now,
      actor: ACTOR,
      type,
      objectType,
      objectId,
      repository: REPO,
      tag,
      digest,
      previousDigest,
    });
  }

  #resolve(digest: string) {
    const row = this.#sql.repositories.resolve.get({ repository: REPO, digest }) as { repositoryId: number; manifestId: number | null } | undefined;
    if (row?.manifestId == null) throw new Error(`not found: ${digest}`);
    return row as { repositoryId: number; manifestId: number };
  }

  putManifest({ digest, payload }: Built) {
    if (`sha256:${createHash('sha256').update(payload).digest('hex')}` !== digest) throw new Error('digest mismatch');
    const json = JSON.parse(payload.toString()) as { config: { mediaType: string; digest: string }; layers: { digest: string }[] };
    this.#tx.immediate(() => {
      const now = Date.now();
      const repositoryId = this.#sql.repositories.repositoryId.get({ repository: REPO });
      if (this.#sql.manifests.manifestId.get({ repositoryId, digest }) !== undefined) return;
      const manifestId = this.#sql.manifests.insertManifest.get({
        repositoryId,
        digest,
        mediaType: MediaType.OciManifest,
        artifactType: json.config.mediaType,
        annotations: null,
        subject: null,
        size: payload.byteLength,
        now,
      });
      this.#sql.manifests.insertPayload.run({ manifestId, payload });
      this.#sql.manifests.insertManifestBlob.run({ manifestId, digest: json.config.digest });
      for (const layer of json.layers) this.#sql.manifests.insertManifestBlob.run({ manifestId, digest: layer.digest });
      this.#event('CREATE', 'MANIFEST', `${REPO}@${digest}`, null, digest, null);
    });
  }

  putTag(tag: string, digest: string) {
    this.#tx.immediate(() => {
      const { repositoryId, manifestId } = this.#resolve(digest);
      const current = this.#sql.tags.currentTag.get({ repositoryId, tag }) as { manifest_id: number; digest: string } | undefined;
      if (current?.manifest_id === manifestId) return;
      const now = Date.now();
      this.#sql.tags.upsertTag.run({ repositoryId, tag, manifestId, now });
      this.#sql.tags.insertTagHistory.run({ repositoryId, tag, digest, now });
      this.#event(current ? 'UPDATE' : 'CREATE', 'TAG', `${REPO}:${tag}`, tag, digest, current?.digest ?? null);
    });
  }

  getTag(tag: string) {
    return this.#sql.tags.getTag.get({ repository: REPO, tag }) as { digest: string };
  }

  getManifest(digest: string) {
    return this.#sql.manifests.manifestWithPayload.get({ repository: REPO, digest }) as { payload: Buffer };
  }

  lookupTags(digest: string) {
    return this.#sql.tags.lookupTags.all({ repository: REPO, digest }) as string[];
  }

  allTags(last: string) {
    return this.#sql.tags.allTags.all({ repository: REPO, last, limit: PAGE }) as string[];
  }

  deleteTag(tag: string) {
    this.#tx.immediate(() => {
      const repositoryId = this.#sql.repositories.repositoryId.get({ repository: REPO });
      const current = this.#sql.tags.currentTag.get({ repositoryId, tag }) as { digest: string } | undefined;
      if (current === undefined) throw new Error(`not found: ${tag}`);
      this.#sql.tags.deleteTag.run({ repositoryId, tag });
      this.#event('DELETE', 'TAG', `${REPO}:${tag}`, tag, current.digest, null);
    });
  }

  deleteManifest(digest: string) {
    this.#tx.immediate(() => {
      const { repositoryId, manifestId } = this.#resolve(digest);
      if (this.#sql.manifests.parentOf.get({ repositoryId, digest }) !== undefined) throw new Error('referenced');
      const tags = this.#sql.tags.tagsOfManifest.all({ manifestId }) as string[];
      this.#sql.tags.deleteTagsOfManifest.run({ manifestId });
      for (const tag of tags) this.#event('DELETE', 'TAG', `${REPO}:${tag}`, tag, digest, null);
      this.#sql.manifests.deleteManifest.run({ manifestId });
      this.#event('DELETE', 'MANIFEST', `${REPO}@${digest}`, null, digest, null);
    });
  }

  startEventsAt(time: number) {
    const rows = this.#eventsBefore.all({ actor: ACTOR, before: time, limit: PAGE + 1 }) as EventRow[];
    if (rows.length <= PAGE) throw new Error('the event log is too short for a second page');
    this.#cursor = { at: rows[PAGE - 1].published_at, seq: rows[PAGE - 1].seq };
  }

  getEventsPage() {
    const rows = this.#eventsAfterCursor.all({
      actor: ACTOR,
      cursorAt: this.#cursor.at,
      cursorSeq: this.#cursor.seq,
      limit: PAGE + 1,
    }) as EventRow[];
    if (rows.length > PAGE) rows.pop();
    return rows;
  }

  close() {
    this.#db.close();
  }
}

// --- operations -----------------------------------------------------------------

/** One round's arguments, the same for both sides (their files start identical). */
interface RoundArgs {
  newManifests: Built[];
  newTags: string[];
  moveTarget: string;
  tags: string[];
  digests: string[];
  lasts: string[];
}

function roundArgs(pop: Population, round: number, random: () => number): RoundArgs {
  const plain = () => pop.manifests[FIRST_PLAIN + randomInt(random, pop.manifests.length - FIRST_PLAIN)].digest;
  const times = <T>(f: (i: number) => T) => Array.from({ length: BATCH }, (_, i) => f(i));
  return {
    newManifests: times((i) => imageManifest(`${pop.tags}/r${round}/${i}`)),
    newTags: times((i) => `new-${round}-${i}`),
    // The move tags start on MOVE_A, so the warm-up round (0) moves them to MOVE_B, the next back, and so on.
    moveTarget: pop.manifests[round % 2 === 0 ? MOVE_B : MOVE_A].digest,
    tags: times(() => tagName(randomInt(random, pop.tags))),
    digests: times(plain),
    lasts: times(() => tagName(Math.floor(pop.tags / 4) + randomInt(random, Math.floor(pop.tags / 2)))),
  };
}

interface Op {
  name: string;
  kind: 'read' | 'write';
  batch(side: Side, args: RoundArgs, pop: Population): () => void;
}

const OPS: Op[] = [
  { name: 'putManifest', kind: 'write', batch: (s, a) => () => a.newManifests.forEach((m) => s.putManifest(m)) },
  { name: 'putTag new', kind: 'write', batch: (s, a, p) => () => a.newTags.forEach((t) => s.putTag(t, p.manifests[NEW_TARGET].digest)) },
  { name: 'putTag move', kind: 'write', batch: (s, a, p) => () => p.moveTags.forEach((t) => s.putTag(t, a.moveTarget)) },
  { name: 'getTag', kind: 'read', batch: (s, a) => () => a.tags.forEach((t) => s.getTag(t)) },
  { name: 'getManifest', kind: 'read', batch: (s, a) => () => a.digests.forEach((d) => s.getManifest(d)) },
  { name: 'lookupTags', kind: 'read', batch: (s, a) => () => a.digests.forEach((d) => s.lookupTags(d)) },
  { name: `allTags page (n=${PAGE})`, kind: 'read', batch: (s, a) => () => a.lasts.forEach((l) => s.allTags(l)) },
  { name: 'deleteTag', kind: 'write', batch: (s, a) => () => a.newTags.forEach((t) => s.deleteTag(t)) },
  { name: 'deleteManifest', kind: 'write', batch: (s, a) => () => a.newManifests.forEach((m) => s.deleteManifest(m.digest)) },
  {
    name: `getEvents page (perPage ${PAGE})`,
    kind: 'read',
    batch: (s) => () => {
      for (let i = 0; i < BATCH; i++) s.getEventsPage();
    },
  },
];

/** Fails loudly when the two sides disagree, so the ratio compares like with like. */
function checkSame(store: Side, direct: Side, pop: Population): void {
  const digest = pop.manifests[FIRST_PLAIN].digest;
  const tag = pop.moveTags[1];
  const pairs: [string, unknown, unknown][] = [
    ['getTag', store.getTag(tag).digest, direct.getTag(tag).digest],
    ['getManifest', store.getManifest(digest).payload.toString('hex'), direct.getManifest(digest).payload.toString('hex')],
    ['lookupTags', store.lookupTags(digest), direct.lookupTags(digest)],
    ['allTags', store.allTags(tagName(pop.tags >> 1)), direct.allTags(tagName(pop.tags >> 1))],
    ['getEvents', store.getEventsPage().map((e) => e.id), direct.getEventsPage().map((e) => e.id)],
  ];
  for (const [what, a, b] of pairs) {
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`store and direct disagree on ${what}`);
  }
  if (store.lookupTags(digest).length !== TAGS_PER_MANIFEST || store.allTags(tagName(0)).length !== PAGE) {
    throw new Error('the population is not what the benchmark expects');
  }
}

interface Result {
  store: number;
  direct: number;
}

/** One scale's population with its two sides open, and the samples taken of them. */
interface Scale {
  tags: number;
  pop: Population;
  sides: [Side, Side];
  random: () => number;
  samples: Map<string, { store: number[]; direct: number[] }>;
}

function setUp(tags: number, dir: string): Scale {
  const storeFile = join(dir, `store-${tags}.db`);
  const directFile = join(dir, `direct-${tags}.db`);
  progress(`${tags} tags: populating`);
  const pop = populate(storeFile, tags);
  copyFileSync(storeFile, directFile);
  const sides: [Side, Side] = [new StoreSide(storeFile), new DirectSide(directFile)];
  for (const side of sides) side.startEventsAt(pop.midEventTime);
  checkSame(sides[0], sides[1], pop);
  const samples = new Map(OPS.map((op) => [op.name, { store: [] as number[], direct: [] as number[] }]));
  return { tags, pop, sides, random: seededRandom(tags), samples };
}

/**
 * Runs every operation in every round on both sides of both scales, the four
 * batches in a rotating order, so that load from elsewhere on the machine
 * falls on the store/direct ratio and on the scaling ratio alike.
 */
function measure(scales: Scale[]): void {
  for (let round = 0; round <= ROUNDS; round++) {
    progress(`round ${round}/${ROUNDS}`);
    const args = new Map(scales.map((scale) => [scale, roundArgs(scale.pop, round, scale.random)]));
    const cells = scales.flatMap((scale) => scale.sides.map((side) => ({ scale, side })));
    OPS.forEach((op, i) => {
      for (let j = 0; j < cells.length; j++) {
        const { scale, side } = cells[(j + round + i) % cells.length];
        const perOp = timePerOp(BATCH, op.batch(side, args.get(scale)!, scale.pop), CLOCK);
        if (round > 0) scale.samples.get(op.name)![side.name].push(perOp);
      }
    });
  }
}

function medians(scale: Scale): Map<string, Result> {
  return new Map([...scale.samples].map(([name, s]) => [name, { store: median(s.store), direct: median(s.direct) }]));
}

function sqliteVersion(): string {
  const db = new Database(':memory:');
  try {
    return db.prepare('SELECT sqlite_version()').pluck().get() as string;
  } finally {
    db.close();
  }
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-bench-'));
  const results = new Map<number, Map<string, Result>>();
  const scales: Scale[] = [];
  try {
    for (const tags of SCALES) scales.push(setUp(tags, dir));
    measure(scales);
    for (const scale of scales) results.set(scale.tags, medians(scale));
  } finally {
    for (const scale of scales) for (const side of scale.sides) side.close();
    rmSync(dir, { recursive: true, force: true });
    progressDone();
  }

  const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));
  const [small, ...larger] = SCALES;
  const misses: string[] = [];
  const rows = OPS.map((op) => {
    const base = results.get(small)!.get(op.name)!;
    const cells = [op.name, op.kind];
    for (const n of SCALES) {
      const r = results.get(n)!.get(op.name)!;
      const ratio = r.store / r.direct;
      if (ratio > AIM[op.kind]) misses.push(`${op.name} at ${label(n)}: ${formatRatio(ratio)} of direct (aim ${AIM[op.kind]}×)`);
      cells.push(formatNumber(r.store), formatNumber(r.direct), formatRatio(ratio));
    }
    for (const n of larger) {
      const r = results.get(n)!.get(op.name)!;
      const scaling = r.store / base.store;
      if (scaling > AIM.scaling) misses.push(`${op.name}: ${formatRatio(scaling)} slower at ${label(n)} (aim ${AIM.scaling}×)`);
      cells.push(formatRatio(scaling), formatRatio(r.direct / base.direct));
    }
    return cells;
  });
  const a = label(small);
  const headers = ['operation', 'kind'];
  for (const n of SCALES) headers.push(`${label(n)} store`, `${label(n)} direct`, `${label(n)} ratio`);
  for (const n of larger) headers.push(`store ${label(n)}/${a}`, `direct ${label(n)}/${a}`);
  const out = [
    `## regmeta store benchmark (${SCALES.map(label).join(', ')} tags in one repository)`,
    '',
    `Median ${CLOCK === 'cpu' ? 'CPU' : 'wall-clock'} µs per operation: each figure is the median, over ${ROUNDS} rounds (after a warm-up round),`,
    `of the mean of a batch of ${BATCH}; every round runs store and direct at every scale in a rotating order. Store: openStore(file,`,
    "{ durability: 'normal' }). Direct: better-sqlite3 on a copy of the same file (schema.sql, the same pragmas, synchronous=NORMAL),",
    'running the statements the store runs, each write in one IMMEDIATE transaction; direct putManifest also hashes the payload',
    '(sha256) and JSON.parses it for its blob digests, but validates nothing else.',
    '',
    markdownTable(headers, rows, ['l', 'l']),
    '',
    `Aims: reads within ${AIM.read}× of direct, writes within ${AIM.write}×, no operation more than ${AIM.scaling}× slower at any scale than at ${a}.`,
    misses.length === 0 ? 'All aims met.' : `Missed: ${misses.join('; ')}.`,
    `(Node ${process.version}, SQLite ${sqliteVersion()})`,
  ];
  console.log(out.join('\n'));
}

main();
