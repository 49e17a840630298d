import type { ScenarioVariables } from '../../templates/variables.js';
import type { ExecContext } from '../capture.js';

/** The outcome of one command a check ran (full output; evidence keeps a truncated copy). */
export interface CommandOutcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Learner answers, by criterion id: a string for `answer`, question id -> answer for `quiz`. */
export type Answers = Readonly<Record<string, unknown>>;

/** What a check may use. `run` records every command it runs as evidence. */
export interface CheckContext {
  run(device: string, argv: readonly string[], context: ExecContext, timeoutMs: number): Promise<CommandOutcome>;
  readonly answers: Answers;
  readonly variables: ScenarioVariables;
  /** Id of the criterion being graded (answer and quiz checks look up its answer). */
  readonly criterionId: string;
}

export interface CheckVerdict {
  readonly pass: boolean;
  /** One line a learner reads: what was expected and what was found. */
  readonly detail: string;
}

export class CheckFailed extends Error {}

/**
 * Where a network check (reachability, http, dns) runs: by default the grader's probe standing
 * where the device stands, so the learner cannot satisfy it from inside the endpoint.
 */
export function vantageOf(spec: { readonly vantage?: 'probe' | 'device' | undefined }): ExecContext {
  return spec.vantage === 'device' ? 'net' : 'probe';
}

export const pass = (detail: string): CheckVerdict => ({ pass: true, detail });
export const fail = (detail: string): CheckVerdict => ({ pass: false, detail });

/** Parses JSON output of a tool, or throws CheckFailed naming the tool. */
export function parseJsonOutput(what: string, out: CommandOutcome): unknown {
  if (out.exitCode !== 0) throw new CheckFailed(`${what} exited ${out.exitCode}: ${out.stderr.trim().slice(0, 200)}`);
  try {
    return JSON.parse(out.stdout.trim() === '' ? 'null' : out.stdout);
  } catch {
    throw new CheckFailed(`${what} did not print JSON`);
  }
}

export function compileRegex(source: string): RegExp {
  return new RegExp(source, 'm');
}

/** First line of text, shortened for a detail message. */
export function excerpt(text: string, max = 120): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t.length > max ? `${t.slice(0, max)}…` : t || '(empty)';
}
