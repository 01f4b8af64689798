// The floor of the server benchmark: a bare node:http server, run as a child
// process as our server is, that answers canned responses (the exact status,
// headers and bytes our server answered, captured by the bench) and streams
// bytes from memory. Whatever our server spends beyond this is our own
// overhead; this is as fast as this stack (node:http on loopback) answers.
//
//   node --import tsx bench/floor-server.ts <canned.json>
//
// canned.json maps "METHOD /path?query" to {status, headers, body (base64)}.
// GET /bytes/<n> answers n bytes from a buffer in memory, written in 1 MiB
// pieces with backpressure: what a Node server moves with no file to read.
// POST, PATCH and PUT under /sink/ read the body and hash it with sha256,
// answering 202 (201 for a PUT) with a Location back into /sink/: what a
// node:http server must spend to take a blob, with no file to write.
// It prints {"port": n} on stdout once listening.

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Canned {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const PIECE = Buffer.alloc(1 << 20, 0x5a);

const canned = new Map<string, { status: number; headers: Record<string, string>; body: Buffer }>();
for (const [key, value] of Object.entries(JSON.parse(readFileSync(process.argv[2], 'utf8')) as Record<string, Canned>)) {
  canned.set(key, { status: value.status, headers: value.headers, body: Buffer.from(value.body, 'base64') });
}

function streamBytes(res: ServerResponse, total: number): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(total) });
  let left = total;
  const pump = () => {
    while (left > 0) {
      const piece = left >= PIECE.length ? PIECE : PIECE.subarray(0, left);
      left -= piece.length;
      if (left === 0) return void res.end(piece);
      if (!res.write(piece)) return void res.once('drain', pump);
    }
  };
  pump();
}

function sink(req: IncomingMessage, res: ServerResponse): void {
  const hash = createHash('sha256');
  req.on('data', (chunk: Buffer) => hash.update(chunk));
  req.on('end', () => {
    hash.digest();
    res.writeHead(req.method === 'PUT' ? 201 : 202, { Location: '/sink/session', 'Content-Length': '0' });
    res.end();
  });
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/bytes/')) return streamBytes(res, Number(url.slice(7)));
  if (url.startsWith('/sink/')) return sink(req, res);
  const answer = canned.get(`${req.method} ${url}`);
  if (answer === undefined) {
    res.writeHead(404, { 'Content-Length': '0' });
    return void res.end();
  }
  res.writeHead(answer.status, answer.headers);
  res.end(req.method === 'HEAD' ? undefined : answer.body);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
