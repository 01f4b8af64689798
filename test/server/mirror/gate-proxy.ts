// A loopback HTTP proxy in front of an upstream registry, for faults made by
// a real server rather than by stubbing code: it counts the requests in
// flight (and the most at once), and on demand holds requests unanswered,
// stalls answers after their first bytes, or answers 401 with a challenge.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GateProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Requests that came in, in all. */
  arrived: number;
  /** Requests in flight now: come in, their answer not yet sent whole or cut off. */
  open: number;
  /** The most requests in flight at once. */
  maxOpen: number;
  /** Requests held now (unanswered, or their answer stalled). */
  held: number;
  /** Paths of the requests that came in, oldest first. */
  paths: string[];
  /** Holds every request whose path contains `pattern` unanswered until release(); undefined: none. */
  hold(pattern: string | undefined): void;
  /** Forwards every request whose path contains `pattern`, but stalls its answer after the first bytes until release(). */
  stallBodies(pattern: string | undefined): void;
  /** Answers the next `count` requests 401 with this WWW-Authenticate header (or `status` without one), without asking the upstream. */
  refuse(count: number, challenge: string, status?: number): void;
  /** Lets every held request and stalled answer go on. */
  release(): void;
  /** Resolves once `condition()` holds, checked as requests come and go. */
  until(condition: () => boolean): Promise<void>;
  close(): Promise<void>;
}

/** A proxy to `target` (http://host:port) on 127.0.0.1 port 0. */
export async function gateProxy(target: string): Promise<GateProxy> {
  const upstream = new URL(target);
  let holdOn: string | undefined;
  let stallOn: string | undefined;
  let refusals = { count: 0, challenge: '', status: 401 };
  let waiting: (() => void)[] = [];
  let held: (() => void)[] = [];
  const changed = () => {
    const wake = waiting;
    waiting = [];
    for (const check of wake) check();
  };

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const stall = stallOn !== undefined && req.url?.includes(stallOn);
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (!stall) return void answer.pipe(res);
      answer.once('data', (chunk: Buffer) => {
        res.write(chunk);
        answer.pause();
        held.push(() => answer.pipe(res));
        proxy.held++;
        changed();
      });
      answer.once('end', () => res.end());
    });
    out.on('error', () => res.destroy());
    res.on('close', () => out.destroy());
    req.pipe(out);
  };

  const server = createServer((req, res) => {
    proxy.arrived++;
    proxy.open++;
    proxy.maxOpen = Math.max(proxy.maxOpen, proxy.open);
    proxy.paths.push(req.url ?? '');
    res.on('close', () => {
      proxy.open--;
      changed();
    });
    if (refusals.count > 0) {
      refusals.count--;
      req.resume();
      res.writeHead(refusals.status, { ...(refusals.status === 401 ? { 'WWW-Authenticate': refusals.challenge } : {}), 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'refused by the test proxy' }] }));
    } else if (holdOn !== undefined && req.url?.includes(holdOn)) {
      held.push(() => forward(req, res));
      proxy.held++;
    } else forward(req, res);
    changed();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const proxy: GateProxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived: 0,
    open: 0,
    maxOpen: 0,
    held: 0,
    paths: [],
    hold: (pattern) => void (holdOn = pattern),
    stallBodies: (pattern) => void (stallOn = pattern),
    refuse: (count, challenge, status = 401) => void (refusals = { count, challenge, status }),
    release: () => {
      const go = held;
      held = [];
      proxy.held = 0;
      for (const next of go) next();
      changed();
    },
    until: (condition) =>
      new Promise<void>((resolve) => {
        const check = () => (condition() ? resolve() : waiting.push(check));
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
