import { readFile } from 'node:fs/promises';
import { loadConfig, type Config } from '../../config/config.js';
import { KeyStore } from '../../core/auth/store.js';
import { verifyDecisionRows, type DecisionRowsVerification } from '../../core/decisions/integrity.js';
import { anchorFromNote, type LogAnchor } from '../../ledger/anchors.js';
import { loadLedgerSigningKey } from '../../ledger/signing-key.js';
import { parseVerifierKey, type NoteVerifier } from '../../ledger/note.js';
import { verifierOf } from '../../ledger/note.js';
import { verifyLogFromDatabase, verifyRecordOffline, verifiersFromKeyFile, type InclusionProofFile, type LogVerification } from '../../ledger/verify.js';
import { witnessAnchors, witnessLogPrefix } from '../../ledger/witness.js';
import type { LedgerName } from '../../platform/db/schema.js';
import { storageFromConfig } from '../../platform/storage/from-config.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { printErr, printJson, printLine } from '../output.js';
import { withDatabase } from './db-session.js';

const UNANCHORED =
  'NOTE: no checkpoint held outside the database was checked: a consistent rewrite by someone ' +
  'with database write access (entries and tree recomputed, later checkpoints deleted, the ' +
  'server re-signing the result) passes this check. Pass --checkpoint FILE (a checkpoint ' +
  'note saved earlier) or enable the witness (FG_LEDGER_WITNESS=storage); see docs/ledger.md';
const RETIRED_KEY_HINT =
  'a checkpoint signed by a retired ledger key needs that key: --trusted-keys FILE with its vkey (GET /ledger/checkpoint lists verifier_keys)';

