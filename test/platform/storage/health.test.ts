import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HealthRegistry } from '../../../src/platform/health.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { S3Storage } from '../../../src/platform/storage/s3.js';
import { storageHealth } from '../../../src/platform/storage/health.js';
import { ROOT } from '../../helpers/cli.js';
import { optionalTool } from '../../helpers/optional-tools.js';
import { freePort, trackChild, waitForPort } from '../../helpers/servers.js';

async function readiness(storage: FilesystemStorage | S3Storage) {
  const health = new HealthRegistry();
  health.register(storageHealth(storage));
  return (await health.run(5000)).checks.storage!;
}

test('storage readiness: a writable directory is ready and keeps nothing; an unwritable one is not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-storage-health-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ok = await readiness(new FilesystemStorage(join(dir, 'store')));
  assert.equal(ok.ok, true, ok.error);
  assert.equal(ok.kind, 'filesystem');
  assert.deepEqual(await readdir(join(dir, 'store', 'health')), [], 'the probe object is removed');

  // A storage root below a regular file cannot be written, even by root.
  await writeFile(join(dir, 'file'), 'x');
  const broken = await readiness(new FilesystemStorage(join(dir, 'file', 'store')));
  assert.equal(broken.ok, false);
  assert.match(String(broken.error), /ENOTDIR|not a directory/);
});

test('storage readiness: an unreachable S3 endpoint is not ready', async () => {
  const port = await freePort();
  const res = await readiness(new S3Storage({ endpoint: `http://127.0.0.1:${port}`, bucket: 'results', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's' }));
  assert.equal(res.ok, false);
});

const S3RVER = process.env.S3RVER_BIN ?? join(ROOT, 'node_modules/.bin/s3rver');
const s3rver = optionalTool(existsSync(S3RVER) ? false : `s3rver not installed (npm i -D s3rver@3.7.1, or set S3RVER_BIN)`);

test('storage readiness: a reachable bucket is ready, a missing bucket is not', { skip: s3rver.skip }, s3rver.test(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-s3rver-health-'));
  const port = await freePort();
  const child = trackChild(spawn(S3RVER, ['-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', '--configure-bucket', 'results'], { stdio: 'ignore' }));
  t.after(async () => {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await waitForPort(port, 20_000);
  const store = (bucket: string) => new S3Storage({ endpoint: `http://127.0.0.1:${port}`, bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  assert.equal((await readiness(store('results'))).ok, true);
  assert.equal((await readiness(store('no-such-bucket'))).ok, false);
}));
