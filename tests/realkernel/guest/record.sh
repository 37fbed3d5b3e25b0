#!/bin/sh
# shellcheck shell=dash  # (busybox ash; dash is the nearest dialect ShellCheck knows)
# The `record` check group, sourced by checks.sh (whose helpers it uses: names, new_uuid,
# json_str, check_sys, MDEV_BUS, MDEV_DEVS).
#
# The sample drivers' sysfs as this kernel shows it, for the host to compare with
# tests/realkernel/recorded/samples.json, which mdev-sim's `samples` profile is tested
# against. Printed between markers as "record| " lines. Deterministic: no UUIDs (a
# device's own UUID in an attribute becomes {uuid}), no timing. Devices are created and
# removed by writing sysfs directly: this records the kernel, not mdevctl.

REC_PARENTS="mtty mdpy mbochs"
REC_UUIDS=""      # UUIDs of the devices created so far, in order (index 0 first)
REC_TYPES=""      # their parent/type
REC_SEP=""

rec() { printf 'record| %s\n' "$*"; }

# json_of FILE [UUID] : FILE's exact content as a JSON string (UUID replaced by
# {uuid}), or null when it does not exist. Read through a copy: sysfs files claim
# 4096 bytes, which would mislead tools that seek.
json_of() {
    [ -e "$1" ] || { printf null; return; }
    cat "$1" >/tmp/rk.rec.val 2>/dev/null || { printf '"<unreadable>"'; return; }
    awk -v u="${2:-}" 'BEGIN { printf "\"" }
        { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t")
          if (u != "") gsub(u, "{uuid}")
          printf "%s%s", sep, $0; sep = "\\n" }' /tmp/rk.rec.val
    [ "$(tail -c 1 /tmp/rk.rec.val | wc -l)" = 1 ] && printf '\\n'
    printf '"'
}

# errno_of FILE : the errno name for the strerror text at the end of a shell
# write error ("sh: write error: No space left on device")
errno_of() {
    case $(sed 's/.*: //' "$1") in
        "No space left on device") echo ENOSPC ;;
        "Too many users") echo EUSERS ;;
        "File exists") echo EEXIST ;;
        "Invalid argument") echo EINVAL ;;
        "No such device") echo ENODEV ;;
        "Device or resource busy") echo EBUSY ;;
        "Numerical result out of range") echo ERANGE ;;
        "Permission denied") echo EACCES ;;
        "Cannot allocate memory") echo ENOMEM ;;
        *) printf 'unknown: %s\n' "$(cat "$1")" ;;
    esac
}

# sysfs_write VALUE FILE : sets REC_RESULT to ok or the errno name. busybox's echo
# (unlike its printf) reports a failed write on stderr; no value here starts with "-".
sysfs_write() {
    if (echo -n "$1" >"$2") 2>/tmp/rk.rec.err; then REC_RESULT=ok; else REC_RESULT=$(errno_of /tmp/rk.rec.err); fi
}

# the available_instances of every type, as one JSON object
rec_available() {
    local p t sep=""
    printf '{'
    for p in $REC_PARENTS; do
        for t in $(names "$MDEV_BUS/$p/mdev_supported_types"); do
            printf '%s"%s/%s": %s' "$sep" "$p" "$t" "$(cat "$MDEV_BUS/$p/mdev_supported_types/$t/available_instances")"
            sep=", "
        done
    done
    printf '}'
}

# the files in a device's vendor/ group, as one JSON object
rec_attributes() { # UUID
    local f sep=""
    printf '{'
    for f in $(names "$MDEV_DEVS/$1/vendor"); do
        printf '%s"vendor/%s": %s' "$sep" "$f" "$(json_of "$MDEV_DEVS/$1/vendor/$f" "$1")"
        sep=", "
    done
    printf '}'
}

rec_step() { # JSON fields without braces
    rec "    $REC_SEP{$1, \"result\": \"$REC_RESULT\", \"available\": $(rec_available)}"
    REC_SEP=", "
}

