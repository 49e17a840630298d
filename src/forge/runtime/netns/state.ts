import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import type { LabHandle, LabSpec } from '../types.js';

/** What the runtime keeps on disk per scenario: `<stateDir>/<hex>/lab.json`. */
export interface LabRecord {
  readonly scenarioId: string;
  readonly hex: string;
  readonly status: 'provisioning' | 'running';
  readonly spec: LabSpec;
  readonly createdAt: string;
  readonly handle?: LabHandle;
  /** Host pid of each device's init (PID 1 of its PID namespace). */
  readonly initPids?: Readonly<Record<string, number>>;
}

export function scenarioDir(stateDir: string, hex: string): string {
  return `${stateDir}/${hex}`;
}

export async function writeRecord(stateDir: string, record: LabRecord): Promise<void> {
  const dir = scenarioDir(stateDir, record.hex);
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const tmp = `${dir}/lab.json.tmp`;
  await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
  await rename(tmp, `${dir}/lab.json`);
}

export async function readRecord(stateDir: string, hex: string): Promise<LabRecord | undefined> {
  try {
    return JSON.parse(await readFile(`${scenarioDir(stateDir, hex)}/lab.json`, 'utf8')) as LabRecord;
  } catch {
    return undefined;
  }
}

/** Scenario dirs present in the state dir (8-hex names). */
export async function listRecordHexes(stateDir: string): Promise<string[]> {
  const entries = await readdir(stateDir).catch(() => [] as string[]);
  return entries.filter((e) => /^[0-9a-f]{8}$/.test(e));
}
