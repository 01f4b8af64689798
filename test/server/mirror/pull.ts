// A blob GET or HEAD over real HTTP, watched as it streams: when its headers
// came, how many bytes came so far, and whether it ended complete or was cut.

import { request, type IncomingHttpHeaders } from 'node:http';

/** How a pull ended: a cut connection is `complete: false` (status 0 when no headers came). */
export interface Pulled {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  complete: boolean;
}

export interface Pull {
  /** Resolves with the status once the headers came (0: the connection was cut first). */
  headers: Promise<number>;
  /** The body's bytes so far. */
  received(): number;
  /** Resolves once at least `n` bytes came, or the pull ended. */
  until(n: number): Promise<void>;
  /** Whether the pull has ended. */
  ended(): boolean;
  done: Promise<Pulled>;
  /** Goes away mid-pull. */
  abort(): void;
}

/** Starts a GET (or HEAD) of `url`. */
export function pull(url: string, headers: Record<string, string> = {}, method = 'GET'): Pull {
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  const watchers: (() => void)[] = [];
  const notify = () => watchers.splice(0).forEach((w) => w());
  let gotHeaders: (status: number) => void = () => {};
  const headersCame = new Promise<number>((resolve) => (gotHeaders = resolve));
  let finish: (pulled: Pulled) => void = () => {};
  const done = new Promise<Pulled>((resolve) => (finish = resolve));
  const req = request(url, { method, headers, agent: false });
  const end = (pulled: Pulled) => {
    if (ended) return;
    ended = true;
    gotHeaders(pulled.status);
    finish(pulled);
    notify();
  };
  req.on('error', () => end({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false }));
  req.on('response', (res) => {
    gotHeaders(res.statusCode ?? 0);
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      notify();
    });
    const close = () => end({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
    res.on('end', close);
    res.on('close', close);
    res.on('error', close);
  });
  req.end();
  return {
    headers: headersCame,
    received: () => size,
    until: async (n) => {
      while (size < n && !ended) await new Promise<void>((resolve) => watchers.push(resolve));
    },
    ended: () => ended,
    done,
    abort: () => req.destroy(),
  };
}

/** Polls `condition` until it holds (up to a minute: a loaded machine is slow, not wrong). */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`waited a minute for ${what}`);
}
