/**
 * Signed Forge verdicts: anyone holding score.json, the evidence archive, verdict.sig and
 * verdict.pub can check offline (no network, no clock, no database) that the score and evidence
 * are exactly what the scoreboard's key signed.
 *
 * What is signed: the RFC 8785 canonical JSON bytes of the statement
 *
 *   {"evidence_sha256":<hex>,"key_id":<hex16>,"score_sha256":<hex>,"signed_at":<RFC 3339 UTC>,
 *    "type":"frostgate.forge.verdict","v":1}
 *
 * where score_sha256 / evidence_sha256 are the lowercase hex SHA-256 of the score.json and
 * evidence archive files *as stored* (score.json is itself canonical JSON; it is hashed, never
 * re-serialised), `type` separates this signature domain from every other use of the key, and
 * key_id is the first 8 bytes, in hex, of SHA-256 of the raw 32-byte Ed25519 public key.
 * Ed25519 is deterministic, so the same inputs and signed_at give byte-identical artefacts (grading
 * twice is idempotent when the caller passes the original graded_at as `signedAt`).
 *
 * verdict.sig is the canonical JSON of
 *   {"alg":"Ed25519","key_id":<hex16>,"signature":<base64 of 64 bytes>,"statement":{…},"v":1}
 * followed by one "\n". key_id repeats statement.key_id (so a key ring can pick the key without
 * trusting anything else) and must equal it.
 * verdict.pub is the public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`) exactly as node:crypto exports it.
 *
 * Verification is strict about form as well as content: both files must be byte-for-byte in their
 * canonical form (the base64 in a PEM or a signature has spare low bits that decoders ignore, and
 * JSON allows whitespace; a verifier accepting those would let a changed byte pass). So any single
 * changed byte of any of the four files fails verification, and the problem names the file.
 *
 * Origin: verdict.pub travels with the verdict, so checking against it proves integrity only
 * (anyone can re-sign an edited score.json with a key of their own and ship that key).
 * `verifyVerdictWithKey` checks against a key the verifier pinned; the published key set
 * (verdict-keys.ts) adds validity periods across rotations.
 *
 * Keys: `loadVerdictSigningKey` reads SIGNING_KEY_PATH (PEM, or the other formats of
 * platform/crypto/ed25519), in dev a key generated once into the data directory, or, only when
 * the caller allows it (dev/test), an ephemeral key.
 */

import { createHash, type KeyObject } from 'node:crypto';
import { canonicalize } from '../../platform/crypto/canonical-json.js';
import { loadSigningKey } from '../../platform/crypto/signing-keys.js';
import {
  ED25519_SIGNATURE_SIZE,
  exportPublicKeyPem,
  exportPublicKeyRaw,
  parseEd25519PublicKey,
  publicKeyOf,
  signEd25519,
  verifyEd25519,
} from '../../platform/crypto/ed25519.js';

export const VERDICT_STATEMENT_TYPE = 'frostgate.forge.verdict';
export const VERDICT_VERSION = 1;

export interface VerdictStatement {
  readonly v: 1;
  readonly type: typeof VERDICT_STATEMENT_TYPE;
  readonly score_sha256: string;
  readonly evidence_sha256: string;
  readonly key_id: string;
  readonly signed_at: string;
}

/** The content of verdict.sig. */
export interface VerdictSignatureFile {
  readonly v: 1;
  readonly alg: 'Ed25519';
  readonly key_id: string;
  readonly statement: VerdictStatement;
  /** Standard base64 (with padding) of the 64-byte Ed25519 signature. */
  readonly signature: string;
}

export type VerdictErrorCode =
  | 'verdict_key_missing'
  | 'verdict_score_not_canonical'
  | 'verdict_signed_at_invalid'
  /** The published key set is not a valid verdict-keys.json. */
  | 'verdict_key_set_invalid'
  /** The signing key is retired in the published key set: it may not sign again. */
  | 'verdict_key_retired';

export class VerdictError extends Error {
  readonly code: VerdictErrorCode;
  constructor(code: VerdictErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VerdictError';
    this.code = code;
  }
}

export type VerdictVerification =
  { readonly ok: true; readonly keyId: string; readonly statement: VerdictStatement } | { readonly ok: false; readonly problems: string[] };

/** How problems name the four files; the CLI passes the paths it was given. */
export interface VerdictFileLabels {
  readonly score: string;
  readonly evidence: string;
  readonly sig: string;
  readonly pub: string;
}

export const DEFAULT_VERDICT_LABELS: VerdictFileLabels = {
  score: 'score.json',
  evidence: 'evidence archive',
  sig: 'verdict.sig',
  pub: 'verdict.pub',
};

