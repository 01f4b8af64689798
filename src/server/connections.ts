// What the server guards per connection and per client address: how many
// connections one address and all together may hold, how long a connection
// may take to send a request head, how long it may move no byte while the
// server waits on the client, how slowly a body may come, and what a client
// error on a socket is answered with. Each connection holds a file
// descriptor; without these bounds a few slow or hostile clients exhaust
// them for everyone.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { clientKey } from './failures.js';
import { connectionsFor, openFileLimit } from './fd-limit.js';
import { waitingOnBody, waitingOnReader, Watchdog } from './watchdog.js';

/** Connection limits; every one is an option of createRegistry. */
export interface ConnectionLimits {
  /**
   * Milliseconds a connection may move no byte while the server waits on
   * the client: a request body that stalls, a response the client does not
   * read. Server-side work is not cut. 0 turns it off.
   */
  idleTimeout: number;
  /**
   * Connections one client address (an IPv6 /64) may hold at once; 0 turns
   * the cap off. Further ones are closed as they are accepted (before a TLS
   * handshake); on plain HTTP a 429 goes out with the close.
   */
  maxConnectionsPerAddress: number;
  /** Connections the server holds at once, from all addresses; further ones are closed as they are accepted. 0 turns the cap off. */
  maxConnections: number;
  /** Milliseconds a connection has to send a complete request head, and on HTTPS as many to finish its handshake; more than 0. */
  headersTimeout: number;
  /** Bytes per second a request body must average once bodyRateGrace is over, while the server reads it; 0 turns it off. */
  minBodyRate: number;
  /** Milliseconds a request body may take before minBodyRate applies. */
  bodyRateGrace: number;
}

/**
 * The defaults: a minute of silence, as nginx's client_body_timeout; 128
 * connections an address, some twenty clients' worth of parallel pushes;
 * all the connections the open-file limit leaves room for; 10 s for a head;
 * 500 B/s after 10 s, as Apache's mod_reqtimeout.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  idleTimeout: 60_000,
  maxConnectionsPerAddress: 128,
  maxConnections: connectionsFor(openFileLimit()),
  headersTimeout: 10_000,
  minBodyRate: 500,
  bodyRateGrace: 10_000,
};

// Proxies commonly close a connection silent for 30-60 s; a stream speaks more often.
const HEARTBEAT_MAX = 15_000;

const REFUSAL_BODY = JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'too many connections from one address: close some, or reuse them' }] });
/** The answer a plain-HTTP connection past its address's cap gets before it is closed, whatever it would have asked. */
const REFUSAL = [
  'HTTP/1.1 429 Too Many Requests',
  'Content-Type: application/json',
  'Retry-After: 1',
  'Connection: close',
  `Content-Length: ${REFUSAL_BODY.length}`,
  '',
  REFUSAL_BODY,
].join('\r\n');

const PLAIN_HTTP_BODY = 'Client sent an HTTP request to an HTTPS server: this port speaks HTTPS; use https:// in the URL.\n';
/** The answer to plain HTTP on the HTTPS port, in plain HTTP, as distribution and nginx give it: a readable 400, not an empty reply. */
const PLAIN_HTTP_ANSWER = [
  'HTTP/1.1 400 Bad Request',
  'Content-Type: text/plain; charset=utf-8',
  'Connection: close',
  `Content-Length: ${PLAIN_HTTP_BODY.length}`,
  '',
  PLAIN_HTTP_BODY,
].join('\r\n');

/**
 * Answers a plain HTTP request that reached the TLS layer (OpenSSL saw
 * "GET " or the like where a ClientHello belongs): the answer goes out
 * through the TCP socket under the TLS one, unencrypted, as the client
 * speaks. Node names that socket only as `_parent`; where it is missing,
 * the connection is just closed.
 */
function answerPlainHttp(socket: Socket): void {
  const tcp = (socket as { _parent?: unknown })._parent;
  if (tcp instanceof Object && 'end' in tcp && 'writable' in tcp && (tcp as Socket).writable) {
    (tcp as Socket).end(PLAIN_HTTP_ANSWER);
    // Not the TLS socket's destroy(): it would close the TCP socket before the answer is out.
    return;
  }
  socket.destroy();
}

/** The limits of one server, and the connections and responses it tracks to enforce them. */
export class Connections {
  readonly #limits: ConnectionLimits;
  /** Open connections by client key (clientKey: an IPv6 client by its /64). */
  readonly #perAddress = new Map<string, number>();
  /** The responses under way on each socket (more than one when requests are pipelined). */
  readonly #inFlight = new WeakMap<Socket, Set<ServerResponse>>();
  /** Sockets whose client error was handled: the parser reports again for every further chunk. */
  readonly #failed = new WeakSet<Socket>();
  readonly #watchdog: Watchdog;
  /** Whether a server applies the limits: a handler mounted elsewhere leaves its connections to that server. */
  #attached = false;

