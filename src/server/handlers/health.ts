// The orchestrator's probes, outside the distribution spec: Kubernetes'
// convention (https://kubernetes.io/docs/reference/using-api/health-checks/),
// answered before authentication and the access rules, with JSON.

import { RETRY_AFTER_SECONDS } from '../errors.js';
import { sendJson, type RequestContext } from '../http.js';

// A probe's answer is about this moment: no cache may keep it.
const NO_STORE = { 'Cache-Control': 'no-store' };

/** GET /healthz — the process is alive and answers: always 200 `{"status":"ok"}`. */
export function healthz(c: RequestContext): void {
  sendJson(c, 200, { status: 'ok' }, NO_STORE);
}

/**
 * GET /readyz — the registry can take a push now: 200 when every check
 * passed, 503 with Retry-After when one failed or ran out of time, with each
 * check's outcome (src/server/readiness.ts).
 */
export async function readyz(c: RequestContext): Promise<void> {
  const report = await c.registry.readiness.check();
  if (report.status === 'ok') sendJson(c, 200, report, NO_STORE);
  else sendJson(c, 503, report, { ...NO_STORE, 'Retry-After': String(RETRY_AFTER_SECONDS) });
}