# how many distinct types the created devices had
# shellcheck disable=SC2086 # split on purpose
rec_created_types() { printf '%s\n' $REC_TYPES | sort -u | wc -l; }

# shellcheck disable=SC2086 # split on purpose
nth_uuid() { printf '%s\n' $REC_UUIDS | sed -n "$(($1 + 1))p"; }

# rec_create PARENT TYPE : a fresh UUID
rec_create() {
    local u attrs=""
    u=$(new_uuid)
    sysfs_write "$u" "$MDEV_BUS/$1/mdev_supported_types/$2/create"
    if [ "$REC_RESULT" = ok ]; then
        attrs=", \"attributes\": $(rec_attributes "$u")"
        REC_UUIDS="$REC_UUIDS $u"
        REC_TYPES="$REC_TYPES $1/$2"
    fi
    rec_step "\"create\": \"$1/$2\"$attrs"
}

# rec_create_existing PARENT TYPE N : the UUID of the N-th device created (from 0)
rec_create_existing() {
    sysfs_write "$(nth_uuid "$3")" "$MDEV_BUS/$1/mdev_supported_types/$2/create"
    rec_step "\"create\": \"$1/$2\", \"uuid_of\": $3"
}

# rec_create_value PARENT TYPE VALUE : a literal (malformed) value
rec_create_value() {
    sysfs_write "$3" "$MDEV_BUS/$1/mdev_supported_types/$2/create"
    rec_step "\"create\": \"$1/$2\", \"value\": \"$(json_str "$3")\""
}

rec_remove() { # N
    sysfs_write 1 "$MDEV_DEVS/$(nth_uuid "$1")/remove"
    rec_step "\"remove\": $1"
}

# rec_fill PARENT TYPE : create until the kernel refuses (at most 16 tries)
rec_fill() {
    local n=0
    while [ "$n" -lt 16 ]; do
        rec_create "$1" "$2"
        [ "$REC_RESULT" = ok ] || return 0
        n=$((n + 1))
    done
}

group_record() {
    local p t sep n d
    echo "=== realkernel-guest: record begin ==="
    rec '{'
    rec '  "parents": ['
    sep=""
    for p in $REC_PARENTS; do
        rec "    $sep{\"parent\": \"$p\", \"types\": ["
        n=""
        for t in $(names "$MDEV_BUS/$p/mdev_supported_types"); do
            d=$MDEV_BUS/$p/mdev_supported_types/$t
            rec "      $n{\"id\": \"$t\", \"name\": $(json_of "$d/name"), \"description\": $(json_of "$d/description"), \"device_api\": $(json_of "$d/device_api"), \"available_instances\": $(json_of "$d/available_instances")}"
            n=", "
        done
        rec "    ]}"
        sep=", "
    done
    rec '  ],'
    rec '  "steps": ['
    # one device of each type, in order
    for p in $REC_PARENTS; do
        for t in $(names "$MDEV_BUS/$p/mdev_supported_types"); do rec_create "$p" "$t"; done
    done
    # then until each parent refuses
    rec_fill mtty mtty-2
    rec_fill mdpy mdpy-hd
    rec_fill mbochs mbochs-large
    # a UUID that exists on another parent, on a full and on a free parent
    rec_create_existing mdpy mdpy-vga 0
    rec_create_existing mtty mtty-1 3
    # malformed values
    rec_create_value mtty mtty-1 not-a-uuid
    rec_create_value mtty mtty-1 ""
    # removal gives capacity back
    rec_remove 0
    rec_remove 2
    rec_remove 6
    rec_create mtty mtty-2
    rec_create mdpy mdpy-xga
    rec_create mbochs mbochs-medium
    rec '  ]'
    rec '}'
    echo "=== realkernel-guest: record end ==="
    # a record without a device of some type would not show that type at work
    n=0
    for p in $REC_PARENTS; do
        n=$((n + $(names "$MDEV_BUS/$p/mdev_supported_types" | wc -l)))
    done
    check_sys "the record created a device of each of the $n types" test "$(rec_created_types)" = "$n"
}
