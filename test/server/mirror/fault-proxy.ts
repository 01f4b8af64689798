// A loopback HTTP proxy in front of an upstream registry that records every
// request and, for GETs whose path holds a chosen string, spoils the body at
// a chosen byte: holds it there until released, flips that byte, or cuts the
// connection there. A fault at a point the test chooses, not at a moment.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What happens to a body at byte `at`: held until `release`, the byte
 * flipped, or the connection cut; or (`chunked`) the whole body sent without
 * its Content-Length.
 */
export interface BodyFault {
  kind: 'hold' | 'corrupt' | 'die' | 'chunked';
  at: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Every request so far, as `METHOD path`. */
  requests: string[];
  /** The requests with `method` whose path contains `part`. */
  count(method: string, part: string): number;
  /** Spoils the bodies of GETs whose path contains `part` (undefined: no longer). */
  fault(part: string, fault: BodyFault | undefined): void;
  /** Resolves once a held body has reached its hold point. */
  held(): Promise<void>;
  /** Lets every held body go on. */
  release(): void;
  close(): Promise<void>;
}

/** A proxy to `target` (http://host:port). */
export async function faultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const requests: string[] = [];
  const faults = new Map<string, BodyFault>();
  let holding: { reached: Promise<void>; reach: () => void; go: Promise<void>; release: () => void };
  const resetHold = () => {
    let reach = () => {};
    let release = () => {};
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const go = new Promise<void>((resolve) => (release = resolve));
    holding = { reached, reach, go, release };
  };
  resetHold();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const fault = req.method === 'GET' ? [...faults].find(([part]) => req.url?.includes(part))?.[1] : undefined;
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const { 'content-length': length, ...rest } = answer.headers;
      res.writeHead(answer.statusCode ?? 502, fault?.kind === 'chunked' ? rest : { ...rest, 'content-length': length });
      if (fault === undefined || fault.kind === 'chunked' || answer.statusCode !== 200) answer.pipe(res);
      else void spoil(answer, res, fault, holding);
    });
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    count: (method, part) => requests.filter((r) => r.startsWith(`${method} `) && r.includes(part)).length,
    fault: (part, fault) => (fault === undefined ? faults.delete(part) : faults.set(part, fault)),
    held: () => holding.reached,
    release: () => {
      holding.release();
      resetHold();
    },
    close: () =>
      new Promise<void>((resolve) => {
        holding.release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends `answer` on as `res`, spoiled at byte `fault.at`. */
async function spoil(answer: IncomingMessage, res: ServerResponse, fault: BodyFault, holding: { reach: () => void; go: Promise<void> }): Promise<void> {
  let sent = 0;
  try {
    for await (const piece of answer as AsyncIterable<Buffer>) {
      let chunk = piece;
      if (sent <= fault.at && fault.at < sent + chunk.length) {
        const before = chunk.subarray(0, fault.at - sent);
        if (fault.kind === 'die') {
          await write(res, before);
          answer.destroy();
          return void res.destroy();
        }
        if (fault.kind === 'hold') {
          await write(res, before);
          holding.reach();
          await holding.go;
          chunk = chunk.subarray(before.length);
          sent += before.length;
        } else {
          chunk = Buffer.from(chunk);
          chunk[fault.at - sent] ^= 0xff;
        }
      }
      await write(res, chunk);
      sent += chunk.length;
    }
    res.end();
  } catch {
    res.destroy();
  }
}

function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (chunk.length === 0) return resolve();
    res.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}
