export class EgressApplyError extends Error {
  readonly code = 'egress_apply_failed';
  constructor(message: string) {
    super(message);
    this.name = 'EgressApplyError';
  }
}

const HEREDOC_END = 'FG_EGRESS_RULESET_END';

/**
 * Shell lines (for the lab's network setup script, run as host root) that put a switch
 * ruleset in force in a namespace: bridged IPv4 is passed through the inet hooks
 * (br_netfilter, per namespace), then `nft -f` loads the ruleset atomically. Dry-run (dev
 * only: the platform config refuses it elsewhere at startup, and readiness reports it,
 * audit finding #1) is the caller leaving these lines out.
 */
export function enforceEgressScript(netnsName: string, ruleset: string): string {
  if (ruleset.split('\n').includes(HEREDOC_END)) throw new EgressApplyError('ruleset contains the heredoc terminator');
  return [
    `nsenter --net=/run/netns/${netnsName} /bin/sh -c 'echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables && exec nft -f -' <<'${HEREDOC_END}'`,
    ruleset.trimEnd(),
    HEREDOC_END,
  ].join('\n');
}
