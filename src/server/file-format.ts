// The reading of the operator's YAML and JSON files (the config file, the
// access rules) into plain values, bounded so that a hostile or broken file
// costs a moment and one line of error, never a stack overflow, an alias
// expansion of gigabytes, or time quadratic in its size.

import { Composer, CST, isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, Parser, type Document } from 'yaml';

/** What a file may hold: far beyond any real config, far below what recursion or memory notices. */
const FILE_FORMAT_LIMITS = {
  /** Levels of nesting of mappings and lists. */
  maxDepth: 64,
  /** YAML aliases: yaml's maxAliasCount, the budget of nodes an alias may expand to. */
  maxAliasCount: 100,
};

/** A file that does not parse, or that passes a limit; the message is one line. */
export class FileFormatError extends Error {
  override name = 'FileFormatError';
}

/**
 * The value a YAML (1.2) or JSON text holds. A YAML mapping's duplicate key
 * is an error.
 * @throws FileFormatError when it does not parse, is nested deeper than
 * FILE_FORMAT_LIMITS.maxDepth, or its aliases expand past maxAliasCount.
 */
export function parseFileText(text: string, format: 'yaml' | 'json'): unknown {
  if (format === 'json') {
    let value: unknown;
    try {
      // V8's JSON.parse does not recurse: depth is checked after it.
      value = JSON.parse(text);
    } catch (error) {
      throw new FileFormatError(`not valid JSON: ${(error as Error).message}`);
    }
    checkValueDepth(value);
    return value;
  }
  return parseYaml(text);
}

function tooDeep(where = ''): FileFormatError {
  return new FileFormatError(`nested deeper than ${FILE_FORMAT_LIMITS.maxDepth} levels${where}`);
}

/** Depth of a parsed value, walked without recursion. @throws FileFormatError past maxDepth. */
function checkValueDepth(root: unknown): void {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= FILE_FORMAT_LIMITS.maxDepth) throw tooDeep();
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
}

function parseYaml(text: string): unknown {
  // yaml's lexer is a loop; its parser and composer recurse once per level.
  checkNesting(text);
  const lines = new LineCounter();
  const tokens = new Parser(lines.addNewLine).parse(text);
  const docs = [...new Composer({ uniqueKeys: false }).compose(tokens, true, text.length)];
  const doc = docs[0];
  if (doc === undefined) return null;
  const error = doc.errors[0] ?? (docs.length > 1 ? { message: 'more than one document', pos: docs[1].range } : undefined);
  if (error !== undefined) throw new FileFormatError(`not valid YAML: ${error.message.split('\n')[0]}${at(lines, error.pos[0])}`);
  checkUniqueKeys(doc, lines);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: FILE_FORMAT_LIMITS.maxAliasCount });
  } catch (error) {
    // yaml's ReferenceError for aliases that expand past the budget.
    if (error instanceof ReferenceError) throw new FileFormatError(`aliases expand past maxAliasCount (${FILE_FORMAT_LIMITS.maxAliasCount}): not a config`);
    if (error instanceof RangeError) throw tooDeep();
    throw error;
  }
  checkValueDepth(value);
  return value;
}

const at = (lines: LineCounter, offset: number) => {
  const { line, col } = lines.linePos(offset);
  return ` at line ${line}, column ${col}`;
};

/** The lexer's markers of what follows: not source text. */
const MARKERS = new Set(['\u0002', '\u0018', '\u001f']);
/** Tokens that place no node of their own. */
const NOT_NODES = new Set(['space', 'newline', 'comment', 'map-value-ind', 'comma', 'anchor', 'tag', 'directive-line', 'doc-end']);

/**
 * A bound on the nesting from yaml's lexer, before anything recurses: flow
 * brackets counted, block levels as the columns on a stack where each node
 * starts. A value at its key's column (`a:` then `- b`) counts no level, so
 * the bound may be half the real depth; the exact check is on the value.
 * @throws FileFormatError past maxDepth.
 */
function checkNesting(text: string): void {
  const columns: number[] = [];
  let flow = 0;
  let offset = 0;
  let column = 0;
  for (const source of new Lexer().lex(text)) {
    if (MARKERS.has(source)) continue;
    const type = CST.tokenType(source);
    if (type === 'flow-seq-start' || type === 'flow-map-start') flow++;
    else if (type === 'flow-seq-end' || type === 'flow-map-end') flow = Math.max(0, flow - 1);
    else if (type === 'doc-start') columns.length = 0;
    if (flow === 0 || (flow === 1 && (type === 'flow-seq-start' || type === 'flow-map-start'))) {
      if (type === null || !NOT_NODES.has(type)) {
        // A block scalar's content comes as one token, its indentation first: the node starts after it.
        const blank = source.length - source.trimStart().length;
        const newline = source.lastIndexOf('\n', blank - 1);
        const start = blank === 0 ? column : newline === -1 ? column + blank : blank - newline - 1;
        while (columns.length > 0 && columns[columns.length - 1] > start) columns.pop();
        if (columns.at(-1) !== start) columns.push(start);
      }
    }
    // The outermost flow collection is on the column stack as well.
    if (columns.length + Math.max(0, flow - 1) > FILE_FORMAT_LIMITS.maxDepth) {
      const { line, col } = lineOf(text, offset);
      throw tooDeep(` at line ${line}, column ${col}`);
    }
    offset += source.length;
    const newline = source.lastIndexOf('\n');
    column = newline === -1 ? column + source.length : source.length - newline - 1;
  }
}

/** Line and column (1-based) of `offset`, counted once, for the one error. */
function lineOf(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

/**
 * A mapping's keys are unique: yaml's own check compares every pair of keys
 * (quadratic); this one keeps a set per mapping. Keys that are not scalars
 * are left to the reader of the value, which refuses them.
 * @throws FileFormatError naming the duplicate's place.
 */
function checkUniqueKeys(doc: Document.Parsed, lines: LineCounter): void {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isSeq(node)) for (const item of node.items) stack.push(item);
    if (!isMap(node)) continue;
    const seen = new Set<unknown>();
    for (const { key, value } of node.items) {
      if (isScalar(key)) {
        if (seen.has(key.value)) throw new FileFormatError(`not valid YAML: Map keys must be unique${at(lines, key.range?.[0] ?? 0)}`);
        seen.add(key.value);
      }
      if (!isAlias(value)) stack.push(value);
    }
  }
}
