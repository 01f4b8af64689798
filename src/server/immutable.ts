// An admin's move or delete of an immutable tag (the store's policy): the
// store does it in its transaction and events it with the reason; the
// server tells the operator too, a warning line naming the user, the
// repository, the tag and the rule. Only an admin's write to a repository a
// rule covers reads anything more: every other request pays nothing.

import type { RequestContext } from './http.js';

/** An immutable tag a write may override: where it points now, and the rule. */
interface Protected {
  digest: string;
  rule: string;
}

/**
 * The immutable tags among `tags` of `name` that this request may override,
 * read before its write: none unless an admin writes and a rule protects the tag.
 * Never throws: a tag that cannot be read counts as absent (only the
 * warning is lost; the store enforces the rule and events the override itself).
 */
export async function protectedTags(c: RequestContext, name: string, tags: readonly string[]): Promise<Map<string, Protected>> {
  const found = new Map<string, Protected>();
  const { immutable, store } = c.registry;
  if (immutable === undefined || c.ctx.admin !== true) return found;
  for (const tag of tags) {
    const rule = immutable(name, tag);
    if (rule === undefined) continue;
    const digest = await store.getTag(name, tag).then((d) => d.digest, () => undefined);
    if (digest !== undefined) found.set(tag, { digest, rule });
  }
  return found;
}

/**
 * The immutable tags on the manifest `digest` of `name` that an admin's delete of it overrides (see protectedTags).
 * Never throws: tags that cannot be looked up count as none, as in protectedTags.
 */
export async function protectedTagsOf(c: RequestContext, name: string, digest: string): Promise<Map<string, Protected>> {
  if (c.registry.immutable === undefined || c.ctx.admin !== true) return new Map();
  const tags = await c.registry.store.lookupTags(name, digest).catch(() => []);
  return protectedTags(c, name, tags);
}

/** Warns of each tag of `before` that the write, done, moved (to `digest`) or deleted (no `digest`). */
export function warnOverrides(c: RequestContext, name: string, before: ReadonlyMap<string, Protected>, digest?: string): void {
  for (const [tag, { digest: previous, rule }] of before) {
    if (digest === previous) continue;
    const what = digest === undefined ? `deleted (it pointed at ${previous})` : `moved from ${previous} to ${digest}`;
    c.registry.warn(`admin ${c.actor} overrode immutable tag ${name}:${tag} (rule ${rule}): ${what}`);
  }
}
