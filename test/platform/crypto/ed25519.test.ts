import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  Ed25519KeyError,
  exportPrivateKeyPem,
  exportPrivateKeySeed,
  exportPublicKeyPem,
  exportPublicKeyRaw,
  generateEd25519KeyPair,
  loadEd25519PrivateKey,
  loadEd25519PublicKey,
  parseEd25519PrivateKey,
  privateKeyFromSeed,
  publicKeyFromRaw,
  signEd25519,
  verifyEd25519,
} from '../../../src/platform/crypto/ed25519.js';

// RFC 8032 section 7.1, TEST 2.
const RFC8032_SEED = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';
const RFC8032_PUBLIC = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c';
const RFC8032_MESSAGE = '72';
const RFC8032_SIGNATURE =
  '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da' + '085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00';

function isKeyError(code: string) {
  return (err: unknown) => err instanceof Ed25519KeyError && err.code === code;
}

describe('ed25519', () => {
  it('matches the RFC 8032 test vector', () => {
    const privateKey = privateKeyFromSeed(Buffer.from(RFC8032_SEED, 'hex'));
    assert.equal(exportPublicKeyRaw(privateKey).toString('hex'), RFC8032_PUBLIC);
    const signature = signEd25519(privateKey, Buffer.from(RFC8032_MESSAGE, 'hex'));
    assert.equal(signature.toString('hex'), RFC8032_SIGNATURE);
    const publicKey = publicKeyFromRaw(Buffer.from(RFC8032_PUBLIC, 'hex'));
    assert.equal(verifyEd25519(publicKey, Buffer.from(RFC8032_MESSAGE, 'hex'), signature), true);
    assert.equal(verifyEd25519(publicKey, Buffer.from('73', 'hex'), signature), false);
    assert.equal(verifyEd25519(publicKey, Buffer.from(RFC8032_MESSAGE, 'hex'), signature.subarray(1)), false);
  });

  it('round-trips keys through seed, raw and PEM forms', () => {
    const { privateKey, publicKey } = generateEd25519KeyPair();
    const seed = exportPrivateKeySeed(privateKey);
    assert.equal(seed.length, 32);
    const again = privateKeyFromSeed(seed);
    assert.deepEqual(exportPublicKeyRaw(again), exportPublicKeyRaw(publicKey));
    assert.equal(exportPublicKeyPem(privateKey), exportPublicKeyPem(publicKey));
    assert.match(exportPrivateKeyPem(privateKey), /^-----BEGIN PRIVATE KEY-----/);
    const message = Buffer.from('frostgate');
    assert.equal(verifyEd25519(publicKeyFromRaw(exportPublicKeyRaw(publicKey)), message, signEd25519(again, message)), true);
  });

  it('loads private and public keys from every documented file format', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fg-ed25519-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const seed = Buffer.from(RFC8032_SEED, 'hex');
    const pem = exportPrivateKeyPem(privateKeyFromSeed(seed));
    const files: Record<string, string | Buffer> = {
      'key.pem': pem,
      'key.seed': seed,
      'key.hex': `${RFC8032_SEED}\n`,
      'key.b64': `  ${seed.toString('base64')}\n`,
      'key.b64url': seed.toString('base64url'),
    };
    for (const [name, content] of Object.entries(files)) {
      await writeFile(join(dir, name), content);
      const key = await loadEd25519PrivateKey(join(dir, name));
      assert.equal(exportPublicKeyRaw(key).toString('hex'), RFC8032_PUBLIC, name);
    }
    const pub = Buffer.from(RFC8032_PUBLIC, 'hex');
    await writeFile(join(dir, 'pub.pem'), exportPublicKeyPem(publicKeyFromRaw(pub)));
    await writeFile(join(dir, 'pub.raw'), pub);
    await writeFile(join(dir, 'pub.hex'), RFC8032_PUBLIC);
    for (const name of ['pub.pem', 'pub.raw', 'pub.hex']) {
      assert.equal(exportPublicKeyRaw(await loadEd25519PublicKey(join(dir, name))).toString('hex'), RFC8032_PUBLIC, name);
    }
  });

  it('refuses missing files, wrong lengths, garbage and non-Ed25519 keys with typed errors', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fg-ed25519-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await assert.rejects(loadEd25519PrivateKey(join(dir, 'absent')), isKeyError('ed25519_key_unreadable'));
    await writeFile(join(dir, 'short'), Buffer.alloc(31));
    await assert.rejects(loadEd25519PrivateKey(join(dir, 'short')), isKeyError('ed25519_key_invalid'));
    assert.throws(() => parseEd25519PrivateKey('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n'), isKeyError('ed25519_key_invalid'));
    const { generateKeyPairSync } = await import('node:crypto');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecPem = ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    assert.throws(() => parseEd25519PrivateKey(ecPem), isKeyError('ed25519_key_invalid'));
    assert.throws(() => publicKeyFromRaw(Buffer.alloc(33)), isKeyError('ed25519_key_invalid'));
  });
});
