// Forge scoreboard building blocks: PII sanitizer throughput (ordinary lab output and adversarial
// inputs that would be quadratic for careless regexes), evidence archive build, verdict sign/verify.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NetnsLabRuntime } from '../src/forge/runtime/netns/driver.js';
import { evaluateCriteria } from '../src/forge/scoring/criteria.js';
import { gradeScenario } from '../src/forge/scoring/grader.js';
import { labExec } from '../src/forge/scoring/service.js';
import { loadVerdictSigningKey } from '../src/forge/scoring/verdict.js';
import { loadTemplate } from '../src/forge/templates/load.js';
import { toLabSpec } from '../src/forge/templates/to-spec.js';
import { sanitizeText } from '../src/forge/sanitizer/text.js';
import { buildEvidenceArchive } from '../src/forge/scoring/evidence-archive.js';
import { signVerdict, verifyVerdict } from '../src/forge/scoring/verdict.js';
import { canonicalize } from '../src/platform/crypto/canonical-json.js';
import { generateEd25519KeyPair } from '../src/platform/crypto/ed25519.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'pii');

function time<T>(fn: () => T): { value: T; ms: number } {
  const t0 = process.hrtime.bigint();
  const value = fn();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function sanitizerCase(label: string, text: string): void {
  sanitizeText(text.slice(0, 10_000)); // warm-up
  const { value, ms } = time(() => sanitizeText(text));
  const mb = Buffer.byteLength(text) / 1e6;
  console.log(
    `  ${label.padEnd(44)} ${mb.toFixed(1).padStart(5)} MB  ${ms.toFixed(0).padStart(6)} ms  ${(mb / (ms / 1000)).toFixed(1).padStart(6)} MB/s  ${value.report.redactions.length} redactions`,
  );
}

export async function run(): Promise<void> {
  const corpus = readdirSync(FIXTURES)
    .filter((n) => n !== 'manifest.json')
    .map((n) => readFileSync(path.join(FIXTURES, n), 'utf8'))
    .join('\n');
  console.log('sanitizeText');
  sanitizerCase('fixture corpus repeated (mixed lab output)', corpus.repeat(Math.ceil(4e6 / corpus.length)));
  sanitizerCase('one 2 MB base64 line', randomBytes(1_500_000).toString('base64'));
  sanitizerCase('2 MB of digits and spaces', '1234 '.repeat(400_000));
  sanitizerCase('2 MB of "a" (no @, no separators)', 'a'.repeat(2_000_000));
  sanitizerCase('2 MB of "a@" pairs', 'a@'.repeat(1_000_000));
  sanitizerCase('1 MB of "eyJ" fragments', 'eyJhbGci.'.repeat(110_000));
  sanitizerCase('1 MB of "key=" labels', 'key=AbCd1234'.repeat(90_000));
  sanitizerCase('1 MB of "key=aaaa….key=" chains', `key=${'a'.repeat(16)}.`.repeat(50_000));
  sanitizerCase('1 MB of PEM BEGIN lines without END', '-----BEGIN PRIVATE KEY-----\n'.repeat(36_000));

  const files = [
    { name: 'recording.cast', bytes: Buffer.from(corpus.repeat(Math.ceil(2e6 / corpus.length))) },
    { name: 'audit.jsonl', bytes: Buffer.from('{"event":"x"}\n'.repeat(10_000)) },
  ];
  const size = files.reduce((n, f) => n + f.bytes.length, 0) / 1e6;
  for (const compression of ['gzip', 'zstd'] as const) {
    const t0 = process.hrtime.bigint();
    const archive = await buildEvidenceArchive(files, { compression });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`evidence archive ${compression}: ${size.toFixed(1)} MB in ${ms.toFixed(0)} ms -> ${(archive.length / 1e3).toFixed(0)} kB`);
  }

  const { privateKey } = generateEd25519KeyPair();
  const scoreBytes = Buffer.from(canonicalize({ scenario: 'scn_bench', total: 80, criteria: [{ id: 'c1', status: 'passed' }] }));
  const evidenceBytes = await buildEvidenceArchive(files);
  const n = 2_000;
  const signed = time(() => {
    let last = signVerdict({ scoreBytes, evidenceBytes, privateKey });
    for (let i = 1; i < n; i++) last = signVerdict({ scoreBytes, evidenceBytes, privateKey });
    return last;
  });
  const verified = time(() => {
    for (let i = 0; i < n; i++) verifyVerdict({ scoreBytes, evidenceBytes, sigBytes: signed.value.sigBytes, pubBytes: signed.value.pubBytes });
  });
  console.log(
    `verdict over a ${(evidenceBytes.length / 1e3).toFixed(0)} kB archive: sign ${(signed.ms / n).toFixed(3)} ms, verify ${(verified.ms / n).toFixed(3)} ms (both include hashing)`,
  );

  await gradingBench();
}

/**
 * Grading a real lab (netplus-two-subnets, reference solution applied): the checks alone, then
 * the whole artefact build (checks, sanitizer, zstd archive, canonical score, signature). Needs
 * root (lab namespaces); skipped otherwise.
 */
async function gradingBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('grading a lab: skipped (needs root for lab namespaces)');
    return;
  }
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fg-bench-grade-'));
  const runtime = new NetnsLabRuntime({ stateDir });
  const template = await loadTemplate(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'templates', 'netplus-two-subnets.yaml'));
  const scenarioId = 'scn_bench_grading_0001';
  try {
    const t0 = process.hrtime.bigint();
    await runtime.create(toLabSpec(template, scenarioId));
    const created = Number(process.hrtime.bigint() - t0) / 1e6;
    for (const [device, gw] of [
      ['h1', '10.10.1.1'],
      ['h2', '10.10.2.1'],
    ] as const) {
      await runtime.exec(scenarioId, device, ['/bin/sh', '-c', `ip route add default via ${gw}`], { asLearner: true });
    }
    const exec = labExec(runtime, scenarioId);
    const rounds = 5;
    const checkMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const s0 = process.hrtime.bigint();
      const results = await evaluateCriteria({ criteria: template.successCriteria, exec });
      checkMs.push(Number(process.hrtime.bigint() - s0) / 1e6);
      if (results.some((r) => r.status !== 'passed')) throw new Error('reference solution did not pass');
    }
    const key = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
    const g0 = process.hrtime.bigint();
    const out = await gradeScenario({
      scenario: {
        scenario_id: scenarioId,
        tenant_id: 'bench',
        template_id: template.id,
        template_version: template.version,
        track: template.track,
        subject: 'bench',
      },
      template,
      exec,
      variables: {},
      reason: 'submit',
      gradedAt: new Date(),
      signingKey: key,
    });
    const gradeMs = Number(process.hrtime.bigint() - g0) / 1e6;
    const sorted = [...checkMs].sort((a, b) => a - b);
    console.log(`grading netplus-two-subnets (${template.successCriteria.length} criteria, lab created in ${created.toFixed(0)} ms):`);
    console.log(
      `  checks only: median ${sorted[Math.floor(rounds / 2)]!.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted[rounds - 1]!.toFixed(0)} ms over ${rounds} rounds`,
    );
    console.log(
      `  full grading (checks, sanitizer, zstd evidence ${(out.artefacts.evidence.length / 1e3).toFixed(1)} kB, signed verdict): ${gradeMs.toFixed(0)} ms, ${out.score.percent}%`,
    );
  } finally {
    await runtime.reconcile(new Set());
    rmSync(stateDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
