import { createHash, type KeyObject } from 'node:crypto';
import {
  ED25519_PUBLIC_KEY_SIZE,
  ED25519_SEED_SIZE,
  ED25519_SIGNATURE_SIZE,
  exportPrivateKeySeed,
  exportPublicKeyRaw,
  privateKeyFromSeed,
  publicKeyFromRaw,
  publicKeyOf,
  signEd25519,
  verifyEd25519,
} from '../platform/crypto/ed25519.js';
import { LedgerError } from './errors.js';

/**
 * C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 signatures, interoperable with
 * golang.org/x/mod/sumdb/note:
 *
 *   <text ending in \n>
 *   <blank line>
 *   — <key name> base64(4-byte big-endian key ID || 64-byte Ed25519 signature over the text)
 *
 * key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]. A verifier key string
 * ("vkey") reads `<name>+<8 hex digits key ID>+base64(0x01 || public key)`; a signer key string
 * ("skey") reads `PRIVATE+KEY+<name>+<key ID>+base64(0x01 || 32-byte seed)`.
 */

export const ED25519_SIGNATURE_TYPE = 0x01;
/** The spec requires accepting at least 16; x/mod/sumdb/note stops at 100. */
export const MAX_NOTE_SIGNATURES = 100;
export const MAX_NOTE_BYTES = 1 << 20;

const EM_DASH_PREFIX = '\u2014 ';
const SIGNER_KEY_PREFIX = 'PRIVATE+KEY+';

export interface NoteVerifier {
  readonly name: string;
  /** uint32 key ID. */
  readonly keyId: number;
  readonly publicKey: KeyObject;
}

export interface NoteSigner extends NoteVerifier {
  readonly privateKey: KeyObject;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes after the 4-byte key ID. */
  readonly signature: Buffer;
}

export interface ParsedNote {
  /** The signed text, final newline included. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface OpenedNote extends ParsedNote {
  /** The known keys whose signatures verified (at least one). */
  readonly verifiedBy: readonly NoteVerifier[];
}

function malformed(message: string): LedgerError {
  return new LedgerError('note_malformed', message);
}

function keyInvalid(message: string): LedgerError {
  return new LedgerError('note_key_invalid', message);
}

/** Key names are non-empty with no Unicode space and no '+'. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !hasForbiddenCharacters(name);
}

/** Control characters other than newline, or lone surrogates (not encodable as UTF-8). */
function hasForbiddenCharacters(text: string): boolean {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return /[\u0000-\u0009\u000B-\u001F\u007F]/.test(text) || /[\uD800-\uDFFF]/u.test(text);
}

export function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** SHA-256(name || 0x0A || 0x01 || public key)[:4] as a big-endian uint32. */
export function computeKeyId(name: string, publicKeyRaw: Uint8Array): number {
  const digest = createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, ED25519_SIGNATURE_TYPE]))
    .update(publicKeyRaw)
    .digest();
  return digest.readUInt32BE(0);
}

