import type { FastifyReply } from 'fastify';
import { AppError } from '../../platform/http/problem.js';
import type { ResultArtefacts } from '../scoring/results.js';

/** The result files a learner downloads, each with the media type it is served as. */
export const RESULT_FILES: Readonly<Record<string, string>> = {
  'score.json': 'application/json',
  'evidence.tar.zst': 'application/zstd',
  'evidence.tar.gz': 'application/gzip',
  'verdict.sig': 'application/json',
  'verdict.pub': 'application/x-pem-file',
};

/**
 * Sends one stored result file of a graded lab as a download (the lab page's and the portal's);
 * `evidence` names whichever archive the evidence was packed as (.tar.zst, or .tar.gz without zstd).
 */
export function sendResultFile(reply: FastifyReply, scenarioId: string, found: ResultArtefacts, name: string): FastifyReply {
  const file = name === 'evidence' ? found.evidenceName : name;
  const bytes: Record<string, Uint8Array | undefined> = {
    'score.json': found.score,
    'verdict.sig': found.sig,
    'verdict.pub': found.pub,
    [found.evidenceName]: found.evidence,
  };
  const body = Object.hasOwn(bytes, file) ? bytes[file] : undefined;
  if (!body) throw new AppError('not_found', `this lab's evidence is ${found.evidenceName}`);
  return reply
    .header('content-disposition', `attachment; filename="${scenarioId}-${file}"`)
    .header('cache-control', 'private, no-store')
    .type(RESULT_FILES[file]!)
    .send(body);
}
