import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { StorageError } from '../../../src/platform/storage/types.js';

async function tempStore(t: { after: (fn: () => Promise<void>) => void }): Promise<{ root: string; store: FilesystemStorage }> {
  const root = await mkdtemp(join(tmpdir(), 'fg-store-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return { root, store: new FilesystemStorage(root) };
}

test('filesystem storage: put, get, list by prefix, delete; writes leave no temp files', async (t) => {
  const { root, store } = await tempStore(t);
  await store.put('scenarios/scn_a/results/score.json', Buffer.from('{"a":1}'));
  await store.put('scenarios/scn_a/results/verdict.sig', Buffer.from('sig'));
  await store.put('scenarios/scn_b/results/score.json', Buffer.from('{"b":2}'));
  await store.put('scenarios/scn_a/results/score.json', Buffer.from('{"a":2}'));
  assert.equal((await store.get('scenarios/scn_a/results/score.json'))?.toString(), '{"a":2}');
  assert.equal(await store.get('scenarios/scn_c/results/score.json'), undefined);
  assert.deepEqual((await store.list('scenarios/scn_a/')).map((o) => [o.key, o.size]), [
    ['scenarios/scn_a/results/score.json', 7],
    ['scenarios/scn_a/results/verdict.sig', 3],
  ]);
  assert.equal((await store.list('')).length, 3);
  await store.delete('scenarios/scn_a/results/verdict.sig');
  await store.delete('scenarios/scn_a/results/verdict.sig');
  assert.deepEqual((await store.list('scenarios/scn_a/')).map((o) => o.key), ['scenarios/scn_a/results/score.json']);
  assert.deepEqual(await readdir(join(root, 'scenarios/scn_a/results')), ['score.json']);
  assert.equal(store.locate('scenarios/x'), join(root, 'scenarios/x'));
});

test('filesystem storage refuses keys that would leave its root', async (t) => {
  const { store } = await tempStore(t);
  for (const key of ['../escape', '/etc/passwd', 'a//b', 'a/./b', 'a/../../b', 'a\\b', '']) {
    await assert.rejects(store.put(key, Buffer.from('x')), (e: unknown) => e instanceof StorageError && e.code === 'storage_key_invalid', key);
  }
  await assert.rejects(store.list('../'), StorageError);
});

test('the retention sweeper removes results older than the retention, keeps newer ones, and prunes empty directories', async (t) => {
  const { root, store } = await tempStore(t);
  const now = new Date('2026-06-01T00:00:00Z');
  const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);
  for (const [id, age] of [['scn_old', 91], ['scn_edge', 89], ['scn_new', 1]] as const) {
    for (const f of ['score.json', 'verdict.sig']) {
      await store.put(`scenarios/${id}/results/${f}`, Buffer.from(f));
      await utimes(join(root, 'scenarios', id, 'results', f), daysAgo(age), daysAgo(age));
    }
  }
  await store.put('other/keep.txt', Buffer.from('x'));
  await utimes(join(root, 'other/keep.txt'), daysAgo(400), daysAgo(400));

  const result = await store.enforceRetention('scenarios/', 90, now);
  assert.equal(result.mechanism, 'sweep');
  assert.deepEqual(result.removed, ['scenarios/scn_old/results/score.json', 'scenarios/scn_old/results/verdict.sig']);
  assert.equal(existsSync(join(root, 'scenarios/scn_old')), false, 'empty scenario directory removed');
  assert.deepEqual((await store.list('scenarios/')).map((o) => o.key.split('/')[1]), ['scn_edge', 'scn_edge', 'scn_new', 'scn_new']);
  assert.ok(existsSync(join(root, 'other/keep.txt')), 'outside the prefix nothing is touched');
  assert.deepEqual((await store.enforceRetention('scenarios/', 90, now)).removed, []);
});
