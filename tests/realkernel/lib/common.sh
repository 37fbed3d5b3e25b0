# shellcheck shell=bash
# Shared helpers for the real-kernel test: logging, named steps, failure report.
#
# Every host-side action runs inside a named step (run_step). Noisy command
# output goes to that step's log file under $RK_LOG_DIR; if anything fails,
# the EXIT trap names the step, the reason and prints the tail of its log.

RK_STEP="(start-up)"
RK_STEP_LOG=""
RK_FAIL_REASON=""

rk_now_ms() { date +%s%3N; }

say() { printf 'realkernel: %s\n' "$*"; }

# die REASON... : record why we stop, then exit non-zero (the EXIT trap reports).
die() {
    RK_FAIL_REASON="$*"
    exit 1
}

# quiet CMD... : run CMD with its output appended to the current step's log.
quiet() {
    if [ -n "$RK_STEP_LOG" ]; then
        "$@" >>"$RK_STEP_LOG" 2>&1
    else
        "$@" >/dev/null 2>&1
    fi
}

# ERR trap: remember the first command that failed unexpectedly (set -e then
# stops the script), so that no failure goes unexplained.
RK_ERR_WHERE=""
rk_on_err() {
    [ -n "$RK_ERR_WHERE" ] || RK_ERR_WHERE="'$2' failed with status $3 ($1)"
}

rk_on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\nrealkernel: FAILED in step "%s" (exit status %s)\n' "$RK_STEP" "$rc" >&2
        if [ -n "$RK_FAIL_REASON" ]; then
            printf 'realkernel: reason: %s\n' "$RK_FAIL_REASON" >&2
        elif [ -n "$RK_ERR_WHERE" ]; then
            printf 'realkernel: reason: unexpected error: %s\n' "$RK_ERR_WHERE" >&2
        fi
        if [ -n "$RK_STEP_LOG" ] && [ -s "$RK_STEP_LOG" ]; then
            printf 'realkernel: last lines of %s:\n' "$RK_STEP_LOG" >&2
            tail -n "${RK_TAIL_LINES:-40}" "$RK_STEP_LOG" | sed 's/^/    | /' >&2
        fi
        # the guest's own summary, if it printed one, stays the closing line
        [ -z "${RK_RESULT:-}" ] || printf '%s\n' "$RK_RESULT"
    fi
}

# run_step NAME FUNCTION [ARGS...]
# Runs FUNCTION with set -e in force (it is not called from a condition, so
# errexit stays active inside it) and prints how long it took.
run_step() {
    local name=$1 t0 t1
    shift
    RK_STEP=$name
    RK_STEP_LOG="$RK_LOG_DIR/$(printf '%s' "$name" | tr -c 'a-zA-Z0-9\n' '-').log"
    : >"$RK_STEP_LOG"
    say "==> $name"
    t0=$(rk_now_ms)
    "$@"
    t1=$(rk_now_ms)
    RK_TIMINGS+=("$(printf '%-28s %6.1f s' "$name" "$(rk_ms_to_s $((t1 - t0)))")")
    say "    done in $(rk_ms_to_s $((t1 - t0))) s"
}

rk_ms_to_s() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
