import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createNoteSigner, formatVerifierKey, signNote } from '../../src/ledger/note.js';
import { generateEd25519KeyPair } from '../../src/platform/crypto/ed25519.js';

// The console's in-page verifier (web/console/merkle.js, plain browser JavaScript), run in Node's WebCrypto.
const { verifyNote } = (await import(new URL('../../web/console/merkle.js', import.meta.url).href)) as {
  verifyNote: (note: string, vkeys: readonly string[]) => Promise<string>;
};

it("the console's note check accepts every verifier key, including those whose base64 holds '+' or '/'", async () => {
  const seen = { plus: false, slash: false };
  for (let i = 0; i < 400 && !(seen.plus && seen.slash); i++) {
    const signer = createNoteSigner('frostgate.test/ledger', generateEd25519KeyPair().privateKey);
    const vkey = formatVerifierKey(signer);
    const keyB64 = vkey.split('+').slice(2).join('+');
    if (!keyB64.includes('+') && !keyB64.includes('/') && i > 0) continue;
    seen.plus ||= keyB64.includes('+');
    seen.slash ||= keyB64.includes('/');
    const note = signNote('frostgate.test/ledger\n3\nAAAA\n', [signer]);
    assert.equal(await verifyNote(note, [vkey]), 'frostgate.test/ledger', vkey);
    const other = formatVerifierKey(createNoteSigner('frostgate.test/ledger', generateEd25519KeyPair().privateKey));
    await assert.rejects(verifyNote(note, [other]), /no verifier key signed this checkpoint/);
  }
  assert.ok(seen.plus && seen.slash, 'keys with both characters were tried');
});
