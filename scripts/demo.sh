#!/bin/bash
# The main job against the bundled simulated host: builds mdevctl and mdev-sim (release),
# mounts the simulator's `demo` profile in a temporary root and runs a realistic mdevctl
# session against it, printing each command and its output. Needs FUSE (package fuse3,
# installed here when missing and running as root).
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
cargo build --release --locked -q -p mdevctl -p mdev-sim
exec target/release/mdev-sim demo --mdevctl target/release/mdevctl "$@"
