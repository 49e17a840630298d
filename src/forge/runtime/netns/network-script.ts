import { enforceEgressScript } from '../egress/apply.js';
import type { LabSpec } from '../types.js';
import { RUN_NETNS, type LabNames } from './naming.js';
import { deviceBatch, switchBatch } from './topology.js';

/**
 * The bash script (run once per lab, as host root, inside the scenario's cgroup) that builds a
 * lab's network in one process spawn:
 *
 * 0. the devices' tmpfs (their writable storage, size-limited), so their trees can be written
 *    while the network is built; STORAGE_MOUNTED on stdout says so;
 * 1. the switch namespace (host-owned) and, unless dry-run, its egress ruleset: in force
 *    before any link exists;
 * 2. per device a user namespace whose root is the learner's unprivileged host uid, and the
 *    device's network namespace created inside it, so root in the lab has CAP_NET_ADMIN over
 *    its own network namespace and nothing else. A short-lived holder process (running as the
 *    learner uid) creates both with `unshare --user --map-root-user --net`; the script then
 *    pins the network namespace at /run/netns/<name> (where `ip -n` finds it) and the user
 *    namespace at /run/frostgate/userns/<name> (so exec can join it) with bind mounts, kills
 *    the holders and prints NAMESPACES_PINNED;
 * 3. bridges and veth pairs in the switch, addresses and routes in each device.
 *
 * The caller creates USERNS_DIR. Every name and address in the script was validated
 * (validateLabSpec, naming.ts, the runtime's state dir check), and batch contents go through
 * quoted heredocs, so nothing is shell-interpreted.
 */
export interface NetworkScriptInput {
  readonly spec: LabSpec;
  readonly names: LabNames;
  /** The switch ruleset, or undefined in egress dry-run. */
  readonly egressRuleset: string | undefined;
  /** Where the script writes the bind-mount table of the namespaces (in the scenario's dir). */
  readonly fstabPath: string;
  /** The mount table of the devices' tmpfs (written by the caller, mount points created). */
  readonly storageFstabPath: string;
}

/** Printed on stdout once every device's tmpfs is mounted (device trees may be written from then on). */
export const STORAGE_MOUNTED = 'storage mounted';

/** Printed on stdout once every namespace is pinned (device inits may start from then on). */
export const NAMESPACES_PINNED = 'namespaces pinned';

/** `command` reading `body` on stdin; `background` puts it in the background (`&` goes on the command line). */
function heredoc(command: string, body: string, background = false): string {
  return `${command} <<'FG_BATCH_END'${background ? ' &' : ''}\n${body.trimEnd()}\nFG_BATCH_END`;
}

export function labNetworkScript(input: NetworkScriptInput): string {
  const { spec, names, egressRuleset } = input;
  const uid = names.learnerUid();
  const lines: string[] = [
    'set -euo pipefail',
    'holders=()',
    // Holders live only until pinned; on any failure they go too (and they are in the cgroup).
    'trap \'[ ${#holders[@]} -eq 0 ] || kill -9 "${holders[@]}" 2>/dev/null || true\' EXIT',
    `mount -a -T ${input.storageFstabPath}`,
    `echo '${STORAGE_MOUNTED}'`,
    // Also sets up /run/netns as ip expects (a shared mount point).
    `ip netns add ${names.switchNs()}`,
  ];
  if (egressRuleset !== undefined) lines.push(enforceEgressScript(names.switchNs(), egressRuleset));
  // Holders block reading a pipe the script holds both ends of (no process of their own).
  lines.push('exec 9<> <(:)');
  spec.devices.forEach((_, d) => {
    lines.push(
      `exec ${10 + d}< <(exec setpriv --reuid=${uid} --regid=${uid} --clear-groups ` +
        `-- unshare --user --map-root-user --net -- /bin/sh -c 'echo $$; read _' <&9)`,
    );
  });
  // Both namespaces of every device pinned by bind mounts, in one `mount` process.
  const binds: string[] = [];
  spec.devices.forEach((dev, d) => {
    const netFile = `${RUN_NETNS}/${names.deviceNs(dev.name)}`;
    const userFile = names.usernsFile(dev.name);
    lines.push(`read -r p${d} <&${10 + d}`, `exec ${10 + d}<&-`, `holders+=("$p${d}")`, `: > ${netFile}`, `: > ${userFile}`);
    binds.push(`/proc/$p${d}/ns/net ${netFile} none bind 0 0`, `/proc/$p${d}/ns/user ${userFile} none bind 0 0`);
  });
  // libmount wants a regular file (a heredoc may be a pipe); written by a builtin, no process.
  lines.push(`printf '%s\\n' ${binds.map((l) => `"${l}"`).join(' ')} > ${input.fstabPath}`, `mount -a -T ${input.fstabPath}`);
  lines.push('kill -9 "${holders[@]}"', 'holders=()', `echo '${NAMESPACES_PINNED}'`);
  lines.push(heredoc(`ip -n ${names.switchNs()} -batch -`, switchBatch(spec, names)));
  // Devices are independent of each other once their ends of the veths exist.
  lines.push('batches=()');
  for (const dev of spec.devices) lines.push(heredoc(`ip -n ${names.deviceNs(dev.name)} -batch -`, deviceBatch(spec, dev.name), true), 'batches+=($!)');
  lines.push('for b in "${batches[@]}"; do wait "$b"; done');
  return lines.join('\n') + '\n';
}
