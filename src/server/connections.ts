// What the server guards per connection and per client address: how many
// connections one address may hold, how long a connection may move no byte
// while the server waits on the client, and what a client error on a socket
// is answered with. Each connection holds a file descriptor; without these
// bounds a few slow or hostile clients exhaust them for everyone.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { HttpError } from './errors.js';

/** Connection limits; every one is an option of createRegistry. */
export interface ConnectionLimits {
  /**
   * Milliseconds a connection may move no byte while the server waits on
   * the client: a request body that stalls, a response the client does not
   * read. Server-side work is not cut. 0 turns it off.
   */
  idleTimeout: number;
  /** Connections one client address may hold at once; 0 turns the cap off. */
  maxConnectionsPerAddress: number;
}

/** The defaults: a minute of silence, as nginx's client_body_timeout; 128 connections, some twenty clients' worth of parallel pushes. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  idleTimeout: 60_000,
  maxConnectionsPerAddress: 128,
};

// Proxies commonly close a connection silent for 30-60 s; a stream speaks more often.
const HEARTBEAT_MAX = 15_000;

/** The limits of one server, and the connections and responses it tracks to enforce them. */
export class Connections {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  /** Sockets opened past their address's cap: each request on them is refused. */
  readonly #overLimit = new WeakSet<Socket>();
  /**
   * Over-limit TCP connections of an https server by "address|port": its
   * requests arrive on the TLS socket wrapped around each, which must be
   * marked too, and node:tls offers no public way from one to the other.
   */
  readonly #overLimitTcp = new Set<string>();
  /** The responses under way on each socket (more than one when requests are pipelined). */
  readonly #inFlight = new WeakMap<Socket, Set<ServerResponse>>();
  /** Sockets whose client error was handled: the parser reports again for every further chunk. */
  readonly #failed = new WeakSet<Socket>();

  constructor(limits: Partial<ConnectionLimits> = {}) {
    this.#limits = {
      idleTimeout: limits.idleTimeout ?? DEFAULT_CONNECTION_LIMITS.idleTimeout,
      maxConnectionsPerAddress: limits.maxConnectionsPerAddress ?? DEFAULT_CONNECTION_LIMITS.maxConnectionsPerAddress,
    };
  }

  /** How often a long-lived response (an event stream) must send something so that the idle timeout spares it. */
  get heartbeatInterval(): number {
    const idle = this.#limits.idleTimeout;
    return idle > 0 ? Math.min(HEARTBEAT_MAX, Math.ceil(idle / 3)) : HEARTBEAT_MAX;
  }

  /**
   * Counts connections, arms the idle timeout and takes over client errors.
   * On an https server TCP connections are counted before their handshake,
   * so that connections that never finish one count against the cap too.
   */
  attach(server: Server | HttpsServer): void {
    server.timeout = this.#limits.idleTimeout;
    // No limit on a whole request: a large blob on a slow link may take
    // hours. A body that stalls is cut by the idle timeout instead.
    server.requestTimeout = 0;
    const tls = 'setSecureContext' in server;
    server.on('connection', (socket: Socket) => this.#count(socket, tls));
    if (tls) {
      server.on('secureConnection', (socket: TLSSocket) => {
        if (this.#overLimitTcp.size > 0 && this.#overLimitTcp.has(`${socket.remoteAddress}|${socket.remotePort}`)) this.#overLimit.add(socket);
      });
    }
    server.on('timeout', (socket: Socket) => this.#onTimeout(socket));
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(error, socket));
  }

  /**
   * Registers a request's response as under way on its socket.
   * @throws HttpError TOOMANYREQUESTS when the connection is over its address's cap.
   */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    let responses = this.#inFlight.get(socket);
    if (responses === undefined) this.#inFlight.set(socket, (responses = new Set()));
    responses.add(res);
    res.once('close', () => responses.delete(res));
    if (this.#overLimit.has(socket)) {
      res.setHeader('Connection', 'close');
      throw new HttpError(
        'TOOMANYREQUESTS',
        `more than ${this.#limits.maxConnectionsPerAddress} connections from one address: close some, or reuse them`,
        { headers: { 'Retry-After': '1' } },
      );
    }
  }

  #count(socket: Socket, tls: boolean): void {
    const max = this.#limits.maxConnectionsPerAddress;
    if (max <= 0) return;
    const address = socket.remoteAddress ?? '';
    const open = (this.#perAddress.get(address) ?? 0) + 1;
    this.#perAddress.set(address, open);
    if (open > max) {
      this.#overLimit.add(socket);
      if (tls) {
        const key = `${address}|${socket.remotePort}`;
        this.#overLimitTcp.add(key);
        socket.once('close', () => this.#overLimitTcp.delete(key));
      }
    }
    socket.once('close', () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left <= 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
  }

  /**
   * The socket moved no byte for idleTimeout ms: cut it if the server is
   * waiting on the client, not on itself (a disk that is slow to take a
   * body pauses the request; a blob slow to read leaves the socket's buffer
   * empty).
   */
  #onTimeout(socket: Socket): void {
    const responses = [...(this.#inFlight.get(socket) ?? [])];
    const waitingOnClient = (res: ServerResponse) =>
      // Reading a body that does not come.
      (!res.req.complete && res.req.readableFlowing === true && res.req.readableLength === 0) ||
      // Writing an answer the client does not read.
      (res.headersSent && !res.writableFinished && socket.writableLength > 0);
    if (responses.length === 0 || responses.some(waitingOnClient)) socket.destroy();
  }

  /**
   * A request on this socket could not be parsed (garbage, skopeo's TLS
   * ClientHello on the plain port, headers too large or too slow). As
   * Node's default handler does, answer only when no response is under
   * way: writing over one would corrupt it. A pipelined request that was
   * read whole is still answered, then the connection closes.
   */
  #onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (this.#failed.has(socket)) return;
    this.#failed.add(socket);
    const responses = [...(this.#inFlight.get(socket) ?? [])];
    if (responses.length === 0) {
      if (error.code !== 'ECONNRESET' && socket.writable && !socket.writableEnded) {
        socket.end(`HTTP/1.1 ${clientErrorStatus(error)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.destroy();
      return;
    }
    if (responses.some((res) => !res.req.complete)) {
      // The body under way cannot be parsed any further: that request fails.
      socket.destroy();
      return;
    }
    // Read no more of what cannot be parsed.
    socket.pause();
    const last = responses[responses.length - 1];
    if (!last.headersSent) last.setHeader('Connection', 'close');
    last.once('close', () => socket.end());
  }
}

/** The status line for a request that could not be parsed, as Node's default handler picks it. */
function clientErrorStatus(error: NodeJS.ErrnoException): string {
  if (error.code === 'HPE_HEADER_OVERFLOW') return '431 Request Header Fields Too Large';
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout';
  return '400 Bad Request';
}
