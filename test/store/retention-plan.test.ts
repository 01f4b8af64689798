// Retention's plan as a function of what a repository holds: each keep
// condition, the first rule that matches, immutable tags, and the manifests
// the garbage collector's rule frees once the tags go (an index before its
// children, a subject before its referrers), with the rules' checks.

import { describe, expect, it } from 'vitest';
import { planRepository } from '../../src/store/retention-plan.js';
import { compileRetentionRules, type RetentionRule } from '../../src/store/retention-rules.js';
import type { ManifestLinks, RepositoryLinks, TagLink } from 'regmeta';
import { StoreError } from 'regmeta';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 1);
const daysAgo = (d: number) => new Date(NOW - d * DAY);
const digest = (name: string) => `sha256:${Buffer.from(name).toString('hex').padEnd(64, '0').slice(0, 64)}`;

/** An image pushed `d` days ago. */
const image = (name: string, d: number, extra: Partial<ManifestLinks> = {}): ManifestLinks => ({ digest: digest(name), pushedAt: daysAgo(d), children: [], ...extra });
/** A tag set `d` days ago on `name`. */
const tag = (t: string, name: string, d: number, pulled?: number): TagLink => ({
  tag: t,
  digest: digest(name),
  updatedAt: daysAgo(d),
  ...(pulled === undefined ? {} : { pulledAt: daysAgo(pulled) }),
});

function plan(links: RepositoryLinks, keep: RetentionRule['keep'], immutable: RegExp[] = []) {
  const [rule] = compileRetentionRules([{ repositories: 'acme/*', keep }], DAY);
  return planRepository('acme/app', links, rule, immutable, NOW);
}
const removedTags = (p: ReturnType<typeof plan>) => p.tags.map((t) => t.tag).sort();
const removedManifests = (p: ReturnType<typeof plan>) => p.manifests.map((m) => m.digest);

// Five images, one tag each, pushed 1 to 5 days ago (a newest).
const five: RepositoryLinks = {
  manifests: ['a', 'b', 'c', 'd', 'e'].map((n, i) => image(n, i + 1)),
  tags: ['v1.0', 'v1.1', 'latest', 'dev-1', 'dev-2'].map((t, i) => tag(t, 'abcde'[i], i + 1)),
};

describe('keep conditions', () => {
  it('newest keeps the N most recently pushed tags, ties by name', () => {
    expect(removedTags(plan(five, { newest: 2 }))).toEqual(['dev-1', 'dev-2', 'latest']);
    const tied: RepositoryLinks = { manifests: [image('a', 1)], tags: [tag('b', 'a', 1), tag('a', 'a', 1), tag('c', 'a', 1)] };
    expect(removedTags(plan(tied, { newest: 1 }))).toEqual(['b', 'c']);
  });

  it('orders a tag by the later of its last set and its manifest\'s last push', () => {
    const retagged: RepositoryLinks = { manifests: [image('a', 1), image('old', 30)], tags: [tag('new', 'a', 1), tag('moved', 'old', 0)] };
    expect(removedTags(plan(retagged, { newest: 1 }))).toEqual(['new']);
  });

  it('tags keeps the tags matching a pattern: * a run, ? one character', () => {
    expect(removedTags(plan(five, { tags: ['latest', 'v1.?'] }))).toEqual(['dev-1', 'dev-2']);
    expect(removedTags(plan(five, { tags: ['dev-*'] }))).toEqual(['latest', 'v1.0', 'v1.1']);
  });

  it('pushedWithin keeps what was pushed within the duration', () => {
    expect(removedTags(plan(five, { pushedWithin: 2 * DAY }))).toEqual(['dev-1', 'dev-2', 'latest']);
  });

  it('pulledWithin keeps what was pulled within the duration; never pulled is not', () => {
    const pulled: RepositoryLinks = { manifests: five.manifests, tags: [tag('hot', 'a', 50, 1), tag('cold', 'b', 50, 40), tag('never', 'c', 50)] };
    const p = plan(pulled, { pulledWithin: 30 * DAY });
    expect(removedTags(p)).toEqual(['cold', 'never']);
    expect(p.tags.find((t) => t.tag === 'never')!.reason).toBe('never pulled');
    expect(p.tags.find((t) => t.tag === 'cold')!.reason).toBe('pulled 40d ago');
  });

  it('keeps a tag any condition keeps, and says why the others go', () => {
    const p = plan(five, { newest: 1, tags: ['latest'], pushedWithin: 2 * DAY });
    expect(removedTags(p)).toEqual(['dev-1', 'dev-2']);
    expect(p.tags.find((t) => t.tag === 'dev-2')!.reason).toBe('#5 newest, 1 kept; matches none of latest; pushed 5d ago');
    expect(p.tagsKept).toBe(3);
  });

  it('keeps every tag when the rule has no tag condition, and immutable tags always', () => {
    expect(removedTags(plan(five, { untaggedGrace: DAY }))).toEqual([]);
    expect(removedTags(plan(five, { newest: 0 }, [/^v1\..*$/]))).toEqual(['dev-1', 'dev-2', 'latest']);
  });
});

