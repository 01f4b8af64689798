// Where a process spools the blobs it downloads: a directory of its own under
// <dataDir>/mirror, for replicas may share a data directory (one blob
// directory), and one replica's downloads must never lose their files to
// another's. A marker in the directory names its process (boot, pid
// namespace, pid and start time: a pid alone may be reused). At first use a
// process removes what processes known to be gone left there; of the others
// (alive, or another machine's or pid namespace's, which it cannot tell
// about) only files a day old: a download writes its file as it goes and
// removes it once over, well within a day. The directory of a process it
// cannot tell about goes once empty for a day.

import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, rmdir, stat, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { processGone, processIdentity } from '../../store/index.js';

/** The name of the marker that holds a spool directory's process identity (never a spool file's: those start with hex). */
const OWNER = '.owner';
/** How old a file (or empty directory) of a process not known to be gone must be to be taken for left over. */
const LEFT_OVER_MS = 24 * 60 * 60 * 1000;

/** A spool file just created for writing and reading. */
interface SpoolFile {
  file: string;
  handle: FileHandle;
}

/** This process's spool directory under a data directory's `mirror`. */
export class Spool {
  /** `<dataDir>/mirror`, which every process on the data directory shares. */
  readonly #root: string;
  /** `<root>/<a name of this process's own>`. */
  readonly #dir: string;
  #prepared: Promise<void> | undefined;

  constructor(dataDir: string) {
    this.#root = path.join(dataDir, 'mirror');
    this.#dir = path.join(this.#root, randomUUID());
  }

  /**
   * A new spool file for `digest`, opened for writing. The directory is made
   * (and the leftovers of gone processes removed) on first use; made again
   * should another process have taken it for left over meanwhile.
   * @throws the file system's errors.
   */
  async create(digest: string): Promise<SpoolFile> {
    await this.#prepare();
    const file = path.join(this.#dir, `${digest.slice(digest.indexOf(':') + 1)}-${randomUUID().slice(0, 8)}`);
    for (let attempt = 0; ; attempt++) {
      try {
        return { file, handle: await open(file, 'wx+') };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 2) throw error;
        await this.#makeDir();
      }
    }
  }

  /** Removes this process's directory once no download uses it (`idle`); else it is left to the next process's sweep. Never rejects. */
  async close(idle: boolean): Promise<void> {
    if (!idle || this.#prepared === undefined) return;
    await this.#prepared.catch(() => {});
    await rm(path.join(this.#dir, OWNER), { force: true }).catch(() => {});
    await rmdir(this.#dir).catch(() => {});
  }

  #prepare(): Promise<void> {
    this.#prepared ??= (async () => {
      await this.#makeDir();
      await sweep(this.#root, path.basename(this.#dir));
    })().catch((error: unknown) => {
      this.#prepared = undefined;
      throw error;
    });
    return this.#prepared;
  }

  async #makeDir(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await writeFile(path.join(this.#dir, OWNER), processIdentity() ?? '');
  }
}

/**
 * Removes from `root` what other processes left: the directory of a
 * process known to be gone; files of a day old of any other, and the
 * directory of one it cannot tell about once empty for a day. Each removal is on its own: one that fails (another
 * process removed it first) stops nothing.
 */
export async function sweep(root: string, own: string): Promise<void> {
  const now = Date.now();
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.name === own) continue;
    const where = path.join(root, entry.name);
    if (!entry.isDirectory()) {
      // A spool file of a version that spooled in `root` itself.
      if (await olderThanADay(where, now)) await rm(where, { force: true }).catch(() => {});
      continue;
    }
    const owner = await readFile(path.join(where, OWNER), 'utf8').catch(() => '');
    const alive = owner !== '' && sameMachine(owner) && !processGone(owner);
    if (owner !== '' && processGone(owner)) {
      await rm(where, { recursive: true, force: true }).catch(() => {});
      continue;
    }
    const names = await readdir(where).catch(() => [] as string[]);
    let left = 0;
    for (const name of names) {
      if (name === OWNER) continue;
      if (await olderThanADay(path.join(where, name), now)) await rm(path.join(where, name), { force: true }).catch(() => {});
      else left++;
    }
    // Not recursive: a file that came meanwhile keeps the directory; should it go anyway, its process makes it again.
    if (!alive && left === 0 && (await olderThanADay(where, now))) await rm(path.join(where, OWNER), { force: true }).then(() => rmdir(where)).catch(() => {});
  }
}

/** Whether `identity` (from processIdentity) is of a process whose pids this one sees: the same boot and pid namespace. */
function sameMachine(identity: string): boolean {
  const mine = processIdentity();
  return mine !== null && identity.split('|').slice(0, 2).join('|') === mine.split('|').slice(0, 2).join('|');
}

async function olderThanADay(file: string, now: number): Promise<boolean> {
  try {
    return now - (await stat(file)).mtimeMs > LEFT_OVER_MS;
  } catch {
    return false;
  }
}
