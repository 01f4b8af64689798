// The rooms of src/ and their doors: a room is entered only through its
// index.ts, and the arrows run one way (cli → server → store/blobstore,
// blobstore → store; server → notify → store). Read from the import statements of every source file.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');

/** What each room may import from other rooms (through their doors only). */
const MAY_USE: Record<string, string[]> = {
  store: [],
  blobstore: ['store'],
  // Webhooks: reads the store's event log and cursors, nothing else.
  notify: ['store'],
  server: ['store', 'blobstore', 'notify'],
  cli: ['store', 'blobstore', 'server', 'notify'],
  // The package entries: src/index.ts and src/postgres.ts, the store's face
  // to the world; src/server.ts, the server's.
  package: ['store', 'server'],
};

interface Import {
  from: string;
  target: string;
  /** `import type`, `export type`, or braces of `type` names only: erased by the compiler, nothing loaded. */
  typeOnly: boolean;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|mjs|js)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Every relative import (static, re-export or dynamic) of `file`, resolved to a path. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  const statements = /^(?:import|export)\s+(type\s+)?(?:([^;'"]*?)\s+from\s+)?'(\.{1,2}\/[^']+)'|\bimport\s*\(\s*'(\.{1,2}\/[^']+)'/gm;
  for (const match of text.matchAll(statements)) {
    const [, typeKeyword, clause, staticTarget, dynamicTarget] = match;
    const target = path.resolve(path.dirname(file), staticTarget ?? dynamicTarget).replace(/\.js$/, '.ts');
    found.push({ from: file, target, typeOnly: typeKeyword !== undefined || namesTypesOnly(clause) });
  }
  return found;
}

/** True for an import clause of braces whose every name is marked `type`. */
function namesTypesOnly(clause: string | undefined): boolean {
  const braces = clause === undefined ? null : /^\{([^}]*)\}$/.exec(clause.trim());
  if (braces === null) return false;
  const names = braces[1].split(',').map((name) => name.trim()).filter((name) => name !== '');
  return names.length > 0 && names.every((name) => name.startsWith('type '));
}

/** The import cycles among `imports`: one list of files per strongly connected set (Tarjan), each sorted. */
function cyclesOf(imports: Import[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, target } of imports) {
    if (!next.has(from)) next.set(from, []);
    next.get(from)!.push(target);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string) => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    for (const target of next.get(file) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (stack.includes(target)) low.set(file, Math.min(low.get(file)!, index.get(target)!));
    }
    if (low.get(file) !== index.get(file)) return;
    const members = stack.splice(stack.indexOf(file));
    if (members.length > 1 || (next.get(file) ?? []).includes(file)) cycles.push(members.map((member) => path.relative(ROOT, member)).sort());
  };
  for (const file of next.keys()) if (!index.has(file)) visit(file);
  return cycles;
}

/** The room of a file under src/: its first directory, or 'package' for the package entries at its top (index.ts, postgres.ts, server.ts). */
function roomOf(file: string): string | undefined {
  const relative = path.relative(SRC, file);
  if (relative.startsWith('..')) return undefined;
  const [first, ...rest] = relative.split(path.sep);
  return rest.length === 0 ? 'package' : first;
}

function isDoor(file: string): boolean {
  const relative = path.relative(SRC, file);
  return relative === 'index.ts' || /^[^/]+\/index\.ts$/.test(relative.split(path.sep).join('/'));
}

const show = ({ from, target }: Import) => `${path.relative(ROOT, from)} → ${path.relative(ROOT, target)}`;
const sourceImports = filesUnder(SRC).flatMap(importsOf);

describe('the rooms of src/', () => {
  it('enter another room only through its index.ts', () => {
    const crossings = sourceImports.filter(({ from, target }) => {
      const there = roomOf(target);
      return there !== roomOf(from) && !isDoor(target);
    });
    expect(crossings.map(show)).toEqual([]);
  });

  it('import only the rooms their arrows point to: the store nothing, the server no CLI, no room a package entry', () => {
    const against = sourceImports.filter(({ from, target }) => {
      const here = roomOf(from)!;
      const there = roomOf(target);
      if (there === undefined || there === here) return false;
      // A room reaches the store through the store's own index.ts, never
      // through a package entry: one way in.
      return !(MAY_USE[here] ?? []).includes(there);
    });
    expect(against.map(show)).toEqual([]);
  });

  it('leave the database engines to the store: src/cli imports neither better-sqlite3 nor postgres', () => {
    const engines = filesUnder(path.join(SRC, 'cli')).filter((file) => /from '(?:better-sqlite3|postgres)'|import\('(?:better-sqlite3|postgres)'\)/.test(readFileSync(file, 'utf8')));
    expect(engines.map((file) => path.relative(ROOT, file))).toEqual([]);
  });

  it('has no room this test does not know', () => {
    const rooms = new Set(filesUnder(SRC).map((file) => roomOf(file)!));
    expect([...rooms].filter((room) => !(room in MAY_USE))).toEqual([]);
  });
});

