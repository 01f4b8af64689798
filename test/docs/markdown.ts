// What the docs tests read of the Markdown: which files are the docs, their
// fenced examples marked runnable, their links and their headings' anchors.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** README.md and docs/*.md, as paths relative to the repository. */
export function docFiles(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/** A fenced example marked runnable. */
export interface Example {
  /** The document, relative to the repository. */
  file: string;
  /** The line of its opening fence, 1-based. */
  line: number;
  /** The fence's info string: ts or sh. */
  lang: string;
  /** What else it needs, from the marker: `<!-- runnable postgres -->` needs postgres. */
  needs: string[];
  code: string;
}

/** The marker: an HTML comment on the line before the fence, which GitHub does not show. */
const MARKER = /^<!-- runnable((?: [a-z]+)*) -->$/;

/**
 * The examples of `file` marked runnable, in document order.
 * @throws Error for a marker not followed by a fence, or a fence that never closes.
 */
export function runnableExamples(file: string): Example[] {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i]);
    if (marker === null) continue;
    const fence = /^```(\S+)$/.exec(lines[i + 1] ?? '');
    if (fence === null) throw new Error(`${file}:${i + 1}: a runnable marker must be followed by a fence`);
    const end = lines.indexOf('```', i + 2);
    if (end === -1) throw new Error(`${file}:${i + 2}: the fence never closes`);
    const needs = marker[1].split(' ').filter((word) => word !== '');
    examples.push({ file, line: i + 2, lang: fence[1], needs, code: `${lines.slice(i + 2, end).join('\n')}\n` });
    i = end;
  }
  return examples;
}

/** The text of `file` without its fenced blocks (links and headings live outside them). */
export function prose(file: string): string[] {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  let fenced = false;
  return lines.map((line) => {
    if (line.startsWith('```')) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

/** The anchors GitHub gives the headings of `file`: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
export function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(file)) {
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (heading === null) continue;
    const slug = heading[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}
