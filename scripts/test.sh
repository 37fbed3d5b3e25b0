#!/bin/bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what the
# tests need, checks formatting and lints, runs every Rust test (including the FUSE
# simulator's), a real libvirtd against our mdevctl and the simulator, then the
# real-kernel test under QEMU. Exits non-zero on any failure.
#
#   bash scripts/test.sh            everything
#   MDEVKIT_SKIP_REALKERNEL=1 ...   everything but the QEMU boot (not allowed under CI=true)
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n=== %s ===\n' "$*"; }

step "packages"
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "missing packages: ${need[*]} (run as root to install them)" >&2
    fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "bench smoke (syscalls per device within budget)"
cargo build -q --locked -p mdevctl
cargo xtask bench --small --reps 3 --binary target/debug/mdevctl

step "libvirt: a real libvirtd's nodedev driver against our mdevctl and mdev-sim"
bash tests/libvirt/run.sh

if [ "${MDEVKIT_SKIP_REALKERNEL:-0}" = 1 ] && [ "${CI:-}" != true ]; then
    step "real-kernel test skipped (MDEVKIT_SKIP_REALKERNEL=1)"
else
    step "real-kernel test (QEMU)"
    bash tests/realkernel/run.sh
fi
