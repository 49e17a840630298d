import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContainerlabImportError, importContainerlab } from '../../forge/templates/containerlab.js';
import { contentVersion } from '../../forge/templates/load.js';
import { TIERS, TRACKS, type Tier, type Track } from '../../forge/templates/schema.js';
import { CliError, UsageError } from '../errors.js';
import { printErr, printJson, printLine } from '../output.js';

const oneOf = <T extends string>(what: string, allowed: readonly T[], value: string | boolean | undefined): T | undefined => {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw new UsageError(`--${what} must be one of ${allowed.join(', ')}`);
  return value as T;
};

/** `frostgate template import <lab.clab.yml>`: see templates/containerlab.ts for what converts. */
export async function importTemplateFromContainerlab(file: string, values: Record<string, string | boolean | undefined>): Promise<number> {
  const track = oneOf<Track>('track', TRACKS, values.track);
  const tier = oneOf<Tier>('tier', TIERS, values.tier);
  const output = typeof values.output === 'string' ? values.output : undefined;
  const id = typeof values.id === 'string' ? values.id : undefined;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError('invalid_file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (output && existsSync(output) && !values.force) throw new CliError('conflict', `${output} exists`, 'pass --force to overwrite it');
  // Bound files (an FRR config) are relative to the topology file, as containerlab reads them.
  const base = path.dirname(path.resolve(file));
  const readBound = (p: string) => {
    const full = path.resolve(base, p);
    return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
  };
  try {
    const result = importContainerlab(text, file, { readBound, ...(id ? { id } : {}), ...(track ? { track } : {}), ...(tier ? { tier } : {}) });
    if (output) await writeFile(output, result.yaml);
    const version = contentVersion(result.template);
    if (values.json) {
      printJson({ ok: true, id: result.template.id, version, output: output ?? null, warnings: result.warnings, ...(output ? {} : { template: result.yaml }) });
      return 0;
    }
    if (output)
      printLine(
        `OK ${file} -> ${output}: ${result.template.id}@${version}, ${result.template.topology.devices.length} ` +
          `devices, ${result.template.topology.networks.length} networks`,
      );
    else process.stdout.write(result.yaml);
    for (const w of result.warnings) printErr(`note: ${w}`);
    return 0;
  } catch (err) {
    if (!(err instanceof ContainerlabImportError)) throw err;
    if (values.json) printJson({ ok: false, file, errors: err.problems });
    else {
      printErr(`CANNOT IMPORT ${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`);
      for (const p of err.problems) printErr(`  ${p}`);
    }
    return 1;
  }
}
