// A TCP proxy in front of a registry that sends the registry's answers no
// faster than a given rate, as a real network between a client (or a
// cache) and a public registry would: on loopback the upstream answers from
// the page cache far faster than Docker Hub or GHCR, and a pull then times
// the cache's CPU rather than what its client waits for.
//
// One token bucket for all the proxy's connections: the rate is that of
// one link, so that a cache fetching a blob twice (distribution's proxy)
// pays for it as it would on a real link. Requests go through unthrottled.

import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** What a throttle lets through at most at once, as a link's buffers would: 256 KiB. */
const BURST = 256 << 10;

/** A running throttle: `url` reaches the upstream at `bytesPerSecond`. */
export interface Throttle {
  url: string;
  stop(): Promise<void>;
}

/** How long (ms) a chunk of `bytes` waits: the link is busy until `busy`, and may run BURST bytes ahead. */
function pacer(bytesPerSecond: number): (bytes: number) => number {
  const ms = (bytes: number) => (bytes / bytesPerSecond) * 1000;
  let busy = 0;
  return (bytes) => {
    const now = performance.now();
    busy = Math.max(busy, now) + ms(bytes);
    return Math.max(0, busy - now - ms(BURST));
  };
}

/** Copies `from` to `to`, each chunk delayed as `wait` says, pausing `from` meanwhile (and while `to` is full). */
function paced(from: Socket, to: Socket, wait: (bytes: number) => number): void {
  let queue = Promise.resolve();
  from.on('data', (chunk: Buffer) => {
    const delay = wait(chunk.length);
    if (delay < 1) {
      if (!to.write(chunk)) from.pause(), to.once('drain', () => from.resume());
      return;
    }
    from.pause();
    queue = queue.then(
      () =>
        new Promise<void>((sent) =>
          setTimeout(() => {
            if (to.write(chunk)) from.resume();
            else to.once('drain', () => from.resume());
            sent();
          }, delay),
        ),
    );
  });
  from.on('end', () => void queue.then(() => to.end()));
}

/**
 * Starts a throttle on a free loopback port in front of `upstream` (http://host:port).
 * @throws Error when it cannot listen.
 */
export async function startThrottle(upstream: string, bytesPerSecond: number): Promise<Throttle> {
  const { hostname, port } = new URL(upstream);
  const wait = pacer(bytesPerSecond);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const remote = connect(Number(port), hostname);
    for (const socket of [client, remote]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => (client.destroy(), remote.destroy()));
    }
    client.pipe(remote);
    paced(remote, client, wait);
  });
  await new Promise<void>((listening, fail) => server.once('error', fail).listen(0, '127.0.0.1', listening));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    stop: () =>
      new Promise<void>((closed) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => closed());
      }),
  };
}
