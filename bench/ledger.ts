import { pathToFileURL } from 'node:url';
import { hashLeaf } from '../src/ledger/hash.js';
import { consistencyProof, inclusionProof, MerkleFrontier, MerkleLog, rootAt } from '../src/ledger/merkle.js';
import { InMemoryMerkleNodeStore } from '../src/ledger/node-store.js';
import { verifyConsistency, verifyInclusion } from '../src/ledger/proof-verify.js';
import { recordLeafHash } from '../src/ledger/record.js';

/**
 * Ledger core figures, in memory: append throughput (targets >= 20,000/s) and proof generation
 * and verification at 1,000,000 entries (target < 1 ms each). Prints, never asserts.
 */
const TREE_SIZE = 1_000_000;
const PROOFS = 1000;
const RECORD_APPENDS = 100_000;

function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function summary(label: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(
    `${label.padEnd(34)} p50 ${percentile(sorted, 50).toFixed(1).padStart(7)} µs   p99 ${percentile(sorted, 99).toFixed(1).padStart(7)} µs   mean ${mean.toFixed(1).padStart(7)} µs`,
  );
}

function decisionRecord(i: number): Record<string, unknown> {
  return {
    decision_id: `dec_${i.toString(36).padStart(10, '0')}`,
    tenant_id: 'tenant-bench',
    threat_level: i % 7 === 0 ? 'high' : 'low',
    score: (i % 100) / 100,
    rules_triggered: ['auth.bruteforce', 'geo.unusual'],
    mitigations: [{ action: 'block', target: `10.0.${(i >> 8) & 255}.${i & 255}`, duration_s: 600, applied: true, gated_by: null }],
    ruleset_version: 'rs-42',
    doctrine_version: 'dc-7',
    ledger_index: i,
  };
}

export async function run(): Promise<void> {
  console.log(`ledger bench (node ${process.version})`);

  // 1. Appends of precomputed leaf hashes through MerkleLog (serialised, async store writes).
  const leaves = Array.from({ length: TREE_SIZE }, (_, i) => hashLeaf(Buffer.from(`entry-${i}`)));
  const store = new InMemoryMerkleNodeStore();
  const log = await MerkleLog.open(store);
  let start = nowUs();
  for (const leaf of leaves) await log.append(leaf);
  let elapsed = (nowUs() - start) / 1e6;
  console.log(
    `append leaf hash (MerkleLog)         ${Math.round(TREE_SIZE / elapsed).toLocaleString('en-US')} /s  (${TREE_SIZE.toLocaleString('en-US')} in ${elapsed.toFixed(2)} s)`,
  );

  // 2. The frontier alone: what a DB-backed ledger computes inside its transaction.
  let frontier = MerkleFrontier.EMPTY;
  start = nowUs();
  for (let i = 0; i < 200_000; i++) frontier = frontier.append(leaves[i] as Buffer).frontier;
  elapsed = (nowUs() - start) / 1e6;
  console.log(`append leaf hash (frontier only)     ${Math.round(200_000 / elapsed).toLocaleString('en-US')} /s`);

  // 3. Full record path: RFC 8785 canonical JSON + leaf hash + append.
  const recordLog = await MerkleLog.open(new InMemoryMerkleNodeStore());
  start = nowUs();
  for (let i = 0; i < RECORD_APPENDS; i++) await recordLog.append(recordLeafHash(decisionRecord(i)));
  elapsed = (nowUs() - start) / 1e6;
  console.log(
    `append decision record (JCS+hash)    ${Math.round(RECORD_APPENDS / elapsed).toLocaleString('en-US')} /s  (${RECORD_APPENDS.toLocaleString('en-US')} records)`,
  );

  // 4. Proofs at 1,000,000 entries.
  const root = log.root();
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const incGen: number[] = [];
  const incVerify: number[] = [];
  for (let i = 0; i < PROOFS; i++) {
    const index = random(TREE_SIZE);
    let t = nowUs();
    const proof = await inclusionProof(store, index, TREE_SIZE);
    incGen.push(nowUs() - t);
    t = nowUs();
    verifyInclusion({ index, treeSize: TREE_SIZE, leafHash: leaves[index] as Buffer, proof, root });
    incVerify.push(nowUs() - t);
  }
  const conGen: number[] = [];
  const conVerify: number[] = [];
  const rootGen: number[] = [];
  for (let i = 0; i < PROOFS; i++) {
    const first = 1 + random(TREE_SIZE - 1);
    let t = nowUs();
    const firstRoot = await rootAt(store, first);
    rootGen.push(nowUs() - t);
    t = nowUs();
    const proof = await consistencyProof(store, first, TREE_SIZE);
    conGen.push(nowUs() - t);
    t = nowUs();
    verifyConsistency({ firstSize: first, secondSize: TREE_SIZE, firstRoot, secondRoot: root, proof });
    conVerify.push(nowUs() - t);
  }
  console.log(`proofs at ${TREE_SIZE.toLocaleString('en-US')} entries, ${PROOFS} random each:`);
  summary('inclusion proof generation', incGen);
  summary('inclusion proof verification', incVerify);
  summary('consistency proof generation', conGen);
  summary('consistency proof verification', conVerify);
  summary('rootAt(random past size)', rootGen);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
