#!/bin/sh
# shellcheck shell=dash  # (busybox ash; dash is the nearest dialect ShellCheck knows)
# The `uevents` check group, sourced by checks.sh (whose helpers it uses: ok, fail,
# detail, MDEV_BUS, MDEV_DEVS).
#
# The uevents the kernel broadcasts (netlink group 1) for an mtty device's create and
# remove and for the mtty parent leaving and coming back (rmmod, modprobe), for the host
# to compare with tests/realkernel/recorded/uevents.txt, which mdev-sim's uevents are
# tested against. busybox's `uevent` runs a program per message with the message's
# properties as its environment, in the message's order; `env -i` keeps ours out. Printed
# between markers as "uevent| " lines, one property a line and an empty one after each
# event, only events under /devices/, SEQNUM replaced by <n>.

UEV_UUID=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001

# uev_wait_for LINE : until the listener has written LINE (at most ~10 s; the guest has
# no inotify tool to wait on the file with)
uev_wait_for() {
    local i=0
    while ! grep -qxF "$1" /tmp/rk.uev; do
        i=$((i + 1))
        [ "$i" -le 100 ] || return 1
        sleep 0.1
    done
}

group_uevents() {
    local pid
    : >/tmp/rk.uev
    env -i /bin/busybox uevent /bin/busybox env >>/tmp/rk.uev &
    pid=$!
    # The listener is bound once a synthetic event of an unrelated device reaches it.
    local i=0
    while ! grep -qxF 'DEVPATH=/devices/virtual/mem/null' /tmp/rk.uev; do
        echo change >/sys/devices/virtual/mem/null/uevent
        i=$((i + 1))
        [ "$i" -le 100 ] || break
        sleep 0.1
    done
    echo -n "$UEV_UUID" >"$MDEV_BUS/mtty/mdev_supported_types/mtty-2/create"
    echo 1 >"$MDEV_DEVS/$UEV_UUID/remove"
    rmmod mtty
    modprobe mtty
    uev_wait_for 'MDEV_STATE=registered'
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "=== realkernel-guest: uevents begin ==="
    awk '/^ACTION=/ { if (n) flush(); n = 0 }
         { block[n++] = $0 }
         function flush(  i, keep, dev, line) {
             keep = (block[0] ~ /^ACTION=/); dev = 0
             for (i = 0; i < n; i++) {
                 if (block[i] ~ /^DEVPATH=\/devices\//) dev = 1
                 if (block[i] ~ /^DEVPATH=\/devices\/virtual\/mem\//) keep = 0
             }
             if (!keep || !dev) return
             for (i = 0; i < n; i++) {
                 line = block[i]; sub(/^SEQNUM=[0-9]+$/, "SEQNUM=<n>", line)
                 print "uevent| " line
             }
             print "uevent| "
         }
         END { if (n) flush() }' /tmp/rk.uev
    echo "=== realkernel-guest: uevents end ==="
    if grep -qxF "DEVPATH=/devices/virtual/mtty/mtty/$UEV_UUID" /tmp/rk.uev \
        && grep -qxF 'MDEV_STATE=registered' /tmp/rk.uev; then
        ok "the kernel's uevents for an mdev's create and remove and its parent's unregister and register were recorded"
    else
        fail "the kernel's uevents for an mdev's create and remove and its parent's unregister and register were recorded"
        detail "$(cat /tmp/rk.uev)"
    fi
}