/** Strict standard base64 (RFC 4648 section 4): rejects anything that would not re-encode identically. */
export function decodeStrictBase64(text: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

export function createNoteVerifier(name: string, publicKey: KeyObject): NoteVerifier {
  if (!isValidKeyName(name)) throw keyInvalid(`invalid key name ${JSON.stringify(name)}`);
  const raw = exportPublicKeyRaw(publicKey);
  return { name, keyId: computeKeyId(name, raw), publicKey: publicKeyFromRaw(raw) };
}

export function createNoteSigner(name: string, privateKey: KeyObject): NoteSigner {
  const verifier = createNoteVerifier(name, publicKeyOf(privateKey));
  return { ...verifier, privateKey };
}

/** The public half of a signer, for publishing. */
export function verifierOf(signer: NoteVerifier): NoteVerifier {
  return { name: signer.name, keyId: signer.keyId, publicKey: signer.publicKey };
}

/** `<name>+<hex key ID>+base64(0x01 || public key)`. */
export function formatVerifierKey(verifier: NoteVerifier): string {
  const encoded = Buffer.concat([Buffer.from([ED25519_SIGNATURE_TYPE]), exportPublicKeyRaw(verifier.publicKey)]);
  return `${verifier.name}+${formatKeyId(verifier.keyId)}+${encoded.toString('base64')}`;
}

/** Splits `name+hexid+base64` at the first two '+' (base64 may itself contain '+'). */
function splitKeyString(text: string, what: string): { name: string; keyId: number; key: Buffer } {
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw keyInvalid(`${what} must read <name>+<key id>+<key>`);
  const name = text.slice(0, first);
  const hexId = text.slice(first + 1, second);
  const key = decodeStrictBase64(text.slice(second + 1));
  if (!isValidKeyName(name)) throw keyInvalid(`${what}: invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw keyInvalid(`${what}: key id must be 8 lowercase hex digits`);
  if (!key) throw keyInvalid(`${what}: key is not valid base64`);
  if (key[0] !== ED25519_SIGNATURE_TYPE) throw keyInvalid(`${what}: unsupported signature type ${key[0] ?? 'none'} (only Ed25519, 0x01)`);
  return { name, keyId: Number.parseInt(hexId, 16), key: key.subarray(1) };
}

export function parseVerifierKey(vkey: string): NoteVerifier {
  const { name, keyId, key } = splitKeyString(vkey.trim(), 'verifier key');
  if (key.length !== ED25519_PUBLIC_KEY_SIZE) throw keyInvalid(`verifier key: Ed25519 public key must be ${ED25519_PUBLIC_KEY_SIZE} bytes`);
  const verifier = createNoteVerifier(name, publicKeyFromRaw(key));
  if (verifier.keyId !== keyId) throw keyInvalid(`verifier key: key id ${formatKeyId(keyId)} does not match the key (${formatKeyId(verifier.keyId)})`);
  return verifier;
}

/** `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)`: a secret, as x/mod/sumdb/note writes it. */
export function formatSignerKey(signer: NoteSigner): string {
  const encoded = Buffer.concat([Buffer.from([ED25519_SIGNATURE_TYPE]), exportPrivateKeySeed(signer.privateKey)]);
  return `${SIGNER_KEY_PREFIX}${signer.name}+${formatKeyId(signer.keyId)}+${encoded.toString('base64')}`;
}

export function parseSignerKey(skey: string): NoteSigner {
  const trimmed = skey.trim();
  if (!trimmed.startsWith(SIGNER_KEY_PREFIX)) throw keyInvalid(`signer key must start with ${SIGNER_KEY_PREFIX}`);
  const { name, keyId, key } = splitKeyString(trimmed.slice(SIGNER_KEY_PREFIX.length), 'signer key');
  if (key.length !== ED25519_SEED_SIZE) throw keyInvalid(`signer key: Ed25519 seed must be ${ED25519_SEED_SIZE} bytes`);
  const signer = createNoteSigner(name, privateKeyFromSeed(key));
  if (signer.keyId !== keyId) throw keyInvalid(`signer key: key id ${formatKeyId(keyId)} does not match the key (${formatKeyId(signer.keyId)})`);
  return signer;
}

function checkText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw malformed('note text must be non-empty and end with a newline');
  if (hasForbiddenCharacters(text)) throw malformed('note text contains control characters or invalid Unicode');
}

/** The signed note: `text`, a blank line, then one signature line per signer. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  if (signers.length === 0) throw malformed('a note needs at least one signer');
  const message = Buffer.from(text, 'utf8');
  const lines = signers.map((signer) => {
    const keyId = Buffer.alloc(4);
    keyId.writeUInt32BE(signer.keyId);
    const blob = Buffer.concat([keyId, signEd25519(signer.privateKey, message)]);
    return `${EM_DASH_PREFIX}${signer.name} ${blob.toString('base64')}\n`;
  });
  return `${text}\n${lines.join('')}`;
}

function decodeNote(note: string | Uint8Array): string {
  if (typeof note === 'string') {
    if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES) throw malformed(`note is larger than ${MAX_NOTE_BYTES} bytes`);
    return note;
  }
  if (note.length > MAX_NOTE_BYTES) throw malformed(`note is larger than ${MAX_NOTE_BYTES} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
  } catch {
    throw malformed('note is not valid UTF-8');
  }
}

/** Splits a note into text and signature lines without verifying anything. */
export function parseNote(input: string | Uint8Array): ParsedNote {
  const note = decodeNote(input);
  if (hasForbiddenCharacters(note)) throw malformed('note contains control characters or invalid Unicode');
  if (!note.endsWith('\n')) throw malformed('note must end with a newline');
  // The text is separated from the signatures by the last blank line.
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map((line, i): NoteSignature => {
    if (!line.startsWith(EM_DASH_PREFIX)) throw malformed(`signature line ${i + 1} does not start with "— "`);
    const rest = line.slice(EM_DASH_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? '' : rest.slice(0, space);
    const blob = space < 0 ? undefined : decodeStrictBase64(rest.slice(space + 1));
    if (!isValidKeyName(name)) throw malformed(`signature line ${i + 1} has an invalid key name`);
    if (!blob || blob.length <= 4) throw malformed(`signature line ${i + 1} has an invalid signature encoding`);
    return { name, keyId: blob.readUInt32BE(0), signature: Buffer.from(blob.subarray(4)) };
  });
  checkText(text);
  return { text, signatures };
}

/**
 * Parses and verifies a note against the known keys (several during a key rotation). Following
 * the spec: signatures by unknown keys (name and key ID not both matching) are ignored; a failing
 * signature by a known key rejects the note (`note_signature_invalid`); a note with no verified
 * signature by a known key is rejected (`note_unverified`, naming the keys it was signed with).
 */
export function openNote(input: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const known = new Map<string, NoteVerifier>();
  for (const verifier of verifiers) {
    const id = `${verifier.name}+${formatKeyId(verifier.keyId)}`;
    if (known.has(id)) throw keyInvalid(`two known keys share the name and key id ${id}`);
    known.set(id, verifier);
  }
  const parsed = parseNote(input);
  const message = Buffer.from(parsed.text, 'utf8');
  const verifiedBy: NoteVerifier[] = [];
  const unknown: string[] = [];
  for (const sig of parsed.signatures) {
    const id = `${sig.name}+${formatKeyId(sig.keyId)}`;
    const verifier = known.get(id);
    if (!verifier) {
      unknown.push(id);
      continue;
    }
    if (sig.signature.length !== ED25519_SIGNATURE_SIZE || !verifyEd25519(verifier.publicKey, message, sig.signature)) {
      throw new LedgerError('note_signature_invalid', `signature by known key ${id} does not verify: the note was altered or forged`);
    }
    if (!verifiedBy.includes(verifier)) verifiedBy.push(verifier);
  }
  if (verifiedBy.length === 0) {
    const knownList = [...known.keys()].join(', ') || 'none';
    throw new LedgerError('note_unverified', `note is not signed by any known key: signed by ${unknown.join(', ')}; known keys: ${knownList}`);
  }
  return { ...parsed, verifiedBy };
}
