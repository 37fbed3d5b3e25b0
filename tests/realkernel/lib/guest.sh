# shellcheck shell=bash
# shellcheck disable=SC2034 # RK_* globals here are read by run.sh and lib/common.sh
# The guest side on the host: the mdevctl binary, the initramfs, the qemu run,
# and reading the verdict off the serial console.

# Step: the binary under test. Default: the project's own release build.
build_mdevctl() {
    if [ -n "${MDEVCTL_BIN:-}" ]; then
        RK_MDEVCTL=$MDEVCTL_BIN
        [ -x "$RK_MDEVCTL" ] || die "MDEVCTL_BIN=$RK_MDEVCTL is not an executable file"
        say "    binary under test (MDEVCTL_BIN): $RK_MDEVCTL"
    else
        command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build mdevctl; or set MDEVCTL_BIN)"
        # mdevkit shares the library, so the second binary costs little more.
        (cd "$RK_REPO" && quiet cargo build --release --locked -p mdevctl -p mdevkit-cli) \
            || die "cargo build --release --locked -p mdevctl -p mdevkit-cli failed"
        RK_MDEVCTL=${CARGO_TARGET_DIR:-$RK_REPO/target}/release/mdevctl
        RK_MDEVKIT=${CARGO_TARGET_DIR:-$RK_REPO/target}/release/mdevkit
        [ -x "$RK_MDEVCTL" ] || die "cargo build succeeded but $RK_MDEVCTL does not exist"
        say "    binary under test: $RK_MDEVCTL (release build)"
    fi
    # With MDEVCTL_BIN, `mdevkit doctor` is only checked when MDEVKIT_BIN names one too.
    RK_MDEVKIT=${MDEVKIT_BIN:-${RK_MDEVKIT:-}}
    if [ -n "$RK_MDEVKIT" ]; then
        [ -x "$RK_MDEVKIT" ] || die "$RK_MDEVKIT is not an executable file"
        say "    mdevkit (doctor checks): $RK_MDEVKIT"
    fi
}

# copy_bin HOST_PATH GUEST_PATH : a host executable plus the shared libraries ldd names
copy_bin() {
    local src=$1 dst=$2 lib
    mkdir -p "$RK_STAGE$(dirname "$dst")"
    cp -L "$src" "$RK_STAGE$dst"
    chmod 0755 "$RK_STAGE$dst"
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
    # a static binary makes ldd fail, and then there is nothing to copy.
    { ldd "$src" 2>/dev/null || true; } | grep -oE '/[^ ]+' | while read -r lib; do
        [ -f "$lib" ] || continue
        [ -e "$RK_STAGE$lib" ] && continue
        mkdir -p "$RK_STAGE$(dirname "$lib")"
        cp -L "$lib" "$RK_STAGE$lib"
    done
}

