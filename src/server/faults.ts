// Faults the client cannot be told about but an operator must hear of, such
// as a linked blob whose file is gone: reported once per subject, not once
// per request, so a client retrying in a loop does not flood the log.

/** The request a fault happened in, as onError hears of it. */
export interface FaultContext {
  /** The request's id, as its log line and its response's X-Request-Id carry it. */
  requestId: string;
}

/** Reports each subject's fault once, remembering at most `limit` subjects. */
export class FaultsOnce {
  readonly #reported = new Set<string>();

  constructor(
    readonly report: (error: unknown, request?: FaultContext) => void,
    readonly limit = 10_000,
  ) {}

  /**
   * Reports `fault()`, with the request that met it, unless `subject` was
   * reported already; when full, the oldest subject is forgotten. Never throws.
   */
  once(subject: string, fault: () => unknown, request?: FaultContext): void {
    if (this.#reported.has(subject)) return;
    if (this.#reported.size >= this.limit) {
      // A Set iterates in insertion order: the first is the oldest.
      const oldest = this.#reported.values().next().value;
      if (oldest !== undefined) this.#reported.delete(oldest);
    }
    this.#reported.add(subject);
    try {
      this.report(fault(), request);
    } catch {
      // The operator's logger failing must not fail the client's request.
    }
  }
}
