#!/bin/sh
# /init of the kernel matrix's initramfs (busybox): load the boot modules, mount this machine's /
# read-only and the checkout read-write over 9p, give the chroot what a machine has (proc, sys,
# dev, tmpfs /tmp and /run, bpffs, cgroup2 where the host has it), run the matrix's command in a
# chroot and print its exit code on the console for scripts/kernel-matrix.sh.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo TCPLENS_GUEST_BOOTED
for m in $(cat /mods/order); do insmod /mods/$m.ko || echo "TCPLENS_GUEST_WARNING: insmod $m failed"; done

arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
RUN=$(arg tcplens.run)
CHECKOUT=$(arg tcplens.checkout)
MODULES=$(arg tcplens.modules)
fail() { echo "TCPLENS_GUEST_ERROR: $*"; dmesg | tail -n 15; echo TCPLENS_GUEST_EXIT=125; poweroff -f; }

O=trans=virtio,version=9p2000.L,msize=512000,cache=loose
mount -t 9p -o $O,ro host /host || fail "cannot mount the host's / over 9p"
mount -t 9p -o $O checkout "/host$CHECKOUT" || fail "cannot mount the checkout $CHECKOUT over 9p"
# The kernel's own modules, for the module autoloader (/sbin/modprobe here, busybox) and for the
# chroot: a BPF test that makes a veth or a bridge gets its module loaded on demand.
mount --bind "/host$MODULES" /lib/modules || fail "cannot bind the kernel's modules $MODULES"
echo /sbin/modprobe > /proc/sys/kernel/modprobe
mount --bind "/host$MODULES" /host/lib/modules 2>/dev/null
R=/host
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm 2>/dev/null
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
mount -t bpf bpf $R/sys/fs/bpf || fail "cannot mount bpffs"
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
# The host's layout is hybrid (cgroup2 at /sys/fs/cgroup/unified); the tests expect it there.
mount -t tmpfs cgroup $R/sys/fs/cgroup
mkdir -p $R/sys/fs/cgroup/unified
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup/unified || fail "cannot mount cgroup2"
ip_lo() { chroot $R /sbin/ip link set lo up 2>/dev/null || chroot $R /usr/sbin/ip link set lo up; }
ip_lo
echo "TCPLENS_GUEST_RUNNING $(cat /proc/sys/kernel/osrelease)"
# A child does the chroot: pid 1 shares its fs root with the kernel's helpers (CLONE_FS), and the
# module autoloader must keep finding /sbin/modprobe in this initramfs.
chroot $R /bin/sh "$RUN"
echo "TCPLENS_GUEST_EXIT=$?"
sync
poweroff -f
