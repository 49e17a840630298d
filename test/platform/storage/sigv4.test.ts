import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signRequest, uriEncode } from '../../../src/platform/storage/sigv4.js';

// The worked examples of AWS's "Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk (AWS Signature Version 4)" (S3 API reference), also used by
// independent SigV4 implementations' test suites.
const creds = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', region: 'us-east-1' };
const at = new Date('2013-05-24T00:00:00Z');
const signatureOf = (h: Record<string, string>) => /Signature=([0-9a-f]{64})$/.exec(h.authorization ?? '')?.[1];

test('SigV4 matches the AWS S3 examples: GET object with Range, PUT object, GET ?lifecycle, list with query', () => {
  const get = signRequest({ method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'), headers: { Range: 'bytes=0-9' }, body: new Uint8Array() }, creds, at);
  assert.equal(get.authorization, 'AWS4-HMAC-SHA256 ' + 'Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' + 'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  assert.equal(get['x-amz-content-sha256'], 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(get['x-amz-date'], '20130524T000000Z');

  const put = signRequest(
    { method: 'PUT', url: new URL(`https://examplebucket.s3.amazonaws.com/${uriEncode('test$file.text', true)}`), headers: { Date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY' }, body: Buffer.from('Welcome to Amazon S3.') },
    creds,
    at,
  );
  assert.equal(signatureOf(put), '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');

  const lifecycle = signRequest({ method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/?lifecycle='), headers: {}, body: new Uint8Array() }, creds, at);
  assert.equal(signatureOf(lifecycle), 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');

  const list = signRequest({ method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J'), headers: {}, body: new Uint8Array() }, creds, at);
  assert.equal(signatureOf(list), '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');

  // Any change to what is signed changes the signature.
  const other = signRequest({ method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'), headers: { Range: 'bytes=0-8' }, body: new Uint8Array() }, creds, at);
  assert.notEqual(signatureOf(other), signatureOf(get));
});

test('uriEncode percent-encodes everything but unreserved characters (and / in paths)', () => {
  assert.equal(uriEncode('a b+c=d&e/f~g_h.i-j'), 'a%20b%2Bc%3Dd%26e%2Ff~g_h.i-j');
  assert.equal(uriEncode('dir/naïve file', true), 'dir/na%C3%AFve%20file');
});
