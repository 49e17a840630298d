import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PolicyLoadError } from './errors.js';
import type { PolicyBundle, SchemaJsonObject } from './types.js';

/** The repository's policies/ directory (src/policy/ -> ../../policies). */
export const DEFAULT_POLICY_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));

export const SCHEMA_FILE = 'schema.cedarschema';
export const SCHEMA_JSON_FILE = 'schema.cedarschema.json';

export interface LoadedBundle {
  readonly bundle: PolicyBundle;
  /** Name of the schema file used, for error messages. */
  readonly schemaSource: string;
}

/**
 * Reads `*.cedar` files and the schema (`schema.cedarschema`, Cedar's human format, or
 * `schema.cedarschema.json`) from one directory. Subdirectories (tests/) are not read.
 */
export async function readPolicyDirectory(dir: string): Promise<LoadedBundle> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isFile())
      .map((d) => d.name)
      .sort();
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'directory does not exist' : `cannot read directory: ${(err as Error).message}`;
    throw new PolicyLoadError('policy_dir_missing', [{ source: dir, message: reason }]);
  }

  const policyFiles = names.filter((n) => n.endsWith('.cedar'));
  if (policyFiles.length === 0) {
    throw new PolicyLoadError('policy_set_empty', [{ source: dir, message: 'no *.cedar policy files in directory' }]);
  }
  const policies: Record<string, string> = {};
  for (const name of policyFiles) policies[name] = await readFile(join(dir, name), 'utf8');

  if (names.includes(SCHEMA_FILE)) {
    return { bundle: { policies, schema: await readFile(join(dir, SCHEMA_FILE), 'utf8') }, schemaSource: SCHEMA_FILE };
  }
  if (names.includes(SCHEMA_JSON_FILE)) {
    const text = await readFile(join(dir, SCHEMA_JSON_FILE), 'utf8');
    let schema: unknown;
    try {
      schema = JSON.parse(text);
    } catch (err) {
      throw new PolicyLoadError('policy_schema_invalid', [{ source: SCHEMA_JSON_FILE, message: `not valid JSON: ${(err as Error).message}` }]);
    }
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new PolicyLoadError('policy_schema_invalid', [{ source: SCHEMA_JSON_FILE, message: 'a JSON schema must be an object keyed by namespace' }]);
    }
    return { bundle: { policies, schema: schema as SchemaJsonObject }, schemaSource: SCHEMA_JSON_FILE };
  }
  throw new PolicyLoadError('policy_schema_missing', [
    { source: dir, message: `no schema: expected ${SCHEMA_FILE} (Cedar schema format) or ${SCHEMA_JSON_FILE}` },
  ]);
}
