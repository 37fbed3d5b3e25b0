#!/bin/sh
# shellcheck shell=dash  # (busybox ash; dash is the nearest dialect ShellCheck knows)
# Guest-side checks (busybox sh), run by /init with the real vfio/mdev stack and
# the sample parents mtty, mdpy and mbochs loaded. /usr/sbin/mdevctl is the binary
# under test, /usr/sbin/lsmdev a symlink to it; the mdevctl root is the real /.
#
# Output contract (read by tests/realkernel/run.sh and by CI log parsers):
#   ok - <group>: <what>        one line per passed check
#   FAIL - <group>: <what>      one line per failed check, followed by detail
#     | ...                     lines that start with two spaces and a bar
#   realkernel: N passed, M failed     the last line; exit status 0 iff M = 0
#
# Expectations are computed from the guest's sysfs and /etc/mdevctl.d wherever
# possible (not hard-coded), following the mdevctl 1.4 behaviour described in
# shared/spec/mdevctl-1.4.md (§4.1 list, §4.2 types, §3.2 config files, §4.6 start).

RK_CHECKS_FILTER=
# shellcheck disable=SC1091
[ -f /etc/realkernel.conf ] && . /etc/realkernel.conf

PASSED=0
FAILED=0
GROUP=setup
MDEV_BUS=/sys/class/mdev_bus
MDEV_DEVS=/sys/bus/mdev/devices
CONF=/etc/mdevctl.d
CMD_TIMEOUT=60
OUT=/tmp/rk.out
ERR=/tmp/rk.err
EXP=/tmp/rk.exp

# ---------------------------------------------------------------- reporting

ok() {
    PASSED=$((PASSED + 1))
    echo "ok - $GROUP: $*"
}

fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL - $GROUP: $*"
}

# detail TEXT... : context for the FAIL line just printed
detail() {
    printf '%s\n' "$@" | sed 's/^/  | /'
}

detail_file() { # LABEL FILE
    if [ -s "$2" ]; then
        detail "$1:"
        head -n 25 "$2" | sed 's/^/  |     /'
    else
        detail "$1: (empty)"
    fi
}

detail_last_cmd() {
    detail "command: $LAST_CMD" "exit status: $RC"
    detail_file stdout "$OUT"
    detail_file stderr "$ERR"
}

# check WHAT CMD... : ok if CMD succeeds; on failure show the last mdevctl run
check() {
    local what="$1"
    shift
    if "$@"; then ok "$what"; else fail "$what"; detail_last_cmd; fi
}

# check_after FLAG WHAT CMD... : a check of a failure path, meaningful only if the
# success path it builds on worked (FLAG = yes). Otherwise it FAILs rather than
# pass vacuously (a command that fails for every input also "fails as expected").
check_after() {
    local flag="$1" what="$2"
    shift 2
    if [ "$flag" = yes ]; then
        check "$what" "$@"
    else
        fail "$what"
        detail "not meaningful: the success path this check builds on failed above"
    fi
}

# check_sys WHAT CMD... : like check, for a pure sysfs condition
check_sys() {
    local what="$1"
    shift
    if "$@"; then ok "$what"; else fail "$what"; detail "condition failed: $*"; fi
}

# expect_output WHAT EXPECTED_FILE : byte-for-byte comparison with the last stdout
expect_output() {
    if [ "$RC" = 0 ] && cmp -s "$2" "$OUT"; then
        ok "$1"
    else
        fail "$1"
        detail "command: $LAST_CMD" "exit status: $RC" "diff expected -> actual:"
        diff -u "$2" "$OUT" | head -n 40 | sed 's/^/  |     /'
        detail_file stderr "$ERR"
    fi
}

# expect_json WHAT EXPECTED_FILE : same content once all whitespace is dropped
# (the names and values used here contain no significant spaces except inside
# strings that both sides drop alike); layout is checked separately
expect_json() {
    tr -d ' \t\n' <"$2" >/tmp/rk.jexp
    tr -d ' \t\n' <"$OUT" >/tmp/rk.jout
    if [ "$RC" = 0 ] && cmp -s /tmp/rk.jexp /tmp/rk.jout; then
        ok "$1"
    else
        fail "$1"
        detail "command: $LAST_CMD" "exit status: $RC" "expected (whitespace dropped):"
        head -c 1500 /tmp/rk.jexp | fold -w 120 | sed 's/^/  |     /'
        detail "actual (whitespace dropped):"
        head -c 1500 /tmp/rk.jout | fold -w 120 | sed 's/^/  |     /'
        detail_file stderr "$ERR"
    fi
}

# ---------------------------------------------------------------- running mdevctl

# mc ARGS... : run mdevctl; sets RC, LAST_CMD; output in $OUT and $ERR
CALLS=0
mc() {
    CALLS=$((CALLS + 1))
    LAST_CMD="mdevctl $*"
    timeout "$CMD_TIMEOUT" mdevctl "$@" >"$OUT" 2>"$ERR" </dev/null
    RC=$?
}

# lsm ARGS... : the same binary invoked as lsmdev
lsm() {
    CALLS=$((CALLS + 1))
    LAST_CMD="lsmdev $*"
    timeout "$CMD_TIMEOUT" lsmdev "$@" >"$OUT" 2>"$ERR" </dev/null
    RC=$?
}

