// A real webhook receiver for the tests: node:http on 127.0.0.1:0, recording
// every POST (headers, raw body, parsed events), answering as the test says.

import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  events: { id: string; action: string; target: Record<string, unknown>; actor: { name?: string }; source: Record<string, string>; timestamp: string }[];
  /** The status answered. */
  status: number;
  /** The request's path and query. */
  path: string;
}

/** How to answer a POST: a status, or 'hang' (never answer; the socket stays open). */
export type Answer = number | 'hang';

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** What the next POSTs are answered with (default 200), and after how many ms. */
  answer: Answer;
  delay: number;
  /** Bytes of body to answer with (default 0), streamed as fast as the client reads them. */
  answerBytes: number;
  /** Bytes of answer bodies written to the socket so far: what a client that stops reading caps. */
  written: number;
  /** POSTs whose body has arrived, answered or not yet. */
  started: number;
  /** Every event id acknowledged with a 2xx, in arrival order (duplicates kept). */
  acknowledged(): string[];
  /** Resolves once `predicate` holds of the deliveries (checked on each one). */
  until(predicate: (deliveries: Delivery[]) => boolean, timeout?: number): Promise<void>;
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Writes `bytes` of body as fast as the client takes them, stopping when it goes away. */
function streamBody(res: ServerResponse, bytes: number, wrote: (n: number) => void): void {
  let left = bytes;
  const pump = () => {
    while (left > 0 && !res.destroyed) {
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= chunk.length;
      wrote(chunk.length);
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

/** A receiver on 127.0.0.1:`port` (default 0: one the kernel chooses; a port given is one a closed receiver had). */
export async function startReceiver(port = 0): Promise<Receiver> {
  const waiters = new Set<() => void>();
  const receiver = { deliveries: [] as Delivery[], answer: 200 as Answer, delay: 0, answerBytes: 0, written: 0, started: 0 } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      receiver.started++;
      for (const waiter of [...waiters]) waiter();
      const answer = receiver.answer;
      if (answer === 'hang') return;
      const body = Buffer.concat(chunks).toString();
      setTimeout(() => {
        if (res.destroyed) return;
        receiver.deliveries.push({ headers: req.headers, body, events: JSON.parse(body).events, status: answer, path: req.url ?? '' });
        res.writeHead(answer);
        streamBody(res, receiver.answerBytes, (n) => (receiver.written += n));
        for (const waiter of [...waiters]) waiter();
      }, receiver.delay);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  receiver.acknowledged = () => receiver.deliveries.filter((d) => d.status < 300).flatMap((d) => d.events.map((e) => e.id));
  receiver.until = (predicate, timeout = 30_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver: not reached in ${timeout} ms; ${receiver.deliveries.length} deliveries`)), timeout);
      const check = () => {
        if (!predicate(receiver.deliveries)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      waiters.add(check);
      check();
    });
  receiver.close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return receiver;
}
