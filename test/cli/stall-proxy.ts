// A loopback HTTP proxy in front of the test S3 server that forwards every
// request as it came (headers too, so SigV4 signatures still hold) except
// those whose path contains `stallOn`, which it holds unanswered (a client's
// retries too): a client stuck mid-copy at a point the test chooses, not at
// a moment.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StallProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Resolves once the first stalled request has come in. */
  stalled: Promise<void>;
  close(): Promise<void>;
}

/** A proxy to `target` (http://host:port) stalling every request whose path contains `stallOn`. */
export async function stallProxy(target: string, stallOn: string): Promise<StallProxy> {
  const upstream = new URL(target);
  let signal: () => void = () => {};
  const stalled = new Promise<void>((resolve) => (signal = resolve));
  const held: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.includes(stallOn)) {
      held.push(res);
      req.resume();
      signal();
      return;
    }
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stalled,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
