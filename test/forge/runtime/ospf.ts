import type { LabSpec } from '../../../src/forge/runtime/types.js';

/**
 * r1 -- n12 -- r2 -- n23 -- r3, OSPF area 0 with 1 s hellos (or `helloMultiplier` hellos per
 * second with a 1 s dead interval); r1 learns n23 only through r2.
 */
export function ospfLab(scenarioId: string, n12: (h: number) => string, n23: (h: number) => string, opts: { helloMultiplier?: number } = {}): LabSpec {
  // A DD or LS request sent while the peer's ospfd is still starting is resent after the
  // retransmit interval (default 5 s): 1 s keeps a lost first exchange from dominating.
  const timers = [
    ...(opts.helloMultiplier === undefined
      ? [' ip ospf hello-interval 1', ' ip ospf dead-interval 3']
      : [` ip ospf dead-interval minimal hello-multiplier ${opts.helloMultiplier}`]),
    ' ip ospf retransmit-interval 1',
  ];
  const router = (name: string, id: string, ifaces: string[]): string =>
    [
      'frr defaults traditional',
      `hostname ${name}`,
      ...ifaces.flatMap((i) => [`interface ${i}`, ' ip ospf network point-to-point', ...timers, 'exit']),
      'router ospf',
      ` ospf router-id ${id}`,
      ' timers throttle spf 0 50 500',
      ' timers throttle lsa all 0',
      ' timers lsa min-arrival 0',
      ` network ${n12(0)} area 0`,
      ` network ${n23(0)} area 0`,
      'exit',
      '',
    ].join('\n');
  return {
    scenarioId,
    networks: [
      { name: 'n12', cidr: n12(0) },
      { name: 'n23', cidr: n23(0) },
    ],
    devices: [
      { name: 'r1', kind: 'router', interfaces: [{ network: 'n12', address: `${n12(1)}/24` }], frrConfig: router('r1', '1.1.1.1', ['eth0']) },
      {
        name: 'r2',
        kind: 'router',
        interfaces: [
          { network: 'n12', address: `${n12(2)}/24` },
          { network: 'n23', address: `${n23(2)}/24` },
        ],
        frrConfig: router('r2', '2.2.2.2', ['eth0', 'eth1']),
      },
      { name: 'r3', kind: 'router', interfaces: [{ network: 'n23', address: `${n23(3)}/24` }], frrConfig: router('r3', '3.3.3.3', ['eth0']) },
    ],
  };
}

/** Number of OSPF neighbours in state Full from `show ip ospf neighbor json`. */
export function fullNeighbours(json: string): number {
  return (json.match(/"(?:nbrState|state)":\s*"Full/g) ?? []).length;
}
