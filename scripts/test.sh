#!/bin/bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what the
# tests need, checks formatting, lints, rustdoc, the shell scripts and the dependency
# policy (deny.toml), runs every Rust test (including the FUSE simulator's), the install
# test (the Debian package in a Debian root, lintian, rpmbuild), a real libvirtd against
# our mdevctl and the simulator, then the real-kernel test under QEMU. Exits non-zero on
# any failure. docs/reliability.md says what each check guards against.
#
#   bash scripts/test.sh            everything
#   MDEVKIT_SKIP_INSTALL=1 ...      everything but the install test (not allowed under CI=true)
#   MDEVKIT_SKIP_REALKERNEL=1 ...   everything but the QEMU boot (not allowed under CI=true)
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n=== %s ===\n' "$*"; }

# Every shell script in the repository: *.sh files and files with an sh/bash/dash shebang.
shell_scripts() {
    local f first
    while IFS= read -r -d '' f; do
        if [[ $f == *.sh ]]; then
            printf '%s\n' "$f"
            continue
        fi
        first=
        IFS= read -r first <"$f" || true
        if [[ $first =~ ^\#!.*/(env[[:space:]]+)?(ba|da)?sh([[:space:]]|$) ]]; then
            printf '%s\n' "$f"
        fi
    done < <(find . \( -path ./target -o -path ./.git \) -prune -o -type f -print0 | sort -z)
}

# The cargo-deny release deny.toml is written for; installed into ~/.cargo/bin when missing.
CARGO_DENY_VERSION=0.20.2

step "packages"
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v strace >/dev/null || need+=(strace)
command -v shellcheck >/dev/null || need+=(shellcheck)
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

step "rustdoc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked --document-private-items
# A binary named like its package's library is skipped by `cargo doc`, and `mdevkit`
# would collide with the library of that name: document each binary on its own.
for target in mdevctl:mdevctl mdev-sim:mdev-sim xtask:xtask mdevkit-cli:mdevkit mdevkit-agent:mdevkit-agent; do
    cargo rustdoc -q --locked -p "${target%%:*}" --bin "${target#*:}" -- \
        --document-private-items -D warnings
done

step "shellcheck"
mapfile -t scripts < <(shell_scripts)
if command -v shellcheck >/dev/null || [ "${CI:-}" = true ]; then
    echo "${#scripts[@]} scripts: ${scripts[*]}"
    shellcheck -x "${scripts[@]}"
else
    echo "shellcheck skipped: not installed (apt-get install shellcheck; required under CI=true)"
fi

step "cargo deny (licenses, bans, sources; advisories only offline)"
if ! cargo deny --version >/dev/null 2>&1; then
    echo "cargo-deny is not installed (no 'cargo deny' subcommand): building cargo-deny" \
        "$CARGO_DENY_VERSION from crates.io into ~/.cargo/bin. This takes several minutes" \
        "once; later runs on this machine reuse it."
    cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
fi
cargo deny --version
cargo deny --locked check licenses bans sources
# The RustSec database is a GitHub repository, out of CI's reach: check advisories only
# against a copy already on this machine (`cargo deny fetch` on a connected one).
if compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/" >/dev/null; then
    cargo deny --frozen check advisories
else
    echo "advisories skipped: no local RustSec database in ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs" \
        "(see docs/reliability.md)"
fi

step "cargo test"
cargo test --workspace --locked

step "bench smoke (syscalls per device within budget, no sleeping in listings)"
# Release: a dev build adds a debug-assertion fcntl per opened descriptor to the count
# (the real-kernel test below reuses this build).
cargo build -q --locked --release -p mdevctl
cargo xtask bench --small --reps 3 --binary target/release/mdevctl

# ---- install test (tests/install/run.sh; docs/install.md) ----
if [ "${MDEVKIT_SKIP_INSTALL:-0}" = 1 ] && [ "${CI:-}" != true ]; then
    step "install test skipped (MDEVKIT_SKIP_INSTALL=1)"
else
    step "install test (Debian package over Debian's mdevctl, lintian, rpmbuild)"
    bash tests/install/run.sh
fi
# ---- end of install test ----

step "libvirt: a real libvirtd's nodedev driver against our mdevctl and mdev-sim"
bash tests/libvirt/run.sh

if [ "${MDEVKIT_SKIP_REALKERNEL:-0}" = 1 ] && [ "${CI:-}" != true ]; then
    step "real-kernel test skipped (MDEVKIT_SKIP_REALKERNEL=1)"
else
    step "real-kernel test (QEMU)"
    bash tests/realkernel/run.sh
fi
