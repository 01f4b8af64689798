// The orchestrator's probes, outside the distribution spec: Kubernetes'
// convention (https://kubernetes.io/docs/reference/using-api/health-checks/),
// answered before authentication and the access rules, with JSON.

import { sendJson, type RequestContext } from '../http.js';

// A probe's answer is about this moment: no cache may keep it.
const NO_STORE = { 'Cache-Control': 'no-store' };

/** GET /healthz — the process is alive and answers: always 200 `{"status":"ok"}`. */
export function healthz(c: RequestContext): void {
  sendJson(c, 200, { status: 'ok' }, NO_STORE);
}

/**
 * GET /readyz — the registry can take a push now: 200 when every check
 * passed, 503 when one failed, with each check's outcome (src/server/readiness.ts).
 */
export async function readyz(c: RequestContext): Promise<void> {
  const report = await c.registry.readiness.check();
  sendJson(c, report.status === 'ok' ? 200 : 503, report, NO_STORE);
}
