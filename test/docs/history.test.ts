// The docs, sources, tests and benches say what is, not how it came to be:
// no issue numbers (a tracker's history belongs in commit messages), and the
// docs link only to files and headings that exist.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, docFiles, prose, ROOT } from './markdown.js';

/** The word for a tracker entry, singular or plural, then a number (optionally after #), in any case; built from parts so that this file does not match itself. */
const ISSUE_NUMBER = new RegExp(`\\b${'iss'}ues?\\s*#?\\d+`, 'i');
const SELF = path.relative(ROOT, import.meta.filename);

/** Every file under `dir` (relative to the repository), recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const file = `${dir}/${name}`;
    return statSync(path.join(ROOT, file)).isDirectory() ? filesUnder(file) : [file];
  });
}

describe('the repository', () => {
  it('names no issue numbers in README, docs/, src/, test/ or bench/', () => {
    const files = [...docFiles(), ...['src', 'test', 'bench'].flatMap(filesUnder)].filter((file) => file !== SELF);
    expect(files.length).toBeGreaterThan(100);
    const found = files.flatMap((file) =>
      readFileSync(path.join(ROOT, file), 'utf8')
        .split('\n')
        .flatMap((line, i) => (ISSUE_NUMBER.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });
});

describe('the docs', () => {
  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const file of docFiles()) {
      prose(file).forEach((line, i) => {
        for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
          const [where, anchor] = target.split('#') as [string, string | undefined];
          const linked = where === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), where));
          if (!existsSync(path.join(ROOT, linked))) broken.push(`${file}:${i + 1}: ${target} (no such file)`);
          else if (anchor !== undefined && !anchors(linked).has(anchor)) broken.push(`${file}:${i + 1}: ${target} (no such heading)`);
        }
      });
    }
    expect(broken).toEqual([]);
  });
});
