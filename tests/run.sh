#!/bin/sh
# Runs every unit test program and every black-box test file, adds up their
# "RESULT <name> passed=N failed=N" lines and prints one summary line:
# "N passed, N failed". Exits non-zero when anything failed or crashed.
#   SETFORGE_BIN  the daemon binary the black-box tests start
#   UNIT_DIR      where the unit test programs were built
#   SF_ONLY       optional substring: run only the tests whose name has it
: "${SETFORGE_BIN:=./setforge}"
: "${UNIT_DIR:=build/release/tests}"
export SETFORGE_BIN
passed=0
failed=0
log=$(mktemp)
run_one() { # name, command...
    name=$1
    shift
    if [ -n "$SF_ONLY" ] && ! echo "$name" | grep -q "$SF_ONLY"; then
        return
    fi
    start=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    end=$(date +%s)
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
    if [ "$f" -ne 0 ]; then
        echo "FAILED $name (exit $rc, $((end - start))s):"
        grep -v '^ok ' "$log" | tail -n 60 | sed 's/^/    /'
    else
        echo "ok     $name: $p checks, $((end - start))s"
    fi
}
for t in "$UNIT_DIR"/test_*; do
    [ -x "$t" ] || continue
    run_one "unit/$(basename "$t")" "$t"
done
for t in tests/blackbox/test_*.py; do
    [ -f "$t" ] || continue
    run_one "blackbox/$(basename "$t" .py)" python3 "$t"
done
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
