// SIGKILL one of three `regmeta serve` replicas (one PostgreSQL database,
// one blob directory) while it receives a large blob and pushes images, as
// the other two keep serving their own pushes: nothing any replica
// acknowledged is lost, the survivors answer no 500, no lock the dead one
// held stays behind, and a new replica on the same data serves everything.

import postgresClient from 'postgres';
import { describe, expect, it } from 'vitest';
import { putManifest, sha256 } from '../server/helpers.js';
import { gateTagWrites } from '../store/postgres/gate.js';
import {
  acknowledged,
  biggestUpload,
  cliJson,
  makeImage,
  postBlob,
  pullProblem,
  pushTo,
  serverErrors,
  replicaSuite,
  until,
  type Image,
  type Pushed,
} from './replicas.js';

const suite = replicaSuite();

const REPO = 'crash/app';
const CHUNK = Buffer.alloc(256 << 10, 7);
const LARGE = Buffer.concat(Array.from({ length: 64 }, () => CHUNK)); // 16 MiB

/** What a push loop saw: the tags acknowledged (the last image under each), and the answers that were not. */
interface Loop {
  acked: Map<string, Image>;
  /** The push under way: when the replica dies, it may have committed without its answer reaching the client. */
  inFlight?: { tag: string; image: Image };
  failures: (Pushed | string)[];
  pushes: number;
}

/**
 * Pushes image after image through `url` until `stop()`: each under a tag of
 * its own and under the moving tag `name`. A failure ends the loop. `loop`
 * is filled in as it goes.
 */
async function pushLoop(url: string, name: string, stop: () => boolean, loop: Loop = { acked: new Map(), failures: [], pushes: 0 }): Promise<Loop> {
  for (let n = 0; !stop(); n++) {
    const image = makeImage(`${name} ${n}`, [`shared layer ${n % 3}`]);
    for (const tag of [`${name}-${n}`, name]) {
      loop.inFlight = { tag, image };
      try {
        const pushed = await pushTo(url, REPO, tag, image);
        if (!acknowledged(pushed)) {
          loop.failures.push(pushed);
          return loop;
        }
      } catch (error) {
        loop.failures.push(String(error));
        return loop;
      }
      loop.acked.set(tag, image);
    }
    loop.pushes++;
  }
  return loop;
}

/** A monolithic upload of LARGE through `url` whose body goes out a chunk at a time, and never ends. */
function endlessUpload(url: string): Promise<unknown> {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // The whole blob but its last chunk, then nothing more: the request stays in flight.
      if (sent < LARGE.length - CHUNK.length) {
        controller.enqueue(CHUNK);
        sent += CHUNK.length;
      } else await new Promise(() => {});
    },
  });
  const init = { method: 'POST', body, duplex: 'half', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(LARGE.length) } };
  return fetch(`${url}/v2/${REPO}/blobs/uploads/?digest=${sha256(LARGE)}`, init as RequestInit).then(
    (res) => res.status,
    (error: Error) => error,
  );
}

