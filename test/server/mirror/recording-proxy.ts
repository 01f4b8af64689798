// A loopback HTTP proxy in front of an upstream registry that records every
// request it forwards (`METHOD path`), so that a test counts what reached
// the upstream, and that can alter the manifests it passes (a byte added,
// the digest header kept): an upstream whose content does not match.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordingProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The requests forwarded so far, as `METHOD /v2/…`. */
  requests: string[];
  /** While true, the body of every manifest GET gets a byte added. */
  corrupt: boolean;
  /** How many of `requests` since index `from` match `method` and contain `path`. */
  count(method: string, path: string, from?: number): number;
  close(): Promise<void>;
}

/** A recording proxy to `target` (http://host:port). */
export async function recordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const proxy: RecordingProxy = {
    url: '',
    requests: [],
    corrupt: false,
    count: (method, path, from = 0) => proxy.requests.slice(from).filter((line) => line.startsWith(`${method} `) && line.includes(path)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    proxy.requests.push(`${req.method} ${req.url}`);
    const corrupting = proxy.corrupt && req.method === 'GET' && req.url?.includes('/manifests/');
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (!corrupting) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat([...chunks, Buffer.from(' ')]);
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'content-length': String(body.length) });
        res.end(body);
      });
    });
    // The upstream gone: the connection cut, as a dead upstream's would be.
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
