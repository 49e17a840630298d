import type { LeafCheckSpec } from '../../templates/checks.js';
import type { CheckContext, CheckVerdict } from './context.js';
import { bgpSessionCheck, ospfNeighborCheck } from './frr.js';
import { answerCheck, quizCheck } from './knowledge.js';
import { interfaceAddrCheck, listeningCheck, nftRuleCheck, reachabilityCheck, routeCheck } from './network.js';
import { dnsCheck, httpCheck } from './service.js';
import { commandCheck, fileCheck, processCheck, sysctlCheck } from './state.js';

/** Runs one attempt of a leaf check. */
export async function runLeafCheck(spec: LeafCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  switch (spec.type) {
    case 'command':
      return commandCheck(spec, ctx, timeoutMs);
    case 'file':
      return fileCheck(spec, ctx, timeoutMs);
    case 'interface_addr':
      return interfaceAddrCheck(spec, ctx, timeoutMs);
    case 'route':
      return routeCheck(spec, ctx, timeoutMs);
    case 'reachability':
      return reachabilityCheck(spec, ctx, timeoutMs);
    case 'ospf_neighbor':
      return ospfNeighborCheck(spec, ctx, timeoutMs);
    case 'bgp_session':
      return bgpSessionCheck(spec, ctx, timeoutMs);
    case 'listening':
      return listeningCheck(spec, ctx, timeoutMs);
    case 'process':
      return processCheck(spec, ctx, timeoutMs);
    case 'sysctl':
      return sysctlCheck(spec, ctx, timeoutMs);
    case 'dns':
      return dnsCheck(spec, ctx, timeoutMs);
    case 'http':
      return httpCheck(spec, ctx, timeoutMs);
    case 'nft_rule':
      return nftRuleCheck(spec, ctx, timeoutMs);
    case 'answer':
      return answerCheck(spec, ctx);
    case 'quiz':
      return quizCheck(spec, ctx);
  }
}
