// Ledger appends through the database (the path decisions take), embedded PGlite and local Postgres.
// Appends are batched per transaction as /ingest's group commit does; one-per-transaction is shown too.
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { generateEd25519KeyPair } from '../src/platform/crypto/ed25519.js';
import { openDatabase, type Database } from '../src/platform/db/database.js';
import { LedgerService } from '../src/ledger/service.js';
import { createNoteSigner, formatKeyId, formatVerifierKey } from '../src/ledger/note.js';
import { createThrowawayDatabase } from '../test/helpers/postgres.js';

async function measure(db: Database, label: string, analyze: () => Promise<void>): Promise<void> {
  const signer = createNoteSigner('bench', generateEd25519KeyPair().privateKey);
  const ledger = new LedgerService(db, { signer, vkey: formatVerifierKey(signer), keyId: formatKeyId(signer.keyId), source: 'bench' });
  await db.db.insertInto('tenants').values({ id: 'bench', disabled_at: null }).execute();
  const record = (i: number) => ({
    decision_id: `dec_${i}`,
    threat_level: 'high',
    score: i % 100,
    rules_triggered: ['ssh-brute-force'],
    event_digest: 'x'.repeat(64),
  });
  for (const batch of [1, 100, 1000]) {
    const total = batch === 1 ? 2_000 : 50_000;
    let n = 0;
    const started = performance.now();
    while (n < total) {
      const records = Array.from({ length: batch }, (_, i) => record(n + i));
      await db.withTenant('bench', (tx) => ledger.append(tx, 'bench', 'decisions', records));
      n += batch;
    }
    const s = (performance.now() - started) / 1000;
    console.log(
      `${label.padEnd(10)} batch ${String(batch).padStart(4)}: ${Math.round(total / s)
        .toLocaleString('en-US')
        .padStart(8)} appends/s (${total} appends in ${s.toFixed(2)} s)`,
    );
  }
  // Autovacuum analyzes after bulk loads in production; do it now so the planner sees the table.
  await analyze();
  const size = await ledger.size('bench', 'decisions');
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) await ledger.inclusion('bench', 'decisions', Math.floor(Math.random() * size), size);
  console.log(
    `${label.padEnd(10)} inclusion proof from the database at ${size} entries: ${((performance.now() - t0) / 200).toFixed(2)} ms per proof (query and transaction included)`,
  );
}

export async function run(): Promise<void> {
  const embedded = await openDatabase({ embeddedDir: 'memory', migrate: true });
  try {
    // PGlite has no autovacuum: the platform analyzes it every 10 minutes; here right after the load.
    await measure(embedded, 'pglite', () => embedded.analyze());
  } finally {
    await embedded.close();
  }
  const throwaway = await createThrowawayDatabase('fg_bench');
  const server = await openDatabase({ url: throwaway.url, migrate: true });
  try {
    await measure(server, 'postgres', async () => {
      const admin = new pg.Client({ connectionString: throwaway.url });
      await admin.connect();
      await admin.query('ANALYZE');
      await admin.end();
    });
  } finally {
    await server.close();
    await throwaway.drop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
