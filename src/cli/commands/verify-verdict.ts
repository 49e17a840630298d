import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { parseEd25519PublicKey } from '../../platform/crypto/ed25519.js';
import { verdictKeyId, verifyVerdict, verifyVerdictWithKey, type VerdictVerification } from '../../forge/scoring/verdict.js';
import { describeValidity, parseVerdictKeySet, verdictKeyFingerprint, verifyVerdictWithKeySet, type VerdictKeySet } from '../../forge/scoring/verdict-keys.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { printJson, printLine } from '../output.js';

/** Exit status when the files are intact but nothing tied them to the scoreboard's key. */
export const EXIT_UNPINNED = 3;

const KEY_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{64})$/;

async function read(
  file: string,
  what = 'pass the files of a results directory: score.json, evidence.tar.zst (or .tar.gz), verdict.sig, verdict.pub',
): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CliError('invalid_file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, what);
  }
}

/** How the verifier tied the verdict to the scoreboard, for the PASS line and --json. */
type Pin =
  | { readonly by: 'pubkey'; readonly file: string; readonly key: KeyObject }
  | { readonly by: 'key_set'; readonly file: string; readonly set: VerdictKeySet; readonly keyId: string | undefined }
  | { readonly by: 'key_id'; readonly keyId: string }
  | { readonly by: 'none' };

async function pinFrom(values: Record<string, string | boolean | undefined>): Promise<Pin> {
  const pubkey = values.pubkey as string | undefined;
  const keys = values.keys as string | undefined;
  const keyId = values['key-id'] as string | undefined;
  if (keyId !== undefined && !KEY_ID.test(keyId))
    throw new UsageError(`--key-id must be a key id (16 lowercase hex digits) or a key fingerprint (64), got ${JSON.stringify(keyId)}`);
  if (pubkey !== undefined && keys !== undefined) throw new UsageError('give one of --pubkey and --keys, not both');
  if (pubkey !== undefined) {
    let key: KeyObject;
    try {
      key = parseEd25519PublicKey(await read(pubkey, "pass the scoreboard's verdict public key (PEM, as in verdict-keys.json) with --pubkey"), pubkey);
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(
        'invalid_file',
        `--pubkey ${pubkey}: ${(err as Error).message}`,
        "pass the scoreboard's verdict public key: PEM, 32 raw bytes, or hex/base64 text",
      );
    }
    if (keyId !== undefined && keyId !== verdictKeyId(key) && keyId !== verdictKeyFingerprint(key)) {
      throw new UsageError(`--key-id ${keyId} is not the key in --pubkey ${pubkey} (key id ${verdictKeyId(key)})`);
    }
    return { by: 'pubkey', file: pubkey, key };
  }
  if (keys !== undefined) {
    try {
      return {
        by: 'key_set',
        file: keys,
        set: parseVerdictKeySet(
          await read(keys, "pass the verdict key set saved from GET /v1/verdicts/keys (or the object store's verdict-keys.json) with --keys"),
        ),
        keyId,
      };
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError('invalid_file', `--keys ${keys}: ${(err as Error).message}`, 'pass verdict-keys.json as served by GET /v1/verdicts/keys');
    }
  }
  return keyId !== undefined ? { by: 'key_id', keyId } : { by: 'none' };
}

function verify(
  pin: Pin,
  files: { scoreBytes: Buffer; evidenceBytes: Buffer; sigBytes: Buffer; pubBytes: Buffer | undefined },
  labels: { score: string; evidence: string; sig: string; pub: string },
): VerdictVerification {
  const input = {
    scoreBytes: files.scoreBytes,
    evidenceBytes: files.evidenceBytes,
    sigBytes: files.sigBytes,
    ...(files.pubBytes ? { pubBytes: files.pubBytes } : {}),
    labels,
  };
  switch (pin.by) {
    case 'pubkey':
      return verifyVerdictWithKey(input, pin.key, `the pinned key (--pubkey ${pin.file})`);
    case 'key_set':
      return verifyVerdictWithKeySet(input, pin.set, { setLabel: `the key set ${pin.file}`, ...(pin.keyId ? { keyId: pin.keyId } : {}) });
    case 'key_id': {
      // The key id pins verdict.pub, which then proves the signature.
      const result = verifyVerdict({ ...input, pubBytes: files.pubBytes! });
      if (!result.ok) return result;
      const key = parseEd25519PublicKey(files.pubBytes!);
      if (pin.keyId !== verdictKeyId(key) && pin.keyId !== verdictKeyFingerprint(key)) {
        return {
          ok: false,
          problems: [`${labels.pub}: key ${verdictKeyId(key)} is not the pinned key ${pin.keyId} (--key-id): the verdict did not come from that scoreboard`],
        };
      }
      return result;
    }
    case 'none':
      return verifyVerdict({ ...input, pubBytes: files.pubBytes! });
  }
}

function pinnedBy(pin: Pin, keyId: string): string {
  switch (pin.by) {
    case 'pubkey':
      return `pinned by --pubkey ${pin.file}`;
    case 'key_set': {
      const entry = pin.set.keys.find((k) => k.key_id === keyId)!;
      return `in the key set ${pin.file}, ${describeValidity(entry)}`;
    }
    case 'key_id':
      return `pinned by --key-id ${pin.keyId}`;
    case 'none':
      return 'NOT pinned';
  }
}

const UNPINNED_WHY =
  'only integrity was checked, not origin: verdict.pub came with the verdict, and anyone can ' +
  're-sign an edited score.json with a key of their own and ship that key as verdict.pub';
