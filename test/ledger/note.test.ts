import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateEd25519KeyPair } from '../../src/platform/crypto/ed25519.js';
import { LedgerError } from '../../src/ledger/errors.js';
import {
  createNoteSigner,
  formatSignerKey,
  formatVerifierKey,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierOf,
} from '../../src/ledger/note.js';

/** The reference vector of golang.org/x/mod/sumdb/note (note_test.go). */
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

const isLedgerError = (code: string) => (err: unknown) => err instanceof LedgerError && err.code === code;

describe('signed note (C2SP signed-note, x/mod/sumdb/note compatible)', () => {
  it('reproduces the Go reference note byte for byte and verifies it', () => {
    const signer = parseSignerKey(GO_SKEY);
    assert.equal(signer.name, 'PeterNeumann');
    assert.equal(signer.keyId, 0xc74f20a3);
    assert.equal(formatVerifierKey(signer), GO_VKEY);
    assert.equal(formatSignerKey(signer), GO_SKEY);
    assert.equal(signNote(GO_TEXT, [signer]), GO_NOTE);
    const opened = openNote(GO_NOTE, [parseVerifierKey(GO_VKEY)]);
    assert.equal(opened.text, GO_TEXT);
    assert.equal(opened.verifiedBy[0]?.name, 'PeterNeumann');
    assert.throws(() => openNote(GO_NOTE.replace('cryptography', 'cryptographY'), [parseVerifierKey(GO_VKEY)]), isLedgerError('note_signature_invalid'));
  });

  it('rejects mangled verifier keys (every truncation and every single-byte change)', () => {
    for (let i = 0; i < GO_VKEY.length; i++) {
      assert.throws(() => parseVerifierKey(GO_VKEY.slice(0, i)), isLedgerError('note_key_invalid'), `prefix ${i}`);
      const changed = GO_VKEY.slice(0, i) + String.fromCharCode(GO_VKEY.charCodeAt(i) + 1) + GO_VKEY.slice(i + 1);
      assert.throws(() => parseVerifierKey(changed), isLedgerError('note_key_invalid'), `byte ${i}`);
    }
    assert.throws(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), isLedgerError('note_key_invalid'));
  });

  it('refuses malformed notes with note_malformed', () => {
    const bad = [
      GO_TEXT,
      GO_NOTE.slice(0, -1),
      `${GO_TEXT}\n— PeterNeumann\n`,
      `${GO_TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
      `${GO_TEXT}\n— PeterNeumann x08go/ZJk\n`,
      `${GO_TEXT}\n— Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
      GO_NOTE.replace('problem,', 'problem,\t'),
      GO_TEXT + '\n' + '— a AAAAAAA=\n'.repeat(101),
    ];
    for (const note of bad) assert.throws(() => parseNote(note), isLedgerError('note_malformed'), JSON.stringify(note.slice(-40)));
    assert.throws(() => parseNote(Buffer.from([0x61, 0x0a, 0x0a, 0xff, 0x0a])), isLedgerError('note_malformed'));
    assert.throws(() => signNote('no newline', [parseSignerKey(GO_SKEY)]), isLedgerError('note_malformed'));
  });

  it('ignores unknown signatures, needs one known, and rejects a bad known one', () => {
    const a = createNoteSigner('frostgate.test/a', generateEd25519KeyPair().privateKey);
    const b = createNoteSigner('frostgate.test/b', generateEd25519KeyPair().privateKey);
    const text = 'hello\n';
    const both = signNote(text, [a, b]);
    assert.deepEqual(
      openNote(both, [verifierOf(a)]).verifiedBy.map((v) => v.name),
      ['frostgate.test/a'],
    );
    assert.deepEqual(
      openNote(both, [verifierOf(a), verifierOf(b)]).verifiedBy.map((v) => v.name),
      ['frostgate.test/a', 'frostgate.test/b'],
    );
    // Same name, other key: its key id differs, so it is an unknown key, not a failed signature.
    const impostor = createNoteSigner('frostgate.test/a', generateEd25519KeyPair().privateKey);
    assert.throws(
      () => openNote(signNote(text, [impostor]), [verifierOf(a)]),
      (err: unknown) => err instanceof LedgerError && err.code === 'note_unverified' && err.message.includes('frostgate.test/a+'),
    );
    // A known key whose signature does not verify poisons the whole note even if another verifies.
    const aOnly = signNote(text, [a]).split('\n').at(-2) as string;
    const bOnly = signNote('other\n', [b]).split('\n').at(-2) as string;
    const mixed = `${text}\n${aOnly}\n${bOnly}\n`;
    assert.throws(() => openNote(mixed, [verifierOf(a), verifierOf(b)]), isLedgerError('note_signature_invalid'));
    assert.throws(() => openNote(both, [verifierOf(a), verifierOf(a)]), isLedgerError('note_key_invalid'));
  });
});
