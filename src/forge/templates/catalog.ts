import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { loadTemplate, type LabTemplate } from './load.js';

/** Templates by id and version, read-only once added; reset needs the version a scenario started from. */
export class TemplateCatalog {
  private readonly byKey = new Map<string, LabTemplate>();

  add(template: LabTemplate): void {
    this.byKey.set(key(template.id, template.version), template);
  }

  get(id: string, version: string): LabTemplate | undefined {
    return this.byKey.get(key(id, version));
  }

  list(): LabTemplate[] {
    return [...this.byKey.values()];
  }

  /** Loads every `*.yaml` / `*.yml` of a directory; one invalid file fails the whole load. */
  async loadDirectory(dir: string): Promise<LabTemplate[]> {
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    const loaded: LabTemplate[] = [];
    for (const f of files) loaded.push(await loadTemplate(path.join(dir, f)));
    for (const t of loaded) this.add(t);
    return loaded;
  }
}

function key(id: string, version: string): string {
  return `${id}@${version}`;
}
