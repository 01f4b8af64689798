// The HTTP client the server benchmarks share: one keep-alive agent per
// registry, requests that check their status, and the two-step blob push
// every registry supports. Small requests go through node:http; the big
// transfers of bench/blobs.ts go through curl.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Header names as the server spelled them, with their values, in order. */
  rawHeaders: string[];
  body: Buffer;
}

/** A server under test with its own keep-alive connection pool. */
export interface Target {
  name: string;
  /** http://host:port */
  url: string;
  agent: Agent;
  /** The server's process, for its CPU time. */
  pid?: number;
  /** The CPU seconds the target's processes have used so far (default: processCpu(pid)); `database` is the part spent in a database server. */
  cpu?: () => { server: number; database: number };
  /** Replicas of one registry: each request goes to the next, round-robin (see replicated). */
  replicas?: Target[];
  /** The next replica's index. */
  turn?: number;
}

/** A target on `url` with a keep-alive agent of `sockets` connections. */
export function target(name: string, url: string, sockets = 1, pid?: number): Target {
  return { name, url, agent: new Agent({ keepAlive: true, maxSockets: sockets }), pid };
}

/**
 * One registry served by several replicas, as a client behind a round-robin
 * load balancer sees it: each request goes to the next replica in turn.
 */
export function replicated(name: string, replicas: Target[]): Target {
  return { name, url: replicas[0].url, agent: replicas[0].agent, replicas, turn: 0 };
}

/** The target a request goes to: `t` itself, or its next replica. */
export function route(t: Target): Target {
  if (t.replicas === undefined) return t;
  return t.replicas[t.turn!++ % t.replicas.length];
}

/** The CPU seconds `t`'s processes have used so far, NaN when unknown. */
export function targetCpu(t: Target): { server: number; database: number } {
  if (t.cpu) return t.cpu();
  return { server: t.pid === undefined ? NaN : processCpu(t.pid), database: 0 };
}

/**
 * Sends one request and reads the whole answer. A request sent on a kept-alive
 * connection that the server closed at that moment (its idle timeout) is
 * sent once more on a new one, as Node's documentation advises.
 */
export function send(to: Target, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer, retry = true): Promise<Response> {
  const t = route(to);
  const url = new URL(path, t.url);
  return new Promise((done, fail) => {
    const req = request(url, { method, agent: t.agent, headers: body ? { ...headers, 'Content-Length': String(body.length) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && error.code === 'ECONNRESET') done(send(t, method, path, headers, body, false));
      else fail(new Error(`${t.name}: ${method} ${path}: ${error.message}`, { cause: error }));
    });
    req.end(body);
  });
}

/** Sends and checks the status. @throws Error naming the server, request and answer otherwise. */
export async function expectStatus(t: Target, status: number, method: string, path: string, headers?: Record<string, string>, body?: Buffer): Promise<Response> {
  const res = await send(t, method, path, headers, body);
  if (res.status !== status) {
    throw new Error(`${t.name}: ${method} ${path} answered ${res.status}, not ${status}: ${res.body.toString().slice(0, 500)}`);
  }
  return res;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The Location of an answer, resolved against the target, as path and query. */
export function location(t: Target, res: Response): URL {
  return new URL(String(res.headers.location), t.url);
}

/**
 * Pushes a blob in the two-step way every registry supports (POST, then PUT
 * ?digest=). Both requests go to the same replica.
 */
export async function pushBlob(to: Target, repo: string, data: Buffer, digest = sha256(data)): Promise<string> {
  const t = route(to);
  const started = await expectStatus(t, 202, 'POST', `/v2/${repo}/blobs/uploads/`);
  const put = location(t, started);
  put.searchParams.set('digest', digest);
  await expectStatus(t, 201, 'PUT', put.pathname + put.search, { 'Content-Type': 'application/octet-stream' }, data);
  return digest;
}

const TICKS_PER_SECOND = 100;

/**
 * The CPU seconds (user + system, every thread) process `pid` has used so
 * far, from /proc/<pid>/stat, in clock ticks of 10 ms. On a shared machine a
 * server's CPU time says what a request costs it even when the wall clock
 * mostly measures waiting for a core.
 */
export function processCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
