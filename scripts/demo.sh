#!/bin/bash
# The main job against the bundled simulated host: builds mdevctl, mdevkit and mdev-sim
# (release), mounts the simulator's `demo` profile in a temporary root and runs a realistic
# mdevctl session against it, printing each command and its output; then a short
# desired-state session with mdevkit (plan, apply, assert, drift, repair) on a fresh mount.
# Needs FUSE (package fuse3, installed here when missing and running as root).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v fusermount3 >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends fuse3 >/dev/null
    else
        echo "demo: fusermount3 is missing; install the fuse3 package (as root)" >&2
        exit 1
    fi
fi
cargo build --release --locked -q -p mdevctl -p mdev-sim -p mdevkit-cli
bin=$PWD/target/release

# The mdevctl session; its closing line is printed once, after the mdevkit part below.
"$bin/mdev-sim" demo --mdevctl "$bin/mdevctl" "$@" | grep -v '^# demo finished: every step behaved as expected$'

root=$(mktemp -d)
cleanup() {
    "$bin/mdev-sim" umount "$root/sys" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT
"$bin/mdev-sim" mount --profile demo --detach "$root/sys" >/dev/null
mkdir -p "$root/etc/mdevctl.d" "$root/usr/lib/mdevctl/scripts.d/callouts" \
    "$root/usr/lib/mdevctl/scripts.d/notifiers"
echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
cat >"$root/desired.yaml" <<'YAML'
version: 1
default-profile: desktops
profiles:
  desktops:
    - parents: {vendor: "0x10de", device: "0x13f2"}   # every GRID-like GPU
      devices:
        - {type: "GRID M60-0Q", count: 3}
    - parents: matrix
      devices:
        - uuid: 6c8ef8c3-9d8c-4c43-8d4f-5d1e0b6a9f10
          type: vfio_ap-passthrough
          attrs: [{assign_adapter: "5"}, {assign_domain: "0x47"}]
YAML

unexpected=0
# step EXPECTED-STATUS ARGS...: runs mdevkit on the fresh root and checks its exit status.
step() {
    local want=$1 status=0
    shift
    echo "\$ mdevkit $*"
    (cd "$root" && MDEVCTL_ENV_ROOT="$root" "$bin/mdevkit" "$@") 2>&1 || status=$?
    if [ "$status" != "$want" ]; then
        echo "(unexpected: exit status $status, wanted $want)"
        unexpected=$((unexpected + 1))
    fi
    echo
}

echo
echo "# desired state with mdevkit, on a fresh demo host (\$ROOT/desired.yaml):"
sed 's/^/    /' "$root/desired.yaml"
echo
step 2 plan -f desired.yaml
step 0 apply -f desired.yaml
step 0 apply -f desired.yaml
step 0 assert -f desired.yaml
victim=
for d in "$root/sys/class/mdev_bus/0000:83:00.0"/*-*-*-*-*; do
    [ -e "$d/remove" ] && victim=${d##*/} && break
done
echo "# a device disappears behind mdevkit's back: echo 1 > .../$victim/remove"
echo 1 >"$root/sys/bus/mdev/devices/$victim/remove"
step 1 assert -f desired.yaml
step 0 apply -f desired.yaml
step 0 assert -f desired.yaml

if [ "$unexpected" != 0 ]; then
    echo "# demo finished: $unexpected mdevkit step(s) did not behave as expected" >&2
    exit 1
fi
echo "# demo finished: every step behaved as expected"