const HEX64 = /^[0-9a-f]{64}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** First 8 bytes, hex, of SHA-256 over the raw 32-byte public key (a private key gives its public half's id). */
export function verdictKeyId(key: KeyObject): string {
  return createHash('sha256').update(exportPublicKeyRaw(key)).digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------
// Keys

export interface VerdictSigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;
  /** The verdict.pub bytes for this key. */
  readonly publicPem: string;
  /** The key file path, or 'ephemeral'. */
  readonly source: string;
  readonly ephemeral: boolean;
}

export function verdictSigningKeyFrom(privateKey: KeyObject, source: string): VerdictSigningKey {
  const publicKey = publicKeyOf(privateKey);
  return {
    privateKey,
    publicKey,
    keyId: verdictKeyId(publicKey),
    publicPem: exportPublicKeyPem(publicKey),
    source,
    ephemeral: source === 'ephemeral',
  };
}

/**
 * The verdict signing key from `keyPath` (SIGNING_KEY_PATH). Without a path, and only if
 * `allowEphemeral` (callers pass true in dev/test only): the key generated once into
 * `<dataDir>/keys/verdict-ed25519.pem` when a data directory is given (dev), else an ephemeral
 * key, which is never published (audit finding #5); otherwise VerdictError 'verdict_key_missing'.
 * Unreadable or invalid files throw Ed25519KeyError.
 */
export async function loadVerdictSigningKey(opts: {
  keyPath: string | undefined;
  allowEphemeral: boolean;
  dataDir?: string | undefined;
}): Promise<VerdictSigningKey> {
  if (!opts.keyPath && !opts.allowEphemeral) {
    throw new VerdictError('verdict_key_missing', 'SIGNING_KEY_PATH is not set and an ephemeral verdict key is not allowed in this profile');
  }
  const { privateKey, source } = await loadSigningKey({ keyPath: opts.keyPath, dataDir: opts.keyPath ? undefined : opts.dataDir, name: 'verdict-ed25519' });
  return verdictSigningKeyFrom(privateKey, source);
}

// ---------------------------------------------------------------------------------------------
// Signing

export interface SignedVerdict {
  readonly statement: VerdictStatement;
  readonly keyId: string;
  /** verdict.sig */
  readonly sigBytes: Buffer;
  /** verdict.pub */
  readonly pubBytes: Buffer;
}

function encodeSigFile(file: VerdictSignatureFile): Buffer {
  return Buffer.from(`${canonicalize(file)}\n`, 'utf8');
}

/**
 * Signs a verdict over score.json and the evidence archive. `scoreBytes` must be canonical JSON
 * (what score.json is specified to be); `signedAt` defaults to now.
 */
export function signVerdict(input: { scoreBytes: Uint8Array; evidenceBytes: Uint8Array; privateKey: KeyObject; signedAt?: Date | string }): SignedVerdict {
  const scoreText = Buffer.from(input.scoreBytes).toString('utf8');
  let canonical: string | undefined;
  try {
    canonical = canonicalize(JSON.parse(scoreText));
  } catch (cause) {
    throw new VerdictError('verdict_score_not_canonical', 'score.json is not JSON', { cause });
  }
  if (canonical !== scoreText) throw new VerdictError('verdict_score_not_canonical', 'score.json is not in RFC 8785 canonical form');

  const signedAt = input.signedAt === undefined ? new Date().toISOString() : typeof input.signedAt === 'string' ? input.signedAt : input.signedAt.toISOString();
  if (!RFC3339_UTC.test(signedAt)) throw new VerdictError('verdict_signed_at_invalid', `signed_at ${signedAt} is not an RFC 3339 UTC timestamp`);

  const publicKey = publicKeyOf(input.privateKey);
  const keyId = verdictKeyId(publicKey);
  const statement: VerdictStatement = {
    v: VERDICT_VERSION,
    type: VERDICT_STATEMENT_TYPE,
    score_sha256: sha256Hex(input.scoreBytes),
    evidence_sha256: sha256Hex(input.evidenceBytes),
    key_id: keyId,
    signed_at: signedAt,
  };
  const signature = signEd25519(input.privateKey, Buffer.from(canonicalize(statement), 'utf8'));
  const sigBytes = encodeSigFile({ v: VERDICT_VERSION, alg: 'Ed25519', key_id: keyId, statement, signature: signature.toString('base64') });
  return { statement, keyId, sigBytes, pubBytes: Buffer.from(exportPublicKeyPem(publicKey), 'utf8') };
}

// ---------------------------------------------------------------------------------------------
// Parsing the files strictly

const utf8 = new TextDecoder('utf-8', { fatal: true });

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function exactKeys(value: unknown, keys: readonly string[]): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const actual = Object.keys(value).sort();
  return actual.length === keys.length && [...keys].sort().every((k, i) => actual[i] === k);
}

