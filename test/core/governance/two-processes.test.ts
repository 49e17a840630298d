import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import { loadDefaultRuleset } from '../../../src/core/engine/ruleset.js';
import { runCli, spawnCli } from '../../helpers/cli.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';
import { freePort, startThrowawayNats } from '../../helpers/servers.js';

async function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawnCli(['serve'], env);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const deadline = Date.now() + 60_000;
  while (!stderr.includes('Stop with Ctrl-C')) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`serve did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, stderr: () => stderr };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('governance across server processes', () => {
  it('a deploy through one process changes the decisions of another within the documented bound', async () => {
    const db = await createThrowawayDatabase();
    const nats = await startThrowawayNats();
    const [portA, portB] = [await freePort(), await freePort()];
    const base = { FG_ENV: 'test', FG_DB_URL: db.url, FG_NATS_URL: nats.url, FG_LOG_LEVEL: 'silent' };
    let a: Awaited<ReturnType<typeof startServer>> | undefined;
    let b: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      a = await startServer({ ...base, FG_PORT: String(portA) });
      b = await startServer({ ...base, FG_PORT: String(portB) });
      const admin = /\n {4}(fg_\S+)\n/.exec(a.stderr())![1]!;
      const call = async (port: number, method: string, path: string, key: string, body?: object) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, {
          method,
          headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      // The author's key is minted by the root admin (it belongs to root); the second person, bob,
      // is enrolled by the operator on the command line, against the same database.
      const author = (await call(portA, 'POST', '/keys', admin, { scopes: ['governance:write', 'defend:write'] })).body.key as string;
      const enrolled = await runCli(['keys', 'create', '--tenant', 'default', '--scopes', 'governance:approve', '--owner', 'bob', '--json'], {
        FG_ENV: 'test',
        FG_DB_URL: db.url,
      });
      assert.equal(enrolled.code, 0, enrolled.stderr);
      const approver = JSON.parse(enrolled.stdout) as { key: string; owner: string; created_by: string; created_by_identity: string };
      assert.deepEqual([approver.owner, approver.created_by, approver.created_by_identity], ['bob', 'cli', 'operator']);
      const event = {
        source: 'nginx',
        event_type: 'http.request',
        occurred_at: '2026-11-20T10:00:00Z',
        payload: { src_ip: '100.64.5.5', path: '/healthz', status: 200 },
      };
      assert.equal((await call(portB, 'POST', '/defend', author, event)).body.ruleset_version, loadDefaultRuleset().version);

      const ruleset = structuredClone(loadDefaultRuleset().source);
      const content = {
        ...ruleset,
        version: 'two-proc-1',
        rules: [
          ...ruleset.rules,
          {
            id: 'healthz-probe',
            description: 'Health checks from outside',
            score: 5,
            when: { field: 'payload.path', eq: '/healthz' },
            mitigations: [{ action: 'alert' }],
          },
        ],
      };
      const change = (await call(portA, 'POST', '/governance/changes', author, { kind: 'ruleset', content, justification: 'see who probes health endpoints' }))
        .body as { id: string; risk: string };
      assert.equal(change.risk, 'low', JSON.stringify(change));
      assert.equal(
        (await call(portA, 'POST', `/governance/changes/${change.id}/approve`, admin, {})).body.reason,
        'self_approval',
        "root's own key is the author's identity",
      );
      assert.equal((await call(portA, 'POST', `/governance/changes/${change.id}/approve`, approver.key, {})).status, 200);
      assert.equal((await call(portA, 'POST', `/governance/changes/${change.id}/deploy`, author, {})).status, 200);

      // The bus tells process B at once; without it B would re-read within ACTIVE_CACHE_TTL_MS (5 s).
      const deadline = Date.now() + 5_000;
      let version = '';
      while (Date.now() < deadline) {
        version = (await call(portB, 'POST', '/defend', author, event)).body.ruleset_version as string;
        if (version === 'two-proc-1') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(version, 'two-proc-1');
    } finally {
      if (a) await stop(a.child);
      if (b) await stop(b.child);
      await nats.stop();
      await db.drop();
    }
  });
});
