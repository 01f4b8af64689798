// Several real processes on one real SQLite file: concurrent writers, a
// concurrent first open, a writer killed with SIGKILL over and over, and
// subscribe() seeing another process's commits. Every worker is a child
// process running a script of ./workers through tsx; every bound is a count.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { NotFoundError, openStore, type Event } from 'regmeta';
import type { CrashOp } from './workers/crash-writer.js';
import { allEventsOldestFirst, makeManifest, random, replayTags, storedTags } from './workers/common.js';

const WORKERS = join(dirname(fileURLToPath(import.meta.url)), 'workers');
const ROOT = join(WORKERS, '..', '..', '..');

const dirs: string[] = [];
const spawned = new Set<ChildProcess>();
function tempFile(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'regmeta-processes-'));
  dirs.push(dir);
  return join(dir, name);
}
afterAll(() => {
  // A failed case may leave workers waiting for their go-signal.
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Message = Record<string, any>;

/** A worker script in a child process, talking JSON lines on stdout and plain lines on stdin. */
class Worker {
  readonly child: ChildProcess;
  readonly messages: Message[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();
  #done = false;

  constructor(script: string, arg: unknown) {
    this.child = spawn(process.execPath, ['--import', 'tsx/esm', join(WORKERS, script), JSON.stringify(arg)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    spawned.add(this.child);
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.stdin!.on('error', () => {}); // a killed worker's stdin may break; its exit says what happened
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.messages.push(JSON.parse(line) as Message);
      } catch {
        this.messages.push({ garbage: line });
      }
      this.#wake();
    });
    const stdoutClosed = new Promise((resolve) => this.child.stdout!.on('close', resolve));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        // Every line the worker wrote is read before the exit counts.
        void stdoutClosed.then(() => {
          this.#done = true;
          this.#wake();
          resolve({ code, signal });
        });
      });
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }

  /** The first message that satisfies `test`; rejects if the worker exits without one. */
  waitFor(test: (message: Message) => boolean): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(test);
        if (found) {
          this.#waiters.delete(check);
          resolve(found);
        } else if (this.#done) {
          this.#waiters.delete(check);
          reject(new Error(`worker exited without the awaited message; stderr:\n${this.stderr}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for a normal exit (code 0) and returns the worker's last message. */
  async finish(): Promise<Message> {
    const { code, signal } = await this.exited;
    expect({ code, signal }, `worker stderr:\n${this.stderr}`).toEqual({ code: 0, signal: null });
    return this.messages[this.messages.length - 1];
  }
}

function integrity(file: string): { integrity: unknown; foreignKeys: unknown[]; userVersion: unknown; schema: unknown[] } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      integrity: db.pragma('integrity_check', { simple: true }),
      foreignKeys: db.pragma('foreign_key_check') as unknown[],
      userVersion: db.pragma('user_version', { simple: true }),
      schema: db.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY type, name').all(),
    };
  } finally {
    db.close();
  }
}

/** An event as one comparable line. */
function line(event: Event): string {
  return [event.actor, event.type, event.object.type, event.object.id, event.digest ?? '', event.previousDigest ?? ''].join(' ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('several processes on one file', () => {
  it('keeps the tags equal to a replay of the event log while 4 processes move and delete the same tags', async () => {
    const file = tempFile('churn.db');
    const repo = 'acme/churn';
    const tags = ['a', 'b', 'latest', 'stable', 'v1'];
    const labels = ['churn 0', 'churn 1', 'churn 2', 'churn 3'];
    const setup = openStore(file);
    for (const { digest, manifest } of labels.map(makeManifest)) setup.putManifest(repo, digest, manifest, { actor: 'setup' });
    setup.close();

    const seed = randomInt(2 ** 31);
    const workers = [0, 1, 2, 3].map(
      (worker) => new Worker('churn.ts', { file, repo, worker, ops: 750, seed: seed + worker, tags, manifests: labels }),
    );
    await Promise.all(workers.map((w) => w.waitFor((m) => m.ready)));
    for (const w of workers) w.send('go');
    const results = await Promise.all(workers.map((w) => w.finish()));

    for (const result of results) {
      expect(result.done, `seed ${seed}`).toBe(true);
      // Only NotFound from a sibling's delete; in particular no DATABASE_BUSY.
      expect(result.unexpected, `seed ${seed}`).toEqual([]);
      const { putTag, deleteTag, deleteManifest, putManifest } = result.ok as Record<string, number>;
      expect(putTag + deleteTag + deleteManifest + putManifest + result.notFound).toBe(750);
    }

    const { integrity: check, foreignKeys } = integrity(file);
    expect(check).toBe('ok');
    expect(foreignKeys).toEqual([]);

    const store = openStore(file);
    try {
      const events = allEventsOldestFirst(store);
      const replay = replayTags(events, repo);
      expect(replay.problems, `seed ${seed}`).toEqual([]);
      expect(storedTags(store, repo)).toEqual(replay.tags);

      // Every acknowledged delete is in the log exactly once, under its process's actor.
      const count = (actor: string, type: string, objectType: string) =>
        events.filter((e) => e.actor === actor && e.type === type && e.object.type === objectType).length;
      for (const { worker, ok } of results) {
        expect(count(`w${worker}`, 'DELETE', 'TAG')).toBe(ok.deleteTag);
        expect(count(`w${worker}.m`, 'DELETE', 'MANIFEST')).toBe(ok.deleteManifest);
        expect(count(`w${worker}`, 'CREATE', 'TAG') + count(`w${worker}`, 'UPDATE', 'TAG')).toBeLessThanOrEqual(ok.putTag);
        expect(count(`w${worker}.m`, 'CREATE', 'MANIFEST')).toBeLessThanOrEqual(ok.putManifest);
      }
      // The processes did contend: every kind of change happened, and some lost a race.
      for (const kind of ['CREATE TAG', 'UPDATE TAG', 'DELETE TAG', 'DELETE MANIFEST', 'CREATE MANIFEST']) {
        expect(events.filter((e) => `${e.type} ${e.object.type}` === kind && e.actor !== 'setup').length).toBeGreaterThan(0);
      }
      expect(results.reduce((n, r) => n + r.notFound, 0)).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  });

  it('lets 6 processes create, migrate and write the same new file at the same moment', async () => {
    const reference = tempFile('reference.db');
    openStore(reference).close();
    const schema = integrity(reference).schema;

    const workers = [0, 1, 2, 3, 4, 5].map((worker) => new Worker('open-race.ts', worker));
    await Promise.all(workers.map((w) => w.waitFor((m) => m.ready)));
    const rounds = 16;
    for (let round = 0; round < rounds; round++) {
      const file = tempFile(`race-${round}.db`);
      // All six are already loaded and waiting on stdin: they start together.
      for (const w of workers) w.send(JSON.stringify({ file, round }));
      const replies = await Promise.all(workers.map((w) => w.waitFor((m) => m.round === round)));
      expect(replies.map((r) => r.error), `round ${round}`).toEqual(replies.map(() => undefined));
      expect(replies.map((r) => r.ok)).toEqual(replies.map(() => true));

      const state = integrity(file);
      expect(state.integrity).toBe('ok');
      expect(state.userVersion).toBe(7);
      expect(state.schema).toEqual(schema);
      const store = openStore(file);
      try {
        expect(store.allTags('race/app')).toEqual(['w0', 'w1', 'w2', 'w3', 'w4', 'w5']);
        for (let worker = 0; worker < 6; worker++) {
          expect(store.getTag('race/app', `w${worker}`).digest).toBe(makeManifest(`race ${worker}`).digest);
        }
        const kinds = allEventsOldestFirst(store).map((e) => `${e.type} ${e.object.type}`);
        expect(kinds.filter((k) => k === 'CREATE REPOSITORY')).toHaveLength(1);
        expect(kinds.filter((k) => k === 'CREATE MANIFEST')).toHaveLength(6);
        expect(kinds.filter((k) => k === 'CREATE TAG')).toHaveLength(6);
      } finally {
        store.close();
      }
    }
    for (const w of workers) w.send('exit');
    await Promise.all(workers.map((w) => w.finish()));
  });

  it('keeps every acknowledged write of a writer killed with SIGKILL 20 times', async () => {
    const file = tempFile('crash.db');
    const repo = 'acme/crash';
    const tags = ['t0', 't1', 't2', 't3'];
    const seed = randomInt(2 ** 31);
    const next = random(seed);
    const runs = 20;
    const spawnRun = (run: number) => new Worker('crash-writer.ts', { file, repo, run, seed: seed + run, maxOps: 400, tags });

    const logs: Array<{ run: number; ops: Array<{ op: CrashOp; acked: boolean }> }> = [];
    let kills = 0;
    // The next writers load while one runs, so that a run rarely waits for tsx.
    const upcoming = [0, 1, 2].filter((run) => run < runs).map(spawnRun);
    for (let run = 0; run < runs; run++) {
      const writer = upcoming.shift()!;
      if (run + upcoming.length + 1 < runs) upcoming.push(spawnRun(run + upcoming.length + 1));
      await writer.waitFor((m) => m.ready);
      writer.send('go');
      if (run % 8 === 0) {
        // Now and then, kill it while it opens: on run 0 that is mid-creation of the file.
        await writer.waitFor((m) => m.opening);
        await sleep(next() * 20);
      } else {
        const acks = 1 + Math.floor(next() * 40);
        await writer.waitFor((m) => m.ack === acks - 1);
      }
      if (!writer.running) {
        const { code } = await writer.exited;
        throw new Error(`seed ${seed} run ${run}: the writer exited (${code}) before the kill: ${writer.stderr} ${JSON.stringify(writer.messages.slice(-2))}`);
      }
      writer.child.kill('SIGKILL');
      const { signal } = await writer.exited;
      if (signal === 'SIGKILL') kills++;
      expect(writer.messages.filter((m) => m.error || m.garbage), `seed ${seed} run ${run}`).toEqual([]);
      const acked = new Set(writer.messages.filter((m) => m.ack !== undefined).map((m) => m.ack as number));
      const ops = writer.messages.filter((m) => m.intent !== undefined).map((m) => ({ op: m.op as CrashOp, acked: acked.has(m.intent) }));
      logs.push({ run, ops });
    }
    expect(kills).toBe(runs);

    const state = integrity(file);
    expect(state.integrity).toBe('ok');
    expect(state.foreignKeys).toEqual([]);
    expect(state.userVersion).toBe(7);

    const store = openStore(file);
    try {
      const events = allEventsOldestFirst(store);
      // The log must be, run by run, the events of every acknowledged call,
      // plus perhaps those of the one call in flight when the kill came.
      const model = { repository: false, tags: new Map<string, string>(), manifests: new Map<string, string>() };
      let at = 0;
      for (const { run, ops } of logs) {
        ops.forEach(({ op, acked }, index) => {
          // Only the last call of a run can be unacknowledged.
          if (!acked) expect(index).toBe(ops.length - 1);
          const trial = structuredClone(model);
          const expected = expectedEvents(trial, op, repo, `run${run}`).sort();
          const actual = events.slice(at, at + expected.length).map(line).sort();
          if (acked) expect(actual, `seed ${seed} run ${run} call ${index}`).toEqual(expected);
          else if (expected.length === 0 || actual.join('\n') !== expected.join('\n')) return;
          Object.assign(model, trial);
          at += expected.length;
        });
      }
      expect(events.slice(at).map(line), `seed ${seed}: events of no call`).toEqual([]);

      const replay = replayTags(events, repo);
      expect(replay.problems, `seed ${seed}`).toEqual([]);
      const stored = storedTags(store, repo);
      expect(stored).toEqual(replay.tags);
      expect(stored).toEqual(model.tags);
      for (const [digest, label] of model.manifests) {
        expect(Buffer.compare(store.getManifest(repo, digest).payload, makeManifest(label).manifest.payload)).toBe(0);
      }
      const everPut = logs.flatMap(({ ops }) => ops.flatMap(({ op }) => (op.kind === 'putManifest' ? [op.digest] : [])));
      for (const digest of everPut.filter((d) => !model.manifests.has(d))) {
        expect(() => store.getManifest(repo, digest)).toThrow(NotFoundError);
      }
      // The kills did land mid-stream, and the writers did real work.
      expect(logs.reduce((n, { ops }) => n + ops.filter((o) => o.acked).length, 0)).toBeGreaterThan(100);
      expect(model.manifests.size).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  });

  it('delivers to a subscriber, in commit order and once each, the events that 2 other processes commit', async () => {
    const file = tempFile('subscribe.db');
    const repo = 'acme/watched';
    const tags = ['a', 'b', 'c'];
    const labels = ['watched 0', 'watched 1', 'watched 2'];
    const store = openStore(file, { pollInterval: 5 });
    try {
      for (const { digest, manifest } of labels.map(makeManifest)) store.putManifest(repo, digest, manifest);
      const before = allEventsOldestFirst(store).length;

      const received: Event[] = [];
      const unsubscribe = store.subscribe((event) => received.push(event));
      const seed = randomInt(2 ** 31);
      const workers = [0, 1].map(
        (worker) =>
          new Worker('churn.ts', { file, repo, worker, ops: 150, holdAt: 75, seed: seed + worker, tags, manifests: labels }),
      );
      await Promise.all(workers.map((w) => w.waitFor((m) => m.ready)));
      for (const w of workers) w.send('go');
      // This process writes too, between the others' commits.
      const next = random(seed + 2);
      const own = labels.map(makeManifest);
      for (let i = 0; i < 20; i++) {
        try {
          store.putTag(repo, tags[i % tags.length], { digest: own[Math.floor(next() * own.length)].digest }, { actor: 'parent' });
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error;
        }
        await sleep(next() * 10);
      }
      // The second halves come after this process's last write: only polling can see them.
      await Promise.all(workers.map((w) => w.waitFor((m) => m.held)));
      for (const w of workers) w.send('go');
      const results = await Promise.all(workers.map((w) => w.finish()));
      for (const result of results) expect(result.unexpected).toEqual([]);

      const committed = allEventsOldestFirst(store).slice(before);
      expect(committed.filter((e) => e.actor === 'w0').length).toBeGreaterThan(0);
      expect(committed.filter((e) => e.actor === 'w1').length).toBeGreaterThan(0);
      const lastOwn = committed.map((e) => e.actor).lastIndexOf('parent');
      expect(committed.length - 1 - lastOwn, 'events that only polling can deliver').toBeGreaterThan(0);
      // Delivery of the last commits needs a poll or two; bounded by a count.
      for (let polls = 0; polls < 2000 && received.length < committed.length; polls++) await sleep(5);
      await sleep(300); // several poll intervals: room for a duplicate to show up
      unsubscribe();
      expect(received.map((e) => e.id)).toEqual(committed.map((e) => e.id));
      expect(received).toEqual(committed);
    } finally {
      store.close();
    }
  });
});

/**
 * The events one call of the crash writer must write, given the state before
 * it (which it updates): the model of the store the writer resumed from.
 */
function expectedEvents(
  model: { repository: boolean; tags: Map<string, string>; manifests: Map<string, string> },
  op: CrashOp,
  repo: string,
  actor: string,
): string[] {
  const ev = (type: string, objectType: string, id: string, digest = '', previous = '') =>
    [actor, type, objectType, id, digest, previous].join(' ');
  const out: string[] = [];
  switch (op.kind) {
    case 'putManifest':
      if (!model.repository) out.push(ev('CREATE', 'REPOSITORY', repo));
      model.repository = true;
      if (!model.manifests.has(op.digest)) out.push(ev('CREATE', 'MANIFEST', `${repo}@${op.digest}`, op.digest));
      model.manifests.set(op.digest, op.label);
      break;
    case 'putTag': {
      const current = model.tags.get(op.tag);
      if (current === op.digest) break;
      out.push(ev(current ? 'UPDATE' : 'CREATE', 'TAG', `${repo}:${op.tag}`, op.digest, current));
      model.tags.set(op.tag, op.digest);
      break;
    }
    case 'deleteTag':
      out.push(ev('DELETE', 'TAG', `${repo}:${op.tag}`, model.tags.get(op.tag)));
      model.tags.delete(op.tag);
      break;
    case 'deleteManifest':
      for (const [tag, target] of model.tags) {
        if (target !== op.digest) continue;
        out.push(ev('DELETE', 'TAG', `${repo}:${tag}`, target));
        model.tags.delete(tag);
      }
      out.push(ev('DELETE', 'MANIFEST', `${repo}@${op.digest}`, op.digest));
      model.manifests.delete(op.digest);
      break;
  }
  return out;
}
