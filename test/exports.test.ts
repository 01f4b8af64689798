// The surface of src/: a name is exported only when another file uses it, or
// when a package entry (src/index.ts, src/postgres.ts, src/server.ts) hands it
// to users; a room's index.ts re-exports only what some file imports through
// it; tests and benchmarks reach a room's internals by their own paths. Read
// with the compiler, which follows re-exports, `export *` and `import()`.

import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const ENTRIES = ['src/index.ts', 'src/postgres.ts', 'src/server.ts'];
/** Used from outside the sources: bin/regmeta.js imports the compiled CLI's main. */
const USED_ELSEWHERE = ['src/cli/main.ts#main'];

function loadProgram(): ts.Program {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  });
  if (config === undefined) throw new Error('cannot read tsconfig.json');
  return ts.createProgram(config.fileNames, config.options);
}

const program = loadProgram();
const checker = program.getTypeChecker();
const relative = (file: string) => path.relative(ROOT, file).split(path.sep).join('/');
const ourFiles = program.getSourceFiles().filter((file) => !file.isDeclarationFile && !file.fileName.includes('/node_modules/'));

/**
 * Every symbol each file names, with every re-export it passes through on the
 * way to the declaration. A re-export names the symbol it passes on, and is
 * itself an export that needs a user of its own.
 */
function namedSymbols(): Map<ts.Symbol, Set<string>> {
  const users = new Map<ts.Symbol, Set<string>>();
  const use = (symbol: ts.Symbol | undefined, file: string) => {
    for (let hops = 0; symbol !== undefined && hops < 50; hops++) {
      if (!users.has(symbol)) users.set(symbol, new Set());
      users.get(symbol)!.add(file);
      if (!(symbol.flags & ts.SymbolFlags.Alias)) return;
      symbol = checker.getImmediateAliasedSymbol(symbol);
    }
  };
  for (const source of ourFiles) {
    const file = relative(source.fileName);
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node)) use(checker.getSymbolAtLocation(node), file);
      // `const { a } = await import('./x.js')`: the property of the module's namespace.
      if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
        const name = node.propertyName ?? node.name;
        if (ts.isIdentifier(name)) use(checker.getTypeAtLocation(node.parent).getProperty(name.text), file);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return users;
}

/** `file#name` for each export of src/ that no other file uses, package entries aside. */
function unusedExports(): string[] {
  const users = namedSymbols();
  const unused: string[] = [];
  for (const source of ourFiles) {
    const file = relative(source.fileName);
    const module = checker.getSymbolAtLocation(source);
    if (!file.startsWith('src/') || ENTRIES.includes(file) || module === undefined) continue;
    for (const exported of checker.getExportsOfModule(module)) {
      const key = `${file}#${exported.name}`;
      const others = [...(users.get(exported) ?? [])].filter((user) => user !== file);
      const declared = exported.flags & ts.SymbolFlags.Alias ? undefined : exported;
      const published = declared !== undefined && publicSymbols().has(declared);
      if (others.length === 0 && !published && !USED_ELSEWHERE.includes(key)) unused.push(key);
    }
  }
  return unused;
}

let published: Set<ts.Symbol> | undefined;
/** What the package entries export, followed to the declarations. */
function publicSymbols(): Set<ts.Symbol> {
  published ??= new Set(
    ENTRIES.flatMap((entry) => {
      const module = checker.getSymbolAtLocation(program.getSourceFile(path.join(ROOT, entry))!)!;
      return checker.getExportsOfModule(module).map((symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol));
    }),
  );
  return published;
}

describe('the exports of src/', () => {
  it('are each used by another file, or are the package API', () => {
    expect(unusedExports()).toEqual([]);
  });

  it('are reached by tests and benchmarks by path or through a package entry, never through a room’s index.ts', () => {
    const throughDoors = ourFiles
      .filter((source) => /^(test|bench)\//.test(relative(source.fileName)))
      .flatMap((source) =>
        source.statements.filter(ts.isImportDeclaration).map((statement) => {
          const target = ts.resolveModuleName((statement.moduleSpecifier as ts.StringLiteral).text, source.fileName, program.getCompilerOptions(), ts.sys);
          const file = target.resolvedModule === undefined ? '' : relative(target.resolvedModule.resolvedFileName);
          return /^src\/[^/]+\/index\.ts$/.test(file) ? `${relative(source.fileName)} → ${file}` : undefined;
        }),
      )
      .filter((crossing) => crossing !== undefined);
    expect(throughDoors).toEqual([]);
  });
});
