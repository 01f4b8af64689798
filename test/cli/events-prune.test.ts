// `regmeta events prune`: the dry run counts and changes nothing, the prune
// deletes what was published before the cut and prints the horizon, seqs go
// on above it after the whole log is pruned, and its --help is its table.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { asyncStore, openStore } from 'regmeta';
import { eventsPrune } from '../../src/cli/commands/events-prune.js';
import { gcEvent, tickPast } from '../store/fixtures.js';
import { isOneLineError, regmeta, tempDir } from './run.js';

/** Two events, a cut after them, and a third: in a new data directory. */
async function seeded(): Promise<{ data: string; cut: string }> {
  const data = tempDir();
  const store = asyncStore(openStore(join(data, 'metadata.db')));
  await store.createEvent(gcEvent('a'));
  const b = await store.createEvent(gcEvent('b'));
  tickPast(b.publishedAt.getTime());
  const cut = new Date().toISOString();
  tickPast(Date.parse(cut));
  await store.createEvent(gcEvent('c'));
  await store.close();
  return { data, cut };
}

const eventCount = async (data: string) => JSON.parse((await regmeta(['events', '--data', data, '--json'])).stdout).length as number;

describe('regmeta events prune', () => {
  it('counts with --dry-run, then prunes what was published before the cut and prints the horizon', async () => {
    const { data, cut } = await seeded();
    const dry = await regmeta(['events', 'prune', '--before', cut, '--dry-run', '--json', '--data', data]);
    expect([dry.status, dry.stderr]).toEqual([0, '']);
    expect(JSON.parse(dry.stdout)).toEqual({ before: cut, dryRun: true, pruned: 2, horizon: 2, horizonAt: expect.any(String) });
    expect(await eventCount(data)).toBe(3);

    const run = await regmeta(['events', 'prune', '--before', cut, '--data', data]);
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toMatch(new RegExp(`^pruned 2 events published before ${cut.replace(/\./g, '\\.')}; horizon: seq 2, published \\S+ \\(the log holds only the events after it\\)\\n$`));
    expect(await eventCount(data)).toBe(1);
    const again = await regmeta(['events', 'prune', '--before', cut, '--json', '--data', data]);
    expect(JSON.parse(again.stdout)).toMatchObject({ pruned: 0, horizon: 2 });
  });

  it('keeps seqs above the horizon after the whole log goes', async () => {
    const { data } = await seeded();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const all = JSON.parse((await regmeta(['events', 'prune', '--before', future, '--json', '--data', data])).stdout);
    expect(all).toMatchObject({ pruned: 3, horizon: 3 });
    const store = asyncStore(openStore(join(data, 'metadata.db')));
    await store.createEvent(gcEvent('d'));
    await store.close();
    const next = JSON.parse((await regmeta(['events', 'prune', '--before', future, '--json', '--data', data])).stdout);
    expect(next).toMatchObject({ pruned: 1, horizon: 4 });
  });

  it('needs --before, as a time or a duration ago: one line and exit 2', async () => {
    const data = tempDir();
    for (const args of [[], ['--before', 'last week']]) {
      const run = await regmeta(['events', 'prune', ...args, '--data', data]);
      expect(run.status).toBe(2);
      expect(isOneLineError(run.stderr)).toBe(true);
    }
  });

  it('offers in --help exactly the options it parses', async () => {
    const help = await regmeta(['events', 'prune', '--help']);
    expect(help.status).toBe(0);
    const offered = [...help.stdout.slice(help.stdout.indexOf('\noptions')).matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]).sort();
    expect(offered).toEqual(Object.keys(eventsPrune.options).sort());
  });
});
