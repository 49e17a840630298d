import { resolveLimits } from '../runtime/spec.js';
import type { DeviceSpec, LabSpec, ResourceLimits } from '../runtime/types.js';
import type { TemplateDevice, TemplateDocument } from './schema.js';
import { scenarioVariables, substituteVariables, type ScenarioVariables } from './variables.js';

/**
 * The runtime's LabSpec for one scenario of a (validated) template: its initial state, with the
 * scenario's variables (variables.ts) in place of `{{name}}` in files, startup lines and FRR
 * configs. `variables` defaults to the values derived without a deployment secret.
 */
export function toLabSpec(
  template: TemplateDocument,
  scenarioId: string,
  variables: ScenarioVariables = scenarioVariables(template.variables, scenarioId),
): LabSpec {
  const sub = (text: string) => substituteVariables(text, variables);
  const specLimits = limitsOverrides(template);
  return {
    scenarioId,
    networks: template.topology.networks.map((n) => ({ name: n.name, cidr: n.cidr })),
    devices: template.topology.devices.map((d) => toDeviceSpec(d, sub)),
    ...(template.egress ? { egress: { name: template.egress.profile, allow: template.egress.allow ?? [] } } : {}),
    ...(Object.keys(specLimits).length > 0 ? { limits: specLimits } : {}),
  };
}

/** The limits the template sets (the runtime's defaults fill the rest). */
function limitsOverrides(template: TemplateDocument): Partial<ResourceLimits> {
  const limits = template.topology.limits;
  const out: Partial<{ -readonly [K in keyof ResourceLimits]: ResourceLimits[K] }> = {};
  if (limits?.memory_mb !== undefined) out.memoryBytes = limits.memory_mb * 1024 * 1024;
  if (limits?.pids !== undefined) out.pids = limits.pids;
  if (limits?.cpu_shares !== undefined) out.cpuShares = limits.cpu_shares;
  if (limits?.disk_mb !== undefined) out.diskBytes = limits.disk_mb * 1024 * 1024;
  return out;
}

/** What a lab of this template may use: CPU, memory, processes, disk (shown on the lab page and by `lab up`). */
export function templateLimits(template: TemplateDocument): ResourceLimits {
  return resolveLimits({ limits: limitsOverrides(template) });
}

function toDeviceSpec(dev: TemplateDevice, sub: (text: string) => string): DeviceSpec {
  return {
    name: dev.name,
    kind: dev.kind,
    interfaces: dev.interfaces.map((i) => ({ network: i.network, address: i.address })),
    ...(dev.routes ? { routes: dev.routes.map((r) => ({ to: r.to, via: r.via })) } : {}),
    ...(dev.files
      ? {
          files: dev.files.map((f) => ({
            path: f.path,
            content: sub(f.content),
            ...(f.mode !== undefined ? { mode: typeof f.mode === 'string' ? Number.parseInt(f.mode, 8) : f.mode } : {}),
          })),
        }
      : {}),
    ...(dev.startup ? { startup: dev.startup.map(sub) } : {}),
    ...(dev.frr_config !== undefined ? { frrConfig: sub(dev.frr_config) } : {}),
  };
}