describe('a replica killed mid-push', () => {
  it('loses nothing acknowledged, leaves no lock behind, and the others serve on without a 500', { timeout: 300_000 }, async () => {
    const {
      database,
      data,
      all: [a, b, c],
    } = await suite.cluster(3);

    let killed = false;
    let stopped = false;
    const live: Loop[] = [0, 1, 2].map(() => ({ acked: new Map(), failures: [], pushes: 0 }));
    const doomed = pushLoop(a.url, 'a', () => killed, live[0]);
    const survivors = Promise.all([pushLoop(b.url, 'b', () => stopped, live[1]), pushLoop(c.url, 'c', () => stopped, live[2])]);
    await until(() => live.every((loop) => loop.pushes >= 5 || loop.failures.length > 0), 'five pushes through each replica');

    // A receives a large blob (and pushes images) when it dies: killed once the blob's bytes are arriving.
    const upload = endlessUpload(a.url);
    await until(() => biggestUpload(data) >= 4 * CHUNK.length, "A's upload to reach its file");
    a.child.kill('SIGKILL');
    killed = true;
    const atKill = live.map((loop) => loop.pushes).slice(1);
    expect(await upload).toBeInstanceOf(Error);
    const fromA = await doomed;

    // B and C push on after A's death, then stop.
    await until(() => live.slice(1).every((loop, i) => loop.pushes >= atKill[i] + 10 || loop.failures.length > 0), 'B and C to push on');
    stopped = true;
    const [fromB, fromC] = await survivors;
    expect(fromB.failures).toEqual([]);
    expect(fromC.failures).toEqual([]);
    for (const survivor of [b, c]) expect(serverErrors(survivor)).toEqual([]);

    // Every tag any replica acknowledged, A's too, pulls whole through B and C: the image
    // last acknowledged under it, or, for the tag A was pushing when it died, that push's.
    const acked = new Map([fromA, fromB, fromC].flatMap((loop) => [...loop.acked]));
    expect(fromA.acked.size).toBeGreaterThan(0);
    const unanswered = fromA.inFlight!;
    for (const [tag, image] of acked) {
      for (const survivor of [b, c]) {
        const problem = await pullProblem(survivor.url, REPO, tag, image);
        if (problem !== '' && tag === unanswered.tag) expect(await pullProblem(survivor.url, REPO, tag, unanswered.image)).toBe('');
        else expect(problem).toBe('');
      }
    }

    // No lock of A's stays: its moving tag and its large blob take a push through B at once.
    const again = makeImage('after the crash');
    expect(acknowledged(await pushTo(b.url, REPO, 'a', again))).toBe(true);
    expect(await postBlob(b.url, REPO, LARGE)).toEqual({ status: 201 });
    const pulled = await fetch(`${c.url}/v2/${REPO}/blobs/${sha256(LARGE)}`);
    expect(sha256(Buffer.from(await pulled.arrayBuffer()))).toBe(sha256(LARGE));
    acked.set('a', again);

    // A new replica on the same database and blobs serves all of it.
    const [d] = await suite.more(database, data, 1);
    for (const [tag, image] of acked) expect(await pullProblem(d.url, REPO, tag, image)).toBe('');
    for (const survivor of [b, c, d]) expect(serverErrors(survivor)).toEqual([]);
    console.info(`killed A after ${fromA.pushes} pushes (its loop ended with ${fromA.failures.length} failure); ${acked.size} tags acknowledged`);
  });

  it("killed mid-PATCH, holding the session's claim: the PATCH resumed on another replica proceeds at once, not after the dead one's lease", { timeout: 120_000 }, async () => {
    const {
      database,
      data,
      all: [a, b],
    } = await suite.cluster(2);
    const sql = postgresClient(database, { max: 1, onnotice: () => {} });
    try {
      const blob = LARGE.subarray(0, 16 * CHUNK.length);
      const opened = await fetch(`${a.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
      expect(opened.status).toBe(202);
      const location = opened.headers.get('location')!;
      // A streams a PATCH body that stops half way and never ends: A holds the claim while it waits for the rest.
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent < blob.length / 2) {
            controller.enqueue(CHUNK);
            sent += CHUNK.length;
          } else await new Promise(() => {});
        },
      });
      const init = { method: 'PATCH', body, duplex: 'half', headers: { 'Content-Type': 'application/octet-stream' } };
      const stalled = fetch(`${a.url}${location}`, init as RequestInit).then((res) => res.status, (error: Error) => error);
      // Killed once the database shows A's claim and A's file holds bytes of the body.
      await until(async () => (await sql`SELECT owner FROM upload_session`)[0]?.owner != null && biggestUpload(data) > 0, "A's claim and bytes");
      a.child.kill('SIGKILL');
      expect(await stalled).toBeInstanceOf(Error);

      // The client asks B where the session stands (nothing committed) and sends the whole blob again.
      const status = await fetch(`${b.url}${location}`);
      expect(status.status).toBe(204);
      const started = Date.now();
      const resumed = await fetch(`${b.url}${location}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${blob.length - 1}` },
        body: blob,
      });
      const waited = (Date.now() - started) / 1000;
      expect(resumed.status).toBe(202);
      // A's lease is a minute long; its claim died with its connection.
      expect(waited).toBeLessThan(15);
      const finished = await fetch(`${b.url}${location}${location.includes('?') ? '&' : '?'}digest=${sha256(blob)}`, { method: 'PUT' });
      expect(finished.status).toBe(201);
      const pulled = await fetch(`${b.url}/v2/${REPO}/blobs/${sha256(blob)}`);
      expect(sha256(Buffer.from(await pulled.arrayBuffer()))).toBe(sha256(blob));
      expect(serverErrors(b)).toEqual([]);
      console.info(`the PATCH resumed on B after A's death waited ${waited.toFixed(1)} s for the claim`);
    } finally {
      await sql.end();
    }
  });

  it('killed inside a transaction, holding the row lock of its tag: the tag takes a push through another replica, and the killed write never appears', async () => {
    const {
      database,
      all: [a, b],
    } = await suite.cluster(2);
    const sql = postgresClient(database, { max: 1, onnotice: () => {} });
    try {
      const gate = await gateTagWrites(sql);
      const [first, lost, second] = ['first', 'lost', 'second'].map((seed) => makeImage(`held ${seed}`));
      expect(acknowledged(await pushTo(b.url, REPO, 'held', first))).toBe(true);
      for (const bytes of lost.blobs) expect(await postBlob(a.url, REPO, bytes)).toEqual({ status: 201 });
      await gate.close();
      // A locks the tag's row, then waits at the gate inside its transaction: killed there.
      const put = putManifest(a.url, REPO, 'held', lost.manifest).then((res) => res.status, (error: Error) => error);
      await gate.waiting(1);
      a.child.kill('SIGKILL');
      expect(await put).toBeInstanceOf(Error);
      await gate.open();

      expect(acknowledged(await pushTo(b.url, REPO, 'held', second))).toBe(true);
      expect(await pullProblem(b.url, REPO, 'held', second)).toBe('');
      const history = await cliJson<{ digest: string }[]>(database, ['history', REPO, 'held']);
      expect(history.map((h) => h.digest)).toEqual([second.digest, first.digest]);
      expect(serverErrors(b)).toEqual([]);
    } finally {
      await sql.end();
    }
  });
});
