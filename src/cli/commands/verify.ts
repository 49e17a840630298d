import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../config/config.js';
import { loadLedgerSigningKey } from '../../ledger/signing-key.js';
import { parseVerifierKey, type NoteVerifier } from '../../ledger/note.js';
import { verifierOf } from '../../ledger/note.js';
import { verifyLogFromDatabase, verifyRecordOffline, verifiersFromKeyFile, type InclusionProofFile } from '../../ledger/verify.js';
import type { LedgerName } from '../../platform/db/schema.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError, printErr, printJson, printLine } from '../output.js';
import { withDatabase } from './db-session.js';

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
  help: `Usage: frostgate verify --tenant <id> [--log decisions|audit] [--trusted-keys FILE] [--json]
       frostgate verify decision --record r.json --proof p.json --checkpoint c.txt --pubkey k.pub [--json]

verify --tenant   Recomputes the tenant's whole log from the database: each record against its
                  leaf hash, each stored tree node against the recomputed tree, and each signed
                  checkpoint (signature and root) against the recomputed root at its size. Prints
                  PASS, or FAIL with the first index that does not match. Exit 0 on PASS, 1 on FAIL.
                  Checkpoint signatures are trusted only for the configured ledger key
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
  --trusted-keys FILE    extra trusted vkeys, one per line
  --record, --proof, --checkpoint, --pubkey FILE   inputs of 'verify decision'
  --json                 machine-readable result
  -h, --help             this help

Examples:
  frostgate verify --tenant acme
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
      for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) trusted.push(parseVerifierKey(line));
    }
    const result = await withDatabase((db) =>
      verifyLogFromDatabase(db, tenant, log, trusted, (done, total) => {
        if (!values.json && total >= 50_000) printErr(`verified ${done}/${total} entries`);
      }),
    );
    if (values.json) printJson(result);
    else if (result.ok) printLine(`PASS: ${tenant}/${log}: ${result.size} entries recomputed, ${result.checkpointsChecked} signed checkpoint(s) match`);
    else {
      printLine(`FAIL: ${tenant}/${log}${result.firstBadIndex !== undefined ? `: first mismatch at index ${result.firstBadIndex}` : ''}`);
      for (const p of result.problems) printLine(`  - ${p.message}`);
    }
    return result.ok ? 0 : 1;
  },
};

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
    throw new CliError('invalid_file', `--pubkey: ${(err as Error).message}`, 'pass a vkey line from GET /ledger/checkpoint (verifier_keys) or an Ed25519 public key PEM');
  }
  const result = verifyRecordOffline({ record: parseJson(recordText, 'record'), proof: parseJson<InclusionProofFile>(proofText, 'proof'), checkpoint, verifiers });
  if (values.json) printJson(result);
  else if (result.ok) printLine(`PASS: record is entry ${result.index} of ${result.origin} at signed tree size ${result.treeSize}`);
  else {
    printLine('FAIL: decision verification failed');
    for (const p of result.problems) printLine(`  - ${p}`);
  }
  return result.ok ? 0 : 1;
}
