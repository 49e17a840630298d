import { readFile } from 'node:fs/promises';
import { verifyVerdict } from '../../forge/scoring/verdict.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError, printJson, printLine } from '../output.js';

async function read(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CliError('invalid_file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'pass the four files of a results directory: score.json, evidence.tar.zst (or .tar.gz), verdict.sig, verdict.pub');
  }
}

export const verifyVerdictCommand: Command = {
  name: 'verify-verdict',
  options: { ...JSON_OPTION },
  help: `Usage: frostgate verify-verdict <score.json> <evidence.tar.zst|.tar.gz> <verdict.sig> <verdict.pub> [--json]

Checks, with no network and no database, that score.json and the evidence archive are exactly
what the scoreboard signed: their SHA-256 digests against the signed statement in verdict.sig,
the statement's Ed25519 signature against verdict.pub, and that verdict.pub is the key the
signature names. Any changed byte of any of the four files fails, and the failure names the
file. Prints "PASS: verdict verification succeeded" (exit 0) or "FAIL: ..." lines (exit 1).

To trust the key itself, compare verdict.pub (or the key id printed on PASS) with the
scoreboard's published verdict keys; retired keys stay valid for the verdicts they signed.

Options:
  --json       {"ok": true, "key_id", "signed_at", "score_sha256", "evidence_sha256"} or {"ok": false, "problems": [...]}
  -h, --help   this help

Example:
  cd storage/scenarios/scn_0123/results
  frostgate verify-verdict score.json evidence.tar.zst verdict.sig verdict.pub`,
  async run({ values, positionals }) {
    if (positionals.length !== 4) throw new UsageError(`expected 4 files (score.json, evidence archive, verdict.sig, verdict.pub), got ${positionals.length}`);
    const [scorePath, evidencePath, sigPath, pubPath] = positionals as [string, string, string, string];
    const [scoreBytes, evidenceBytes, sigBytes, pubBytes] = await Promise.all([read(scorePath), read(evidencePath), read(sigPath), read(pubPath)]);
    const result = verifyVerdict({ scoreBytes, evidenceBytes, sigBytes, pubBytes, labels: { score: scorePath, evidence: evidencePath, sig: sigPath, pub: pubPath } });
    if (values.json === true) {
      printJson(
        result.ok
          ? { ok: true, key_id: result.keyId, signed_at: result.statement.signed_at, score_sha256: result.statement.score_sha256, evidence_sha256: result.statement.evidence_sha256 }
          : { ok: false, problems: result.problems },
      );
    } else if (result.ok) {
      printLine('PASS: verdict verification succeeded');
      printLine(`  key ${result.keyId}, signed at ${result.statement.signed_at}`);
    } else {
      for (const p of result.problems) printLine(`FAIL: ${p}`);
    }
    return result.ok ? 0 : 1;
  },
};
