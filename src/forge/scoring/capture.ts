import { createHash } from 'node:crypto';

/**
 * What a check ran and saw, kept as evidence: argv, where it ran, start and end, exit code, and
 * each output stream truncated (to keep evidence small) with the SHA-256 and size of the whole.
 */
export interface CapturedStream {
  readonly text: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly truncated: boolean;
}

export type ExecContext = 'net' | 'mount' | 'learner' | 'probe';

export interface CapturedCommand {
  readonly device: string;
  /** net: host binaries in the device's network namespace; mount: its filesystem view; learner: as the learner; probe: the grader's namespace standing where the device stands. */
  readonly context: ExecContext;
  readonly argv: readonly string[];
  readonly started_at: string;
  readonly ended_at: string;
  readonly exit_code: number;
  readonly timed_out: boolean;
  readonly stdout: CapturedStream;
  readonly stderr: CapturedStream;
}

export const CAPTURE_LIMIT_BYTES = 16 * 1024;

export function captureStream(text: string, limit = CAPTURE_LIMIT_BYTES): CapturedStream {
  const bytes = Buffer.from(text, 'utf8');
  const truncated = bytes.length > limit;
  // Cut on a character boundary: decoding a prefix may end in a partial sequence, drop it.
  const kept = truncated
    ? bytes
        .subarray(0, limit)
        .toString('utf8')
        .replace(/\uFFFD+$/, '')
    : text;
  return { text: kept, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), truncated };
}