export const verifyCommand: Command = {
  name: 'verify',
  options: {
    tenant: { type: 'string' },
    log: { type: 'string' },
    'trusted-keys': { type: 'string' },
    record: { type: 'string' },
    proof: { type: 'string' },
    checkpoint: { type: 'string' },
    pubkey: { type: 'string' },
    ...JSON_OPTION,
  },
  help: `Usage: frostgate verify --tenant <id> [--log decisions|audit] [--checkpoint FILE] [--trusted-keys FILE] [--json]
       frostgate verify decision --record r.json --proof p.json --checkpoint c.txt --pubkey k.pub [--json]

verify --tenant   Recomputes the tenant's whole log from the database: each record against its
                  leaf hash, each stored tree node against the recomputed tree, and each signed
                  checkpoint (signature and root) against the recomputed root at its size.
                  Checkpoints held outside the database are checked the same way, and the current
                  tree must extend the newest of them (consistency proof): the note given with
                  --checkpoint, and every checkpoint the witness exported (FG_LEDGER_WITNESS=storage,
                  read from the object store of FG_STORAGE_*). Without any, a consistent rewrite by
                  someone who can write the database passes, and the command says so.
                  For the decisions log, every decisions row is also compared with the ledger
                  record it was appended as (rows edited after the fact, rows deleted).
                  Prints PASS, or FAIL with the first index that does not match. Exit 0 on PASS,
                  1 on FAIL. Checkpoint signatures are trusted only for the configured ledger key
                  (FG_LEDGER_KEY_PATH, or the dev key in FG_DATA_DIR) and the vkeys listed in
                  --trusted-keys (one per line; keep retired keys there after a rotation).

verify decision   Verifies one record offline, with no database: the record JSON (as returned in
                  /ledger/entries), its inclusion proof (GET /ledger/proof/inclusion for the
                  checkpoint's tree_size, saved as JSON), the signed checkpoint note
                  (the 'note' of GET /ledger/checkpoint) and the ledger's public key (a vkey line
                  from 'verifier_keys', or an Ed25519 public key PEM).

Options:
  --tenant <id>          tenant whose log to verify
  --log <name>           decisions (default) or audit
  --checkpoint FILE      with --tenant: a signed checkpoint note of this log saved earlier
                         (the 'note' of GET /ledger/checkpoint), kept away from the database
  --trusted-keys FILE    extra trusted vkeys, one per line
  --record, --proof, --checkpoint, --pubkey FILE   inputs of 'verify decision'
  --json                 machine-readable result
  -h, --help             this help

Examples:
  frostgate verify --tenant acme
  curl -s -H "X-API-Key: $KEY" 'https://frostgate.example/ledger/checkpoint?fresh=true' | jq -r .note > acme-2026-03-01.txt
  frostgate verify --tenant acme --checkpoint acme-2026-03-01.txt
  frostgate verify decision --record r.json --proof p.json --checkpoint c.txt --pubkey k.pub`,
  async run({ values, positionals }) {
    if (positionals[0] === 'decision') return verifyDecision(values);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; did you mean 'frostgate verify decision'?`);
    const tenant = values.tenant as string | undefined;
    if (!tenant) throw new UsageError('--tenant <id> is required (or use: frostgate verify decision ...)');
    const log = ((values.log as string | undefined) ?? 'decisions') as LedgerName;
    if (log !== 'decisions' && log !== 'audit') throw new UsageError(`--log must be decisions or audit, got ${JSON.stringify(log)}`);
    const { config } = loadConfig();
    const own = await loadLedgerSigningKey({ keyPath: config.keys.ledgerKeyPath, dataDir: config.env === 'dev' ? config.dataDir : undefined });
    const trusted: NoteVerifier[] = [verifierOf(own.signer)];
    if (values['trusted-keys']) {
      const text = await readFile(values['trusted-keys'] as string, 'utf8');
      for (const line of text
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean))
        trusted.push(parseVerifierKey(line));
    }
    const origin = `${config.ledger.origin}/${tenant}/${log}`;
    const external = await externalAnchors(config, values.checkpoint as string | undefined, tenant, log, trusted, origin);
    const { result, rows } = await withDatabase(async (db) => {
      // An empty log of a mistyped tenant would otherwise verify as PASS.
      if (!(await new KeyStore(db).tenantExists(tenant)))
        throw new CliError('not_found', `tenant ${tenant} does not exist, so it has no log to verify`, 'frostgate tenants list shows the tenants');
      return {
        result: await verifyLogFromDatabase(db, tenant, log, trusted, {
          anchors: external.anchors,
          onProgress: (done, total) => !values.json && total >= 50_000 && printErr(`verified ${done}/${total} entries`),
        }),
        // Pages of 5,000 rows: a line every 50,000.
        rows:
          log === 'decisions'
            ? await verifyDecisionRows(
                db,
                tenant,
                (done) => !values.json && done % 50_000 === 0 && printErr(`compared ${done} decision rows with their ledger records`),
              )
            : undefined,
      };
    });
    const problems = [...external.problems.map((message) => ({ message })), ...result.problems];
    const ok = problems.length === 0 && (rows?.ok ?? true);
    if (values.json) {
      printJson({
        ...result,
        ok,
        problems,
        anchored: result.externalCheckpointsChecked > 0,
        externalSources: external.sources,
        ...(rows ? { decisionRows: rows } : {}),
      });
      return ok ? 0 : 1;
    }
    if (ok) {
      printLine(
        `PASS: ${tenant}/${log}: ${result.size} entries recomputed, ${result.checkpointsChecked} signed checkpoint(s) match${anchoredSummary(result)}${rows ? `; ${rows.rowsChecked} decision row(s) match their ledger records` : ''}`,
      );
      if (result.externalCheckpointsChecked === 0)
        printLine(
          external.sources.length > 0
            ? `NOTE: ${external.sources.join(', ')} held no checkpoint of this log yet; ${UNANCHORED.slice('NOTE: '.length)}`
            : UNANCHORED,
        );
      return 0;
    }
    printLine(`FAIL: ${tenant}/${log}${result.firstBadIndex !== undefined ? `: first mismatch at index ${result.firstBadIndex}` : ''}`);
    for (const p of problems) printLine(`  - ${p.message}`);
    if (rows) for (const line of rowProblemLines(rows)) printLine(`  - ${line}`);
    if (problems.some((p) => /not signed by any known key/.test(p.message))) printLine(`  (${RETIRED_KEY_HINT})`);
    return 1;
  },
};

function anchoredSummary(result: LogVerification): string {
  if (result.externalCheckpointsChecked === 0) return '';
  return (
    `, ${result.externalCheckpointsChecked} checkpoint(s) held outside the database ` +
    `match and the log extends the newest (size ${result.newestExternalSize})`
  );
}

function rowProblemLines(rows: DecisionRowsVerification): string[] {
  const lines = rows.mismatched.map(({ decision_id, ledger_index, integrity }) =>
    integrity.status === 'mismatch'
      ? `decision ${decision_id} (ledger index ${ledger_index}): ${integrity.fields.join(', ')} ` +
        `differ${integrity.fields.length === 1 ? 's' : ''} from its ledger record (row changed after it was decided)`
      : `decision ${decision_id} (ledger index ${ledger_index}): ${integrity.detail}`,
  );
  if (rows.mismatchedCount > rows.mismatched.length)
    lines.push(`... ${rows.mismatchedCount - rows.mismatched.length} more decision rows differ from their ledger records`);
  for (const u of rows.unrowed) lines.push(`ledger entry ${u.index} records decision ${u.decision_id}, which has no decisions row (row deleted)`);
  if (rows.unrowedCount > rows.unrowed.length) lines.push(`... ${rows.unrowedCount - rows.unrowed.length} more ledger entries have no decisions row`);
  return lines;
}

/** The checkpoints held outside the database: --checkpoint and the witness's exported history. */
async function externalAnchors(
  config: Config,
  checkpointFile: string | undefined,
  tenant: string,
  log: LedgerName,
  trusted: readonly NoteVerifier[],
  origin: string,
): Promise<{ anchors: LogAnchor[]; problems: string[]; sources: string[] }> {
  const anchors: LogAnchor[] = [];
  const problems: string[] = [];
  const sources: string[] = [];
  if (checkpointFile !== undefined) {
    const note = await readInput(checkpointFile, 'checkpoint');
    try {
      anchors.push(anchorFromNote(note, `--checkpoint ${checkpointFile}`, trusted, origin));
    } catch (err) {
      throw new CliError(
        'invalid_file',
        `--checkpoint ${checkpointFile}: ${(err as Error).message}`,
        /not signed by any known key/.test((err as Error).message)
          ? RETIRED_KEY_HINT
          : `pass the 'note' of GET /ledger/checkpoint for log ${origin}, saved as it was`,
      );
    }
    sources.push(`--checkpoint ${checkpointFile}`);
  }
  if (config.ledger.witness === 'storage') {
    const storage = storageFromConfig(config);
    const where = storage.locate(witnessLogPrefix(tenant, log).replace(/\/$/, ''));
    try {
      const witnessed = await witnessAnchors(storage, tenant, log, trusted, origin);
      anchors.push(...witnessed.anchors);
      problems.push(...witnessed.problems);
      const read = witnessed.anchors.length + witnessed.problems.length;
      sources.push(`the witness (${where}${witnessed.total > read ? `, ${read} of its ${witnessed.total} checkpoints read, the newest included` : ''})`);
    } catch (err) {
      throw new CliError(
        'unavailable',
        `cannot read the ledger witness at ${where}: ${(err as Error).message}`,
        'check FG_STORAGE_* (the witness is the object store); FG_LEDGER_WITNESS=off verifies against the database alone',
      );
    }
  }
  return { anchors, problems, sources };
}

async function readInput(path: string | boolean | undefined, what: string): Promise<string> {
  if (typeof path !== 'string') throw new UsageError(`--${what} <file> is required for 'verify decision'`);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError('invalid_file', `cannot read --${what} ${path}: ${(err as Error).message}`);
  }
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new CliError('invalid_file', `--${what} is not valid JSON: ${(err as Error).message}`);
  }
}

async function verifyDecision(values: Record<string, string | boolean | undefined>): Promise<number> {
  const [recordText, proofText, checkpoint, pubkey] = await Promise.all([
    readInput(values.record, 'record'),
    readInput(values.proof, 'proof'),
    readInput(values.checkpoint, 'checkpoint'),
    readInput(values.pubkey, 'pubkey'),
  ]);
  let verifiers: NoteVerifier[];
  try {
    verifiers = verifiersFromKeyFile(pubkey, checkpoint);
  } catch (err) {
    throw new CliError(
      'invalid_file',
      `--pubkey: ${(err as Error).message}`,
      'pass a vkey line from GET /ledger/checkpoint (verifier_keys) or an Ed25519 public key PEM',
    );
  }
  const result = verifyRecordOffline({
    record: parseJson(recordText, 'record'),
    proof: parseJson<InclusionProofFile>(proofText, 'proof'),
    checkpoint,
    verifiers,
  });
  if (values.json) printJson(result);
  else if (result.ok) printLine(`PASS: record is entry ${result.index} of ${result.origin} at signed tree size ${result.treeSize}`);
  else {
    printLine('FAIL: decision verification failed');
    for (const p of result.problems) printLine(`  - ${p}`);
  }
  return result.ok ? 0 : 1;
}
