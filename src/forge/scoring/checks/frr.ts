import type { BgpSessionCheckSpec, OspfNeighborCheckSpec } from '../../templates/checks.js';
import { fail, parseJsonOutput, pass, type CheckContext, type CheckVerdict } from './context.js';

// The host's vtysh, talking to the device's own FRR daemons through their vty sockets (the
// runtime points vtysh at the device's FRR directory); a learner cannot swap the binary.

interface OspfNeighbor {
  readonly state?: string;
  readonly nbrState?: string;
  readonly address?: string;
  readonly ifaceAddress?: string;
}

export async function ospfNeighborCheck(spec: OspfNeighborCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const json = parseJsonOutput('vtysh show ip ospf neighbor', await ctx.run(spec.device, ['vtysh', '-c', 'show ip ospf neighbor json'], 'net', timeoutMs)) as {
    neighbors?: Record<string, OspfNeighbor[]>;
  } | null;
  const want = spec.state ?? 'Full';
  const seen: string[] = [];
  for (const [routerId, list] of Object.entries(json?.neighbors ?? {})) {
    for (const n of list) {
      const state = n.state ?? n.nbrState ?? '';
      const address = n.address ?? n.ifaceAddress ?? '';
      seen.push(`${routerId} (${address}) ${state}`);
      if ((routerId === spec.neighbor || address === spec.neighbor) && state.startsWith(want))
        return pass(`OSPF neighbor ${routerId} (${address}) is ${state}`);
    }
  }
  return fail(`no OSPF neighbor ${spec.neighbor} in state ${want}${seen.length ? `; neighbors: ${seen.join(', ')}` : '; no neighbors'}`);
}

interface BgpPeer {
  readonly state?: string;
  readonly pfxRcd?: number;
}

export async function bgpSessionCheck(spec: BgpSessionCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const json = parseJsonOutput('vtysh show bgp summary', await ctx.run(spec.device, ['vtysh', '-c', 'show bgp summary json'], 'net', timeoutMs)) as Record<
    string,
    { peers?: Record<string, BgpPeer> }
  > | null;
  const want = spec.state ?? 'Established';
  const seen: string[] = [];
  for (const [family, summary] of Object.entries(json ?? {})) {
    const peer = summary?.peers?.[spec.peer];
    if (!peer) continue;
    seen.push(`${family}: ${peer.state ?? 'unknown'} (${peer.pfxRcd ?? 0} prefixes)`);
    if (peer.state === want && (spec.min_prefixes === undefined || (peer.pfxRcd ?? 0) >= spec.min_prefixes)) {
      return pass(`BGP peer ${spec.peer} is ${peer.state} in ${family} with ${peer.pfxRcd ?? 0} prefixes`);
    }
  }
  return fail(
    `BGP peer ${spec.peer} is not ${want}${spec.min_prefixes !== undefined ? ` with at least ${spec.min_prefixes} prefixes` : ''}${seen.length ? `: ${seen.join('; ')}` : ': no such peer'}`,
  );
}
