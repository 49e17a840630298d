import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { S3Storage } from '../../../src/platform/storage/s3.js';
import { StorageError } from '../../../src/platform/storage/types.js';
import { ROOT } from '../../helpers/cli.js';
import { freePort, trackChild, waitForPort } from '../../helpers/servers.js';
import { optionalTool } from '../../helpers/optional-tools.js';

/**
 * The S3 adapter against a real S3-compatible server. MinIO cannot be installed here; s3rver
 * (npm) speaks the S3 REST API (objects, ListObjectsV2) but neither checks SigV4 signatures nor
 * implements lifecycle rules: signatures are proven against AWS's published examples
 * (sigv4.test.ts), the lifecycle document below by its content. s3rver is taken from
 * S3RVER_BIN or node_modules; without it this test is skipped and says so.
 */
const S3RVER = process.env.S3RVER_BIN ?? join(ROOT, 'node_modules/.bin/s3rver');

const s3rver = optionalTool(existsSync(S3RVER) ? false : `s3rver not installed (npm i -D s3rver@3.7.1, or set S3RVER_BIN)`);

test('S3 storage against s3rver: put, get, list by prefix (odd key names), delete, missing objects', { skip: s3rver.skip }, s3rver.test(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-s3rver-'));
  const port = await freePort();
  const child = trackChild(spawn(S3RVER, ['-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', '--configure-bucket', 'results'], { stdio: 'ignore' }));
  t.after(async () => {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await waitForPort(port, 20_000);
  const store = new S3Storage({ endpoint: `http://127.0.0.1:${port}`, bucket: 'results', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', prefix: 'fg/' });

  await store.put('scenarios/scn_a/results/score.json', Buffer.from('{"a":1}'));
  await store.put('scenarios/scn_a/results/odd name+=&$.txt', Buffer.from('odd'));
  await store.put('scenarios/scn_b/results/score.json', Buffer.from('{"b":2}'));
  const binary = Buffer.from([0, 1, 2, 253, 254, 255]);
  await store.put('scenarios/scn_b/results/evidence.tar.zst', binary);

  assert.equal((await store.get('scenarios/scn_a/results/score.json'))?.toString(), '{"a":1}');
  assert.deepEqual(await store.get('scenarios/scn_b/results/evidence.tar.zst'), binary);
  assert.equal((await store.get('scenarios/scn_a/results/odd name+=&$.txt'))?.toString(), 'odd');
  assert.equal(await store.get('scenarios/scn_z/results/score.json'), undefined);
  assert.deepEqual((await store.list('scenarios/scn_a/')).map((o) => [o.key, o.size]), [
    ['scenarios/scn_a/results/odd name+=&$.txt', 3],
    ['scenarios/scn_a/results/score.json', 7],
  ]);
  assert.equal((await store.list('scenarios/')).length, 4);
  assert.ok((await store.list('scenarios/')).every((o) => Math.abs(o.modifiedAt.getTime() - Date.now()) < 60_000));

  await store.delete('scenarios/scn_a/results/score.json');
  await store.delete('scenarios/scn_a/results/score.json');
  assert.deepEqual((await store.list('scenarios/scn_a/')).map((o) => o.key), ['scenarios/scn_a/results/odd name+=&$.txt']);
  assert.equal(store.locate('scenarios/x'), 's3://results/fg/scenarios/x');

  const missingBucket = new S3Storage({ endpoint: `http://127.0.0.1:${port}`, bucket: 'nope', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  await assert.rejects(missingBucket.put('k', Buffer.from('x')), (e: unknown) => e instanceof StorageError && /NoSuchBucket/.test(e.message));
}));

test('S3 retention is a lifecycle rule expiring the results prefix after the retention days', async () => {
  const store = new S3Storage({ endpoint: 'http://127.0.0.1:1', bucket: 'results', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b', prefix: 'fg/' });
  assert.equal(
    store.lifecycleXml('scenarios/', 90),
    '<?xml version="1.0" ' + 'encoding="UTF-8"?><LifecycleConfiguration ' + 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>frostgate-retention</ID><Filter><Prefix>fg/scenarios/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>90</Days></Expiration></Rule></LifecycleConfiguration>',
  );
  await assert.rejects(store.enforceRetention('scenarios/', 0), RangeError);
});
