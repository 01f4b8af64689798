// Access rules: which users (and anonymous clients) may pull, push and delete
// in which repositories, and who is an admin. Read from a YAML or JSON file
// (`--access`), checked whole at startup. Without rules the registry behaves
// as it always has: whoever is let in may do everything.
//
// Semantics: a union of grants. A user may do an action in a repository when
// any rule whose patterns match the repository names the user (or `*`, or
// `anonymous`) with that action; nothing else is allowed. Order does not
// matter and there are no deny rules, so no rule can hide another.

import { readFileSync } from 'node:fs';
import { compilePattern } from '../store/index.js';
import { FileFormatError, parseFileText } from './file-format.js';

/** What a rule grants. */
export type Action = 'pull' | 'push' | 'delete';

const ACTIONS: ReadonlySet<string> = new Set<Action>(['pull', 'push', 'delete']);

/** A rule as written in the file. */
export interface AccessRule {
  /** Repository patterns: `*` matches within one path segment, `**` any number of whole segments. */
  repositories: string[];
  /** User names; `*` is every authenticated user, `anonymous` a client without credentials. */
  users: string[];
  actions: Action[];
}

/** The rules file's content. */
export interface AccessRules {
  /** Users who may do everything everywhere and read every event. */
  admins?: string[];
  rules?: AccessRule[];
}

/** The rules do not hold together; `problems` has one line per problem, each naming its key. */
export class AccessRulesError extends Error {
  override name = 'AccessRulesError';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/** The user name that stands for a client without credentials. */
export const ANONYMOUS = 'anonymous';

interface CompiledRule {
  patterns: RegExp[];
  /** Each pattern's text up to its first `*`: every name it matches starts with that. */
  prefixes: string[];
  /** Each pattern's first segment, compiled: the namespaces (first path components) its names can be in. */
  namespaces: RegExp[];
  users: ReadonlySet<string>;
  everyUser: boolean;
  anonymous: boolean;
  actions: ReadonlySet<string>;
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The strings of a non-empty list, or a problem pushed for `key`. */
function names(value: unknown, key: string, problems: string[]): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && v !== '')) {
    problems.push(`${key}: expected a non-empty list of names, got ${JSON.stringify(value) ?? 'nothing'}`);
    return [];
  }
  return value as string[];
}

function compileRule(rule: unknown, key: string, problems: string[]): CompiledRule | undefined {
  if (!isMapping(rule)) {
    problems.push(`${key}: expected a mapping of repositories, users and actions`);
    return undefined;
  }
  for (const field of Object.keys(rule)) {
    if (!['repositories', 'users', 'actions'].includes(field)) problems.push(`${key}.${field}: unknown key (repositories, users, actions)`);
  }
  const patterns: RegExp[] = [];
  const prefixes: string[] = [];
  const namespaces: RegExp[] = [];
  names(rule.repositories, `${key}.repositories`, problems).forEach((pattern, i) => {
    const compiled = compilePattern(pattern);
    if (typeof compiled === 'string') problems.push(`${key}.repositories[${i}]: ${compiled}`);
    else patterns.push(compiled);
    prefixes.push(pattern.split('*')[0]);
    // A segment of a valid pattern is one too (`**` alone matches every namespace).
    const first = compilePattern(pattern.split('/')[0]);
    if (typeof first !== 'string') namespaces.push(first);
  });
  const users = names(rule.users, `${key}.users`, problems);
  const actions = names(rule.actions, `${key}.actions`, problems);
  actions.forEach((action, i) => {
    if (!ACTIONS.has(action)) problems.push(`${key}.actions[${i}]: expected pull, push or delete, got ${JSON.stringify(action)}`);
  });
  return {
    patterns,
    prefixes,
    namespaces,
    users: new Set(users.filter((u) => u !== '*' && u !== ANONYMOUS)),
    everyUser: users.includes('*'),
    anonymous: users.includes(ANONYMOUS),
    actions: new Set(actions),
  };
}

/**
 * Who may do what, compiled from rules and the admins of every source.
 * Users are the names htpasswd authenticates; '' is an anonymous client.
 */
