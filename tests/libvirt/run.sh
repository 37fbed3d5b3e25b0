#!/bin/bash
# A real libvirtd (Debian's, nodedev driver only) against mdevkit's mdevctl and mdev-sim:
# virsh nodedev-define/-autostart/-start/-destroy/-undefine/-create and changes made with
# mdevctl behind libvirt's back, each compared with what mdevctl lists. docs/events.md,
# "libvirt", says how the pieces fit.
#
#   bash tests/libvirt/run.sh       (root; installs libvirt-daemon and libvirt-clients)
#   MDEVCTL=/path/to/mdevctl bash tests/libvirt/run.sh
#                                   the same checks against another mdevctl (upstream's, to
#                                   show that the harness, not only our binary, is right)
#
# Everything runs in a private mount and network namespace: the simulator is mounted over
# /sys there (libudev reads /sys and nothing else), /etc is a scratch copy with an empty
# /etc/mdevctl.d, /run and /var are empty tmpfs, and the simulator's udev-format uevents
# reach only this libvirtd. Ends with "libvirt: N passed, M failed"; exit 0 only if M is 0.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}/debug

if [ "${1:-}" != --inside ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "libvirt: needs root (namespaces, mounts, libvirtd)" >&2
        exit 1
    fi
    if ! command -v libvirtd >/dev/null || ! command -v virsh >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends libvirt-daemon libvirt-clients >/dev/null
    fi
    (cd "$REPO" && cargo build -q --locked -p mdevctl -p mdev-sim)
    exec unshare --mount --net --propagation private "$0" --inside
fi

# ---------------------------------------------------------------- inside the namespaces
W=$(mktemp -d /tmp/mdevkit-libvirt.XXXXXX)
LIBVIRTD_PID=""
cleanup() {
    [ -z "$LIBVIRTD_PID" ] || kill "$LIBVIRTD_PID" 2>/dev/null || true
    "$TARGET/mdev-sim" umount /sys 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

# Scratch /etc (a copy, so name services keep working) with an empty mdevctl store: it
# must exist before libvirtd starts, or libvirt never watches it.
mkdir -p "$W/etc" "$W/bin" "$W/sock" "$W/drivers"
cp -a /etc/. "$W/etc/"
rm -rf "$W/etc/mdevctl.d"
mkdir -p "$W/etc/mdevctl.d"
mount --bind "$W/etc" /etc
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var
# The script directories an installed mdevctl has (upstream's refuses to run without
# them), empty, on a tmpfs: nothing is left on the host but the mount point.
mkdir -p /usr/lib/mdevctl
mount -t tmpfs tmpfs /usr/lib/mdevctl
mkdir -p /usr/lib/mdevctl/scripts.d/callouts /usr/lib/mdevctl/scripts.d/notifiers
# libudev subscribes to udev's group only where udevd seems to run.
mkdir -p /run/udev
: >/run/udev/control

# mdev-sim over /sys, broadcasting the udev-format copy of each uevent (libvirt marks an
# mdev active only on udev's `add`).
"$TARGET/mdev-sim" mount --udev-events --profile mtty --detach /sys >/dev/null

# Our mdevctl first on libvirtd's PATH (libvirt runs `mdevctl` by name).
ln -s "${MDEVCTL:-$TARGET/mdevctl}" "$W/bin/mdevctl"
export PATH="$W/bin:$PATH"

# Only the nodedev driver: no qemu, network or storage drivers touching the host.
cp /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_nodedev.so "$W/drivers/"
cat >"$W/libvirtd.conf" <<EOF
unix_sock_dir = "$W/sock"
auth_unix_ro = "none"
auth_unix_rw = "none"
EOF
# libudev refuses a /sys that is not sysfs unless told otherwise (the simulator is FUSE).
SYSTEMD_DEVICE_VERIFY_SYSFS=0 LIBVIRT_DRIVER_DIR="$W/drivers" \
    libvirtd -f "$W/libvirtd.conf" >"$W/libvirtd.log" 2>&1 &
LIBVIRTD_PID=$!

V=(virsh -q -c "nodedev:///system?socket=$W/sock/libvirt-sock")
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# eventually WHAT CMD... : CMD succeeds within 20 s. libvirt applies uevents and inotify
# events on its own threads and offers virsh no way to wait for that, so this polls
# (a test script only; the bound catches a hang, not slowness).
eventually() {
    local what=$1 i
    shift
    for ((i = 0; i < 100; i++)); do
        if "$@" >/dev/null 2>&1; then
            ok "$what"
            return 0
        fi
        sleep 0.2
    done
    fail "$what"
    "$@" 2>&1 | sed 's/^/  | /' || true
}

check() {
    local what=$1
    shift
    if "$@" >"$W/out" 2>&1; then ok "$what"; else
        fail "$what"
        sed 's/^/  | /' "$W/out"
    fi
}

# The libvirt name of an mdev, and the checks on both sides.
node() { echo "mdev_${1//-/_}_mtty"; }
lv_has() { "${V[@]}" nodedev-list --cap mdev "$@" | grep -qx "$NODE"; }
lv_lacks() { ! "${V[@]}" nodedev-list --cap mdev "$@" | grep -qx "$NODE"; }
mc_lists() { [ "$(mdevctl list "$@")" = "$EXPECT" ]; }

xml() { # UUID TYPE
    cat >"$W/dev.xml" <<EOF
<device>
  <parent>mtty_mtty</parent>
  <capability type='mdev'>
    <type id='$2'/>
    <uuid>$1</uuid>
  </capability>
</device>
EOF
}

U1=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
U2=1b801999-4448-490b-bcbd-de74b7d38a8e
U3=b4548fe2-f045-4264-8c42-fe193d7b7318

eventually "libvirtd answers" "${V[@]}" nodedev-list
eventually "libvirt sees mtty as a parent with mdev types" \
    bash -c "${V[*]@Q} nodedev-list --cap mdev_types | grep -qx mtty_mtty"
EXPECT=""
check "nothing defined or active at the start (mdevctl)" mc_lists -d

NODE=$(node $U1)
xml $U1 mtty-1
check "virsh nodedev-define" "${V[@]}" nodedev-define "$W/dev.xml"
EXPECT="$U1 mtty mtty-1 manual"
check "mdevctl lists the device libvirt defined" mc_lists -d
check "libvirt lists it as defined and inactive" lv_has --inactive

check "virsh nodedev-autostart" "${V[@]}" nodedev-autostart "$NODE"
EXPECT="$U1 mtty mtty-1 auto"
check "mdevctl says auto" mc_lists -d

check "virsh nodedev-start" "${V[@]}" nodedev-start "$NODE"
EXPECT="$U1 mtty mtty-1 auto (defined)"
check "mdevctl lists it running" mc_lists
eventually "libvirt lists it active (from the simulator's udev add event)" lv_has

check "virsh nodedev-destroy" "${V[@]}" nodedev-destroy "$NODE"
EXPECT=""
check "mdevctl lists nothing running" mc_lists
eventually "libvirt lists it inactive again" lv_has --inactive

check "virsh nodedev-undefine" "${V[@]}" nodedev-undefine "$NODE"
check "mdevctl lists nothing defined" mc_lists -d
eventually "libvirt forgot it" lv_lacks --all

NODE=$(node $U2)
xml $U2 mtty-2
check "virsh nodedev-create (transient)" "${V[@]}" nodedev-create "$W/dev.xml"
EXPECT="$U2 mtty mtty-2 manual"
check "mdevctl lists the transient device running" mc_lists
EXPECT=""
check "and not defined" mc_lists -d
eventually "libvirt lists it active" lv_has
check "virsh nodedev-destroy of the transient device" "${V[@]}" nodedev-destroy "$NODE"
check "mdevctl lists nothing running" mc_lists
eventually "libvirt forgot it" lv_lacks --all

# Behind libvirt's back: it learns from inotify and from the uevents.
NODE=$(node $U3)
check "mdevctl define" mdevctl define -u $U3 -p mtty -t mtty-1
eventually "libvirt lists the device mdevctl defined (inotify)" lv_has --inactive
check "mdevctl start" mdevctl start -u $U3
eventually "libvirt lists it active (uevent)" lv_has
check "mdevctl stop" mdevctl stop -u $U3
eventually "libvirt lists it inactive" lv_has --inactive
check "mdevctl undefine" mdevctl undefine -u $U3
eventually "libvirt forgot it" lv_lacks --all

if [ "$FAILED" != 0 ]; then
    echo "libvirtd's log:"
    sed 's/^/  | /' "$W/libvirtd.log"
fi
echo "libvirt: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
