import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportPrivateKeyPem, generateEd25519KeyPair } from '../../../src/platform/crypto/ed25519.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { signReceipt, type Receipt } from '../../../src/forge/spawn/receipts.js';

/** A one-network, two-host template of `track`: the quickest real lab. */
export function tinyTemplateYaml(id: string, track: string, tier = 'basic'): string {
  return `id: ${id}
title: Tiny ${track}
track: ${track}
tier: ${tier}
ttl_minutes: 30
topology:
  networks: [{ name: lan, cidr: 10.77.0.0/24 }]
  devices:
    - { name: h1, kind: host, interfaces: [{ network: lan, address: 10.77.0.10/24 }] }
    - { name: h2, kind: host, interfaces: [{ network: lan, address: 10.77.0.11/24 }] }
tasks: [nothing]
successCriteria: [{ id: c1, description: d, points: 1, check: { type: command, device: h1, run: "true" } }]
`;
}

export interface ForgeTestEnv {
  /** Environment for startTestApp: own data dir (so its own lab namespaces), templates, secrets, key. */
  readonly env: Record<string, string>;
  readonly dataDir: string;
  readonly receiptSecret: string;
  readonly stripeSecret: string;
  readonly tokenKeyPath: string;
  /** A runtime on the same state dir as the server's, to look at (and clean up) its labs. */
  readonly runtime: NetnsLabRuntime;
  receipt(r: Partial<Receipt> & Pick<Receipt, 'tenant' | 'subject' | 'track'>): string;
  /** Removes every lab left under this data dir and the directories. */
  cleanup(): Promise<void>;
}

/** A data dir, a templates dir with tiny netplus and ccna templates, secrets and a token key file. */
export function forgeTestEnv(extra: Record<string, string> = {}): ForgeTestEnv {
  const root = mkdtempSync(path.join(tmpdir(), 'fg-spawn-'));
  const dataDir = path.join(root, 'data');
  const templatesDir = path.join(root, 'templates');
  mkdirSync(dataDir);
  mkdirSync(templatesDir);
  writeFileSync(path.join(templatesDir, 'netplus-tiny.yaml'), tinyTemplateYaml('netplus-tiny', 'netplus'));
  writeFileSync(path.join(templatesDir, 'ccna-tiny.yaml'), tinyTemplateYaml('ccna-tiny', 'ccna', 'pro'));
  const tokenKeyPath = path.join(root, 'token.pem');
  writeFileSync(tokenKeyPath, exportPrivateKeyPem(generateEd25519KeyPair().privateKey), { mode: 0o600 });
  const receiptSecret = randomBytes(32).toString('base64');
  const stripeSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const runtime = new NetnsLabRuntime({ stateDir: path.join(dataDir, 'labs') });
  return {
    env: {
      FG_DATA_DIR: dataDir,
      FG_TEMPLATES_DIR: templatesDir,
      FG_TOKEN_KEY_PATH: tokenKeyPath,
      RECEIPT_HMAC_SECRET: receiptSecret,
      ET_HMAC_SECRET: randomBytes(32).toString('base64'),
      STRIPE_WEBHOOK_SECRET: stripeSecret,
      ...extra,
    },
    dataDir,
    receiptSecret,
    stripeSecret,
    tokenKeyPath,
    runtime,
    receipt(r) {
      const full: Receipt = {
        receipt_id: `rcp_${randomBytes(6).toString('hex')}`,
        tier: 'pro',
        credits: 5,
        expires_at: Math.floor(Date.now() / 1000) + 86_400,
        ...r,
      };
      return signReceipt(full, receiptSecret);
    },
    async cleanup() {
      await runtime.reconcile(new Set());
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Network namespaces of a scenario present on the host. */
export function namespacesOf(runtime: NetnsLabRuntime, scenarioId: string): string[] {
  const prefix = runtime.namesFor(scenarioId).prefix;
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}
