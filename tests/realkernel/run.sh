#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# Real-kernel end-to-end test for mdevkit's mdevctl.
#
# Boots Debian's stock kernel (its real vfio/mdev modules) under QEMU with the
# kernel's sample mdev drivers mtty, mdpy and mbochs, and runs guest/checks.sh
# against the mdevctl binary inside it. See docs/realkernel.md.
#
# Usage: tests/realkernel/run.sh          (from anywhere; needs root for apt-get)
#
# Environment (all optional):
#   MDEVCTL_BIN=path          test this binary instead of `cargo build --release -p mdevctl`
#   MDEVKIT_BIN=path          the mdevkit binary for the doctor group (default: built with mdevctl)
#   MDEVKIT_RK_CACHE=dir      cache root (default /var/cache/mdevkit-realkernel)
#   MDEVKIT_RK_KVER=abi       kernel ABI, e.g. 6.1.0-56-amd64 (default: what linux-image-amd64 depends on)
#   MDEVKIT_RK_TIMEOUT=secs   wall-clock limit for the guest (default 240)
#   MDEVKIT_RK_ACCEL=tcg      qemu accelerator (default tcg; kvm where a usable one exists)
#   MDEVKIT_RK_MEM=MiB        guest memory (default 512)
#   MDEVKIT_RK_NO_APT=1       never apt-get install; fail if a tool is missing
#   MDEVKIT_RK_KEEP_DEBS=1    keep the downloaded .debs in the cache after the build
#   MDEVKIT_RK_LEGACY_DIRS=1  also create /etc/mdevctl.d/scripts.d/{callouts,notifiers} (mdevctl <= 1.2)
#   MDEVKIT_RK_CHECKS=re      run only the guest check groups whose name matches this ERE
#   MDEVKIT_BLESS=1           write the guest's records (sample drivers, uevents) to recorded/
#
# Exit status: 0 only if the guest ran and reported every check as passed.
set -Eeuo pipefail

RK_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RK_REPO=$(cd "$RK_HERE/../.." && pwd)
# shellcheck source=lib/common.sh
. "$RK_HERE/lib/common.sh"
# shellcheck source=lib/kernel.sh
. "$RK_HERE/lib/kernel.sh"
# shellcheck source=lib/guest.sh
. "$RK_HERE/lib/guest.sh"

RK_CACHE=${MDEVKIT_RK_CACHE:-/var/cache/mdevkit-realkernel}
RK_TIMEOUT=${MDEVKIT_RK_TIMEOUT:-240}
RK_ACCEL=${MDEVKIT_RK_ACCEL:-tcg}
RK_MEM=${MDEVKIT_RK_MEM:-512}
RK_GUEST_MODULES="vfio vfio_iommu_type1 mdev mtty mdpy mbochs"
RK_TIMINGS=()

main() {
    local t0 t1
    t0=$(rk_now_ms)
    trap rk_on_exit EXIT
    trap 'rk_on_err "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND" "$?"' ERR
    mkdir -p "$RK_CACHE" || { echo "realkernel: cannot create cache dir $RK_CACHE" >&2; exit 1; }
    # one run at a time per cache (the kernel build and last-run/ are shared)
    exec 9>"$RK_CACHE/lock"
    flock -w 900 9 || die "another run still holds $RK_CACHE/lock after 15 minutes"
    RK_RUN_DIR=$RK_CACHE/last-run
    rm -rf "$RK_RUN_DIR"
    RK_LOG_DIR=$RK_RUN_DIR/logs
    mkdir -p "$RK_LOG_DIR"
    say "cache $RK_CACHE, logs $RK_LOG_DIR"

    run_step "install host tools" install_host_tools
    run_step "resolve kernel version" resolve_kernel
    run_step "fetch kernel packages" fetch_kernel_packages
    run_step "build sample mdev drivers" build_kernel_bits
    run_step "build mdevctl" build_mdevctl
    run_step "make initramfs" make_initramfs
    run_step "boot guest" boot_guest
    run_step "evaluate guest results" evaluate_console
    run_step "compare kernel record" compare_record
    run_step "compare kernel uevents" compare_uevents

    t1=$(rk_now_ms)
    say "timings:"
    printf '    %s\n' "${RK_TIMINGS[@]}"
    say "total $(rk_ms_to_s $((t1 - t0))) s, kernel $RK_KVER"
    # the guest's own summary line, as observed on its console
    printf '%s\n' "$RK_RESULT"
}

main "$@"
