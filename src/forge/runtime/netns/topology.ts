import type { DeviceAddress, LabSpec } from '../types.js';
import type { LabNames } from './naming.js';

/**
 * iproute2 batches that wire a lab (network-script.ts runs them): the switch namespace's
 * bridges and veth pairs whose device ends are created directly inside each device's
 * namespace (`peer ... netns`), so no interface ever exists in the host namespace.
 */
export function devicePorts(spec: LabSpec, names: LabNames): Record<string, string[]> {
  return Object.fromEntries(spec.devices.map((dev, d) => [dev.name, dev.interfaces.map((_, i) => names.vethSwitchSide(d, i))]));
}

export function switchBatch(spec: LabSpec, names: LabNames): string {
  const lines: string[] = [];
  spec.networks.forEach((net, n) => {
    const br = names.bridge(n);
    lines.push(`link add ${br} type bridge stp_state 0 forward_delay 0`, `link set ${br} up`);
  });
  spec.devices.forEach((dev, d) => {
    dev.interfaces.forEach((iface, i) => {
      const n = spec.networks.findIndex((net) => net.name === iface.network);
      const veth = names.vethSwitchSide(d, i);
      lines.push(
        `link add ${veth} type veth peer name eth${i} netns ${names.deviceNs(dev.name)}`,
        `link set ${veth} master ${names.bridge(n)}`,
        `link set ${veth} up`,
      );
    });
  });
  return lines.join('\n') + '\n';
}

export function deviceBatch(spec: LabSpec, device: string): string {
  const dev = spec.devices.find((d) => d.name === device)!;
  const lines = ['link set lo up'];
  dev.interfaces.forEach((iface, i) => {
    lines.push(`addr add ${iface.address} dev eth${i}`, `link set eth${i} up`);
  });
  for (const route of dev.routes ?? []) lines.push(`route add ${route.to} via ${route.via}`);
  return lines.join('\n') + '\n';
}

export function deviceAddresses(spec: LabSpec, device: string): DeviceAddress[] {
  const dev = spec.devices.find((d) => d.name === device)!;
  return dev.interfaces.map((iface, i) => ({ interface: `eth${i}`, network: iface.network, address: iface.address }));
}
