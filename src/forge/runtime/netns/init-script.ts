/**
 * The per-device init, run by bash as root inside the device's fresh mount, UTS, IPC and PID
 * namespaces (already inside its network namespace). It mounts the device's private
 * filesystem view from the fstab that device-fs.ts wrote (one `mount -a` instead of a process
 * per mount: process spawns dominate lab start-up), pivots into it, prints `ready`, then stays
 * as PID 1 reaping orphans, re-executed through the sandbox (no capabilities, the device
 * seccomp filter) with a command line that names no host path.
 *
 * Arguments: $1 device dir, $2 hostname, $3 "1" for routers (IPv4 forwarding on), then the
 * sandbox argv prefix the loop runs under.
 */
export const DEVICE_INIT_SCRIPT = String.raw`
set -eu
D="$1"; H="$2"; FWD="$3"
shift 3
# Network sysctls are per network namespace: these writes affect this device only.
echo "$FWD" > /proc/sys/net/ipv4/ip_forward
echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
echo "$H" > /proc/sys/kernel/hostname
mount -a -T "$D/fstab"
cd "$D/rw/rootfs"
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
cd /
echo ready
exec </dev/null >/dev/null 2>&1
# PID 1 of the device: blocks reading a pipe it holds both ends of (no child of its own, so
# killing every other process of the lab leaves nothing for it to respawn), and bash's
# SIGCHLD handler reaps the orphans handed to it.
exec "$@" /bin/bash -c 'trap "" TERM HUP INT; exec 3<> <(:); while :; do read -r -u 3 _ || true; done' fg-init
`;
