import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { VARIABLES } from '../../src/config/variables.js';
import { ROOT } from '../helpers/cli.js';

/**
 * deploy/compose.yml (+ the staging override), read by Debian's docker-compose (`config` merges
 * and validates without a daemon), held to the hardening the issue lists; and the whole deploy
 * bundle grepped for default passwords and Docker sockets.
 */

const DEPLOY = path.join(ROOT, 'deploy');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
function composeConfig(...files: string[]): { services: Record<string, any> } {
  const args = ['--compatibility', ...files.flatMap((f) => ['-f', f]), 'config'];
  return parse(execFileSync('docker-compose', args, { cwd: DEPLOY, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { services: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function bundleFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? bundleFiles(full) : [full];
  });
}

const WORKER_CAPS = ['NET_ADMIN', 'SYS_ADMIN', 'KILL', 'SETUID', 'SETGID', 'DAC_OVERRIDE', 'CHOWN', 'FOWNER', 'NET_RAW'];

describe('compose stack (deploy/compose.yml)', () => {
  const base = composeConfig('compose.yml');

  it('docker-compose validates the stack and the staging override', () => {
    const staging = composeConfig('compose.yml', 'compose.staging.yml');
    assert.equal(staging.services.core.environment.FG_ENV, 'staging');
    assert.equal(base.services.core.environment.FG_ENV, 'prod');
    assert.equal(staging.services.worker.environment.FG_WORKER_CAPACITY, '2');
  });

  it('one service per role on its port, and Postgres, Redis, NATS, S3, Prometheus, the migrations', () => {
    for (const [role, port] of Object.entries({ core: 8080, admin: 8081, spawn: 8082, orchestrator: 8083, worker: 8084, scoreboard: 8086 })) {
      const s = base.services[role];
      assert.ok(s, role);
      assert.deepEqual(s.command, ['serve', '--role', role]);
      assert.equal(s.environment.FG_PORT, String(port));
    }
    for (const svc of ['postgres', 'redis', 'nats', 's3', 'prometheus', 'observer', 'migrate']) assert.ok(base.services[svc], svc);
    assert.deepEqual(base.services.migrate.command, ['migrate']);
    assert.equal(base.services.core.depends_on.migrate.condition, 'service_completed_successfully', 'roles start on a migrated schema');
    // JetStream's limits: nats-server takes them from the config its entrypoint writes.
    assert.match(base.services.nats.environment.NATS_MAX_FILE_STORE, /^\d+[MG]$/);
    assert.match(base.services.nats.environment.NATS_MAX_MEM_STORE, /^\d+[MG]$/);
    const natsEntrypoint = readFileSync(path.join(DEPLOY, 'image/services-entrypoints/nats-entrypoint'), 'utf8');
    for (const line of ['max_file_store: ${NATS_MAX_FILE_STORE', 'max_memory_store: ${NATS_MAX_MEM_STORE']) assert.ok(natsEntrypoint.includes(line), line);
    // S3: the results bucket the roles name, with its retention (the lifecycle rule, swept by the S3 gateway).
    assert.equal(base.services.s3.environment.S3_BUCKET, base.services.core.environment.FG_S3_BUCKET);
    assert.match(base.services.s3.environment.S3_RETENTION_DAYS, /^\d+$/);
    assert.equal(base.services.core.environment.FG_S3_ENDPOINT, 'http://s3:9000');
  });

  it('every service: read-only root, tmpfs /tmp, every capability dropped, no-new-privileges, a seccomp profile, memory and CPU limits', () => {
    for (const [name, s] of Object.entries(base.services)) {
      assert.equal(s.read_only, true, `${name}: read_only`);
      assert.ok(
        (s.tmpfs as string[]).some((t) => t.startsWith('/tmp')),
        `${name}: tmpfs /tmp`,
      );
      assert.deepEqual(s.cap_drop, ['ALL'], `${name}: cap_drop`);
      assert.ok(s.security_opt.includes('no-new-privileges:true'), `${name}: no-new-privileges`);
      const seccomp = (s.security_opt as string[]).find((o) => /^seccomp[=:]/.test(o));
      assert.ok(seccomp && existsSync(path.join(DEPLOY, seccomp.slice('seccomp='.length))), `${name}: seccomp profile file (${seccomp})`);
      assert.ok(s.deploy?.resources?.limits?.memory && s.deploy.resources.limits.cpus, `${name}: memory and CPU limits`);
      if (name !== 'worker') assert.equal(s.cap_add, undefined, `${name} adds capabilities back`);
    }
    assert.deepEqual([...base.services.worker.cap_add].sort(), [...WORKER_CAPS].sort());
    const why = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
    for (const cap of WORKER_CAPS) assert.ok(why.includes(`\`${cap}\``), `docs/deploy.md does not say why the worker needs ${cap}`);
    const denied = (f: string) =>
      (JSON.parse(readFileSync(path.join(DEPLOY, 'seccomp', f), 'utf8')) as { syscalls: Array<{ names: string[] }> }).syscalls[0]!.names;
    assert.ok(denied('frostgate.json').includes('unshare') && !denied('worker.json').includes('unshare'), 'only the worker may create namespaces');
    for (const f of ['frostgate.json', 'worker.json'])
      for (const sc of ['kexec_load', 'init_module', 'bpf', 'ptrace']) assert.ok(denied(f).includes(sc), `${f}: ${sc}`);
  });

  it('networks segmented: the worker reaches no platform service but NATS, Postgres and Redis over the scenario network', () => {
    const nets = (svc: string) => Object.keys(base.services[svc].networks ?? {}).sort();
    assert.deepEqual(nets('worker'), ['scenario', 'telemetry']);
    // Redis is on the scenario network too: the prod profile requires it in every process (docs/deploy.md).
    assert.ok(!nets('s3').includes('scenario'));
    assert.deepEqual(nets('prometheus'), ['edge', 'telemetry']);
    for (const role of ['core', 'admin', 'spawn', 'scoreboard']) assert.ok(!nets(role).includes('scenario'), role);
    // Only what publishes a port is on the one non-internal network.
    const raw = parse(readFileSync(path.join(DEPLOY, 'compose.yml'), 'utf8')) as { networks: Record<string, { internal?: boolean }> };
    for (const [name, net] of Object.entries(raw.networks)) assert.equal(net.internal === true, name !== 'edge', name);
    for (const [name, s] of Object.entries(base.services))
      assert.equal(nets(name).includes('edge'), (s.ports ?? []).length > 0, `${name}: edge only to publish`);
    for (const s of Object.values(base.services))
      for (const p of s.ports ?? [])
        assert.ok(typeof p === 'string' ? p.startsWith('127.0.0.1:') : p.host_ip === '127.0.0.1', `published on loopback only: ${JSON.stringify(p)}`);
  });

  it('secrets come from files, and every FG_* variable the bundle names is one the config knows', () => {
    const known = new Set(VARIABLES.map((v) => v.name));
    const text = bundleFiles(DEPLOY)
      .filter((f) => /\.(ya?ml|sh|json)$|Dockerfile$/.test(f))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const named = new Set([...text.matchAll(/\b(FG_[A-Z0-9_]+)\b/g)].map((m) => m[1]!));
    assert.deepEqual(
      [...named].filter((n) => !known.has(n)),
      [],
      'FG_* names the config does not know',
    );
    for (const s of Object.values(base.services)) for (const secret of s.secrets ?? []) assert.ok(secret.source, 'a secret');
    const raw = parse(readFileSync(path.join(DEPLOY, 'compose.yml'), 'utf8')) as { secrets: Record<string, { file?: string }> };
    for (const [name, def] of Object.entries(raw.secrets)) assert.match(def.file ?? '', /^\.\/secrets\//, name);
  });

  it('no default password and no Docker socket anywhere in the bundle (the check can fail)', () => {
    const offences = (text: string, where: string): string[] => {
      const out: string[] = [];
      const rules: Array<[RegExp, string]> = [
        [/docker\.sock/, 'Docker socket'],
        [/\b(minioadmin|changeme|change-me|admin:admin|postgres:postgres@|secret123|password123)\b/i, 'well-known default credential'],
        [/(?:PASSWORD|PASSWD|SECRET|_KEY)\s*[:=]\s*['"]?(?!\$|\/run\/secrets|['"]?$)[A-Za-z0-9+/_-]{4,}/, 'a literal secret value'],
        [/requirepass\s+(?![$%])\S+/, 'a literal Redis password'],
        [/:\/\/[^/\s:@$]+:[^@\s$]+@/, 'credentials in a URL'],
      ];
      for (const [re, what] of rules) if (re.test(text)) out.push(`${where}: ${what} (${re.exec(text)![0]})`);
      return out;
    };
    const files = bundleFiles(DEPLOY).filter((f) => !f.includes(`${path.sep}secrets${path.sep}`) || f.endsWith('generate.sh'));
    assert.ok(files.length >= 15, `only ${files.length} files in the bundle`);
    const found = files.flatMap((f) => offences(readFileSync(f, 'utf8').replace(/^\s*#.*$/gm, ''), path.relative(ROOT, f)));
    assert.deepEqual(found, []);
    // The same grep catches what it is meant to catch.
    assert.equal(offences('environment:\n  MINIO_ROOT_PASSWORD: minioadmin\n', 'x').length, 2);
    assert.equal(offences('volumes: ["/var/run/docker.sock:/var/run/docker.sock"]', 'x').length, 1);
    assert.equal(offences('FG_DB_URL: postgres://frostgate:hunter2@db/fg', 'x').length, 1);
    assert.equal(offences('command: redis-server --requirepass s3cr3t', 'x').length, 1);
  });
});
