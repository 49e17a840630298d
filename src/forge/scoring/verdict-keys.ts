/**
 * The published verdict key set, `verdict-keys.json`: every key that ever signed verdicts, with
 * the period it was current and the rotation history. Verifiers pin it (`frostgate verify-verdict
 * --keys`) instead of trusting the verdict.pub shipped with a verdict; a retired key stays in the
 * set and verifies the verdicts signed while it was current.
 *
 *   {"v":1,"type":"frostgate.forge.verdict-keys","updated_at":<RFC 3339>,
 *    "keys":[{"key_id":<hex16>,"fingerprint_sha256":<hex64>,"public_key":<SPKI PEM>,
 *             "status":"current"|"retired","valid_from":<RFC 3339>|null,"valid_until":<RFC 3339>|null}],
 *    "rotations":[{"at":<RFC 3339>,"retired":<key id>|null,"activated":<key id>}]}
 *
 * A key is valid for a verdict whose signed_at lies in [valid_from, valid_until); valid_from is
 * null only for the first key, which may have signed before the set was first written, and
 * valid_until is null only for the current key. signed_at is the signer's own claim: the periods
 * keep a key from signing after its retirement is published, not a stolen key from backdating.
 *
 * The scoreboard writes the set into its object store at startup and checks it before each
 * grading (`publishVerdictKey`); `GET /v1/verdicts/keys` serves it.
 */

import { createHash, type KeyObject } from 'node:crypto';
import { exportPublicKeyPem, exportPublicKeyRaw, parseEd25519PublicKey } from '../../platform/crypto/ed25519.js';
import type { ObjectStorage } from '../../platform/storage/types.js';
import {
  DEFAULT_VERDICT_LABELS,
  parseVerdictSignatureFile,
  VerdictError,
  verdictKeyId,
  verifyVerdictWithKey,
  type PinnedVerdictInput,
  type VerdictSigningKey,
  type VerdictVerification,
} from './verdict.js';

export const VERDICT_KEY_SET_TYPE = 'frostgate.forge.verdict-keys';
/** Where the set lives in the object store (under FG_S3_PREFIX on S3). */
export const VERDICT_KEYS_OBJECT = 'verdict-keys.json';

export interface VerdictKeyEntry {
  readonly key_id: string;
  /** Lowercase hex SHA-256 of the raw 32-byte public key: the full-strength pin. */
  readonly fingerprint_sha256: string;
  /** SPKI PEM, the exact bytes of the verdict.pub this key writes. */
  readonly public_key: string;
  readonly status: 'current' | 'retired';
  readonly valid_from: string | null;
  readonly valid_until: string | null;
}

export interface VerdictKeyRotation {
  readonly at: string;
  readonly retired: string | null;
  readonly activated: string;
}

export interface VerdictKeySet {
  readonly v: 1;
  readonly type: typeof VERDICT_KEY_SET_TYPE;
  readonly updated_at: string;
  readonly keys: readonly VerdictKeyEntry[];
  readonly rotations: readonly VerdictKeyRotation[];
}

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

export function verdictKeyFingerprint(key: KeyObject): string {
  return createHash('sha256').update(exportPublicKeyRaw(key)).digest('hex');
}

/** The set's entry for a public key that is current from `validFrom` (null: before the set existed). */
function entryFor(publicKey: KeyObject, validFrom: string | null): VerdictKeyEntry {
  return {
    key_id: verdictKeyId(publicKey),
    fingerprint_sha256: verdictKeyFingerprint(publicKey),
    public_key: exportPublicKeyPem(publicKey),
    status: 'current',
    valid_from: validFrom,
    valid_until: null,
  };
}