# Step: stage and pack the initramfs.
make_initramfs() {
    local kmods=$RK_KDIR_CACHE/modroot/lib/modules/$RK_KVER gmods m line path rel a
    RK_STAGE=$(mktemp -d "$RK_RUN_DIR/stage.XXXXXX")
    gmods=$RK_STAGE/lib/modules/$RK_KVER
    mkdir -p "$RK_STAGE"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root} "$gmods"

    cp /bin/busybox "$RK_STAGE/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$RK_STAGE/bin/$a"
    done

    # The modules and their dependencies, in load order (host modprobe resolves it
    # against the unpacked tree). Compressed modules are stored plain: busybox
    # insmod may lack the decompressor.
    : >"$RK_STAGE/etc/modules.load"
    for m in $RK_GUEST_MODULES; do
        modprobe -d "$RK_KDIR_CACHE/modroot" -S "$RK_KVER" --show-depends "$m" >"$RK_RUN_DIR/deps.txt" \
            || die "module $m (or a dependency) is missing from kernel $RK_KVER"
        while read -r line path _; do
            [ "$line" = insmod ] || continue
            rel=${path#"$kmods"/}
            case $rel in
                *.ko.xz) rel=${rel%.xz}; mkdir -p "$gmods/$(dirname "$rel")"; xz -dc "$path" >"$gmods/$rel" ;;
                *.ko.zst) rel=${rel%.zst}; mkdir -p "$gmods/$(dirname "$rel")"; zstd -qdc "$path" >"$gmods/$rel" ;;
                *.ko.gz) rel=${rel%.gz}; mkdir -p "$gmods/$(dirname "$rel")"; gzip -dc "$path" >"$gmods/$rel" ;;
                *) mkdir -p "$gmods/$(dirname "$rel")"; cp "$path" "$gmods/$rel" ;;
            esac
            grep -qxF "$rel" "$RK_STAGE/etc/modules.load" || printf '%s\n' "$rel" >>"$RK_STAGE/etc/modules.load"
        done <"$RK_RUN_DIR/deps.txt"
    done
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ -f "$kmods/$f" ] && cp "$kmods/$f" "$gmods/"
    done
    # modules.dep inside the guest, so that its modprobe/rmmod work
    quiet depmod -b "$RK_STAGE" "$RK_KVER" || die "depmod for the initramfs failed"

    # mdevctl as installed upstream: /usr/sbin/mdevctl and lsmdev -> mdevctl
    copy_bin "$RK_MDEVCTL" /usr/sbin/mdevctl
    ln -s mdevctl "$RK_STAGE/usr/sbin/lsmdev"
    [ -z "$RK_MDEVKIT" ] || copy_bin "$RK_MDEVKIT" /usr/sbin/mdevkit
    mkdir -p "$RK_STAGE/etc/mdevctl.d" \
        "$RK_STAGE/usr/lib/mdevctl/scripts.d/callouts" "$RK_STAGE/usr/lib/mdevctl/scripts.d/notifiers"
    if [ "${MDEVKIT_RK_LEGACY_DIRS:-0}" = 1 ]; then
        # mdevctl <= 1.2 insists on the older script directories
        mkdir -p "$RK_STAGE/etc/mdevctl.d/scripts.d/callouts" "$RK_STAGE/etc/mdevctl.d/scripts.d/notifiers"
    fi

    install -m 0755 "$RK_HERE/guest/init.sh" "$RK_STAGE/init"
    install -m 0755 "$RK_HERE/guest/checks.sh" "$RK_STAGE/checks.sh"
    install -m 0644 "$RK_HERE/guest/record.sh" "$RK_STAGE/record.sh"
    install -m 0644 "$RK_HERE/guest/uevents.sh" "$RK_STAGE/uevents.sh"
    case ${MDEVKIT_RK_CHECKS:-} in *"'"*) die "MDEVKIT_RK_CHECKS must not contain a single quote" ;; esac
    printf "RK_CHECKS_FILTER='%s'\n" "${MDEVKIT_RK_CHECKS:-}" >"$RK_STAGE/etc/realkernel.conf"

    RK_INITRD=$RK_RUN_DIR/initramfs.cpio.gz
    (cd "$RK_STAGE" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$RK_INITRD" \
        || die "packing the initramfs failed"
    say "    initramfs $RK_INITRD ($(du -h "$RK_INITRD" | cut -f1)), modules: $(tr '\n' ' ' <"$RK_STAGE/etc/modules.load")"
    rm -rf "$RK_STAGE"
}

# Step: boot, stream the console, enforce the time limit.
boot_guest() {
    local t0 t1 qrc=0
    RK_CONSOLE=$RK_RUN_DIR/console.log
    say "    qemu (accel=$RK_ACCEL, timeout ${RK_TIMEOUT}s); console log: $RK_CONSOLE"
    RK_STEP_LOG=$RK_CONSOLE
    t0=$(rk_now_ms)
    set +e
    timeout --foreground -k 10 "$RK_TIMEOUT" \
        qemu-system-x86_64 -nographic -no-reboot -nodefaults -serial stdio \
        -machine q35 -accel "$RK_ACCEL" -cpu max -smp 1 -m "$RK_MEM" \
        -kernel "$RK_KDIR_CACHE/boot/kernel" -initrd "$RK_INITRD" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3" \
        -nic none </dev/null 2>&1 | tr -d '\r' | tee "$RK_CONSOLE" | sed -u 's/^/    guest| /'
    qrc=${PIPESTATUS[0]}
    set -e
    t1=$(rk_now_ms)
    say "    qemu exited with status $qrc after $(rk_ms_to_s $((t1 - t0))) s"
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
        die "the guest did not finish within ${RK_TIMEOUT}s (hang); qemu was killed"
    fi
    [ "$qrc" = 0 ] || die "qemu failed with exit status $qrc"
}

