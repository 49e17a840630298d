import type { ObjectStorage } from '../../platform/storage/types.js';

/** The artefacts of one graded attempt of a scenario (see resultsPrefix). */
export interface ResultArtefacts {
  readonly score: Buffer;
  readonly evidence: Buffer;
  readonly evidenceName: EvidenceFileName;
  readonly sig: Buffer;
  readonly pub: Buffer;
  readonly audit: Buffer;
}

export type EvidenceFileName = 'evidence.tar.zst' | 'evidence.tar.gz';
export const EVIDENCE_NAMES: readonly EvidenceFileName[] = ['evidence.tar.zst', 'evidence.tar.gz'];

/** Attempt 1 keeps the original place (results graded before attempts existed stay readable). */
export function resultsPrefix(scenarioId: string, attempt = 1): string {
  return attempt === 1 ? `scenarios/${scenarioId}/results/` : `scenarios/${scenarioId}/results/attempt-${attempt}/`;
}

/**
 * Writes the artefacts; score.json last, so a reader that finds score.json finds the others
 * (a crash before it leaves an incomplete set that the next grading overwrites).
 */
export async function writeResults(storage: ObjectStorage, scenarioId: string, a: ResultArtefacts, attempt = 1): Promise<Record<string, string>> {
  const prefix = resultsPrefix(scenarioId, attempt);
  const files: Array<[string, Buffer]> = [
    [a.evidenceName, a.evidence],
    ['verdict.sig', a.sig],
    ['verdict.pub', a.pub],
    ['audit.jsonl', a.audit],
    ['score.json', a.score],
  ];
  const where: Record<string, string> = {};
  for (const [name, bytes] of files) {
    await storage.put(`${prefix}${name}`, bytes);
    where[name] = storage.locate(`${prefix}${name}`);
  }
  return where;
}

/** The stored artefacts of a scenario, or undefined when it has no complete set. */
export async function readResults(storage: ObjectStorage, scenarioId: string, attempt = 1): Promise<ResultArtefacts | undefined> {
  const prefix = resultsPrefix(scenarioId, attempt);
  const score = await storage.get(`${prefix}score.json`);
  if (!score) return undefined;
  const evidenceName = (JSON.parse(score.toString('utf8')) as { evidence?: string }).evidence as EvidenceFileName | undefined;
  if (!evidenceName || !EVIDENCE_NAMES.includes(evidenceName)) return undefined;
  const [evidence, sig, pub, audit] = await Promise.all(
    [prefix + evidenceName, `${prefix}verdict.sig`, `${prefix}verdict.pub`, `${prefix}audit.jsonl`].map((k) => storage.get(k)),
  );
  if (!evidence || !sig || !pub || !audit) return undefined;
  return { score, evidence, evidenceName, sig, pub, audit };
}

export function locateResults(storage: ObjectStorage, scenarioId: string, evidenceName: EvidenceFileName, attempt = 1): Record<string, string> {
  const prefix = resultsPrefix(scenarioId, attempt);
  return Object.fromEntries(['score.json', evidenceName, 'verdict.sig', 'verdict.pub', 'audit.jsonl'].map((n) => [n, storage.locate(prefix + n)]));
}
