#!/usr/bin/env bash
# Runs every unit test program and every black-box test file, several at a
# time, adds up their "RESULT <name> passed=N failed=N" lines and prints one
# summary line: "N passed, N failed". Exits non-zero when anything failed or
# crashed.
#   SETFORGE_BIN  the daemon binary the black-box tests start
#   UNIT_DIR      where the unit test programs were built
#   SF_ONLY       optional substring: run only the tests whose name has it
#   SF_JOBS       how many test programs run at once (default: the number of
#                 cores, at least 2)
# The longest programs start first: each run writes how long every program
# took to test-seconds beside UNIT_DIR, and the next run orders by it (those
# without a time, first of all).
#
# Running them side by side is safe because each program owns what it
# touches: every unit program makes its own temporary files, every black-box
# file starts its own daemons, each with a fresh temp dir and database on a
# port that the harness reserves across processes (harness.py free_port).
# Each program's output goes to its own log; its "ok"/"FAILED" line (with the
# log's tail on failure) is printed whole when it ends, in the order they end.
: "${SETFORGE_BIN:=./setforge}"
: "${UNIT_DIR:=build/release/tests}"
export SETFORGE_BIN
if [ -z "$SF_JOBS" ]; then
    SF_JOBS=$(nproc 2>/dev/null || echo 2)
    [ "$SF_JOBS" -ge 2 ] || SF_JOBS=2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Each job runs in its own process group, which an interrupt is passed on to:
# a test file then stops the daemons it started, as when it runs alone.
set -m
declare -A pids # pid (= process group) of a running job -> its job number
trap 'for p in "${!pids[@]}"; do kill -INT -- "-$p" 2>/dev/null; done; wait; exit 130' INT TERM

names=() # test name, by job number
cmds=()  # its command line (paths have no spaces)
add() {  # name, command...
    if [ -n "$SF_ONLY" ] && ! echo "$1" | grep -q "$SF_ONLY"; then
        return
    fi
    names+=("$1")
    shift
    cmds+=("$*")
}
# the layers of docs/architecture.md, and proof that the check catches a crossing
add "tools/check_layers" sh tools/check-layers.sh
add "tools/check_layers_self_test" sh tools/check-layers.sh --self-test
for t in tests/blackbox/test_*.py; do
    [ -f "$t" ] && add "blackbox/$(basename "$t" .py)" python3 "$t"
done
for t in tests/unit/test_*.c; do # a program left from a removed test is not run
    [ -f "$t" ] && add "unit/$(basename "$t" .c)" "$UNIT_DIR/$(basename "$t" .c)"
done

times_file=$(dirname "$UNIT_DIR")/test-seconds # lines "name seconds"
declare -A last_secs
if [ -f "$times_file" ]; then
    while read -r name secs; do
        last_secs[$name]=$secs
    done <"$times_file"
fi
order=() # job numbers, longest last time first
for i in "${!names[@]}"; do
    echo "${last_secs[${names[$i]}]:-999999} $i"
done | sort -k1,1nr -k2,2n >"$work/order"
while read -r _ i; do
    order+=("$i")
done <"$work/order"

# Runs job $1 in the background; its log is $work/$1.log, and $work/$1.rc
# holds "exit-status seconds" once it has ended.
start_job() {
    (
        start=$(date +%s)
        ${cmds[$1]} </dev/null >"$work/$1.log" 2>&1
        rc=$?
        echo "$rc $(($(date +%s) - start))" >"$work/$1.rc"
    ) &
    pids[$!]=$1
}

passed=0
failed=0
# Adds up job $1's RESULT line and prints its ok/FAILED line.
report() {
    local i=$1 name=${names[$1]} log=$work/$1.log rc=255 secs=0 line p f
    [ -f "$work/$i.rc" ] && read -r rc secs <"$work/$i.rc"
    line=$(grep '^RESULT ' "$log" | tail -n 1)
    p=$(echo "$line" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
    if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
        f=$((f + 1)) # a crash or a missing RESULT line is a failure
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    last_secs[$name]=$secs
    if [ "$f" -ne 0 ]; then
        echo "FAILED $name (exit $rc, ${secs}s):"
        grep -v '^ok ' "$log" | tail -n 60 | sed 's/^/    /'
    else
        echo "ok     $name: $p checks, ${secs}s"
    fi
}

next=0
while [ "$next" -lt "${#order[@]}" ] || [ "${#pids[@]}" -gt 0 ]; do
    while [ "$next" -lt "${#order[@]}" ] && [ "${#pids[@]}" -lt "$SF_JOBS" ]; do
        start_job "${order[$next]}"
        next=$((next + 1))
    done
    wait -n -p done_pid
    i=${pids[$done_pid]}
    unset "pids[$done_pid]"
    report "$i"
done
if [ -d "$(dirname "$times_file")" ]; then
    for name in "${!last_secs[@]}"; do
        echo "$name ${last_secs[$name]}"
    done | sort >"$times_file"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