export class Access {
  readonly #rules: CompiledRule[];
  readonly #admins: ReadonlySet<string>;
  /** Whether any rule grants anything to anonymous clients. */
  readonly anonymous: boolean;

  /**
   * @param extraAdmins admins named elsewhere (the --admin option), added to the file's.
   * @throws AccessRulesError listing every problem, one line each, naming its key.
   */
  constructor(rules: AccessRules, extraAdmins: readonly string[] = []) {
    const problems: string[] = [];
    if (!isMapping(rules)) throw new AccessRulesError(['expected a mapping of admins and rules']);
    for (const key of Object.keys(rules)) {
      if (key !== 'admins' && key !== 'rules') problems.push(`${key}: unknown key (admins, rules)`);
    }
    const admins = rules.admins === undefined ? [] : names(rules.admins, 'admins', problems);
    const list: unknown = rules.rules ?? [];
    if (!Array.isArray(list)) problems.push(`rules: expected a list of rules, got ${JSON.stringify(list)}`);
    const compiled = Array.isArray(list) ? list.map((rule, i) => compileRule(rule, `rules[${i}]`, problems)) : [];
    if (problems.length > 0) throw new AccessRulesError(problems);
    this.#rules = compiled as CompiledRule[];
    this.#admins = new Set([...admins, ...extraAdmins].filter((a) => a !== ANONYMOUS));
    this.anonymous = this.#rules.some((r) => r.anonymous);
  }

  /** Whether `user` ('' for anonymous) is an admin: anonymous never is. */
  isAdmin(user: string): boolean {
    return user !== '' && this.#admins.has(user);
  }

  /** Whether `user` ('' for anonymous) may do `action` in `repository`. */
  allows(user: string, action: Action, repository: string): boolean {
    if (this.isAdmin(user)) return true;
    return this.#grants(user, action).some((rule) => rule.patterns.some((p) => p.test(repository)));
  }

  /**
   * Where the repositories `user` may do `action` in can be: every such name
   * starts with one of these, in byte order, none a prefix of another. ['']
   * for an admin or a pattern that begins with a wildcard, [] when nothing
   * is granted. The ranges a filtered listing needs to read.
   */
  prefixes(user: string, action: Action): string[] {
    if (this.isAdmin(user)) return [''];
    const all = [...new Set(this.#grants(user, action).flatMap((rule) => rule.prefixes))].sort();
    return all.filter((prefix, i) => !all.slice(0, i).some((shorter) => prefix.startsWith(shorter)));
  }

  /**
   * Whether `user` may do `action` in some repository of `namespace` (a name
   * of one component), there or to come: a pattern's first segment matches
   * it (`acme` only `acme`, `a*` any namespace starting with `a`).
   */
  reaches(user: string, action: Action, namespace: string): boolean {
    if (this.isAdmin(user)) return true;
    return this.#grants(user, action).some((rule) => rule.namespaces.some((n) => n.test(namespace)));
  }

  /** The rules that grant `user` `action` somewhere. */
  #grants(user: string, action: Action): CompiledRule[] {
    return this.#rules.filter((rule) => rule.actions.has(action) && (user === '' ? rule.anonymous : rule.everyUser || rule.users.has(user)));
  }
}

/**
 * Reads a rules file: JSON when its name ends in .json, YAML otherwise.
 * @throws AccessRulesError for a file that does not parse, passes
 * FILE_FORMAT_LIMITS, or holds rules that do not hold together, each line prefixed with the file's name; Error (with
 * the errno code) when it cannot be read.
 */
export function readAccessRules(file: string, extraAdmins: readonly string[] = []): Access {
  const text = readFileSync(file, 'utf8');
  let data: unknown;
  try {
    data = parseFileText(text, file.endsWith('.json') ? 'json' : 'yaml');
  } catch (error) {
    if (error instanceof FileFormatError) throw new AccessRulesError([`access ${file}: ${error.message}`]);
    throw error;
  }
  try {
    return new Access((data ?? {}) as AccessRules, extraAdmins);
  } catch (error) {
    if (error instanceof AccessRulesError) throw new AccessRulesError(error.problems.map((p) => `access ${file}: ${p}`));
    throw error;
  }
}