/** Every import specifier (static, re-export or dynamic) of `file`, as written. */
function specifiersOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'([^']+)'/gm)].map((match) => match[1]);
}

describe('the blob store', () => {
  const BLOBSTORE = path.join(SRC, 'blobstore');
  const STORE_DOOR = path.join(SRC, 'store', 'index.ts');
  const files = filesUnder(BLOBSTORE);
  const backendOf = (file: string) => {
    const [first, ...rest] = path.relative(BLOBSTORE, file).split(path.sep);
    return rest.length === 0 ? undefined : first;
  };
  // The contract and its shared rules: the files at src/blobstore/'s root, but its door.
  const isContract = (file: string) => path.dirname(file) === BLOBSTORE && path.basename(file) !== 'index.ts';

  // The S3 backend's client library, which only it may name.
  const PACKAGES: Record<string, string[]> = { s3: ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'] };

  it('has backends that import only node built-ins, their own client library, the contract at its root and the store\'s door', () => {
    const against = files
      .filter((file) => backendOf(file) !== undefined)
      .flatMap((file) =>
        specifiersOf(file)
          .filter((specifier) => {
            if (!specifier.startsWith('.')) return !specifier.startsWith('node:') && !(PACKAGES[backendOf(file)!] ?? []).includes(specifier);
            const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
            return !(isContract(target) || target === STORE_DOOR || backendOf(target) === backendOf(file));
          })
          .map((specifier) => `${path.relative(ROOT, file)} → ${specifier}`),
      );
    expect(against).toEqual([]);
  });

  it('has a contract that imports no backend', () => {
    const against = files.filter(isContract).flatMap((file) =>
      importsOf(file)
        .filter(({ target }) => !path.relative(BLOBSTORE, target).startsWith('..') && backendOf(target) !== undefined)
        .map(show),
    );
    expect(against).toEqual([]);
  });
});

const STORE = path.join(SRC, 'store');
const BACKENDS = ['sqlite', 'postgres'];

/** Where a file of src/store sits: 'root' for the contract and what the backends share, else its folder. */
function storePart(file: string): string | undefined {
  const relative = path.relative(STORE, file);
  if (relative.startsWith('..')) return undefined;
  const parts = relative.split(path.sep);
  return parts.length === 1 ? (parts[0] === 'index.ts' ? 'index' : 'root') : parts[0];
}

describe('the store: a contract and its backends', () => {
  const storeImports = sourceImports.filter(({ from, target }) => storePart(from) !== undefined && storePart(target) !== undefined);

  it('keeps sqlite/ and postgres/ apart: neither imports the other', () => {
    const crossed = storeImports.filter(({ from, target }) => {
      const here = storePart(from)!;
      const there = storePart(target)!;
      return BACKENDS.includes(here) && BACKENDS.includes(there) && here !== there;
    });
    expect(crossed.map(show)).toEqual([]);
  });

  it('lets only migrate/ and the store\'s index.ts import a backend; the root files import none', () => {
    const reaching = storeImports.filter(({ from, target }) => {
      const here = storePart(from)!;
      const there = storePart(target)!;
      return BACKENDS.includes(there) && here !== there && here !== 'migrate' && here !== 'index';
    });
    expect(reaching.map(show)).toEqual([]);
  });

  it('lets no backend import migrate/', () => {
    const intoMigrate = storeImports.filter(({ from, target }) => BACKENDS.includes(storePart(from)!) && storePart(target) === 'migrate');
    expect(intoMigrate.map(show)).toEqual([]);
  });
});

describe('the modules of src/', () => {
  it('import each other in no cycle: every module loads after all it imports', () => {
    expect(cyclesOf(sourceImports.filter((found) => !found.typeOnly))).toEqual([]);
  });

  it('name each other in no cycle of types either, but in the SQLite backend', () => {
    // The backend's concerns take the StoreContext, which holds every
    // concern's prepared statements: their types name each other by design.
    const sqlite = path.join(SRC, 'store', 'sqlite') + path.sep;
    const outside = sourceImports.filter(({ from, target }) => !(from.startsWith(sqlite) && target.startsWith(sqlite)));
    expect(cyclesOf(outside)).toEqual([]);
  });
});

describe('bench/', () => {
  it('never imports from test/', () => {
    const fromBench = filesUnder(path.join(ROOT, 'bench')).flatMap(importsOf);
    const intoTest = fromBench.filter(({ target }) => !path.relative(path.join(ROOT, 'test'), target).startsWith('..'));
    expect(intoTest.map(show)).toEqual([]);
  });
});
