// requestPath: the fast path for plain paths must agree with URL parsing on
// every target, plain or not.

import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/server/http.js';
import { RequestState, requestPath } from '../../src/server/request.js';

/** What the server answered before the fast path: the path URL parsing makes, when it is the path sent. */
function reference(target: string): string {
  let url: URL;
  try {
    url = new URL(target, 'http://registry.invalid');
  } catch {
    return 'NAME_INVALID';
  }
  return target.startsWith('/') && target.split('?')[0] === url.pathname ? url.pathname : 'NAME_INVALID';
}

function fast(target: string): string {
  const c = new RequestState({ url: target } as IncomingMessage, undefined as never, undefined as never);
  try {
    return requestPath(c as RequestContext);
  } catch (error) {
    return (error as { code: string }).code;
  }
}

describe('requestPath', () => {
  it('agrees with URL parsing on paths with dot segments, encodings, hosts and odd characters', () => {
    const targets = [
      '/v2/', '/v2/a/b/manifests/latest', '/v2/a/blobs/sha256%3Aabc', '/v2/a/./b', '/v2/a/../b', '/v2/a/..', '/v2/a/.', '/v2/a/...',
      '/v2/.hidden/x', '/v2/a/%2e%2E/b', '/v2/a/%2E/b', '/v2/a%2F..%2Fb', '//evil/v2/', '/v2/a b', '/v2/a\\b', '/v2/ä', '/v2/a#x',
      '/v2/a?x=1&y=/../', '/v2/a|b', '/v2/a^b', '/v2/a%zz', '*', 'http://x/v2/', '', '/v2/a%00b',
    ];
    for (const target of targets) expect(fast(target), target).toBe(reference(target));
  });

  it('agrees with URL parsing on thousands of random targets', () => {
    const alphabet = ['a', 'b', '/', '/', '.', '.', '%', '2', 'e', 'E', '?', '#', ' ', '\\', 'ä', '~', ':', '@', '|', '"', '\t'];
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < 5000; i++) {
      let target = '/';
      for (let n = Math.floor(random() * 12); n > 0; n--) target += alphabet[Math.floor(random() * alphabet.length)];
      expect(fast(target), JSON.stringify(target)).toBe(reference(target));
    }
  });

  it('parses the query only when a handler asks for it', () => {
    const c = new RequestState({ url: '/v2/a/tags/list?n=5' } as IncomingMessage, undefined as never, undefined as never);
    expect(requestPath(c)).toBe('/v2/a/tags/list');
    expect(c.url.searchParams.get('n')).toBe('5');
  });
});
