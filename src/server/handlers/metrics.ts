// GET /metrics: the Prometheus text exposition (https://prometheus.io/docs/instrumenting/exposition_formats/),
// not part of the distribution spec; distribution serves it on its debug
// address, zot on its main one. Here it is on both: the main listener (with
// logins, to admins only) and, with --metrics-listen, a listener of its own
// that asks nothing, for an address only the monitoring reaches.

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { unauthorized } from '../auth.js';
import { HttpError } from '../errors.js';
import type { RequestContext } from '../http.js';
import type { RegistryMetrics } from '../metrics.js';

async function answer(req: IncomingMessage, res: ServerResponse, metrics: RegistryMetrics): Promise<void> {
  const { contentType, body } = await metrics.scrape();
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * GET /metrics on the registry's listener. Without logins anyone may scrape;
 * with an htpasswd file only admins (as the event log of everyone is theirs).
 * @throws HttpError NOT_FOUND when the handler's metrics are off or not served
 * here; UNAUTHORIZED (anonymous) or DENIED (not an admin) with logins.
 */
export async function scrape(c: RequestContext): Promise<void> {
  const { metrics, logins } = c.registry;
  if (metrics === undefined || !metrics.endpoint) throw new HttpError('NOT_FOUND', 'no such endpoint');
  if (logins && !c.registry.isAdmin(c.actor)) {
    if (c.actor === '') throw unauthorized('metrics are for admins');
    throw new HttpError('DENIED', `user ${JSON.stringify(c.actor)} is not an admin: metrics are for admins`);
  }
  await answer(c.req, c.res, metrics);
}

/**
 * The request listener of the metrics' own address: GET or HEAD /metrics
 * answers the metrics with no credentials asked, anything else 404 or 405.
 * A failed scrape is a 500 with no detail; `onError` gets the detail.
 */
export function metricsListener(metrics: RegistryMetrics, onError: (error: unknown) => void): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const plain = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    if (path !== '/metrics') return plain(404, 'not found: the metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    answer(req, res, metrics).catch((error: unknown) => {
      onError(error);
      if (!res.headersSent) plain(500, 'the metrics could not be collected\n');
      else res.destroy();
    });
  };
}
