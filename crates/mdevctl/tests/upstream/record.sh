#!/bin/sh
# Re-records the upstream transcripts in this directory (one JSON file per scenario of
# tests/it/upstream_transcripts.rs) with an upstream mdevctl 1.4 binary. Run by hand, never
# by CI; review the diff before committing.
#
#   crates/mdevctl/tests/upstream/record.sh /opt/upstream-mdevctl/bin/mdevctl
#
# Upstream's binary can be built with: cargo install mdevctl --version 1.4.0 --root DIR
set -eu
upstream=${1:?usage: $0 PATH-TO-UPSTREAM-MDEVCTL-1.4}
upstream=$(realpath "$upstream")
# Upstream checks its directories even for --version: give it an empty root.
scratch=$(mktemp -d)
mkdir -p "$scratch/etc/mdevctl.d" "$scratch/usr/lib/mdevctl/scripts.d/callouts" \
    "$scratch/usr/lib/mdevctl/scripts.d/notifiers"
version=$(MDEVCTL_ENV_ROOT=$scratch "$upstream" --version) || version=
rm -r "$scratch"
case $version in
    "mdevctl 1.4."*) ;;
    *) echo "$0: $upstream reports '$version', not mdevctl 1.4" >&2; exit 1 ;;
esac
cd "$(dirname "$0")/../../../.."
MDEVKIT_RECORD_UPSTREAM=$upstream exec cargo test -p mdevctl --test it upstream_transcripts