rc_is() { [ "$RC" = "$1" ]; }
# note_err : show the first lines of the last stderr (for reviewing messages; not a check)
note_err() { head -n 3 "$ERR" | sed 's/^/  |     stderr: /'; }
uptime_cs() { sed 's/^\([0-9]*\)\.\([0-9]*\).*/\1\2/' /proc/uptime; }
rc0_empty() { [ "$RC" = 0 ] && [ ! -s "$OUT" ]; }
rc0_one_line() { [ "$RC" = 0 ] && [ "$(wc -l <"$OUT")" = 1 ]; }
rc0_and_gone() { [ "$RC" = 0 ] && [ ! -e "$MDEV_DEVS/$1" ]; }
gone_but_running() { [ ! -e "$1" ] && [ -e "$MDEV_DEVS/$2" ]; }
rc_usage_or_runtime() { [ "$RC" = 1 ] || [ "$RC" = 2 ]; }
out_empty() { [ ! -s "$OUT" ]; }
err_has() { grep -qi -- "$1" "$ERR"; }
is_uuid() { printf '%s\n' "$1" | grep -qxE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'; }
new_uuid() { cat /proc/sys/kernel/random/uuid; }

# ---------------------------------------------------------------- sysfs view

avail() { cat "$MDEV_BUS/$1/mdev_supported_types/$2/available_instances" 2>/dev/null; }
active() { [ -e "$MDEV_DEVS/$1" ]; }
not_active() { [ ! -e "$MDEV_DEVS/$1" ]; }
dev_parent() { basename "$(dirname "$(readlink -f "$MDEV_DEVS/$1")")"; }
dev_type() { basename "$(readlink -f "$MDEV_DEVS/$1/mdev_type")"; }
# names DIR : the entries of DIR, one a line, in glob (C locale) order
names() { local e; for e in "$1"/*; do [ -e "$e" ] && echo "${e##*/}"; done; }
active_count() { names "$MDEV_DEVS" | wc -l; }
active_as() { active "$1" && [ "$(dev_parent "$1")" = "$2" ] && [ "$(dev_type "$1")" = "$3" ]; }

conf_type() { sed -n 's/.*"mdev_type" *: *"\([^"]*\)".*/\1/p' "$1" | head -n 1; }
conf_start() { if grep -q '"start" *: *"auto"' "$1"; then echo auto; else echo manual; fi; }
json_str() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
trimmed() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' "$1" | awk 'NF || seen { if (seen) printf "%s", sep; printf "%s", $0; sep = ", "; seen = 1 }'; }

# Expected `mdevctl list` (active devices, spec §4.1): sorted by parent, then uuid
expect_list_active() { # [PARENT_FILTER]
    local u p t
    for u in $(names "$MDEV_DEVS"); do
        p=$(dev_parent "$u")
        [ -n "${1:-}" ] && [ "$1" != "$p" ] && continue
        t=$(dev_type "$u")
        if [ -f "$CONF/$p/$u" ]; then
            echo "$u $p $t $(conf_start "$CONF/$p/$u") (defined)"
        else
            echo "$u $p $t manual"
        fi
    done | sort -k2,2 -k1,1 >"$EXP"
}

# Expected `mdevctl list -d`: every config, "(active)" when sysfs has it with that parent and type
expect_list_defined() {
    local f u p t line
    for f in "$CONF"/*/*; do
        [ -f "$f" ] || continue
        u=$(basename "$f")
        p=$(basename "$(dirname "$f")")
        t=$(conf_type "$f")
        line="$u $p $t $(conf_start "$f")"
        active_as "$u" "$p" "$t" && line="$line (active)"
        echo "$line"
    done | sort -k2,2 -k1,1 >"$EXP"
}

# Expected list --dumpjson (spec §4.1), pretty-printed, from the expected text
# list in $EXP (lines "uuid parent type start[ suffix]"): attrs are [] throughout
# because the sample drivers' devices carry none and no callouts are installed.
expect_list_json() {
    if [ ! -s "$EXP" ]; then
        printf '[]' >"$EXP.json"
        return
    fi
    awk '
        { if ($2 != parent) { if (parent != "") printf "\n    ],\n"; else printf "[\n  {\n";
                              printf "    \"%s\": [\n", $2; parent = $2; first = 1 }
          if (!first) printf ",\n"
          first = 0
          printf "      {\n        \"%s\": {\n          \"mdev_type\": \"%s\",\n", $1, $3
          printf "          \"start\": \"%s\",\n          \"attrs\": []\n        }\n      }", $4 }
        END { printf "\n    ]\n  }\n]" }
    ' "$EXP" >"$EXP.json"
}

# Expected `mdevctl types` text (spec §4.2), straight from sysfs
expect_types_text() { # [PARENT_FILTER]
    local p t d v
    for p in $(names "$MDEV_BUS"); do
        [ -n "${1:-}" ] && [ "$1" != "$p" ] && continue
        echo "$p"
        for t in $(names "$MDEV_BUS/$p/mdev_supported_types"); do
            d=$MDEV_BUS/$p/mdev_supported_types/$t
            echo "  $t"
            echo "    Available instances: $(trimmed "$d/available_instances")"
            echo "    Device API: $(trimmed "$d/device_api")"
            if [ -f "$d/name" ]; then
                v=$(trimmed "$d/name")
                [ -n "$v" ] && echo "    Name: $v"
            fi
            if [ -f "$d/description" ]; then
                v=$(trimmed "$d/description")
                [ -n "$v" ] && echo "    Description: $v"
            fi
        done
    done >"$EXP"
}

# Expected `mdevctl types --dumpjson` (spec §4.2), serde_json pretty layout
expect_types_json() {
    local np p types nt t d v
    {
        np=0
        for p in $(names "$MDEV_BUS"); do
            if [ "$np" = 0 ]; then printf '[\n  {\n'; else printf ',\n'; fi
            np=$((np + 1))
            types=$(names "$MDEV_BUS/$p/mdev_supported_types")
            if [ -z "$types" ]; then printf '    "%s": []' "$p"; continue; fi
            printf '    "%s": [\n' "$p"
            nt=0
            for t in $types; do
                d=$MDEV_BUS/$p/mdev_supported_types/$t
                [ "$nt" = 0 ] || printf ',\n'
                nt=$((nt + 1))
                printf '      {\n        "%s": {\n' "$t"
                printf '          "available_instances": %s,\n' "$(trimmed "$d/available_instances")"
                printf '          "device_api": "%s"' "$(json_str "$(trimmed "$d/device_api")")"
                v=$( [ -f "$d/name" ] && trimmed "$d/name")
                [ -n "$v" ] && printf ',\n          "name": "%s"' "$(json_str "$v")"
                v=$( [ -f "$d/description" ] && trimmed "$d/description")
                [ -n "$v" ] && printf ',\n          "description": "%s"' "$(json_str "$v")"
                printf '\n        }\n      }'
            done
            printf '\n    ]'
        done
        if [ "$np" = 0 ]; then printf '[]'; else printf '\n  }\n]'; fi
    } >"$EXP.json"
}

# compare `mdevctl list` [ARGS] with sysfs, and lsmdev with mdevctl
check_list_matches_sysfs() { # LABEL
    expect_list_active
    mc list
    expect_output "$1: 'mdevctl list' matches sysfs" "$EXP"
    cp "$OUT" /tmp/rk.list
    lsm
    if [ "$RC" = 0 ] && cmp -s /tmp/rk.list "$OUT"; then ok "$1: 'lsmdev' prints the same as 'mdevctl list'"
    else fail "$1: 'lsmdev' prints the same as 'mdevctl list'"; detail_last_cmd; fi
}

check_list_defined_matches() { # LABEL
    expect_list_defined
    mc list -d
    expect_output "$1: 'mdevctl list -d' matches /etc/mdevctl.d and sysfs" "$EXP"
    cp "$OUT" /tmp/rk.list
    lsm -d
    if [ "$RC" = 0 ] && cmp -s /tmp/rk.list "$OUT"; then ok "$1: 'lsmdev -d' prints the same as 'mdevctl list -d'"
    else fail "$1: 'lsmdev -d' prints the same as 'mdevctl list -d'"; detail_last_cmd; fi
}

# ---------------------------------------------------------------- clean-up between groups

# Put the machine back to "no devices, no definitions" without mdevctl, so that
# one group's failure does not spill into the next.
reset_state() {
    local left u d f
    left=""
    for u in $(names "$MDEV_DEVS"); do
        echo 1 >"$MDEV_DEVS/$u/remove" 2>/dev/null
        left="$left $u"
    done
    for d in "$CONF"/*; do
        [ -d "$d" ] || continue
        case $(basename "$d") in scripts.d) continue ;; esac
        for f in "$d"/*; do [ -e "$f" ] && left="$left $(basename "$d")/$(basename "$f")"; done
        rm -rf "$d"
    done
    [ -z "$left" ] || echo "  | (clean-up after $GROUP removed:$left)"
}

# ---------------------------------------------------------------- check groups

group_environment() {
    for p in mtty mdpy mbochs; do
        check_sys "parent $p is registered in $MDEV_BUS" test -d "$MDEV_BUS/$p/mdev_supported_types"
    done
    mc --version
    check "'mdevctl --version' exits 0" rc_is 0
    echo "  | mdevctl --version: $(head -n 1 "$OUT")"
    mc list
    check "'mdevctl list' with no devices prints nothing" rc0_empty
    mc list -d
    check "'mdevctl list -d' with no definitions prints nothing" rc0_empty
    mc list --dumpjson
    printf '[]' >"$EXP"
    expect_output "'mdevctl list --dumpjson' with no devices prints []" "$EXP"
    t0=$(uptime_cs)
    for _ in 1 2 3 4 5 6 7 8 9 10; do mc types; done
    t1=$(uptime_cs)
    echo "  | (timing: 10 x 'mdevctl types' took $(((t1 - t0) * 10)) ms in this TCG guest)"
}

group_types() {
    expect_types_text
    mc types
    expect_output "'mdevctl types' matches sysfs (spec 4.2 layout)" "$EXP"
    expect_types_json
    mc types --dumpjson
    expect_json "'mdevctl types --dumpjson' content matches sysfs" "$EXP.json"
    expect_output "'mdevctl types --dumpjson' layout (pretty, 2-space indent, no trailing newline)" "$EXP.json"
    for p in mtty mbochs; do
        expect_types_text "$p"
        mc types -p "$p"
        expect_output "'mdevctl types -p $p' matches sysfs" "$EXP"
    done
    mc types -p no-such-parent
    check "'mdevctl types -p no-such-parent' exits 0 and prints nothing" rc0_empty
}

group_transient() {
    before=$(avail mtty mtty-2)
    mc start -p mtty -t mtty-2
    u=$(head -n 1 "$OUT")
    check "'start -p mtty -t mtty-2' exits 0 and prints a UUID" rc0_one_line
    if ! is_uuid "$u"; then
        fail "printed value is a lower-case hyphenated UUID"; detail_last_cmd
        return
    fi
    ok "printed value is a lower-case hyphenated UUID"
    check_sys "$MDEV_DEVS/$u exists" active "$u"
    check_sys "its mdev_type link ends in mtty-2 and its parent is mtty" active_as "$u" mtty mtty-2
    after=$(avail mtty mtty-2)
    check_sys "mtty-2 available_instances went down by one ($before -> $after)" test "$after" = $((before - 1))
    expect_list_active
    printf '%s mtty mtty-2 manual\n' "$u" >/tmp/rk.want
    check_sys "expected list line is '$u mtty mtty-2 manual'" cmp -s /tmp/rk.want "$EXP"
    check_list_matches_sysfs "device running"
    expect_types_text
    mc types
    expect_output "'mdevctl types' shows the lower available_instances" "$EXP"
    expect_list_active
    expect_list_json
    mc list --dumpjson
    expect_json "'mdevctl list --dumpjson' content matches sysfs" "$EXP.json"
    mc list -u "$u" --dumpjson
    printf '{\n  "mdev_type": "mtty-2",\n  "start": "manual",\n  "attrs": []\n}' >"$EXP"
    expect_json "'mdevctl list -u U --dumpjson' is the single device object" "$EXP"
    mc list -d
    check "'mdevctl list -d' does not show the transient device" rc0_empty
    # define without -p/-t takes parent and type from the running device (spec 4.3)
    mc define -u "$u"
    check "'define -u U' of the running device (no -p/-t) exits 0" rc_is 0
    check_sys "  ... and writes $CONF/mtty/$u with type mtty-2" \
        test "$(conf_type "$CONF/mtty/$u" 2>/dev/null)" = mtty-2
    check_list_matches_sysfs "running and defined"
    mc undefine -u "$u"
    check "'undefine -u U' of the running device exits 0" rc_is 0
    check_sys "  ... removes the config and leaves the device running" \
        gone_but_running "$CONF/mtty/$u" "$u"
    mc stop -u "$u"
    check "'stop -u U' exits 0" rc_is 0
    check_sys "$MDEV_DEVS/$u is gone after stop" not_active "$u"
    check_sys "mtty-2 available_instances is back to $before" test "$(avail mtty mtty-2)" = "$before"
    mc list
    check "'mdevctl list' prints nothing after stop" rc0_empty
}

group_multi_parent() {
    uuids=""
    for pt in mtty:mtty-1 mdpy:mdpy-vga mbochs:mbochs-small mtty:mtty-2; do
        p=${pt%%:*} t=${pt#*:}
        mc start -p "$p" -t "$t"
        u=$(head -n 1 "$OUT")
        if rc_is 0 && is_uuid "$u" && active_as "$u" "$p" "$t"; then
            ok "'start -p $p -t $t' created $u on $p as $t"
            uuids="$uuids $u"
        else
            fail "'start -p $p -t $t' creates a device of that type"; detail_last_cmd
        fi
    done
    check_list_matches_sysfs "three parents"
    expect_list_active mtty
    mc list -p mtty
    expect_output "'mdevctl list -p mtty' matches sysfs" "$EXP"
    for u in $uuids; do
        mc list -u "$u"
        printf '%s %s %s manual\n' "$u" "$(dev_parent "$u")" "$(dev_type "$u")" >"$EXP"
        expect_output "'mdevctl list -u $u' shows just that device" "$EXP"
    done
    expect_list_active
    expect_list_json
    mc list --dumpjson
    expect_json "'mdevctl list --dumpjson' content matches sysfs" "$EXP.json"
    cp "$OUT" /tmp/rk.json
    lsm --dumpjson
    if [ "$RC" = 0 ] && cmp -s /tmp/rk.json "$OUT"; then ok "'lsmdev --dumpjson' prints the same as 'mdevctl list --dumpjson'"
    else fail "'lsmdev --dumpjson' prints the same as 'mdevctl list --dumpjson'"; detail_last_cmd; fi
    expect_types_text
    mc types
    expect_output "'mdevctl types' with devices on all parents matches sysfs" "$EXP"
    for u in $uuids; do
        mc stop -u "$u"
        if rc_is 0 && not_active "$u"; then ok "'stop -u $u' removed it"; else fail "'stop -u $u' removes it"; detail_last_cmd; fi
    done
}

group_defined() {
    u=$(new_uuid)
    mc define -u "$u" -p mtty -t mtty-1
    check "'define -u U -p mtty -t mtty-1' exits 0 and prints nothing" rc0_empty
    f=$CONF/mtty/$u
    defined=no
    rc_is 0 && [ -f "$f" ] && defined=yes
    check_sys "config file $f exists" test -f "$f"
    printf '{\n  "mdev_type": "mtty-1",\n  "start": "manual",\n  "attrs": []\n}' >"$EXP"
    if cmp -s "$EXP" "$f"; then ok "config file has the spec 3.2 layout"
    else fail "config file has the spec 3.2 layout"; diff -u "$EXP" "$f" | sed 's/^/  |     /'; fi
    check_sys "define did not create a device" not_active "$u"
    check_list_defined_matches "defined, inactive"
    printf '%s mtty mtty-1 manual\n' "$u" >/tmp/rk.want
    check_sys "  ... which is '$u mtty mtty-1 manual'" cmp -s /tmp/rk.want "$EXP"
    mc define -u "$u" -p mtty -t mtty-1
    check_after "$defined" "defining the same UUID again fails with exit 1" rc_is 1

    mc start -u "$u"
    check "'start -u U' exits 0 and prints nothing" rc0_empty
    check_sys "device is active on mtty as mtty-1" active_as "$u" mtty mtty-1
    check_list_matches_sysfs "defined, started"
    printf '%s mtty mtty-1 manual (defined)\n' "$u" >/tmp/rk.want
    check_sys "  ... which is '$u mtty mtty-1 manual (defined)'" cmp -s /tmp/rk.want "$EXP"
    check_list_defined_matches "defined, started"
    printf '%s mtty mtty-1 manual (active)\n' "$u" >/tmp/rk.want
    check_sys "  ... which is '$u mtty mtty-1 manual (active)'" cmp -s /tmp/rk.want "$EXP"
    expect_list_active
    expect_list_json
    mc list --dumpjson
    expect_json "'mdevctl list --dumpjson' content matches" "$EXP.json"
    expect_list_defined
    expect_list_json
    mc list -d --dumpjson
    expect_json "'mdevctl list -d --dumpjson' content matches" "$EXP.json"
    expect_output "'mdevctl list -d --dumpjson' layout (pretty, no trailing newline)" "$EXP.json"

    mc modify -u "$u" --auto
    check "'modify -u U --auto' exits 0" rc_is 0
    check_sys "config now says start auto" test "$(conf_start "$f")" = auto
    check_list_defined_matches "after modify --auto"
    printf '%s mtty mtty-1 auto (active)\n' "$u" >/tmp/rk.want
    check_sys "  ... which is '$u mtty mtty-1 auto (active)'" cmp -s /tmp/rk.want "$EXP"
    check_list_matches_sysfs "after modify --auto"
    check_sys "device still active after modify" active_as "$u" mtty mtty-1
    mc modify -u "$u" --manual
    check "'modify -u U --manual' exits 0" rc_is 0
    check_sys "config says start manual again" test "$(conf_start "$f")" = manual
    mc modify -u "$u" --auto
    check "'modify -u U --auto' again exits 0" rc_is 0

    mc stop -u "$u"
    check "'stop -u U' exits 0" rc_is 0
    check_sys "device is gone after stop" not_active "$u"
    check_sys "config survives stop" test -f "$f"
    check_list_defined_matches "after stop"
    mc undefine -u "$u"
    check "'undefine -u U' exits 0" rc_is 0
    undefined=no
    rc_is 0 && [ "$defined" = yes ] && [ ! -e "$f" ] && undefined=yes
    check_sys "config file is gone after undefine" test ! -e "$f"
    mc list -d
    check "'mdevctl list -d' prints nothing after undefine" rc0_empty
    mc undefine -u "$u"
    check_after "$undefined" "undefining it again fails with exit 1" rc_is 1
}

group_jsonfile() {
    printf '{"mdev_type": "mdpy-xga", "start": "manual", "attrs": []}' >/tmp/rk.dev.json
    mc start -p mdpy --jsonfile /tmp/rk.dev.json
    u=$(head -n 1 "$OUT")
    check "'start -p mdpy --jsonfile F' exits 0 and prints a UUID" rc0_one_line
    check_sys "  ... and the device runs as mdpy-xga" active_as "$u" mdpy mdpy-xga
    mc stop -u "$u"
    check "  ... and 'stop -u' removes it" rc0_and_gone "$u"
    u=$(new_uuid)
    printf '{"mdev_type": "mdpy-vga", "start": "auto", "attrs": []}' >/tmp/rk.dev.json
    mc define -u "$u" -p mdpy --jsonfile /tmp/rk.dev.json
    check "'define -u U -p mdpy --jsonfile F' exits 0" rc_is 0
    check_sys "  ... config has type mdpy-vga and start auto" \
        test "$(conf_type "$CONF/mdpy/$u" 2>/dev/null)/$(conf_start "$CONF/mdpy/$u" 2>/dev/null)" = mdpy-vga/auto
    mc start -u "$u"
    check "'start -u U' of it exits 0" rc_is 0
    check_sys "  ... and it runs as mdpy-vga" active_as "$u" mdpy mdpy-vga
    check_list_defined_matches "jsonfile"
    mc stop -u "$u"
    check "'stop -u U' exits 0" rc_is 0
    mc undefine -u "$u"
    check "'undefine -u U' exits 0" rc_is 0
    check_sys "  ... and its config is gone" test ! -e "$CONF/mdpy/$u"
}

group_exhaustion() {
    p=mbochs t=mbochs-large
    n=$(avail $p $t)
    check_sys "$t has instances available to start with ($n)" test "${n:-0}" -gt 0
    made="" i=0
    while [ "$(avail $p $t)" -gt 0 ] && [ "$i" -lt 64 ]; do
        i=$((i + 1))
        mc start -p $p -t $t
        u=$(head -n 1 "$OUT")
        if ! rc_is 0 || ! is_uuid "$u"; then
            fail "start #$i of $t while sysfs shows $(avail $p $t) available"; detail_last_cmd
            break
        fi
        made="$made $u"
    done
    check_sys "started $t until available_instances is 0 ($i devices)" test "$(avail $p $t)" = 0
    exhausted=no
    [ "$(avail $p $t)" = 0 ] && exhausted=yes
    count=$(active_count)
    mc start -p $p -t $t
    check_after "$exhausted" "one more 'start -p $p -t $t' fails with exit 1" rc_is 1
    check "  ... and the message mentions no available instances" err_has "available instances"
    note_err
    check_sys "  ... and no device was created" test "$(active_count)" = "$count"
    check_list_matches_sysfs "pool exhausted"
    for u in $made; do mc stop -u "$u"; done
    check_sys "all $t devices stopped, available_instances back to $n" test "$(avail $p $t)" = "$n"
}

group_duplicate() {
    u=$(new_uuid)
    mc start -u "$u" -p mtty -t mtty-1
    check "'start -u U -p mtty -t mtty-1' exits 0" rc_is 0
    check_sys "device active as mtty-1" active_as "$u" mtty mtty-1
    first=no
    rc_is 0 && active_as "$u" mtty mtty-1 && first=yes
    a=$(avail mtty mtty-1) count=$(active_count)
    mc start -u "$u" -p mtty -t mtty-1
    check_after "$first" "the same start again fails with exit 1" rc_is 1
    check "  ... and the message says the device already exists" err_has "already exist"
    note_err
    check_sys "  ... and nothing changed in sysfs" test "$a/$count" = "$(avail mtty mtty-1)/$(active_count)"
    mc start -u "$u" -p mtty -t mtty-2
    check_after "$first" "starting the UUID with another type fails with exit 1" rc_is 1
    check_sys "  ... and the device keeps its type" active_as "$u" mtty mtty-1
    mc stop -u "$u"
    check "'stop -u U' exits 0" rc_is 0
    check_sys "device gone" not_active "$u"
}

group_errors() {
    # positive control: start and stop work at all, so their failures below mean something
    control=no
    mc start -p mtty -t mtty-1
    u=$(head -n 1 "$OUT")
    if rc_is 0 && is_uuid "$u" && active_as "$u" mtty mtty-1; then
        mc stop -u "$u"
        rc_is 0 && not_active "$u" && control=yes
    fi
    check "control: 'start -p mtty -t mtty-1' then 'stop -u U' work" test "$control" = yes
    count=$(active_count)
    mc start -p no-such-parent -t mtty-1
    check_after "$control" "start on a missing parent fails with exit 1" rc_is 1
    note_err
    check "  ... naming the parent" err_has "no-such-parent"
    mc start -p MTTY -t mtty-1
    check_after "$control" "start on 'MTTY' fails with exit 1" rc_is 1
    note_err
    check "  ... and suggests 'mtty'" err_has "'mtty'"
    mc start -p mtty -t no-such-type
    check_after "$control" "start of an unsupported type fails with exit 1" rc_is 1
    note_err
    check "  ... naming the type" err_has "no-such-type"
    mc stop -u "$(new_uuid)"
    check_after "$control" "stop of a UUID that is not active fails with exit 1" rc_is 1
    note_err
    mc start -t mtty-1
    check_after "$control" "start with a type but no parent fails (exit 1 or 2)" rc_usage_or_runtime
    note_err
    check_sys "none of these created a device" test "$(active_count)" = "$count"
}

group_autostart() {
    a1=$(new_uuid) a2=$(new_uuid) m=$(new_uuid)
    mc define -u "$a1" -p mtty -t mtty-1 --auto
    check "'define --auto' of A1 (mtty-1) exits 0" rc_is 0
    mc define -u "$a2" -p mtty -t mtty-2 --auto
    check "'define --auto' of A2 (mtty-2) exits 0" rc_is 0
    mc define -u "$m" -p mtty -t mtty-1
    check "'define' of manual M (mtty-1) exits 0" rc_is 0
    check_sys "A1 and A2 configs say start auto" test "$(conf_start "$CONF/mtty/$a1")/$(conf_start "$CONF/mtty/$a2")" = auto/auto
    mc start -u "$a1"
    check "'start -u A1' exits 0" rc_is 0
    check_sys "A1 active before rmmod" active_as "$a1" mtty mtty-1
    a1_up=no
    active_as "$a1" mtty mtty-1 && a1_up=yes

    if rmmod mtty; then ok "rmmod mtty"; else fail "rmmod mtty"; fi
    check_sys "parent mtty is gone from $MDEV_BUS" test ! -e "$MDEV_BUS/mtty"
    check_after "$a1_up" "A1 vanished with its parent" not_active "$a1"
    mc list
    check "'mdevctl list' is empty without mtty" rc0_empty
    check_list_defined_matches "mtty unloaded"
    expect_types_text
    mc types
    expect_output "'mdevctl types' without mtty matches sysfs" "$EXP"

    if modprobe mtty; then ok "modprobe mtty"; else fail "modprobe mtty"; fi
    check_sys "parent mtty is back" test -d "$MDEV_BUS/mtty/mdev_supported_types"
    check_sys "no device came back by itself (no udev in this guest)" not_active "$a1"

    # play udev's part: 60-mdevctl.rules runs this on the parent's registration
    mc start-parent-mdevs mtty
    check "'start-parent-mdevs mtty' exits 0" rc_is 0
    check_sys "A1 is active again as mtty-1" active_as "$a1" mtty mtty-1
    check_sys "A2 is active as mtty-2" active_as "$a2" mtty mtty-2
    autostarted=no
    active_as "$a1" mtty mtty-1 && active_as "$a2" mtty mtty-2 && autostarted=yes
    check_after "$autostarted" "manual M was not started" not_active "$m"
    check_list_defined_matches "after start-parent-mdevs"
    check_list_matches_sysfs "after start-parent-mdevs"
    mc start-parent-mdevs mdpy
    check "'start-parent-mdevs mdpy' (no configs there) exits 0" rc_is 0
    check_sys "  ... and starts nothing" test "$(active_count)" = 2

    for u in "$a1" "$a2"; do
        mc stop -u "$u"
        if rc_is 0 && not_active "$u"; then ok "'stop -u' of autostart device"; else fail "'stop -u' of autostart device"; detail_last_cmd; fi
    done
    for u in "$a1" "$a2" "$m"; do
        mc undefine -u "$u"
        if rc_is 0 && [ ! -e "$CONF/mtty/$u" ]; then ok "'undefine -u' removes its config"; else fail "'undefine -u' removes its config"; detail_last_cmd; fi
    done
}

group_final() {
    check_sys "no mediated device is left" test "$(active_count)" = 0
    mc list -d
    check "'mdevctl list -d' is empty at the end" rc0_empty
    expect_types_text
    mc types
    expect_output "'mdevctl types' at the end matches sysfs" "$EXP"
}

# ---------------------------------------------------------------- mdevkit doctor

# dr ARGS... : run `mdevkit doctor`; sets RC, LAST_CMD; output in $OUT (JSON squeezed of
# whitespace into $OUT.flat, for greps of one check's fields)
dr() {
    CALLS=$((CALLS + 1))
    LAST_CMD="mdevkit doctor $*"
    timeout "$CMD_TIMEOUT" mdevkit doctor "$@" >"$OUT" 2>"$ERR" </dev/null
    RC=$?
    tr -d ' \t\n' <"$OUT" >"$OUT.flat"
}

# has_check ID SUBJECT STATUS : the last JSON run has that check with that status
has_check() { grep -qF "\"id\":\"$1\",\"subject\":\"$2\",\"status\":\"$3\"" "$OUT.flat"; }

group_doctor() {
    if ! command -v mdevkit >/dev/null 2>&1; then
        echo "  | (group doctor skipped: no mdevkit binary in this image)"
        return
    fi
    local before u p t
    before=$(active_count)
    dr --output json
    check "'mdevkit doctor' exits 0 on the booted guest (nothing fails)" rc_is 0
    timeout "$CMD_TIMEOUT" mdevkit doctor 2>&1 | sed 's/^/  |     /'
    check "the guest has no IOMMU: a warning" has_check iommu "" warn
    check "vfio, an IOMMU backend and mdev are seen loaded" \
        sh -c "grep -qF '\"id\":\"module.vfio\",\"subject\":\"\",\"status\":\"ok\"' $OUT.flat \
            && grep -qF '\"id\":\"module.vfio_iommu\",\"subject\":\"\",\"status\":\"ok\"' $OUT.flat \
            && grep -qF '\"id\":\"module.mdev\",\"subject\":\"\",\"status\":\"ok\"' $OUT.flat"
    for p in mtty mdpy mbochs; do
        check "$p has its types published (parent.types ok)" has_check parent.types "$p" ok
        for t in $(names "$MDEV_BUS/$p/mdev_supported_types"); do
            check "$p/$t has instances (type.available ok)" has_check type.available "$p/$t" ok
        done
    done
    # Fill mbochs-large, as the exhaustion group does: doctor names the devices.
    t=mbochs-large
    while [ "$(avail mbochs $t)" -gt 0 ] 2>/dev/null; do
        new_uuid >"$MDEV_BUS/mbochs/mdev_supported_types/$t/create" || break
    done
    dr --output json -p mbochs -t "$t"
    check "exhausted $t is a warning naming its devices" \
        sh -c "grep -qF '\"id\":\"type.available\",\"subject\":\"mbochs/$t\",\"status\":\"warn\"' $OUT.flat \
            && grep -q 'device(s) of this type exist' $OUT"
    for u in $(names "$MDEV_DEVS"); do echo 1 >"$MDEV_DEVS/$u/remove"; done
    u=$(new_uuid)
    mc define -u "$u" -p mtty -t mtty-1
    dr --output json -u "$u"
    check "-u: a defined mtty-1 device would start (device.start ok)" has_check device.start "$u" ok
    check_sys "-u created nothing" test "$(active_count)" = "$before"
    mc undefine -u "$u"
    dr -u "$(new_uuid)"
    check "-u of an unknown device exits 1 with FAIL device.found" \
        sh -c "[ $RC = 1 ] && grep -q '^FAIL device.found' $OUT"
}

# ---------------------------------------------------------------- kernel record

# group_record (the sample drivers' sysfs, for the host to compare with the committed record)
# shellcheck source-path=SCRIPTDIR source=record.sh
. /record.sh
# group_uevents (the kernel's uevents for an mdev and its parent, for the host to compare)
# shellcheck source-path=SCRIPTDIR source=uevents.sh
. /uevents.sh

# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- mdevkit desired state

# mk ARGS... : run mdevkit; sets RC, LAST_CMD; output in $OUT and $ERR
mk() {
    CALLS=$((CALLS + 1))
    LAST_CMD="mdevkit $*"
    timeout "$CMD_TIMEOUT" mdevkit "$@" >"$OUT" 2>"$ERR" </dev/null
    RC=$?
}

# type_devices PARENT TYPE : the UUIDs the kernel lists under that type, sorted
type_devices() { names "$MDEV_BUS/$1/mdev_supported_types/$2/devices" | sort; }

group_desired() {
    if ! command -v mdevkit >/dev/null 2>&1; then
        echo "  | (group desired skipped: no mdevkit binary in this image)"
        return
    fi
    # Counted devices take their UUIDs from the machine id; the initramfs has none.
    [ -s /etc/machine-id ] || echo 5f0c3b3e1a2d4c6b8e9f0a1b2c3d4e5f >/etc/machine-id
    local f=/tmp/desired.yaml before first second kept
    before=$(active_count)
    # A type by its name (mtty's `name` file) and by its id; a glob selecting mdpy only.
    printf '%s\n' \
        'version: 1' \
        'default-profile: samples' \
        'profiles:' \
        '  samples:' \
        '    - parents: mtty' \
        '      devices:' \
        '        - type: "Dual port serial"' \
        '          count: 2' \
        '          start: auto' \
        '    - parents: "md*"' \
        '      devices:' \
        '        - type: mdpy-vga' \
        '          count: 1' \
        '          start: auto' \
        '  smaller:' \
        '    - parents: mtty' \
        '      devices:' \
        '        - type: "Dual port serial"' \
        '          count: 1' \
        '          start: auto' \
        '  none: []' >"$f"
    mk validate -f "$f"
    check "validate accepts the file" rc_is 0
    mk plan -f "$f"
    check "plan exits 2 (changes pending) on a fresh guest" rc_is 2
    mk apply -f "$f"
    check "apply exits 0" rc_is 0
    check_sys "the kernel has 2 mtty-2 devices" test "$(type_devices mtty mtty-2 | wc -l)" = 2
    check_sys "the kernel has 1 mdpy-vga device" test "$(type_devices mdpy mdpy-vga | wc -l)" = 1
    check_sys "3 more devices in all" test "$(active_count)" = "$((before + 3))"
    mc list -d
    check "the 3 devices are mdevctl definitions, auto" \
        test "$(grep -c ' auto' "$OUT")" = 3
    mk assert -f "$f"
    check "assert exits 0 after apply" rc_is 0
    mk plan -f "$f"
    check "plan exits 0 (nothing to do) after apply" rc_is 0
    first=$(type_devices mtty mtty-2 | tr '\n' ' ')
    mk apply -f "$f"
    check "a second apply exits 0" rc_is 0
    check_sys "a second apply keeps the same UUIDs" \
        test "$(type_devices mtty mtty-2 | tr '\n' ' ')" = "$first"
    # Drift behind mdevkit's back, then repair.
    kept=$(type_devices mdpy mdpy-vga)
    if [ -n "$kept" ]; then echo 1 >"$MDEV_DEVS/$kept/remove"; fi
    mk assert -f "$f"
    check "assert exits 1 once a device was removed by hand" rc_is 1
    mk apply -f "$f"
    check_sys "apply brings the same device back" \
        test -n "$kept" -a "$(type_devices mdpy mdpy-vga)" = "$kept"
    # Another profile: only the difference changes.
    mk apply -f "$f" -c smaller
    check "switching to a smaller profile exits 0" rc_is 0
    second=$(type_devices mtty mtty-2)
    check_sys "one mtty-2 device is left, one of the two it had" \
        test "$(echo "$second" | wc -w)" = 1 -a -n "$second" -a "${first#*"$second"}" != "$first"
    check_sys "the mdpy device the other profile owned is gone" \
        test -z "$(type_devices mdpy mdpy-vga)"
    mk export
    check "export exits 0" rc_is 0
    cp "$OUT" /tmp/exported.yaml
    mk plan -f /tmp/exported.yaml
    check "the exported file plans to no changes" rc_is 0
    mk apply -f "$f" -c none
    check "the empty profile removes what apply owns" rc_is 0
    check_sys "the guest is back to its device count" test "$(active_count)" = "$before"
}

run_group() {
    GROUP=$1
    if [ -n "$RK_CHECKS_FILTER" ] && ! printf '%s\n' "$GROUP" | grep -qE -- "$RK_CHECKS_FILTER"; then
        echo "  | (group $GROUP skipped by MDEVKIT_RK_CHECKS)"
        return
    fi
    echo "# group $GROUP"
    "group_$GROUP"
    reset_state
}

for g in record uevents environment types transient multi_parent defined jsonfile exhaustion duplicate errors autostart doctor desired final; do
    run_group "$g"
done

echo "  | ($CALLS mdevctl/lsmdev invocations)"
echo "realkernel: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
