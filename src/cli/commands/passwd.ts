// `regmeta passwd <file> <user>`: adds a user to an htpasswd file or changes
// their password, as a bcrypt entry the registry accepts, so that nobody needs
// apache2-utils' htpasswd (whose default, MD5, the registry refuses).

import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { parse, type Command } from '../args.js';
import { CliError, Exit, usageError } from '../exit.js';
import { println } from '../output.js';
import { readPassword } from '../password.js';

/**
 * Cost 10 (2^10 rounds): what bcrypt libraries default to, some 50-100 ms
 * per check in the server's pure-JS bcrypt. htpasswd -B's default, 5, is 32
 * times cheaper to guess. The server checks a client's header once and then
 * caches it, so a higher cost costs the first request only.
 */
const DEFAULT_COST = 10;

const options = { cost: { type: 'string' } } as const;

/** bcrypt reads this many bytes of a password and ignores the rest. */
const BCRYPT_MAX_BYTES = 72;

const USAGE = `usage: regmeta passwd [--cost <n>] <file> <user>

Adds <user> to the htpasswd file <file>, or changes their password, as a
bcrypt entry ($2y$, as htpasswd -B writes it) that regmeta serve --htpasswd
accepts. The password is the first line of standard input when that is not
a terminal, else it is asked for twice, without echo. Other lines stay as
they are; a missing file is created with mode 0600, and the file is
replaced in one step (a temporary file renamed over it), so a server
reading it never sees half of it.

options:
  --cost <n>   bcrypt's cost, 4 to 31 (default ${DEFAULT_COST}; each step doubles the
               time a check takes, for the server and for a guesser alike)

examples:
  regmeta passwd /etc/regmeta/htpasswd alice
  printf '%s\\n' "$PASSWORD" | regmeta passwd /etc/regmeta/htpasswd ci-bot
`;

/**
 * The file's text with `user`'s entry set to `hash`: the user's first line
 * replaced and any later one dropped (a later line would win), or the
 * entry appended. Comments, blank lines and other users stay in order.
 */
export function setEntry(text: string, user: string, hash: string): { text: string; added: boolean } {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const entry = `${user}:${hash}`;
  const owner = (line: string) => {
    const trimmed = line.trim();
    const colon = trimmed.indexOf(':');
    return trimmed.startsWith('#') || colon <= 0 ? undefined : trimmed.slice(0, colon);
  };
  const first = lines.findIndex((line) => owner(line) === user);
  if (first < 0) return { text: [...lines, entry, ''].join('\n'), added: true };
  const kept = lines.filter((line, i) => i <= first || owner(line) !== user);
  kept[first] = entry;
  return { text: [...kept, ''].join('\n'), added: false };
}

/**
 * Replaces `file` with `text` in one rename, keeping the old file's mode
 * (0600 for a new one); the data is on disk before the rename.
 * @throws the file system's error (the temporary file is removed).
 */
function writeAtomically(file: string, text: string, mode: number): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      // fchmod rather than open's mode: the umask must not narrow the old file's mode.
      fchmodSync(fd, mode);
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** The file's text and mode; empty and 0600 when it does not exist. @throws CliError IO. */
function readExisting(file: string): { text: string; mode: number } {
  try {
    return { text: readFileSync(file, 'utf8'), mode: statSync(file).mode & 0o7777 };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', mode: 0o600 };
    throw new CliError(Exit.IO, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** @throws CliError USAGE for a name the htpasswd format or the server cannot hold. */
function checkUser(user: string): void {
  // A colon ends the name; whitespace is trimmed by readers; '#' starts a comment.
  if (!/^[^\s:#][^\s:]*$/.test(user) || user.length > 255) {
    throw usageError('passwd', `user name ${JSON.stringify(user)} is not allowed: no colon, no whitespace, not starting with #`);
  }
}

export const passwd: Command = {
  name: 'passwd',
  usage: USAGE,
  options,
  exits: {},
  async run(argv) {
    const args = parse(argv, passwd, options, { min: 2, max: 2 });
    if (!args) return Exit.OK;
    const [file, user] = args.positionals;
    checkUser(user);
    const costText = args.values.cost ?? String(DEFAULT_COST);
    if (!/^\d{1,2}$/.test(costText) || Number(costText) < 4 || Number(costText) > 31) {
      throw usageError('passwd', `--cost wants a whole number from 4 to 31, not ${JSON.stringify(costText)}`);
    }
    const existing = readExisting(file);
    const password = await readPassword(`password for ${user}: `, `again: `);
    if (password === '') throw new CliError(Exit.USAGE, 'the password is empty: the file is unchanged');
    if (Buffer.byteLength(password) > BCRYPT_MAX_BYTES) {
      throw new CliError(Exit.USAGE, `the password is over ${BCRYPT_MAX_BYTES} bytes, and bcrypt would ignore the rest: the file is unchanged`);
    }
    // bcryptjs writes $2b$; $2y$ is the same algorithm, as htpasswd -B writes it and Apache reads it.
    const hash = (await bcrypt.hash(password, Number(costText))).replace(/^\$2b\$/, '$2y$');
    const updated = setEntry(existing.text, user, hash);
    try {
      writeAtomically(file, updated.text, existing.mode);
    } catch (error) {
      throw new CliError(Exit.IO, `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    println(updated.added ? `added ${user} to ${file}` : `changed the password of ${user} in ${file}`);
    return Exit.OK;
  },
};
