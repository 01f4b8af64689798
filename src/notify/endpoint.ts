// A webhook endpoint as delivery uses it, and as it may be shown. Webhook
// URLs carry secrets: in the path (Slack's, Discord's), in the query, or as
// `user:password@`. What is shown (metrics, logs, errors, status) is the
// endpoint's label: the name the operator gave it, else scheme://host:port.

/** One receiver of notifications. */
export interface NotifyEndpoint {
  /**
   * http or https. `user:password@` in it is sent as Basic authorization.
   * Without a name, the key of its cursor in the store (credentials left out).
   */
  url: string;
  /**
   * What metrics, logs and errors call it (letters, digits, `.`, `_`, `-`;
   * default scheme://host:port, as the URL's path and query may hold a
   * secret), and the key of its cursor: the URL may then change and
   * delivery resumes where it was.
   */
  name?: string;
  /** Sent with every POST (an Authorization header, say). */
  headers?: Record<string, string>;
  /** When set, every body is signed: `X-Regmeta-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
  secret?: string;
  /** Milliseconds a POST, its answer included, may take before it counts as failed (default DEFAULT_NOTIFY_LIMITS.timeout). */
  timeout?: number;
}

/** What an endpoint's `name` may be: never a URL, so that a cursor's key says which it is. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** An endpoint ready for delivery. */
export interface Target {
  /** Its cursor's key in the store: the name, else the URL without credentials (as written otherwise). */
  key: string;
  label: string;
  /** Without credentials: fetch refuses a URL that has them. */
  url: string;
  /** The endpoint's headers, and Basic authorization from the URL's credentials. */
  headers: Record<string, string>;
  secret?: string;
  timeout?: number;
  /** What of the endpoint must never be shown: its URL's credentials, path and query, in every spelling. */
  hidden: string[];
}

/**
 * The endpoints ready for delivery.
 * @throws TypeError as toTarget does, and for two endpoints on one cursor
 * (the same name, or the same URL unnamed).
 */
export function toTargets(endpoints: readonly NotifyEndpoint[]): Target[] {
  const targets = endpoints.map(toTarget);
  const keys = new Set<string>();
  for (const target of targets) {
    if (keys.has(target.key)) throw new TypeError(`${target.label}: ${target.key === target.label ? 'named twice' : 'the same URL twice'}`);
    keys.add(target.key);
  }
  return targets;
}

/** What is wrong with `endpoints` in one line (no secret in it), or undefined: what the Notifier would refuse. */
export function endpointsProblem(endpoints: readonly NotifyEndpoint[]): string | undefined {
  try {
    toTargets(endpoints);
    return undefined;
  } catch (error) {
    if (error instanceof TypeError) return error.message;
    throw error;
  }
}

/**
 * The endpoint with its URL's credentials turned into an Authorization header.
 * `index` (from 0) names an endpoint whose URL cannot be shown.
 * @throws TypeError for a URL that is not http(s), a name that is not
 * letters, digits, `.`, `_` and `-` (up to 64), or credentials in the URL
 * beside an Authorization header; the message never holds a secret.
 */
function toTarget(endpoint: NotifyEndpoint, index: number): Target {
  const parsed = URL.canParse(endpoint.url) ? new URL(endpoint.url) : undefined;
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new TypeError(`endpoint ${index + 1}: not an http or https URL`);
  }
  if (endpoint.name !== undefined && !NAME.test(endpoint.name)) {
    throw new TypeError(`endpoint ${index + 1}: name: letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit`);
  }
  const label = endpoint.name ?? `${parsed.protocol}//${parsed.host}`;
  const headers = { ...endpoint.headers };
  const hidden = [endpoint.url, parsed.href, `${parsed.pathname}${parsed.search}`, parsed.search];
  let url = endpoint.url;
  if (parsed.username !== '' || parsed.password !== '') {
    if (Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) {
      throw new TypeError(`${label}: credentials in its URL and an Authorization header: give one`);
    }
    const user = decoded(parsed.username);
    const password = decoded(parsed.password);
    headers.Authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    hidden.push(parsed.password, password, `${parsed.username}:${parsed.password}`);
    parsed.username = '';
    parsed.password = '';
    url = parsed.href;
    hidden.push(url);
  }
  const target: Target = { key: endpoint.name ?? url, label, url, headers, hidden: hidden.filter((h) => h.length > 1).sort((a, b) => b.length - a.length) };
  if (endpoint.secret !== undefined) target.secret = endpoint.secret;
  if (endpoint.timeout !== undefined) target.timeout = endpoint.timeout;
  return target;
}

/** The URL's percent-encoding undone; as written when it is not valid. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A cursor's key as it may be shown: a name as it is, a URL as
 * scheme://host:port (its credentials, path and query left out).
 */
function endpointLabel(key: string): string {
  if (!URL.canParse(key)) return key;
  const url = new URL(key);
  return `${url.protocol}//${url.host}`;
}

/** The labels of several keys, those that would be the same told apart by " (2)", " (3)", … in order. */
export function endpointLabels(keys: readonly string[]): string[] {
  const seen = new Set<string>();
  return keys.map((key) => {
    let label = endpointLabel(key);
    for (let n = 2; seen.has(label); n++) label = `${endpointLabel(key)} (${n})`;
    seen.add(label);
    return label;
  });
}

/** `text` with every URL in it shown as its label: for messages recorded before, or from elsewhere. */
export function withoutUrls(text: string): string {
  return text.replace(/\bhttps?:\/\/[^\s"'<>]+/gi, (url) => endpointLabel(url));
}

/** `text` with what `target` hides replaced by its label, and any other URL by its label. */
export function scrub(text: string, target: Target): string {
  let out = text;
  for (const secret of target.hidden) out = out.split(secret).join(target.label);
  return withoutUrls(out);
}