/** The file's bytes: indented JSON (people read it; nothing signs it), keys in a fixed order. */
export function encodeVerdictKeySet(set: VerdictKeySet): Buffer {
  const ordered = {
    v: set.v,
    type: set.type,
    updated_at: set.updated_at,
    keys: set.keys.map((k) => ({
      key_id: k.key_id,
      fingerprint_sha256: k.fingerprint_sha256,
      status: k.status,
      valid_from: k.valid_from,
      valid_until: k.valid_until,
      public_key: k.public_key,
    })),
    rotations: set.rotations.map((r) => ({ at: r.at, retired: r.retired, activated: r.activated })),
  };
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`, 'utf8');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is string => typeof v === 'string' && RFC3339_UTC.test(v) && !Number.isNaN(Date.parse(v));

function invalid(reason: string): never {
  throw new VerdictError('verdict_key_set_invalid', reason);
}

function parseEntry(value: unknown, i: number): VerdictKeyEntry {
  const at = `keys[${i}]`;
  if (!isObject(value)) invalid(`${at} is not an object`);
  if (typeof value.public_key !== 'string') invalid(`${at}.public_key is not a PEM string`);
  let key: KeyObject;
  try {
    key = parseEd25519PublicKey(value.public_key, `${at}.public_key`);
  } catch (err) {
    invalid((err as Error).message);
  }
  if (value.key_id !== verdictKeyId(key)) invalid(`${at}.key_id ${JSON.stringify(value.key_id)} is not the key id of its public_key (${verdictKeyId(key)})`);
  if (value.fingerprint_sha256 !== verdictKeyFingerprint(key)) invalid(`${at}.fingerprint_sha256 is not the SHA-256 of its public_key`);
  if (value.valid_from !== null && !isTime(value.valid_from)) invalid(`${at}.valid_from is neither null nor an RFC 3339 UTC time`);
  if (value.valid_until !== null && !isTime(value.valid_until)) invalid(`${at}.valid_until is neither null nor an RFC 3339 UTC time`);
  const status = value.valid_until === null ? 'current' : 'retired';
  if (value.status !== status) invalid(`${at}.status must be "current" exactly when valid_until is null`);
  if (value.valid_from !== null && value.valid_until !== null && Date.parse(value.valid_until) < Date.parse(value.valid_from))
    invalid(`${at} is valid until before it is valid from`);
  return {
    key_id: value.key_id,
    fingerprint_sha256: value.fingerprint_sha256,
    public_key: exportPublicKeyPem(key),
    status,
    valid_from: value.valid_from,
    valid_until: value.valid_until,
  };
}

/** Parses verdict-keys.json strictly; throws VerdictError 'verdict_key_set_invalid' naming the fault. */
export function parseVerdictKeySet(bytes: Uint8Array | string): VerdictKeySet {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch {
    invalid('not JSON');
  }
  if (!isObject(json)) invalid('not a JSON object');
  if (json.v !== 1 || json.type !== VERDICT_KEY_SET_TYPE) invalid(`not a verdict key set (expected "v": 1, "type": "${VERDICT_KEY_SET_TYPE}")`);
  if (!isTime(json.updated_at)) invalid('updated_at is not an RFC 3339 UTC time');
  if (!Array.isArray(json.keys) || json.keys.length === 0) invalid('keys must be a non-empty array');
  if (!Array.isArray(json.rotations)) invalid('rotations must be an array');
  const keys = json.keys.map(parseEntry);
  const ids = new Set(keys.map((k) => k.key_id));
  if (ids.size !== keys.length) invalid('a key id appears twice in keys');
  if (keys.filter((k) => k.status === 'current').length > 1) invalid('more than one key is current');
  if (keys.some((k, i) => i > 0 && k.valid_from === null)) invalid('only the first key may have valid_from null');
  const rotations = json.rotations.map((r: unknown, i: number): VerdictKeyRotation => {
    if (
      !isObject(r) ||
      !isTime(r.at) ||
      (r.retired !== null && (typeof r.retired !== 'string' || !ids.has(r.retired))) ||
      typeof r.activated !== 'string' ||
      !ids.has(r.activated)
    ) {
      invalid(`rotations[${i}] must be {"at": time, "retired": key id in keys or null, "activated": key id in keys}`);
    }
    return { at: r.at, retired: r.retired, activated: r.activated };
  });
  return { v: 1, type: VERDICT_KEY_SET_TYPE, updated_at: json.updated_at, keys, rotations };
}

/**
 * The set with `publicKey` current from `now`: unchanged when it already is; otherwise the current
 * key is retired at `now` and the rotation recorded. A key the set lists as retired is refused
 * (VerdictError 'verdict_key_retired'): a retired key never signs again, and re-activating it
 * would cut short its successor's period.
 */
export function withCurrentKey(
  set: VerdictKeySet | undefined,
  publicKey: KeyObject,
  now: Date,
): { set: VerdictKeySet; changed: boolean; retired: string | null } {
  const keyId = verdictKeyId(publicKey);
  const at = now.toISOString();
  if (!set) {
    return {
      set: { v: 1, type: VERDICT_KEY_SET_TYPE, updated_at: at, keys: [entryFor(publicKey, null)], rotations: [{ at, retired: null, activated: keyId }] },
      changed: true,
      retired: null,
    };
  }
  const known = set.keys.find((k) => k.key_id === keyId);
  if (known?.status === 'current') return { set, changed: false, retired: null };
  if (known) {
    throw new VerdictError(
      'verdict_key_retired',
      `verdict key ${keyId} was retired at ${known.valid_until} (${VERDICT_KEYS_OBJECT}) ` +
        `and may not sign again: set SIGNING_KEY_PATH to the current key or a new one`,
    );
  }
  const current = set.keys.find((k) => k.status === 'current');
  const keys = set.keys.map((k): VerdictKeyEntry => (k === current ? { ...k, status: 'retired', valid_until: at } : k));
  return {
    set: {
      ...set,
      updated_at: at,
      keys: [...keys, entryFor(publicKey, at)],
      rotations: [...set.rotations, { at, retired: current?.key_id ?? null, activated: keyId }],
    },
    changed: true,
    retired: current?.key_id ?? null,
  };
}

/** The set stored in `storage`, or undefined when none was written yet. */
export async function readVerdictKeySet(storage: Pick<ObjectStorage, 'get'>): Promise<VerdictKeySet | undefined> {
  const bytes = await storage.get(VERDICT_KEYS_OBJECT);
  if (!bytes) return undefined;
  try {
    return parseVerdictKeySet(bytes);
  } catch (err) {
    throw new VerdictError('verdict_key_set_invalid', `${VERDICT_KEYS_OBJECT} in the object store: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Makes `key` the current key of the published set (see withCurrentKey) and writes the set when
 * that changed it. An ephemeral key (dev/test) is never published: the set it would enter would
 * outlive the key. Concurrent first starts of several scoreboards with a new key may each write
 * the set; the last write wins and differs only in the rotation instant.
 */
export async function publishVerdictKey(
  storage: Pick<ObjectStorage, 'get' | 'put'>,
  key: Pick<VerdictSigningKey, 'publicKey' | 'ephemeral'>,
  now: Date = new Date(),
): Promise<{ set: VerdictKeySet; changed: boolean; retired: string | null }> {
  if (key.ephemeral) return withCurrentKey(undefined, key.publicKey, now);
  const result = withCurrentKey(await readVerdictKeySet(storage), key.publicKey, now);
  if (result.changed) await storage.put(VERDICT_KEYS_OBJECT, encodeVerdictKeySet(result.set));
  return result;
}

/**
 * Verifies a verdict against a key set the verifier trusts: the key the verdict names must be in
 * the set, and its signed_at inside that key's validity period. `keyId` narrows the set to one
 * key (16 hex digits, or the 64-digit fingerprint).
 */
export function verifyVerdictWithKeySet(input: PinnedVerdictInput, set: VerdictKeySet, opts: { keyId?: string; setLabel?: string } = {}): VerdictVerification {
  const labels = { ...DEFAULT_VERDICT_LABELS, ...input.labels };
  const setLabel = opts.setLabel ?? 'the key set';
  const sig = parseVerdictSignatureFile(input.sigBytes);
  if (!sig.ok) return { ok: false, problems: [`${labels.sig}: malformed: ${sig.reason}`] };
  const { key_id: keyId, signed_at: signedAt } = sig.value.statement;
  const entry = set.keys.find((k) => k.key_id === keyId);
  if (!entry)
    return {
      ok: false,
      problems: [
        `${labels.sig}: signed by key ${keyId}, which is not in ${setLabel} (keys ` +
          `${set.keys.map((k) => k.key_id).join(', ')}): the verdict did not come from that scoreboard`,
      ],
    };
  if (opts.keyId !== undefined && opts.keyId !== entry.key_id && opts.keyId !== entry.fingerprint_sha256) {
    return { ok: false, problems: [`${labels.sig}: signed by key ${keyId}, not by the pinned key ${opts.keyId}`] };
  }
  const result = verifyVerdictWithKey(input, parseEd25519PublicKey(entry.public_key), `key ${entry.key_id} of ${setLabel}`);
  if (!result.ok) return result;
  const t = Date.parse(signedAt);
  const before = entry.valid_from !== null && t < Date.parse(entry.valid_from);
  const after = entry.valid_until !== null && t >= Date.parse(entry.valid_until);
  if (before || after) {
    return {
      ok: false,
      problems: [
        `${labels.sig}: signed at ${signedAt}, outside the period key ${keyId} was current in ` +
          `${setLabel} (from ${entry.valid_from ?? 'the start'} until ${entry.valid_until ?? 'now'})`,
      ],
    };
  }
  return result;
}

/** A key set entry's validity, for people: "current since T" or "valid from A until B". */
export function describeValidity(entry: Pick<VerdictKeyEntry, 'valid_from' | 'valid_until'>): string {
  if (entry.valid_until === null) return entry.valid_from === null ? 'current' : `current since ${entry.valid_from}`;
  return `retired, valid ${entry.valid_from === null ? 'until' : `from ${entry.valid_from} until`} ${entry.valid_until}`;
}
