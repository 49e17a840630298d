import { runCommand } from '../runtime/netns/process.js';

export interface ApplyEgressOptions {
  /**
   * Compute only, never apply. Allowed only in dev: the platform's config refuses it at
   * startup elsewhere, and readiness reports it (audit finding #1).
   */
  readonly dryRun: boolean;
}

export class EgressApplyError extends Error {
  readonly code = 'egress_apply_failed';
  constructor(message: string) {
    super(message);
    this.name = 'EgressApplyError';
  }
}

/** Loads a ruleset into the given network namespace with the host's `nft` (atomic per file). */
export async function applyEgressRuleset(netnsName: string, ruleset: string, opts: ApplyEgressOptions): Promise<{ applied: boolean }> {
  if (opts.dryRun) return { applied: false };
  const res = await runCommand(['nsenter', `--net=/run/netns/${netnsName}`, 'nft', '-f', '-'], { stdin: ruleset, timeoutMs: 10_000 });
  if (res.exitCode !== 0) throw new EgressApplyError(`nft in ${netnsName} exited ${res.exitCode}: ${res.stderr.trim()}`);
  return { applied: true };
}

/** The ruleset currently loaded in a namespace, for checks and readiness. */
export async function listEgressRuleset(netnsName: string): Promise<string> {
  const res = await runCommand(['nsenter', `--net=/run/netns/${netnsName}`, 'nft', 'list', 'ruleset'], { timeoutMs: 10_000 });
  if (res.exitCode !== 0) throw new EgressApplyError(`nft list in ${netnsName} exited ${res.exitCode}: ${res.stderr.trim()}`);
  return res.stdout;
}