  /** @throws Error when a limit is not a number ≥ 0, or headersTimeout not above 0. */
  constructor(limits: Partial<ConnectionLimits> = {}) {
    const l = { ...DEFAULT_CONNECTION_LIMITS };
    for (const name of Object.keys(l) as (keyof ConnectionLimits)[]) {
      const value = limits[name] ?? DEFAULT_CONNECTION_LIMITS[name];
      if (!(value >= 0)) throw new Error(`${name} must be a number ≥ 0, not ${value}`);
      l[name] = value;
    }
    if (!(l.headersTimeout > 0)) throw new Error(`headersTimeout must be a number > 0, not ${l.headersTimeout}`);
    this.#limits = l;
    this.#watchdog = new Watchdog(l);
  }

  /** How often a long-lived response (an event stream) must send something so that the idle timeout spares it. */
  get heartbeatInterval(): number {
    const idle = this.#limits.idleTimeout;
    return idle > 0 ? Math.min(HEARTBEAT_MAX, Math.ceil(idle / 3)) : HEARTBEAT_MAX;
  }

  /**
   * What node:http and node:https take only as the server is created: the
   * TLS handshake's deadline, and how often Node checks request heads
   * against headersTimeout (by default every 30 s, which would stretch a
   * deadline of seconds to half a minute).
   */
  get serverOptions(): { handshakeTimeout: number; headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
    const head = this.#limits.headersTimeout;
    return {
      handshakeTimeout: head,
      headersTimeout: head,
      // No limit on a whole request: a large blob on a slow link may take
      // hours. A body that stalls or drips is cut by the watchdog instead.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(head / 4))),
    };
  }

  /**
   * Applies the limits to a server made with serverOptions: caps
   * connections as they are accepted (on an https server before their
   * handshake), arms the idle timeout and takes over client errors.
   */
  attach(server: Server | HttpsServer): void {
    this.#attached = true;
    server.timeout = this.#limits.idleTimeout;
    server.requestTimeout = 0;
    server.headersTimeout = this.#limits.headersTimeout;
    // Node closes a connection past this one as it accepts it, before any of its events.
    if (this.#limits.maxConnections > 0) server.maxConnections = this.#limits.maxConnections;
    const tls = 'setSecureContext' in server;
    // Before Node's own listener, which then finds a refused connection already destroyed.
    server.prependListener('connection', (socket: Socket) => this.#accept(socket, tls));
    if (tls) server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
    server.on('timeout', (socket: Socket) => this.#onTimeout(socket));
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(error, socket));
    server.on('close', () => this.#watchdog.close());
  }

  /**
   * Registers a request's response as under way on its socket, and, on a
   * server attached, watches that the client keeps it moving; until end().
   */
  begin(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    let responses = this.#inFlight.get(socket);
    if (responses === undefined) this.#inFlight.set(socket, (responses = new Set()));
    responses.add(res);
    if (this.#attached) this.#watchdog.watch(req, res);
  }

  /** The response of a request begun has closed (the handler's one 'close' listener says so, rather than one each here). */
  end(req: IncomingMessage, res: ServerResponse): void {
    this.#inFlight.get(req.socket)?.delete(res);
    if (this.#attached) this.#watchdog.answered(res);
  }

  /** Counts a connection against its address's cap, or closes it at once when it is over. */
  #accept(socket: Socket, tls: boolean): void {
    const max = this.#limits.maxConnectionsPerAddress;
    if (max <= 0) return;
    const key = clientKey(socket.remoteAddress ?? '');
    const open = this.#perAddress.get(key) ?? 0;
    if (open >= max) {
      // The answer is small enough for the kernel to take at once: it goes
      // out before the close, and the descriptor is freed now.
      if (!tls) socket.end(REFUSAL);
      socket.destroy();
      return;
    }
    this.#perAddress.set(key, open + 1);
    socket.once('close', () => {
      const left = (this.#perAddress.get(key) ?? 1) - 1;
      if (left <= 0) this.#perAddress.delete(key);
      else this.#perAddress.set(key, left);
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
    const waitingOnClient = (res: ServerResponse) => waitingOnBody(res.req) || waitingOnReader(res, socket);
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
    if (error.code === 'ERR_SSL_HTTP_REQUEST') {
      answerPlainHttp(socket);
      return;
    }
    const responses = [...(this.#inFlight.get(socket) ?? [])];
    if (responses.length === 0) {
      // A TLS failure (a handshake too slow, a renegotiation refused) is no HTTP to answer.
      const tlsFailure = /^ERR_(TLS|SSL)_/.test(error.code ?? '');
      if (error.code !== 'ECONNRESET' && !tlsFailure && socket.writable && !socket.writableEnded) {
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
