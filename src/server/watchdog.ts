// Watches each request under way for a client that holds it without
// progress: a body that stops arriving or drips slower than a minimum rate,
// an answer the client stops reading. One timer for the whole server checks
// them all a few times per limit.
//
// Why not only the socket's timeout: Node suppresses a socket's first timeout
// while a write is queued whose size changed since it was handed over (a
// partial write), and arms it again for a whole period, so an answer nobody
// reads was cut after twice the idle timeout, or later.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The limits the watchdog enforces, in ms and bytes per second; 0 turns one off. */
interface WatchLimits {
  idleTimeout: number;
  minBodyRate: number;
  bodyRateGrace: number;
}

interface Watch {
  req: IncomingMessage;
  res: ServerResponse;
  socket: Socket;
  /** The response has closed; the watch ends once the body is read too (Node reads the rest of a body no handler read). */
  answered: boolean;
  /** When the client last moved a byte, or the server last waited on something else (performance.now()). */
  since: number;
  /** The progress seen at the last check: bytes read, bytes written whole, bytes queued for the kernel. */
  read: number;
  written: number;
  queued: number;
  /** Milliseconds the server has waited on the body so far, and the socket's bytesRead when the request began. */
  waited: number;
  base: number;
  last: number;
}

/** Ticks per limit: a limit is enforced within a tick of its end. */
const TICKS_PER_LIMIT = 8;
const MAX_TICK = 1000;
const MIN_TICK = 25;

/** The requests under way on one server, and the timer that checks them. */
export class Watchdog {
  readonly #limits: WatchLimits;
  readonly #tick: number;
  readonly #watches = new Map<ServerResponse, Watch>();
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: WatchLimits) {
    this.#limits = limits;
    // A rate with no grace is checked from the first byte; a second's granularity does then.
    const bounds = [limits.idleTimeout, limits.minBodyRate > 0 ? Math.max(limits.bodyRateGrace, MAX_TICK) : 0].filter((ms) => ms > 0);
    this.#tick = bounds.length === 0 ? 0 : Math.min(MAX_TICK, Math.max(MIN_TICK, Math.floor(Math.min(...bounds) / TICKS_PER_LIMIT)));
  }

  /** Watches a request until it is answered and its body read, or its connection closes; `answered` ends the first part. */
  watch(req: IncomingMessage, res: ServerResponse): void {
    if (this.#tick === 0) return;
    const socket = req.socket;
    const now = performance.now();
    const read = socket.bytesRead;
    const watch: Watch = { req, res, socket, answered: false, since: now, read, written: socket.bytesWritten - socket.writableLength, queued: queuedBytes(socket), waited: 0, base: read, last: now };
    this.#watches.set(res, watch);
    this.#timer ??= setInterval(() => this.#check(), this.#tick).unref();
  }

  /** `res` has closed: its watch ends now, or once its request's body is read. */
  answered(res: ServerResponse): void {
    const watch = this.#watches.get(res);
    if (watch === undefined) return;
    watch.answered = true;
    if (watch.req.complete) this.#watches.delete(res);
  }

  /** Stops the timer; the watches end with their connections. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watches.clear();
  }

  #check(): void {
    const now = performance.now();
    for (const watch of this.#watches.values()) {
      if (watch.socket.destroyed || (watch.answered && watch.req.complete)) {
        this.#watches.delete(watch.res);
        continue;
      }
      if (this.#holdsOn(watch, now)) watch.socket.destroy();
    }
    if (this.#watches.size === 0) this.close();
  }

  /** Whether the client has held the request past a limit: no byte for the idle timeout, or a body too slow. */
  #holdsOn(watch: Watch, now: number): boolean {
    const { req, res, socket } = watch;
    const reading = waitingOnBody(req);
    const writing = !watch.answered && waitingOnReader(res, socket);
    const progress = progressOf(socket);
    const moved = progress.read !== watch.read || progress.written !== watch.written || progress.queued !== watch.queued;
    Object.assign(watch, progress);
    if (moved || !(reading || writing)) watch.since = now;
    if (reading) watch.waited += now - watch.last;
    watch.last = now;
    const { idleTimeout, minBodyRate, bodyRateGrace } = this.#limits;
    if (idleTimeout > 0 && now - watch.since >= idleTimeout) return true;
    // As Apache's mod_reqtimeout: the grace, plus a second for every minBodyRate bytes received.
    return reading && minBodyRate > 0 && watch.waited > bodyRateGrace + ((progress.read - watch.base) / minBodyRate) * 1000;
  }
}

/** Bytes read, bytes whose write has completed, and bytes handed over but not yet taken by the kernel. */
function progressOf(socket: Socket): { read: number; written: number; queued: number } {
  return { read: socket.bytesRead, written: socket.bytesWritten - socket.writableLength, queued: queuedBytes(socket) };
}

/** Whether the server reads `req`'s body and has read all that came: it waits on the client to send more. */
export function waitingOnBody(req: IncomingMessage): boolean {
  return !req.complete && req.readableFlowing === true && req.readableLength === 0;
}

/** Whether `res` has bytes out that the client has not taken: the server waits on the client to read. */
export function waitingOnReader(res: ServerResponse, socket: Socket): boolean {
  return res.headersSent && !res.writableFinished && (socket.writableLength > 0 || queuedBytes(socket) > 0);
}

/**
 * Bytes handed to the socket's handle and not yet taken by the kernel; for
 * TLS, the encrypted bytes under it too. Node keeps this on its handles
 * (`writeQueueSize`), not in the public API: where it is missing, progress
 * is seen when a whole write completes.
 */
function queuedBytes(socket: Socket): number {
  // Read on every request: no array or closure made per call.
  return writeQueueSize(socket) + writeQueueSize((socket as { _parent?: unknown })._parent);
}

function writeQueueSize(s: unknown): number {
  const value = (s as { _handle?: { writeQueueSize?: unknown } } | undefined)?._handle?.writeQueueSize;
  return typeof value === 'number' ? value : 0;
}
