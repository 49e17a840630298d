/**
 * The per-device init, run by bash as root inside the device's fresh mount, UTS, IPC and PID
 * namespaces (already inside its network namespace). It builds the device's private
 * filesystem view, pivots into it, prints `ready`, then stays as PID 1 reaping orphans.
 *
 * Arguments: $1 device dir, $2 hostname, $3 "1" for routers (IPv4 forwarding on).
 */
export const DEVICE_INIT_SCRIPT = String.raw`
set -eu
D="$1"; H="$2"; FWD="$3"
R="$D/rootfs"
# Network sysctls are per network namespace: these writes affect this device only.
echo "$FWD" > /proc/sys/net/ipv4/ip_forward
echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
mount --bind "$R" "$R"
cd "$R"
mkdir -p usr etc root home tmp var run proc sys dev .oldroot
ln -sfn usr/bin bin; ln -sfn usr/lib lib; ln -sfn usr/lib64 lib64; ln -sfn usr/sbin sbin
mount --rbind /usr usr
mount -o remount,bind,ro usr
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$D/etc-upper,workdir=$D/etc-work" etc
for x in root home tmp var run; do mount --bind "$D/fs/$x" "$x"; done
ln -sfn ../run var/run
if [ -d "$D/frr" ]; then mount --bind "$D/frr" run/frr; fi
mount -t proc -o nosuid,nodev,noexec proc proc
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs sys
mount -t tmpfs -o mode=755,size=64k,nosuid tmpfs dev
mkdir -p dev/pts dev/shm
(cd dev && touch null zero full random urandom tty)
for n in null zero full random urandom tty; do mount --bind "/dev/$n" "dev/$n"; done
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec devpts dev/pts
ln -s pts/ptmx dev/ptmx
mount -t tmpfs -o mode=1777,size=16m,nosuid,nodev tmpfs dev/shm
ln -s /proc/self/fd dev/fd
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
cd /
hostname "$H"
echo ready
exec </dev/null >/dev/null 2>&1
exec /bin/bash -c 'trap "" TERM HUP INT; while :; do sleep 2147483647 & wait; done'
`;