const UNPINNED_FIX =
  "pin the scoreboard's key: --keys verdict-keys.json (GET /v1/verdicts/keys), --pubkey FILE or --key-id ID; --allow-unpinned accepts an integrity-only check";

export const verifyVerdictCommand: Command = {
  name: 'verify-verdict',
  options: { pubkey: { type: 'string' }, 'key-id': { type: 'string' }, keys: { type: 'string' }, 'allow-unpinned': { type: 'boolean' }, ...JSON_OPTION },
  help: `Usage: frostgate verify-verdict <score.json> <evidence.tar.zst|.tar.gz> <verdict.sig> [<verdict.pub>]
         (--keys verdict-keys.json | --pubkey FILE | --key-id ID | --allow-unpinned) [--json]

Checks, with no network and no database, that score.json and the evidence archive are exactly
what the scoreboard signed: their SHA-256 digests against the signed statement in verdict.sig,
and the statement's Ed25519 signature against the scoreboard's key. Any changed byte of any file
fails, and the failure names the file.

The key must be one you trust, not the verdict.pub that came with the verdict (anyone can
re-sign an edited score.json with a key of their own and ship that as verdict.pub):
  --keys FILE      the scoreboard's published key set (save GET /v1/verdicts/keys, or the object
                   store's verdict-keys.json): the verdict's key must be in it, and the verdict
                   signed while that key was current (retired keys verify their own period)
  --pubkey FILE    the scoreboard's verdict public key (PEM, 32 raw bytes, or hex/base64)
  --key-id ID      the key id (16 hex digits) or, better, the fingerprint (64 hex digits) of the
                   scoreboard's key; verdict.pub must be that key. With --keys: that key only.
Without any of them only integrity is checked against verdict.pub: the command says so and
exits ${EXIT_UNPINNED}, unless --allow-unpinned accepts that.

Prints "PASS: verdict verification succeeded" (exit 0), "FAIL: ..." lines (exit 1), or
"UNPINNED: ..." (exit ${EXIT_UNPINNED}).

Options:
  --allow-unpinned   accept an integrity-only check when no key is pinned (exit 0, still says so)
  --json             {"ok", "origin_checked", "pinned_by", "key_id", "signed_at", "score_sha256", "evidence_sha256"} or {"ok": false, "problems": [...]}
  -h, --help         this help

Examples:
  curl -s -H "X-API-Key: $KEY" https://frostgate.example/v1/verdicts/keys > verdict-keys.json
  cd storage/scenarios/scn_0123/results
  frostgate verify-verdict score.json evidence.tar.zst verdict.sig --keys ~/verdict-keys.json`,
  async run({ values, positionals }) {
    if (positionals.length !== 3 && positionals.length !== 4) {
      throw new UsageError(`expected 3 or 4 files (score.json, evidence archive, verdict.sig[, verdict.pub]), got ${positionals.length}`);
    }
    const pin = await pinFrom(values);
    const [scorePath, evidencePath, sigPath, pubPath] = positionals as [string, string, string, string | undefined];
    if (pubPath === undefined && (pin.by === 'none' || pin.by === 'key_id')) {
      throw new UsageError(
        pin.by === 'none'
          ? `pass a key to verify with: --keys FILE or --pubkey FILE (or verdict.pub as a fourth file, which proves integrity only)`
          : '--key-id alone needs verdict.pub as the fourth file',
      );
    }
    const [scoreBytes, evidenceBytes, sigBytes, pubBytes] = await Promise.all([
      read(scorePath),
      read(evidencePath),
      read(sigPath),
      pubPath === undefined ? undefined : read(pubPath),
    ]);
    const labels = { score: scorePath, evidence: evidencePath, sig: sigPath, pub: pubPath ?? 'verdict.pub' };
    const result = verify(pin, { scoreBytes, evidenceBytes, sigBytes, pubBytes }, labels);
    const originChecked = pin.by !== 'none';
    const allowUnpinned = values['allow-unpinned'] === true;
    const code = !result.ok ? 1 : originChecked || allowUnpinned ? 0 : EXIT_UNPINNED;
    if (values.json === true) {
      if (!result.ok) printJson({ ok: false, problems: result.problems });
      else {
        const details = {
          key_id: result.keyId,
          signed_at: result.statement.signed_at,
          score_sha256: result.statement.score_sha256,
          evidence_sha256: result.statement.evidence_sha256,
        };
        printJson({
          ok: code === 0,
          origin_checked: originChecked,
          pinned_by: originChecked ? pin.by : null,
          ...details,
          ...(originChecked ? {} : { problems: [`origin not checked: ${UNPINNED_WHY}`] }),
        });
      }
    } else if (!result.ok) {
      for (const p of result.problems) printLine(`FAIL: ${p}`);
    } else if (originChecked) {
      printLine('PASS: verdict verification succeeded');
      printLine(`  key ${result.keyId} (${pinnedBy(pin, result.keyId)}), signed at ${result.statement.signed_at}`);
    } else {
      printLine(allowUnpinned ? `PASS (integrity only, --allow-unpinned): ${UNPINNED_WHY}` : `UNPINNED: ${UNPINNED_WHY}`);
      printLine(`  key ${result.keyId} (verdict.pub, NOT pinned), signed at ${result.statement.signed_at}`);
      if (!allowUnpinned) printLine(`  ${UNPINNED_FIX}`);
    }
    return code;
  },
};
