// A distribution storage on a directory (storage.filesystem.rootdirectory):
// the v2 tree walked with readdir, files read whole.

import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DistributionFile, DistributionStorage } from '../distribution.js';
import type { BlobSource, BlobStat } from '../types.js';

/** The v2 tree at `v2`, a directory. */
export class DirectoryDistribution implements DistributionStorage {
  readonly location: string;

  constructor(v2: string) {
    this.location = path.resolve(v2);
  }

  /**
   * The distribution storage under `root`: its docker/registry/v2, or `root`
   * itself when it is that directory (both hold repositories/ and blobs/).
   * @returns undefined when neither is.
   */
  static find(root: string): DirectoryDistribution | undefined {
    for (const candidate of [path.join(root, 'docker', 'registry', 'v2'), root]) {
      if (existsSync(path.join(candidate, 'repositories')) && existsSync(path.join(candidate, 'blobs'))) return new DirectoryDistribution(candidate);
    }
    return undefined;
  }

  async *files(dir: string): AsyncIterable<DistributionFile> {
    const walk = async function* (self: DirectoryDistribution, relative: string): AsyncGenerator<DistributionFile> {
      for (const entry of await entries(self.locate(relative))) {
        const child = `${relative}/${entry.name}`;
        if (entry.isDirectory()) yield* walk(self, child);
        else if (entry.isFile()) {
          const found = await self.stat(child);
          // Gone since the directory read: nothing to import.
          if (found !== undefined) yield { path: child, size: found.size, modified: found.modified };
        }
      }
    };
    yield* walk(this, dir);
  }

  async read(file: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.locate(file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async stat(file: string): Promise<BlobStat | undefined> {
    try {
      const found = await stat(this.locate(file));
      return { size: found.size, modified: found.mtime };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  source(file: string, options: { link: boolean }): BlobSource {
    return { file: this.locate(file), link: options.link };
  }

  locate(file: string): string {
    return path.join(this.location, ...file.split('/'));
  }
}

// A directory that is not there holds nothing; one that cannot be read is the caller's error.
async function entries(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw error;
  }
}