function parseStatement(value: unknown): Parsed<VerdictStatement> {
  if (!exactKeys(value, ['v', 'type', 'score_sha256', 'evidence_sha256', 'key_id', 'signed_at'])) {
    return { ok: false, reason: 'statement must have exactly v, type, score_sha256, evidence_sha256, key_id, signed_at' };
  }
  if (value.v !== VERDICT_VERSION) return { ok: false, reason: `unsupported statement version ${JSON.stringify(value.v)}` };
  if (value.type !== VERDICT_STATEMENT_TYPE) return { ok: false, reason: `statement type is not ${VERDICT_STATEMENT_TYPE}` };
  for (const field of ['score_sha256', 'evidence_sha256'] as const) {
    const digest = value[field];
    if (typeof digest !== 'string' || !HEX64.test(digest)) return { ok: false, reason: `${field} is not 64 lowercase hex digits` };
  }
  if (typeof value.key_id !== 'string' || !HEX16.test(value.key_id)) return { ok: false, reason: 'statement key_id is not 16 lowercase hex digits' };
  if (typeof value.signed_at !== 'string' || !RFC3339_UTC.test(value.signed_at)) return { ok: false, reason: 'signed_at is not an RFC 3339 UTC timestamp' };
  return { ok: true, value: value as unknown as VerdictStatement };
}

/** Parses verdict.sig, refusing anything but the exact bytes signVerdict would have written. */
export function parseVerdictSignatureFile(sigBytes: Uint8Array): { ok: true; value: VerdictSignatureFile; signature: Buffer } | { ok: false; reason: string } {
  let text: string;
  try {
    text = utf8.decode(sigBytes);
  } catch {
    return { ok: false, reason: 'not UTF-8' };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!exactKeys(json, ['v', 'alg', 'key_id', 'statement', 'signature'])) {
    return { ok: false, reason: 'must be an object with exactly v, alg, key_id, statement, signature' };
  }
  if (json.v !== VERDICT_VERSION) return { ok: false, reason: `unsupported version ${JSON.stringify(json.v)}` };
  if (json.alg !== 'Ed25519') return { ok: false, reason: `unsupported algorithm ${JSON.stringify(json.alg)}` };
  const statement = parseStatement(json.statement);
  if (!statement.ok) return statement;
  if (json.key_id !== statement.value.key_id) return { ok: false, reason: 'key_id differs from the statement key_id' };
  if (typeof json.signature !== 'string') return { ok: false, reason: 'signature is not a string' };
  const signature = Buffer.from(json.signature, 'base64');
  if (signature.length !== ED25519_SIGNATURE_SIZE || signature.toString('base64') !== json.signature) {
    return { ok: false, reason: 'signature is not the standard base64 of 64 bytes' };
  }
  const file = json as unknown as VerdictSignatureFile;
  if (!encodeSigFile(file).equals(Buffer.from(sigBytes))) {
    return { ok: false, reason: 'not in canonical form (RFC 8785 JSON followed by one newline)' };
  }
  return { ok: true, value: file, signature };
}

/** Parses verdict.pub, refusing anything but an Ed25519 SPKI PEM exactly as node:crypto writes it. */
export function parseVerdictPublicKey(pubBytes: Uint8Array): Parsed<KeyObject> {
  let text: string;
  try {
    text = utf8.decode(pubBytes);
  } catch {
    return { ok: false, reason: 'not UTF-8' };
  }
  if (!text.startsWith('-----BEGIN PUBLIC KEY-----')) return { ok: false, reason: 'not a PEM public key' };
  let key: KeyObject;
  try {
    key = parseEd25519PublicKey(text, 'verdict.pub');
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : 'unreadable public key' };
  }
  if (exportPublicKeyPem(key) !== text) return { ok: false, reason: 'not in canonical PEM form' };
  return { ok: true, value: key };
}

// ---------------------------------------------------------------------------------------------
// Verification

export interface VerifyVerdictInput {
  readonly scoreBytes: Uint8Array;
  readonly evidenceBytes: Uint8Array;
  readonly sigBytes: Uint8Array;
  readonly pubBytes: Uint8Array;
  readonly labels?: Partial<VerdictFileLabels>;
}

/** A verdict's files without verdict.pub, which a pinned verification does not need. */
export type PinnedVerdictInput = Omit<VerifyVerdictInput, 'pubBytes'> & { readonly pubBytes?: Uint8Array };

