import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface ExtensionRecord {
  readonly at: string;
  readonly subject: string;
  readonly minutes: number;
  readonly expires_at: string;
}

/**
 * The extensions a lab was given, kept beside its other learner-side records under
 * FG_STORAGE_DIR/scenarios/{id}/extensions.json; the extension gate (policies/extend.cedar) counts
 * them. One extension at a time per scenario: count, decide, extend and record run in turn, so two
 * quick clicks cannot both pass a limit of one.
 */
export class ExtensionLog {
  private readonly queue = new Map<string, Promise<unknown>>();

  constructor(private readonly storageDir: string) {}

  private file(scenarioId: string): string {
    return path.join(this.storageDir, 'scenarios', scenarioId, 'extensions.json');
  }

  async list(scenarioId: string): Promise<ExtensionRecord[]> {
    try {
      return (JSON.parse(await readFile(this.file(scenarioId), 'utf8')) as { extensions: ExtensionRecord[] }).extensions;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async append(scenarioId: string, record: ExtensionRecord): Promise<void> {
    const all = await this.list(scenarioId);
    const file = this.file(scenarioId);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify({ extensions: [...all, record] }, null, 2));
    await rename(`${file}.tmp`, file);
  }

  /** Runs `fn` after every earlier call for the same scenario has finished. */
  serialized<T>(scenarioId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queue.get(scenarioId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.queue.set(scenarioId, settled);
    void settled.then(() => {
      if (this.queue.get(scenarioId) === settled) this.queue.delete(scenarioId);
    });
    return next;
  }
}
