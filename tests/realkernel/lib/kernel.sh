# shellcheck shell=bash
# Host preparation: tools from apt, a Debian kernel taken apart (never installed
# on the host), and the kernel's sample mdev drivers built out of tree for it.

# Generic tools the test needs on the host, as "command:package" pairs.
RK_HOST_TOOLS=(
    qemu-system-x86_64:qemu-system-x86
    gcc-12:gcc-12
    make:make
    depmod:kmod
    modprobe:kmod
    xz:xz-utils
    cpio:cpio
    gzip:gzip
    readelf:binutils
    timeout:coreutils
    dpkg-deb:dpkg
)

rk_apt_updated=0
apt_update_once() {
    [ "$rk_apt_updated" = 1 ] && return 0
    say "    apt-get update"
    quiet apt-get update || die "apt-get update failed (no access to the Debian archive?)"
    rk_apt_updated=1
}

apt_install() {
    say "    apt-get install $*"
    DEBIAN_FRONTEND=noninteractive quiet apt-get install -y --no-install-recommends "$@" \
        || die "apt-get install failed for: $*"
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Step: make sure the generic host tools are there (installs only what is missing).
install_host_tools() {
    local pair cmd pkg missing=()
    for pair in "${RK_HOST_TOOLS[@]}"; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    # busybox must be the static build: it runs alone in the guest.
    pkg_installed busybox-static || missing+=(busybox-static)
    if [ "${#missing[@]}" -eq 0 ]; then
        say "    all host tools present"
        return 0
    fi
    [ "${MDEVKIT_RK_NO_APT:-0}" = 1 ] && die "missing host packages (MDEVKIT_RK_NO_APT=1): ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "missing host packages and not root, cannot apt-get install: ${missing[*]}"
    apt_update_once
    # shellcheck disable=SC2046
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
    for pair in "${RK_HOST_TOOLS[@]}"; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || die "package $pkg installed but command $cmd still missing"
    done
    [ -x /bin/busybox ] || die "busybox-static installed but /bin/busybox is missing"
}

# Step: decide which kernel to use. Default: the ABI that the linux-image-amd64
# meta-package currently points at, so no version number is hard-coded.
resolve_kernel() {
    if [ -n "${MDEVKIT_RK_KVER:-}" ]; then
        RK_KVER=$MDEVKIT_RK_KVER
        say "    kernel from MDEVKIT_RK_KVER: $RK_KVER"
    else
        RK_KVER=$(kver_from_meta)
        if [ -z "$RK_KVER" ]; then
            apt_update_once
            RK_KVER=$(kver_from_meta)
        fi
        [ -n "$RK_KVER" ] || die "cannot tell which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64 gave nothing)"
        say "    linux-image-amd64 depends on linux-image-$RK_KVER"
    fi
    RK_IMG_PKG=linux-image-$RK_KVER
    RK_IMG_VERSION=$(pkg_candidate "$RK_IMG_PKG")
    if [ -z "$RK_IMG_VERSION" ]; then
        apt_update_once
        RK_IMG_VERSION=$(pkg_candidate "$RK_IMG_PKG")
    fi
    [ -n "$RK_IMG_VERSION" ] || die "package $RK_IMG_PKG is not in the apt archive"
    # The source package is named after upstream major.minor: 6.1.192-2 -> linux-source-6.1
    RK_SRC_SERIES=$(printf '%s' "$RK_IMG_VERSION" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
    RK_KDIR_CACHE=$RK_CACHE/$RK_KVER
    mkdir -p "$RK_KDIR_CACHE"
    say "    kernel $RK_KVER, package version $RK_IMG_VERSION, cache $RK_KDIR_CACHE"
}

kver_from_meta() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -nE 's/^ *Depends: linux-image-([0-9][^ ]*-amd64)$/\1/p' | head -n1 || true
}

pkg_candidate() {
    apt-cache policy "$1" 2>/dev/null | sed -nE 's/^ *Candidate: (.*)$/\1/p' | { grep -v '(none)' || true; } | head -n1
}

# The stamp describes everything the cached artefacts were made from; a
# different kernel package version or recipe means a rebuild.
RK_RECIPE=3
kernel_stamp() {
    printf 'kver=%s\nimage=%s\nrecipe=%s\n' "$RK_KVER" "$RK_IMG_VERSION" "$RK_RECIPE"
}

kernel_cache_valid() {
    [ -f "$RK_KDIR_CACHE/stamp" ] && [ "$(cat "$RK_KDIR_CACHE/stamp")" = "$(kernel_stamp)" ] \
        && [ -s "$RK_KDIR_CACHE/boot/kernel" ] && [ -d "$RK_KDIR_CACHE/modroot/lib/modules/$RK_KVER" ]
}

# download PKG[=VERSION] into $RK_KDIR_CACHE/debs (kept until the build succeeded)
download_deb() {
    local spec=$1 name=${1%%=*} dir=$RK_KDIR_CACHE/debs
    mkdir -p "$dir"
    if compgen -G "$dir/${name}_*.deb" >/dev/null; then
        return 0
    fi
    say "    apt-get download $spec"
    # _apt cannot write into root-owned dirs; download in a temp dir it may use.
    if ! (cd "$dir" && quiet apt-get download "$spec"); then
        apt_update_once
        (cd "$dir" && quiet apt-get download "$spec") || return 1
    fi
}

# Step: fetch the kernel image, headers, kbuild and source packages.
fetch_kernel_packages() {
    if kernel_cache_valid; then
        say "    cached build for $RK_KVER ($RK_IMG_VERSION) found, nothing to download"
        return 0
    fi
    local hdr=linux-headers-$RK_KVER deps p src
    download_deb "$RK_IMG_PKG=$RK_IMG_VERSION" || die "download of $RK_IMG_PKG $RK_IMG_VERSION failed"
    download_deb "$hdr=$RK_IMG_VERSION" || download_deb "$hdr" || die "download of $hdr failed"
    # headers-$KVER depends on its -common package and on linux-kbuild-<series>
    deps=$(apt-cache depends "$hdr" 2>/dev/null | sed -nE 's/^ *Depends: (linux-(headers|kbuild)-[^ ]+)$/\1/p' || true)
    [ -n "$deps" ] || die "apt-cache depends $hdr lists no linux-headers-*-common / linux-kbuild-* packages"
    for p in $deps; do
        download_deb "$p=$RK_IMG_VERSION" || download_deb "$p" || die "download of $p failed"
    done
    RK_HDR_PKGS="$hdr $deps"
    src=linux-source-$RK_SRC_SERIES
    if ! download_deb "$src=$RK_IMG_VERSION"; then
        say "    warning: $src $RK_IMG_VERSION not downloadable, taking the archive's candidate"
        download_deb "$src" || die "download of $src failed"
    fi
    RK_SRC_PKG=$src
    say "    packages: $(cd "$RK_KDIR_CACHE/debs" && printf '%s ' -- *.deb)"
    say "    size: $(du -sh "$RK_KDIR_CACHE/debs" | cut -f1)"
}

# Step: unpack, build mtty/mdpy/mbochs out of tree, make a directly bootable image.
build_kernel_bits() {
    if kernel_cache_valid; then
        say "    using cached kernel and modules"
        return 0
    fi
    local c=$RK_KDIR_CACHE debs=$RK_KDIR_CACHE/debs b p kdir srcdir tarball dep
    b=$(mktemp -d "$c/build.XXXXXX")
    rm -rf "${c:?}/boot" "${c:?}/modroot" "${c:?}/stamp"

    # 1. image package: kernel + module tree
    dpkg-deb -x "$debs/${RK_IMG_PKG}"_*.deb "$b/img" || die "dpkg-deb -x of $RK_IMG_PKG failed"
    [ -f "$b/img/boot/vmlinuz-$RK_KVER" ] || die "$RK_IMG_PKG has no /boot/vmlinuz-$RK_KVER"
    [ -d "$b/img/lib/modules/$RK_KVER" ] || die "$RK_IMG_PKG has no /lib/modules/$RK_KVER"
    grep -q '^CONFIG_VFIO_MDEV=[my]' "$b/img/boot/config-$RK_KVER" \
        || die "kernel $RK_KVER is built without CONFIG_VFIO_MDEV"

    # 2. kbuild needs some host libraries (libelf, libssl): install what its package declares
    for dep in $(dpkg-deb -f "$debs"/linux-kbuild-*.deb Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/ //g'); do
        pkg_installed "$dep" && continue
        [ "${MDEVKIT_RK_NO_APT:-0}" = 1 ] && die "kbuild needs package $dep (MDEVKIT_RK_NO_APT=1)"
        apt_install "$dep"
    done

    # 3. headers + kbuild; their arch Makefile includes the -common tree by absolute path
    for p in $RK_HDR_PKGS; do
        dpkg-deb -x "$debs/${p}"_*.deb "$b/hdr" || die "dpkg-deb -x of $p failed"
    done
    kdir=$b/hdr/usr/src/linux-headers-$RK_KVER
    [ -f "$kdir/Makefile" ] || die "headers for $RK_KVER not found after unpacking"
    sed -i "s#^include /usr/src/#include $b/hdr/usr/src/#" "$kdir/Makefile"

    # 4. only the sample drivers (and the vmlinux extractor) out of linux-source
    dpkg-deb --fsys-tarfile "$debs/${RK_SRC_PKG}"_*.deb \
        | tar -x -C "$b" --wildcards './usr/src/linux-source-*.tar.*' \
        || die "cannot unpack $RK_SRC_PKG"
    tarball=$(compgen -G "$b/usr/src/linux-source-*.tar.*" | head -n1 || true)
    [ -n "$tarball" ] || die "$RK_SRC_PKG contains no source tarball"
    srcdir=$(basename "${tarball%.tar.*}")
    tar -x -C "$b" -f "$tarball" "$srcdir/samples/vfio-mdev" "$srcdir/scripts/extract-vmlinux" \
        || die "samples/vfio-mdev not found in $tarball"
    rm -rf "${b:?}/usr"

    # 5. build. BTF for modules would need pahole; it is not needed to load them.
    say "    building samples/vfio-mdev against $RK_KVER"
    quiet make -C "$kdir" M="$b/$srcdir/samples/vfio-mdev" CC=gcc-12 \
        CONFIG_DEBUG_INFO_BTF_MODULES= \
        CONFIG_SAMPLE_VFIO_MDEV_MTTY=m CONFIG_SAMPLE_VFIO_MDEV_MDPY=m \
        CONFIG_SAMPLE_VFIO_MDEV_MBOCHS=m modules \
        || die "building the sample mdev drivers failed (see the log)"
    for m in mtty mdpy mbochs; do
        [ -f "$b/$srcdir/samples/vfio-mdev/$m.ko" ] || die "sample driver $m.ko was not built"
    done

    # 6. the module tree the guest gets: the samples under extra/, and only the
    #    modules the guest loads plus their dependencies (keeps the cache small)
    local full=$b/img/lib/modules/$RK_KVER keep=$c/modroot/lib/modules/$RK_KVER m line path
    mkdir -p "$full/extra" "$keep"
    cp "$b/$srcdir"/samples/vfio-mdev/{mtty,mdpy,mbochs}.ko "$full/extra/"
    quiet depmod -b "$b/img" "$RK_KVER" || die "depmod failed"
    for m in $RK_GUEST_MODULES; do
        modprobe -d "$b/img" -S "$RK_KVER" --show-depends "$m" >"$b/deps.txt" 2>>"$RK_STEP_LOG" \
            || die "kernel $RK_KVER has no module $m (or one of its dependencies)"
        while read -r line path _; do
            [ "$line" = insmod ] || continue
            mkdir -p "$(dirname "$keep/${path#"$full"/}")"
            cp "$path" "$keep/${path#"$full"/}"
        done <"$b/deps.txt"
    done
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ -f "$full/$f" ] && cp "$full/$f" "$keep/"
    done
    quiet depmod -b "$c/modroot" "$RK_KVER" || die "depmod failed"

    # 7. kernel: the uncompressed ELF boots directly (PVH), saving the in-guest
    #    decompression (~5 s under TCG); fall back to the bzImage if extraction fails.
    mkdir -p "$c/boot"
    if bash "$b/$srcdir/scripts/extract-vmlinux" "$b/img/boot/vmlinuz-$RK_KVER" >"$c/boot/vmlinux" 2>>"$RK_STEP_LOG" \
        && readelf -n "$c/boot/vmlinux" 2>/dev/null | grep -q 'Xen'; then
        mv "$c/boot/vmlinux" "$c/boot/kernel"
        say "    kernel: uncompressed vmlinux with PVH entry"
    else
        rm -f "$c/boot/vmlinux"
        cp "$b/img/boot/vmlinuz-$RK_KVER" "$c/boot/kernel"
        say "    kernel: compressed bzImage (no PVH vmlinux could be extracted)"
    fi
    cp "$b/img/boot/config-$RK_KVER" "$c/boot/config"

    rm -rf "$b"
    [ "${MDEVKIT_RK_KEEP_DEBS:-0}" = 1 ] || rm -rf "$debs"
    kernel_stamp >"$c/stamp"
}