/** The statement's digests against the files; problems name the file at fault. */
function digestProblems(statement: VerdictStatement, input: PinnedVerdictInput, labels: VerdictFileLabels): string[] {
  const problems: string[] = [];
  const scoreDigest = sha256Hex(input.scoreBytes);
  if (scoreDigest !== statement.score_sha256) {
    problems.push(`${labels.score}: SHA-256 ${scoreDigest} does not match ${statement.score_sha256} in the signed statement`);
  }
  const evidenceDigest = sha256Hex(input.evidenceBytes);
  if (evidenceDigest !== statement.evidence_sha256) {
    problems.push(`${labels.evidence}: SHA-256 ${evidenceDigest} does not match ${statement.evidence_sha256} in the signed statement`);
  }
  return problems;
}

function signatureVerifies(key: KeyObject, statement: VerdictStatement, signature: Buffer): boolean {
  return verifyEd25519(key, Buffer.from(canonicalize(statement), 'utf8'), signature);
}

/**
 * Verifies a verdict offline against the verdict.pub shipped with it. Never throws for bad input:
 * every mismatch becomes a problem that starts with the label of the file at fault
 * (`score.json: …`, `verdict.pub: …`). This proves integrity, not origin: see verifyVerdictWithKey.
 */
export function verifyVerdict(input: VerifyVerdictInput): VerdictVerification {
  const labels = { ...DEFAULT_VERDICT_LABELS, ...input.labels };
  const problems: string[] = [];
  const sig = parseVerdictSignatureFile(input.sigBytes);
  const pub = parseVerdictPublicKey(input.pubBytes);
  if (!sig.ok) problems.push(`${labels.sig}: malformed: ${sig.reason}`);
  if (!pub.ok) problems.push(`${labels.pub}: malformed: ${pub.reason}`);
  if (!sig.ok) return { ok: false, problems };

  const { statement } = sig.value;
  problems.push(...digestProblems(statement, input, labels));
  if (pub.ok) {
    const pubKeyId = verdictKeyId(pub.value);
    if (pubKeyId !== statement.key_id) {
      // A signature under another key cannot verify; say which file disagrees instead.
      problems.push(`${labels.pub}: key id ${pubKeyId} does not match key id ${statement.key_id} named in ${labels.sig}`);
    } else if (!signatureVerifies(pub.value, statement, sig.signature)) {
      problems.push(`${labels.sig}: the Ed25519 signature does not verify over the statement with ${labels.pub} (key ${pubKeyId})`);
    }
  }
  return problems.length === 0 ? { ok: true, keyId: statement.key_id, statement } : { ok: false, problems };
}

/**
 * Verifies a verdict against a public key the verifier trusts (`pinned`, described by
 * `pinnedLabel` in problems), ignoring whatever key came with it: a verdict re-signed by anyone
 * else fails, naming the key that signed it. A verdict.pub passed along must be that same key.
 */
export function verifyVerdictWithKey(input: PinnedVerdictInput, pinnedKey: KeyObject, pinnedLabel = 'the pinned key'): VerdictVerification {
  const pinned = pinnedKey.type === 'private' ? publicKeyOf(pinnedKey) : pinnedKey;
  const labels = { ...DEFAULT_VERDICT_LABELS, ...input.labels };
  const sig = parseVerdictSignatureFile(input.sigBytes);
  if (!sig.ok) return { ok: false, problems: [`${labels.sig}: malformed: ${sig.reason}`] };
  const { statement } = sig.value;
  const problems = digestProblems(statement, input, labels);
  const pinnedId = verdictKeyId(pinned);
  if (input.pubBytes !== undefined) {
    const pub = parseVerdictPublicKey(input.pubBytes);
    if (!pub.ok) problems.push(`${labels.pub}: malformed: ${pub.reason}`);
    else if (verdictKeyId(pub.value) !== pinnedId) problems.push(`${labels.pub}: key ${verdictKeyId(pub.value)} is not ${pinnedLabel} (key ${pinnedId})`);
  }
  if (statement.key_id !== pinnedId) {
    problems.push(`${labels.sig}: signed by key ${statement.key_id}, not by ${pinnedLabel} (key ${pinnedId}): the verdict did not come from that scoreboard`);
  } else if (!signatureVerifies(pinned, statement, sig.signature)) {
    problems.push(`${labels.sig}: the Ed25519 signature does not verify over the statement with ${pinnedLabel} (key ${pinnedId})`);
  }
  return problems.length === 0 ? { ok: true, keyId: statement.key_id, statement } : { ok: false, problems };
}