describe('manifests', () => {
  it('removes a manifest whose tags all go, past the grace, and not one a kept tag still names', () => {
    const links: RepositoryLinks = {
      manifests: [image('a', 10), image('b', 10), image('fresh', 0)],
      tags: [tag('a1', 'a', 10), tag('b1', 'b', 10), tag('b2', 'b', 0), tag('f', 'fresh', 0)],
    };
    const p = plan(links, { pushedWithin: DAY / 2, untaggedGrace: DAY });
    expect(removedTags(p)).toEqual(['a1', 'b1']);
    expect(removedManifests(p)).toEqual([digest('a')]);
    expect(p.manifests[0].reason).toBe('its tags go; pushed 10d ago, grace 1d');
  });

  it('removes already untagged manifests past the rule\'s grace (default: the plan\'s)', () => {
    const links: RepositoryLinks = { manifests: [image('old', 3), image('young', 0.5)], tags: [] };
    expect(removedManifests(plan(links, {}))).toEqual([digest('old')]);
    expect(removedManifests(plan(links, { untaggedGrace: 7 * DAY }))).toEqual([]);
    expect(removedManifests(plan(links, { untaggedGrace: 0 }))).toEqual([digest('old'), digest('young')].sort());
  });

  it('removes an index before its children, and keeps a child another index or a kept tag needs', () => {
    const links: RepositoryLinks = {
      manifests: [
        image('index', 10, { children: [digest('amd64'), digest('arm64'), digest('shared')] }),
        image('other', 10, { children: [digest('shared')] }),
        image('amd64', 10),
        image('arm64', 10),
        image('shared', 10),
      ],
      tags: [tag('old', 'index', 10), tag('keep', 'other', 10), tag('arm', 'arm64', 10)],
    };
    const p = plan(links, { tags: ['keep', 'arm'] });
    expect(removedTags(p)).toEqual(['old']);
    expect(removedManifests(p)).toEqual([digest('index'), digest('amd64')]);
    expect(p.manifests[1].reason).toMatch(/^its index sha256:696e64657800… goes; pushed 10d ago/);
  });

  it('removes a subject before its referrers, and keeps the referrers of a present subject', () => {
    const links: RepositoryLinks = {
      manifests: [image('img', 10), image('sig', 10, { subject: digest('img') }), image('kept', 10), image('sbom', 10, { subject: digest('kept') })],
      tags: [tag('x', 'img', 10), tag('y', 'kept', 10)],
    };
    const p = plan(links, { tags: ['y'] });
    expect(removedManifests(p)).toEqual([digest('img'), digest('sig')]);
  });
});

describe('rules', () => {
  it('refuses malformed rules, naming each', () => {
    const bad = [
      { repositories: 'Acme/*', keep: { newest: 1 } },
      { repositories: 'acme/**x', keep: { newest: -1, tags: ['v 1'], pushedWithin: 'a week' } },
    ] as unknown as RetentionRule[];
    let error: unknown;
    try {
      compileRetentionRules(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('ARGUMENT_INVALID');
    const message = (error as StoreError).message;
    for (const part of ['retention[0].repositories', 'retention[1].repositories', 'retention[1].keep.newest', 'retention[1].keep.tags', 'retention[1].keep.pushedWithin']) {
      expect(message).toContain(part);
    }
  });
});
