#!/bin/sh
# shellcheck shell=dash  # (busybox ash; dash is the nearest dialect ShellCheck knows)
# /init of the test initramfs (busybox sh, PID 1).
# Mounts the kernel filesystems, loads the modules listed in /etc/modules.load
# (dependency order, worked out on the host), runs /checks.sh, prints its exit
# status in a marker line the host looks for, and resets the machine; qemu runs
# with -no-reboot, so the reset ends it. Should init die instead, the kernel
# panics, and panic=-1 also ends qemu (the host then misses the markers).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# (leading newline: the firmware leaves the console mid-line)
echo
echo "=== realkernel-guest: init started, kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s ==="

loaded=1
while read -r rel; do
    [ -n "$rel" ] || continue
    if ! insmod "/lib/modules/$(uname -r)/$rel"; then
        echo "=== realkernel-guest: insmod $rel failed ==="
        loaded=0
    fi
done </etc/modules.load
# keep kernel messages off the console while the checks print
echo 1 >/proc/sys/kernel/printk

rc=99
if [ "$loaded" = 1 ]; then
    echo "=== realkernel-guest: modules loaded: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')==="
    rc=0
    /bin/sh /checks.sh || rc=$?
    echo "=== realkernel-guest: checks exited $rc ==="
fi
echo "=== realkernel-guest: done, uptime $(cut -d' ' -f1 /proc/uptime)s ==="
sync
reboot -f