# Step: read the verdict. Nothing counts unless the guest printed it.
evaluate_console() {
    local c=$RK_CONSOLE result passed failed oks fails code
    RK_STEP_LOG=$c
    grep -q '=== realkernel-guest: init started' "$c" \
        || die "the kernel did not boot far enough to run /init (no start marker on the console)"
    grep -q '^=== realkernel-guest: modules loaded' "$c" \
        || die "the guest could not load the mdev modules"
    result=$(grep -E '^realkernel: [0-9]+ passed, [0-9]+ failed$' "$c" | tail -n1 || true)
    [ -n "$result" ] || die "the guest printed no result line (checks crashed or were cut short)"
    RK_RESULT=$result
    code=$(sed -nE 's/^=== realkernel-guest: checks exited ([0-9]+) ===$/\1/p' "$c" | tail -n1)
    [ -n "$code" ] || die "the guest did not report the checks' exit status"
    passed=$(printf '%s' "$result" | sed -E 's/^realkernel: ([0-9]+) passed.*/\1/')
    failed=$(printf '%s' "$result" | sed -E 's/.* ([0-9]+) failed$/\1/')
    oks=$(grep -c '^ok ' "$c" || true)
    fails=$(grep -c '^FAIL ' "$c" || true)
    if [ "$oks" != "$passed" ] || [ "$fails" != "$failed" ]; then
        die "result line says $passed passed/$failed failed but the console shows $oks ok and $fails FAIL lines"
    fi
    [ "$passed" -gt 0 ] || die "no check passed (nothing ran?)"
    if [ "$failed" -ne 0 ] || [ "$code" -ne 0 ]; then
        say "failed checks (details in $c):"
        grep '^FAIL ' "$c" | sed 's/^/    /'
        RK_STEP_LOG=""   # the whole console was streamed above; no tail needed
        die "$failed guest check(s) failed (checks exit status $code)"
    fi
}

# Step: the sample drivers' sysfs as the guest recorded it (group `record`) against the
# committed record, which mdev-sim's `samples` profile is tested against
# (crates/mdev-sim/tests/it/kernel_record.rs). MDEVKIT_BLESS=1 writes the fresh record
# into the repository instead.
compare_record() {
    local c=$RK_CONSOLE fresh=$RK_RUN_DIR/samples.json committed=$RK_HERE/recorded/samples.json
    RK_STEP_LOG=$c
    if ! grep -q '^=== realkernel-guest: record begin ===$' "$c"; then
        say "    no record taken (group 'record' skipped by MDEVKIT_RK_CHECKS), nothing to compare"
        return 0
    fi
    grep -q '^=== realkernel-guest: record end ===$' "$c" \
        || die "the guest's record was cut short (no end marker)"
    sed -n '/^=== realkernel-guest: record begin ===$/,/^=== realkernel-guest: record end ===$/p' "$c" \
        | sed -n 's/^record| //p' >"$fresh"
    if [ "${MDEVKIT_BLESS:-0}" = 1 ]; then
        mkdir -p "$(dirname "$committed")"
        cp "$fresh" "$committed"
        say "    MDEVKIT_BLESS=1: wrote the fresh record to $committed"
        return 0
    fi
    [ -f "$committed" ] || die "no committed record $committed; run with MDEVKIT_BLESS=1 to create it"
    if ! cmp -s "$committed" "$fresh"; then
        { diff -u "$committed" "$fresh" || true; } | sed 's/^/    | /'
        RK_STEP_LOG=""
        die "kernel $RK_KVER's sample drivers differ from $committed (diff above). If the kernel is right, run with MDEVKIT_BLESS=1 to take the fresh record, commit it, and make mdev-sim's samples/mtty/mdpy/mbochs profiles match it (cargo test -p mdev-sim --test it kernel_record)"
    fi
    say "    the guest's record matches $committed"
}

# Step: the kernel's uevents as the guest recorded them (group `uevents`) against the
# committed tests/realkernel/recorded/uevents.txt, which mdev-sim's uevents are tested
# against (crates/mdev-sim/tests/it/uevents.rs). MDEVKIT_BLESS=1 writes the fresh record.
compare_uevents() {
    local c=$RK_CONSOLE fresh=$RK_RUN_DIR/uevents.txt committed=$RK_HERE/recorded/uevents.txt
    RK_STEP_LOG=$c
    if ! grep -q '^=== realkernel-guest: uevents begin ===$' "$c"; then
        say "    no uevents recorded (group 'uevents' skipped by MDEVKIT_RK_CHECKS), nothing to compare"
        return 0
    fi
    grep -q '^=== realkernel-guest: uevents end ===$' "$c" \
        || die "the guest's uevent record was cut short (no end marker)"
    sed -n '/^=== realkernel-guest: uevents begin ===$/,/^=== realkernel-guest: uevents end ===$/p' "$c" \
        | sed -n 's/^uevent| \{0,1\}//p' >"$fresh"
    if [ "${MDEVKIT_BLESS:-0}" = 1 ]; then
        cp "$fresh" "$committed"
        say "    MDEVKIT_BLESS=1: wrote the fresh uevent record to $committed"
        return 0
    fi
    [ -f "$committed" ] || die "no committed record $committed; run with MDEVKIT_BLESS=1 to create it"
    if ! cmp -s "$committed" "$fresh"; then
        { diff -u "$committed" "$fresh" || true; } | sed 's/^/    | /'
        RK_STEP_LOG=""
        die "kernel $RK_KVER's uevents differ from $committed (diff above). If the kernel is right, run with MDEVKIT_BLESS=1, commit it, and make mdev-sim's uevents match it (cargo test -p mdev-sim --test it uevents)"
    fi
    say "    the guest's uevents match $committed"
}
