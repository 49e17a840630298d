import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertStorageKey, type ObjectStorage, type RetentionResult, type StoredObject } from './types.js';

const DAY_MS = 86_400_000;

/** Objects as files under a root directory (FG_STORAGE_DIR). Writes are atomic (temp file, rename). */
export class FilesystemStorage implements ObjectStorage {
  readonly kind = 'filesystem';
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private pathOf(key: string): string {
    assertStorageKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  locate(key: string): string {
    return this.pathOf(key);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, bytes, { flag: 'wx', mode: 0o640 });
      await rename(tmp, target);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    assertStorageKey(prefix, { prefix: true });
    const out: StoredObject[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(path.join(dir, e.name), key);
        else if (e.isFile() && key.startsWith(prefix) && !/\.tmp-[0-9a-f]{12}$/.test(key)) {
          const st = await stat(path.join(dir, e.name)).catch(() => undefined);
          if (st) out.push({ key, size: st.size, modifiedAt: st.mtime });
        }
      }
    };
    // Walk only the directory part of the prefix.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(dirPart ? path.join(this.root, ...dirPart.split('/')) : this.root, dirPart);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  /**
   * The sweeper: removes objects under `prefix` last modified more than `days` ago, then the
   * directories that became empty.
   */
  async enforceRetention(prefix: string, days: number, now: Date = new Date()): Promise<RetentionResult> {
    const cutoff = now.getTime() - days * DAY_MS;
    const removed: string[] = [];
    for (const obj of await this.list(prefix)) {
      if (obj.modifiedAt.getTime() >= cutoff) continue;
      await this.delete(obj.key);
      removed.push(obj.key);
    }
    const dirs = new Set<string>();
    for (const key of removed) {
      const parts = key.split('/');
      for (let i = parts.length - 1; i > 0; i--) dirs.add(parts.slice(0, i).join('/'));
    }
    // Deepest first; rmdir refuses non-empty directories, which is what we want.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await rmdir(path.join(this.root, ...dir.split('/'))).catch(() => undefined);
    return { removed, mechanism: 'sweep' };
  }
}
