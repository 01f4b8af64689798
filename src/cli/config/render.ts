// What the options table is written out as: the option part of `regmeta
// serve --help`, the table in docs/registry.md, and --print-config's YAML.

import { Document, isCollection } from 'yaml';
import type { LoadedConfig } from './load.js';
import { MASK } from './kinds.js';
import { negated } from './load.js';
import { META_OPTIONS, OPTIONS, type OptionInfo } from './options.js';

/** The flag as written in help and docs: `--listen <host:port>`, `--read-only, --no-read-only`. */
function flagText(o: OptionInfo): string {
  if (o.kind.flagOnly) return `--${o.flagName}, --${negated(o.flagName)}`;
  return `--${o.flagName}${o.arg ? ` <${o.arg}>` : ''}`;
}

/** The default as written in help and docs. */
function defaultText(o: OptionInfo): string {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.default === undefined) return 'none';
  const shown = o.kind.format(o.default);
  return Array.isArray(shown) ? (shown.length === 0 ? 'none' : shown.join(', ')) : String(shown);
}

/** `text` in lines of at most `width` columns, each indented by `indent` spaces. */
function wrap(text: string, indent: number, width = 78): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.map((l) => `${' '.repeat(indent)}${l}`).join('\n');
}

/** The options part of --help: each option's flag, variable and key, then its help line and default. */
export function optionsHelp(): string {
  const meta = [
    `  --${META_OPTIONS.config.flag} <${META_OPTIONS.config.arg}>  (${META_OPTIONS.config.env})\n${wrap(META_OPTIONS.config.help, 6)}`,
    `  --${META_OPTIONS.printConfig.flag}\n${wrap(META_OPTIONS.printConfig.help, 6)}`,
  ];
  const lines = OPTIONS.map((o) => `  ${flagText(o)}  (${o.env}, ${o.key})\n${wrap(`${o.help}; default ${defaultText(o)}`, 6)}`);
  return [...meta, ...lines].join('\n');
}

/** The table of every option in docs/registry.md, in Markdown. */
export function optionsMarkdown(): string {
  const rows = [
    '| flag | environment | config key | default | what it does |',
    '| --- | --- | --- | --- | --- |',
    `| \`--${META_OPTIONS.config.flag} <${META_OPTIONS.config.arg}>\` | \`${META_OPTIONS.config.env}\` | — | none | ${META_OPTIONS.config.help.replace(' (see below)', '')} |`,
    `| \`--${META_OPTIONS.printConfig.flag}\` | — | — | | ${META_OPTIONS.printConfig.help} |`,
    ...OPTIONS.map((o) => {
      // A value in code type, words (a computed default, "none: …") as words.
      const shown = o.defaultText === undefined && o.default !== undefined && !(Array.isArray(o.default) && o.default.length === 0) ? `\`${defaultText(o)}\`` : defaultText(o);
      return `| \`${flagText(o)}\` | \`${o.env}\` | \`${o.key}\` | ${shown} | ${o.help.replace(/\|/g, '\\|')} |`;
    }),
  ];
  return `${rows.join('\n')}\n`;
}

function sourceText(o: OptionInfo, loaded: LoadedConfig): string {
  switch (loaded.sources[o.key]) {
    case 'flag':
      // A boolean's flag sets true, its --no- form false.
      return `from --${o.kind.flagOnly && getIn(loaded, o) === false ? negated(o.flagName) : o.flagName}`;
    case 'environment':
      return `from ${o.env}`;
    case 'file':
      return `from ${loaded.file}`;
    default:
      return 'default';
  }
}

function getIn(loaded: LoadedConfig, o: OptionInfo): unknown {
  return o.path.reduce<any>((node, part) => node?.[part], loaded.config);
}

/**
 * The effective configuration as YAML that --config reads back: each value
 * with where it came from as a comment, secrets masked, unset options null.
 * `options` is the table (a test's own, to see secrets masked).
 */
export function printableConfig(loaded: LoadedConfig, options: readonly OptionInfo[] = OPTIONS): string {
  const plain: Record<string, any> = {};
  for (const o of options) {
    const value = getIn(loaded, o);
    const shown = value === undefined ? null : o.secret ? MASK : o.kind.format(value);
    const [head, tail] = o.path;
    if (tail === undefined) plain[head] = shown;
    else (plain[head] ??= {})[tail] = shown;
  }
  const doc = new Document(plain);
  doc.commentBefore = ' regmeta serve: the effective configuration (flag > environment > file > default)';
  for (const o of options) {
    const node = doc.getIn(o.path, true) as { comment?: string; flow?: boolean };
    node.comment = ` ${sourceText(o, loaded)}`;
    if (isCollection(node)) {
      // A list of mappings (mirrors, webhooks) one entry a line; anything else on one line.
      const entries = (node.items as unknown[]).filter((item) => isCollection(item));
      node.flow = entries.length === 0;
      for (const entry of entries) if (isCollection(entry)) entry.flow = true;
    }
  }
  // No folding: a mirror or a webhook stays on its line, however long.
  return doc.toString({ lineWidth: 0 });
}
