import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { optionalTool } from '../../helpers/optional-tools.js';

/**
 * Debian's CrowdSec bouncers, unmodified, enforce FrostGate's decisions: the firewall bouncer
 * (nftables mode) runs in a network namespace this test creates, so its tables touch nothing of
 * the host, and reaches FrostGate through a UNIX socket bridged to 127.0.0.1:8080 inside the
 * namespace; the custom bouncer calls a script with every add and delete it receives.
 */
const FIREWALL = '/usr/bin/crowdsec-firewall-bouncer';
const CUSTOM = '/usr/bin/crowdsec-custom-bouncer';

const bruteForce = (ip: string, lastAtMs: number) =>
  [0, 1, 2, 3, 4].map((i) => ({
    source: 'sshd',
    event_type: 'auth.failure',
    occurred_at: new Date(lastAtMs - (4 - i) * 100).toISOString(),
    payload: { service: 'ssh', src_ip: ip, username: `u${i}` },
  }));

async function waitUntil(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250)); // the bouncers poll every second: we wait on them
  }
}

const bouncers = optionalTool(
  !existsSync(FIREWALL) || !existsSync(CUSTOM) ? 'crowdsec bouncers missing: run node scripts/ensure-system-deps.mjs --for-tests' : false,
);

describe(
  'CrowdSec bouncers against FrostGate',
  { skip: bouncers.skip },
  bouncers.suite(() => {
    const id = randomBytes(4).toString('hex');
    const ns = `fgcs-${id}`;
    const table4 = `fgcs4_${id}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'fgcs-'));
    const socketPath = path.join(dir, 'frostgate.sock');
    const customLog = path.join(dir, 'custom.log');
    const children: ChildProcess[] = [];
    const outputs: string[] = [];
    let t: TestApp;
    let bridge: Server;
    let sensor: string;

    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const start = (label: string, cmd: string, args: string[]) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const collect = (b: Buffer) => outputs.push(`[${label}] ${b.toString()}`);
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      children.push(child);
      return child;
    };
    const common = (key: string) =>
      `update_frequency: 1s\ndaemonize: false\nlog_mode: stdout\nlog_level: info\napi_url: http://127.0.0.1:8080/\napi_key: ` +
      `${key}\nprometheus:\n  enabled: false\n  listen_addr: 127.0.0.1\n  listen_port: 60601\n`;
    const firewallYaml = (key: string, table: string) =>
      `mode: nftables\npid_dir: ${dir}/\n${common(key)}disable_ipv6: true\ndeny_action: DROP\ndeny_log: ` +
      `false\nsupported_decisions_types:\n  - ban\nblacklists_ipv4: fgblock4\nblacklists_ipv6: fgblock6\nnftables:\n ` +
      ` ipv4:\n    enabled: true\n    set-only: false\n    table: ${table}\n    chain: fgcs-chain\n  ` +
      `ipv6:\n    enabled: false\n    set-only: false\n    table: fgcs6_${id}\n    chain: fgcs6-chain\n`;
    const customYaml = (key: string, script: string) =>
      `bin_path: ${script}\nfeed_via_stdin: false\ntotal_retries: 0\nscenarios_containing: ` +
      `[]\nscenarios_not_containing: []\norigins: []\npiddir: ${dir}/\ncache_retention_duration: 1s\n${common(key)}`;
    const setElements = () => {
      const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'set', 'ip', table4, 'fgblock4'], { encoding: 'utf8' });
      return r.status === 0 ? r.stdout : '';
    };

    before(async () => {
      t = await startTestApp({ db: 'embedded' });
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (t.app.server.address() as AddressInfo).port;
      sensor = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['defend:write'] })).key;
      // One key per bouncer, as with CrowdSec: each key has its own position in the stream.
      const firewallKey = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'], name: 'firewall bouncer' })).key;
      const customKey = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'], name: 'custom bouncer' })).key;

      bridge = createServer((conn) => {
        const upstream = createConnection({ host: '127.0.0.1', port });
        conn.pipe(upstream).pipe(conn);
        conn.on('error', () => upstream.destroy());
        upstream.on('error', () => conn.destroy());
      });
      await new Promise<void>((resolve) => bridge.listen(socketPath, resolve));
      run('ip', ['netns', 'add', ns]);
      run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      start('socat', 'ip', ['netns', 'exec', ns, 'socat', 'TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${socketPath}`]);
      await waitUntil('the bridge inside the namespace', 10_000, () => run('ip', ['netns', 'exec', ns, 'ss', '-ltnH']).includes('127.0.0.1:8080'));

      writeFileSync(path.join(dir, 'firewall.yaml'), firewallYaml(firewallKey, table4));
      const script = path.join(dir, 'record.sh');
      writeFileSync(script, `#!/bin/sh\necho "$1 $2 $3" >> ${customLog}\n`);
      chmodSync(script, 0o755);
      writeFileSync(path.join(dir, 'custom.yaml'), customYaml(customKey, script));
      start('firewall', 'ip', ['netns', 'exec', ns, FIREWALL, '-c', path.join(dir, 'firewall.yaml')]);
      start('custom', 'ip', ['netns', 'exec', ns, CUSTOM, '-c', path.join(dir, 'custom.yaml')]);
    });

    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      spawnSync('ip', ['netns', 'del', ns]);
      await new Promise<void>((resolve) => (bridge ? bridge.close(() => resolve()) : resolve()));
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('installs FrostGate block_ip decisions into the nftables set and removes them when they end', async () => {
      const defend = async (events: object[]) => {
        for (const e of events)
          assert.equal((await t.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': sensor }, payload: e })).statusCode, 200);
      };
      try {
        await waitUntil('the firewall bouncer to create its table', 20_000, () => setElements() !== '');
        // One block for an hour; one whose events are almost an hour old, so it ends in a few seconds.
        await defend(bruteForce('100.64.60.1', Date.now()));
        await defend(bruteForce('100.64.60.2', Date.now() - 3_600_000 + 6_000));
        await waitUntil('both blocks in the nftables set', 20_000, () => setElements().includes('100.64.60.1') && setElements().includes('100.64.60.2'));
        await waitUntil(
          'the custom bouncer to receive both',
          20_000,
          () =>
            existsSync(customLog) && /add 100\.64\.60\.1/.test(readFileSync(customLog, 'utf8')) && /add 100\.64\.60\.2/.test(readFileSync(customLog, 'utf8')),
        );
        await waitUntil('the short block to leave the set', 30_000, () => !setElements().includes('100.64.60.2'));
        assert.ok(setElements().includes('100.64.60.1'), 'the hour-long block stays');
        await waitUntil('the custom bouncer to receive the delete', 30_000, () => /del 100\.64\.60\.2/.test(readFileSync(customLog, 'utf8')));
        assert.doesNotMatch(readFileSync(customLog, 'utf8'), /del 100\.64\.60\.1/);
        // The rule that drops the set's addresses is really in the namespace's ruleset.
        assert.match(run('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'ip', table4]), /@fgblock4.*drop/);
      } catch (err) {
        throw new Error(`${(err as Error).message}\nbouncer output:\n${outputs.join('').slice(-4000)}`);
      }
    });

    /**
     * Both bouncers are built on CrowdSec 1.4.6's API client, which reads an error body's `message`
     * without a nil check: a refusal without it was a nil-pointer panic (exit 2). With it, the
     * firewall bouncer logs the refusal and ends its process normally (exit 0, as against CrowdSec's
     * own LAPI); the custom bouncer logs it and idles.
     */
    it('a refused key is logged by the bouncers, never a panic: the key of an overriding .yaml.local (401), a key without bouncer:read (403)', async () => {
      const script = path.join(dir, 'refused.sh');
      writeFileSync(script, '#!/bin/sh\nexit 0\n');
      chmodSync(script, 0o755);
      const bouncerKey = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['bouncer:read'], name: 'overridden' })).key;
      // What Debian's postinst writes beside the main file when no local CrowdSec registers the
      // bouncer: the detected mode and a random key. The bouncer merges it over the main file.
      const debianOverride = `mode: nftables\napi_key: ${randomBytes(16).toString('hex')}\n`;
      /** Runs a bouncer until it exits (or, given `until`, logs that and is stopped); its exit and everything it printed. */
      const runBouncer = async (label: string, binary: string, config: string, until?: RegExp) => {
        const child = start(label, 'ip', ['netns', 'exec', ns, binary, '-c', config]);
        let printed = '';
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.once('exit', (code, signal) => resolve({ code, signal })),
        );
        child.stdout.on('data', (b: Buffer) => (printed += b.toString()));
        child.stderr.on('data', (b: Buffer) => (printed += b.toString()));
        let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
        void exited.then((e) => (ended = e));
        await waitUntil(`${label} to ${until ? `exit or log ${until}` : 'exit'}`, 30_000, () => ended !== undefined || (until?.test(printed) ?? false));
        if (!ended) {
          child.kill('SIGTERM');
          await exited;
        }
        return { ended, printed };
      };
      const cases = [
        {
          name: 'a valid key overridden by the .yaml.local of Debian',
          key: bouncerKey,
          local: debianOverride,
          message: /API error: a valid API key is required in the X-API-Key header/,
        },
        { name: 'key without bouncer:read', key: sensor, local: undefined, message: /API error: this key lacks the scope bouncer:read/ },
      ];
      for (const [i, c] of cases.entries()) {
        const firewallConfig = path.join(dir, `refused-firewall-${i}.yaml`);
        writeFileSync(firewallConfig, firewallYaml(c.key, `fgcsr${i}_${id}`));
        if (c.local) writeFileSync(`${firewallConfig}.local`, c.local);
        const firewall = await runBouncer(`firewall, ${c.name}`, FIREWALL, firewallConfig);
        assert.doesNotMatch(firewall.printed, /panic|nil pointer/, `firewall bouncer, ${c.name}:\n${firewall.printed}`);
        assert.match(firewall.printed, c.message, `firewall bouncer, ${c.name}:\n${firewall.printed}`);
        assert.deepEqual(firewall.ended, { code: 0, signal: null }, `firewall bouncer, ${c.name}: a normal exit, not a crash:\n${firewall.printed}`);
        const customConfig = path.join(dir, `refused-custom-${i}.yaml`);
        writeFileSync(customConfig, customYaml(c.key, script));
        if (c.local) writeFileSync(`${customConfig}.local`, c.local.replace('mode: nftables\n', ''));
        const custom = await runBouncer(`custom, ${c.name}`, CUSTOM, customConfig, c.message);
        assert.doesNotMatch(custom.printed, /panic|nil pointer/, `custom bouncer, ${c.name}:\n${custom.printed}`);
        assert.match(custom.printed, c.message, `custom bouncer, ${c.name}:\n${custom.printed}`);
        assert.notEqual(custom.ended?.code, 2, 'the custom bouncer did not crash');
      }
    });
  }),
);
