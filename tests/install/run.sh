#!/bin/bash
# Install test: mdevkit's Debian package installs, upgrades and removes like the mdevctl
# package it replaces. In a fresh Debian root (mmdebstrap, cached), Debian's mdevctl and a
# package depending on it are installed, definitions created with it (plus malformed and
# non-canonical files), then our .deb is installed over it, upgraded, removed, purged, and
# Debian's mdevctl installed again. Also: lintian on the packages, the RPMs from
# packaging/mdevkit.spec, and the error when a packaging tool is missing. See docs/install.md.
#
# Usage: bash tests/install/run.sh   (as root; Debian; needs Debian's mirror)
#
# Environment (all optional):
#   MDEVKIT_INSTALL_CACHE=dir   cache of the bootstrapped root (default /var/cache/mdevkit-install)
#   MDEVKIT_INSTALL_MIRROR=url  Debian mirror (default http://deb.debian.org/debian)
#   MDEVKIT_INSTALL_SUITE=name  Debian suite of the root (default bookworm)
#   MDEVKIT_INSTALL_KEEP=1      keep the scratch directory (root, packages, logs)
#   MDEVKIT_UPSTREAM_MDEVCTL=path  upstream mdevctl 1.4 (default /opt/upstream-mdevctl/bin/mdevctl,
#                               else built once into the cache with cargo install mdevctl --version 1.4.0)
#
# Ends with `install: N passed, M failed`; exits non-zero on any failure.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${MDEVKIT_INSTALL_CACHE:-/var/cache/mdevkit-install}
MIRROR=${MDEVKIT_INSTALL_MIRROR:-http://deb.debian.org/debian}
SUITE=${MDEVKIT_INSTALL_SUITE:-bookworm}

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     /'; }
# check NAME CMD...: one check; its output is shown only when it fails.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}
summarized=0
summary() { summarized=1; echo "install: $passed passed, $failed failed"; }
die() { echo "install: $*" >&2; failed=$((failed + 1)); summary; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (chroot, mounts, apt-get)"

WORK=$(mktemp -d /tmp/mdevkit-install.XXXXXX)
ROOT=$WORK/root
cleanup() {
    local rc=$?
    # A step outside a check failed (set -e): count it, so the summary never says 0 failed.
    if [ "$summarized" = 0 ]; then
        echo "install: aborted by a failing command (exit $rc)" >&2
        failed=$((failed + 1))
        summary
        [ "$rc" != 0 ] || rc=1
    fi
    umount -R "$ROOT/proc" 2>/dev/null || true
    if [ "${MDEVKIT_INSTALL_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT

# ---- host tools -------------------------------------------------------------------------
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v lintian >/dev/null || need+=(lintian)
command -v rpmbuild >/dev/null || need+=(rpm)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v strip >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
        die "cannot install ${need[*]}"
fi

# ---- build the packages -----------------------------------------------------------------
cd "$REPO"
# The dev-profile binaries the test suite already built; `cargo xtask deb --release` is
# what a real package uses.
cargo build -q --locked -p mdevctl -p mdev-sim -p xtask || die "cargo build failed"
BUILT=$REPO/target/debug
DEBS=$WORK/debs
cargo xtask deb --built "$BUILT" --out "$DEBS" >/dev/null || die "cargo xtask deb failed"
version=$(sed -n '1s/^mdevkit (\([^)]*\)).*/\1/p' packaging/debian/changelog)
arch=$(dpkg --print-architecture)
DEB=$DEBS/mdevkit_${version}_${arch}.deb
SIMDEB=$DEBS/mdev-sim_${version}_${arch}.deb
MANIFEST=$DEBS/mdevkit_${version}_${arch}.manifest
{ [ -f "$DEB" ] && [ -f "$SIMDEB" ]; } || die "the .debs are missing from $DEBS"

# A package built without a needed tool says which one is missing.
no_tool_message() {
    local out
    out=$(PATH=/nonexistent "$BUILT/xtask" deb --built "$BUILT" --out "$WORK/no-tools" 2>&1) && return 1
    grep -F 'dpkg-deb (Debian package dpkg)' <<<"$out" && grep -F 'strip (Debian package binutils)' <<<"$out"
}
check "deb build without tools names the missing ones" no_tool_message

lint() {
    local out
    out=$(lintian --fail-on error "$DEB" "$SIMDEB" 2>&1) || { echo "$out"; return 1; }
    # Every warning is explained in docs/install.md; a new one must be too.
    if grep -v -e '^W: mdev-sim: no-manual-page \[usr/bin/mdev-sim\]$' \
        -e '^W: mdevkit: no-manual-page \[usr/sbin/mdevkit\]$' <<<"$out" | grep '^[EW]:'; then return 1; fi
}
check "lintian: no errors, only the documented warnings" lint

# ---- the RPMs ---------------------------------------------------------------------------
rpms() {
    cargo xtask rpm --built "$BUILT" --out "$WORK/rpm" >/dev/null 2>"$WORK/rpmbuild.log" || { cat "$WORK/rpmbuild.log"; return 1; }
    local rpm sim
    rpm=$(find "$WORK/rpm" -name "mdevkit-${version}-*.rpm" | head -1)
    sim=$(find "$WORK/rpm" -name "mdev-sim-${version}-*.rpm" | head -1)
    if [ -z "$rpm" ] || [ -z "$sim" ]; then echo "no rpm files"; return 1; fi
    rpm -qp --provides "$rpm" | grep -x 'mdevctl = 1.4.0' || { echo "no Provides: mdevctl = 1.4.0"; return 1; }
    rpm -qp --obsoletes "$rpm" | grep -x 'mdevctl < 1.5' || { echo "no Obsoletes: mdevctl"; return 1; }
    # The same files as the .deb's install list (rpm may compress man pages its own way;
    # the copyright file is in the licenses directory instead of the docs'; lintian's
    # overrides are the Debian package's own).
    rpm -qlp "$rpm" | grep -x "/usr/share/licenses/mdevkit[-0-9.]*/copyright" || { echo "no copyright file"; return 1; }
    diff <(rpm -qlp "$rpm" | grep -v '^/usr/share/licenses/' | sed 's/\.gz$//' | sort) \
        <(grep -v -e ' /usr/share/doc/' -e ' /usr/share/lintian/' "$MANIFEST" | cut -d' ' -f2- | sed 's/\.gz$//' | sort) || return 1
    rpm -qlp "$sim" | grep -x /usr/bin/mdev-sim
}
check "rpmbuild: mdevkit and mdev-sim RPMs, Provides/Obsoletes mdevctl, same files" rpms

# ---- a fresh Debian root, cached ---------------------------------------------------------
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -w 600 9 || die "another run holds $CACHE/lock"
# Debian's mdevctl is 1.2, whose listings differ from 1.4's in blank lines; mdevkit's
# contract is 1.4's bytes, so its listings are compared with upstream 1.4 run on the root.
UPSTREAM=${MDEVKIT_UPSTREAM_MDEVCTL:-/opt/upstream-mdevctl/bin/mdevctl}
if [ ! -x "$UPSTREAM" ]; then
    UPSTREAM=$CACHE/upstream/bin/mdevctl
    if [ ! -x "$UPSTREAM" ]; then
        echo "building upstream mdevctl 1.4.0 into $CACHE/upstream (once)"
        cargo install -q --locked mdevctl --version 1.4.0 --root "$CACHE/upstream" ||
            die "cargo install mdevctl --version 1.4.0 failed"
    fi
fi
TARBALL=$CACHE/$SUITE-root.tar
if [ ! -s "$TARBALL" ]; then
    echo "bootstrapping $SUITE into $TARBALL (once)"
    mmdebstrap --quiet --format=tar --variant=apt --include=man-db "$SUITE" "$TARBALL.tmp" "$MIRROR" ||
        die "mmdebstrap failed"
    mv "$TARBALL.tmp" "$TARBALL"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$TARBALL"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No daemons start in the root.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
cp "$DEB" "$SIMDEB" "$WORK/" && mkdir -p "$ROOT/pkgs" && cp "$DEB" "$SIMDEB" "$ROOT/pkgs/"

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
apt_root() { in_root apt-get -y -q -o Dpkg::Use-Pty=0 "$@"; }

# A stand-in for libvirt: a package that depends on mdevctl.
mkdir -p "$WORK/consumer/DEBIAN"
cat >"$WORK/consumer/DEBIAN/control" <<EOF
Package: mdevctl-consumer
Version: 1.0
Architecture: all
Maintainer: mdevkit tests <tests@example.invalid>
Depends: mdevctl (>= 1.2)
Description: test package depending on mdevctl
 Stands for libvirt in mdevkit's install test.
EOF
dpkg-deb --root-owner-group -b "$WORK/consumer" "$ROOT/pkgs/mdevctl-consumer.deb" >/dev/null

# An upgrade: the same package with a higher version.
dpkg-deb -R "$DEB" "$WORK/upgrade"
sed -i "s/^Version: .*/Version: ${version}+test1/" "$WORK/upgrade/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz -b "$WORK/upgrade" "$ROOT/pkgs/mdevkit-upgrade.deb" >/dev/null

apt_root update >"$WORK/apt.log" 2>&1 || die "apt-get update in the root failed (see $WORK/apt.log)"
apt_root install --no-install-recommends mdevctl /pkgs/mdevctl-consumer.deb >>"$WORK/apt.log" 2>&1 ||
    die "installing Debian's mdevctl failed: $(tail -5 "$WORK/apt.log")"

# A running udev is stood in for by /run/udev and a udevadm that logs its arguments.
in_root dpkg-divert --quiet --rename --add /usr/bin/udevadm
mkdir -p "$ROOT/run/udev"
printf '#!/bin/sh\necho "$*" >>/run/udevadm.log\n' >"$ROOT/usr/bin/udevadm"
chmod 755 "$ROOT/usr/bin/udevadm"

# ---- definitions made by Debian's mdevctl -------------------------------------------------
P1=0000:00:02.0
P2=0.0.0033
in_root mdevctl define -u 2b1a3a8c-6c5e-4c1f-9a44-6b3f6c1d0e01 -p $P1 -t i915-GVTg_V5_4 --auto || die "Debian's mdevctl define failed"
in_root mdevctl define -u 7f3e9a44-1b2c-4d5e-8f90-a1b2c3d4e5f6 -p $P1 -t i915-GVTg_V5_8 || die "Debian's mdevctl define failed"
in_root mdevctl modify -u 7f3e9a44-1b2c-4d5e-8f90-a1b2c3d4e5f6 --addattr=assign_adapter --value=5 || die "Debian's mdevctl modify failed"
in_root mdevctl define -u 0d5b0c4e-3f5a-4e0c-9f56-1f2e3d4c5b6a -p $P2 -t vfio_ccw-io --auto || die "Debian's mdevctl define failed"
# Listings: all definitions, and per parent (the malformed files added below go under a
# parent of their own, which the per-parent listings never read).
listings() { in_root mdevctl list -d; in_root mdevctl list -d --dumpjson; }
per_parent() { in_root mdevctl list -d -p $P1; in_root mdevctl list -d -p $P2; }
# Debian's 1.2 has blank lines after text listings and no newline after JSON.
same_defs() { diff <(grep -v '^$' "$1") <(grep -v '^$' "$2"); }
listings >"$WORK/list.debian"
per_parent >"$WORK/parents.debian"
upstream() { env MDEVCTL_ENV_ROOT="$ROOT" "$UPSTREAM" "$@"; }
upstream_listings() { upstream list -d; upstream list -d --dumpjson; }
upstream_per_parent() { upstream list -d -p $P1; upstream list -d -p $P2; }
[ "$(grep -c . "$WORK/parents.debian")" -ge 3 ] || die "Debian's mdevctl defined fewer than 3 devices"

# Malformed and non-canonical files, under a parent of their own: installing must change
# none of them.
BAD=$ROOT/etc/mdevctl.d/0000:00:03.0
mkdir -p "$BAD"
echo 'not json' >"$BAD/11111111-2222-3333-4444-555555555555"
echo '{"mdev_type": 5, "start": "auto"}' >"$BAD/22222222-3333-4444-5555-666666666666"
printf '{"mdev_type":"x","start":"manual","attrs":[]}' >"$BAD/33333333-4444-5555-6666-77777777777A"
printf '{"mdev_type":"x","start":"manual"}' >"$BAD/{44444444-5555-6666-7777-888888888888}"
echo 'stray' >"$ROOT/etc/mdevctl.d/README"
# Everything the administrator has under /etc/mdevctl.d: names, types, modes, file times and
# contents. Left out: the empty deprecated scripts.d/{callouts,notifiers} that Debian's
# mdevctl package ships (and dpkg removes with it), and directory times, which that removal
# changes.
snapshot() {
    (cd "$ROOT/etc/mdevctl.d" &&
        find . -path ./scripts.d -prune -o -type d -printf '%p d %m\n' -o -printf '%p %y %m %T@\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
snapshot >"$WORK/defs.before"
unchanged() { diff "$WORK/defs.before" <(snapshot); }

# ---- install over Debian's mdevctl --------------------------------------------------------
install_ours() { apt_root install "/pkgs/mdevkit_${version}_${arch}.deb" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; return 1; }; }
check "apt install ./mdevkit.deb replaces Debian's mdevctl" install_ours
check "Debian's mdevctl is gone, mdevkit installed" \
    bash -c "[ \"\$(chroot '$ROOT' dpkg-query -W -f='\${Status}' mdevkit)\" = 'install ok installed' ] &&
             ! chroot '$ROOT' dpkg-query -W -f='\${Status}' mdevctl 2>/dev/null | grep -q 'ok installed'"
check "the package depending on mdevctl stays installed" \
    bash -c "[ \"\$(chroot '$ROOT' dpkg-query -W -f='\${Status}' mdevctl-consumer)\" = 'install ok installed' ]"
check "apt sees no broken dependency" in_root apt-get check -q
check "/etc/mdevctl.d unchanged, malformed and non-canonical files included" unchanged
check "mdevctl list -d -p: Debian's mdevctl's definitions" same_defs "$WORK/parents.debian" <(per_parent)
check "mdevctl list -d -p: byte for byte as upstream 1.4 on the same files" \
    diff <(upstream_per_parent) <(per_parent)
all_same() {
    # Without the malformed files, which mdevkit skips with warnings and Debian's lists or
    # fails on.
    mv "$BAD" "$WORK/bad"
    local rc=0
    same_defs "$WORK/list.debian" <(listings) || rc=1
    diff <(upstream_listings) <(listings) || rc=1
    mv "$WORK/bad" "$BAD"
    return $rc
}
check "mdevctl list -d and list -d --dumpjson likewise" all_same

check "mdevctl is /usr/sbin/mdevctl and mdevkit's" \
    bash -c "[ \"\$(chroot '$ROOT' /usr/bin/env PATH=/usr/sbin:/usr/bin sh -c 'command -v mdevctl')\" = /usr/sbin/mdevctl ] &&
             chroot '$ROOT' /usr/sbin/mdevctl --version | grep -x 'mdevctl 1.4.0 (mdevkit $version)'"
check "lsmdev -V and lsmdev work" \
    bash -c "chroot '$ROOT' lsmdev -V | grep -x 'lsmdev 1.4.0 (mdevkit $version)' && chroot '$ROOT' lsmdev -d -p $P1 | grep -q 2b1a3a8c"
check "man mdevctl and man lsmdev" \
    bash -c "chroot '$ROOT' env MANPAGER=cat MANWIDTH=80 man mdevctl | grep -q start-parent-mdevs &&
             chroot '$ROOT' env MANPAGER=cat man 8 lsmdev | grep -q dumpjson"
check "bash, zsh and fish completions" \
    bash -c "cd '$ROOT' && test -s usr/share/bash-completion/completions/mdevctl && test -s usr/share/bash-completion/completions/lsmdev &&
             test -s usr/share/zsh/site-functions/_mdevctl && test -s usr/share/fish/vendor_completions.d/mdevctl.fish"
check "the udev rule survives mdevctl's removal and calls /usr/sbin/mdevctl" \
    grep -q "RUN+=\"/bin/sh -c '(/usr/sbin/mdevctl start-parent-mdevs %k" "$ROOT/usr/lib/udev/rules.d/60-mdevctl.rules"
check "no diversion of mdevkit's is left behind" bash -c "! chroot '$ROOT' dpkg-divert --list | grep mdevkit"
check "the udev rules were reloaded" grep -qx 'control --reload-rules' "$ROOT/run/udevadm.log"
check "callout and notifier directories" test -d "$ROOT/usr/lib/mdevctl/scripts.d/callouts" -a -d "$ROOT/usr/lib/mdevctl/scripts.d/notifiers"
dpkg_list() {
    # Files and links of `dpkg -L` against the install list; its directories must exist.
    local f
    diff <(grep -v '^d ' "$MANIFEST" | cut -d' ' -f2- | sort) \
        <(in_root dpkg -L mdevkit | while read -r f; do [ -d "$ROOT$f" ] && [ ! -L "$ROOT$f" ] || echo "$f"; done | sort) ||
        return 1
    grep '^d ' "$MANIFEST" | cut -d' ' -f2- | while read -r f; do in_root dpkg -L mdevkit | grep -qx "$f" || { echo "dpkg -L lacks $f"; return 1; }; done
}
check "dpkg -L mdevkit is the install list" dpkg_list

# ---- upgrade, reinstall, removal, purge ---------------------------------------------------
check "upgrade to a newer mdevkit" bash -c "chroot '$ROOT' env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /pkgs/mdevkit-upgrade.deb >'$WORK/upgrade.log' 2>&1 || { cat '$WORK/upgrade.log'; exit 1; }"
check "/etc/mdevctl.d unchanged after the upgrade" unchanged
check "mdev-sim installs on its own package" bash -c "chroot '$ROOT' env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /pkgs/mdev-sim_${version}_${arch}.deb >'$WORK/sim.log' 2>&1 && chroot '$ROOT' mdev-sim --help >/dev/null"
check "apt-get remove mdevkit" bash -c "chroot '$ROOT' env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q mdevkit >'$WORK/remove.log' 2>&1 && [ ! -e '$ROOT/usr/sbin/mdevctl' ]"
check "/etc/mdevctl.d unchanged after removal" unchanged
check "apt-get purge mdevkit" bash -c "chroot '$ROOT' env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q mdevkit >'$WORK/purge.log' 2>&1 && ! chroot '$ROOT' dpkg-query -W -f='\${Status}' mdevkit 2>/dev/null | grep -q installed"
check "/etc/mdevctl.d unchanged after purge" unchanged

# ---- and back to Debian's mdevctl ----------------------------------------------------------
check "mdevkit again, then Debian's mdevctl replaces it" bash -c "
    chroot '$ROOT' env DEBIAN_FRONTEND=noninteractive apt-get install -y -q '/pkgs/mdevkit_${version}_${arch}.deb' /pkgs/mdevctl-consumer.deb >'$WORK/back.log' 2>&1 &&
    chroot '$ROOT' env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mdevctl >>'$WORK/back.log' 2>&1 || { cat '$WORK/back.log'; exit 1; }
    [ \"\$(chroot '$ROOT' dpkg-query -W -f='\${Status}' mdevctl-consumer)\" = 'install ok installed' ]"
check "Debian's mdevctl has its udev rule and lists the same definitions" bash -c "
    test -s '$ROOT/lib/udev/rules.d/60-mdevctl.rules' &&
    diff '$WORK/parents.debian' <(chroot '$ROOT' mdevctl list -d -p $P1; chroot '$ROOT' mdevctl list -d -p $P2)"

# dpkg alone (no apt) unpacks ours first and then removes the conflicting mdevctl, whose
# /lib/udev/rules.d/60-mdevctl.rules is our /usr/lib/... file under a merged /usr.
dpkg_over() {
    in_root dpkg -i "/pkgs/mdevkit_${version}_${arch}.deb" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; return 1; }
    grep -q 'Removing mdevctl' "$WORK/dpkg-i.log" || { echo "dpkg did not remove mdevctl itself:"; cat "$WORK/dpkg-i.log"; return 1; }
    grep -q "/usr/sbin/mdevctl start-parent-mdevs" "$ROOT/usr/lib/udev/rules.d/60-mdevctl.rules" &&
        ! in_root dpkg-divert --list | grep mdevkit
}
check "dpkg -i over Debian's mdevctl keeps the udev rule (merged /usr)" dpkg_over
check "/etc/mdevctl.d unchanged at the end" unchanged

summary
[ "$failed" = 0 ]
