#!/usr/bin/env bash
# Runs the libFuzzer harnesses that `make fuzz` built (build/fuzz/fuzz_<name>,
# one per tests/fuzz/fuzz_<name>.c) and prints, per harness: executions, CPU
# seconds, coverage (libFuzzer's final "cov:", edges of setforge's code
# reached), features, corpus size and crashes. Exits non-zero when any
# harness crashed (a sanitizer report, a leak, a failed FUZZ_ASSERT, a
# timeout) or could not run.
#   FUZZ_SECONDS  how long each harness fuzzes (default 60); 0 only replays
#                 the seed corpus
#   FUZZ_JOBS     harnesses run at once (default: the number of cores)
#   FUZZ_ONLY     optional substring: only the harnesses whose name has it
#   FUZZ_DIR      where the harnesses are (default build/fuzz)
#   FUZZ_SEED     libFuzzer's random seed (default: a new one each run); a
#                 fixed seed makes a run take the same path again, as far as
#                 its time allows (the CI smoke uses 1)
#
# Each harness starts from its seeds, tests/fuzz/corpus/<name>/ (every seed
# is run first, so a seed that once crashed is a regression test), plus what
# earlier runs on this machine found, build/fuzz/corpus/<name>/, where new
# inputs go; the seeds in the repository are never written to. An input that
# crashes is saved under build/fuzz/artifacts/<name>/ (replay it with
# build/fuzz/fuzz_<name> FILE); logs are in build/fuzz/logs/.
set -u
cd "$(dirname "$0")/.."
dir=${FUZZ_DIR:-build/fuzz}
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

names=()
for src in tests/fuzz/fuzz_*.c; do
    name=${src#tests/fuzz/fuzz_}
    name=${name%.c}
    if [ -n "${FUZZ_ONLY:-}" ] && [[ $name != *"$FUZZ_ONLY"* ]]; then
        continue
    fi
    names+=("$name")
done
if [ "${#names[@]}" -eq 0 ]; then
    echo "fuzz: no harness matches" >&2
    exit 1
fi
mkdir -p "$dir/logs"

# Runs harness $1; its log is logs/$1.log, logs/$1.rc its exit status and
# logs/$1.time its user and system CPU seconds.
run_one() {
    local name=$1 bin=$dir/fuzz_$1 log=$dir/logs/$1.log
    local seeds=tests/fuzz/corpus/$name corpus=$dir/corpus/$name artifacts=$dir/artifacts/$name
    mkdir -p "$corpus" "$artifacts"
    rm -f "$dir/logs/$name.rc" "$dir/logs/$name.time"
    touch "$dir/logs/$name.start"
    local opts=(-timeout=20 -rss_limit_mb=2048 -print_final_stats=1
                "-artifact_prefix=$artifacts/")
    if [ "$secs" -gt 0 ]; then
        opts+=("-max_total_time=$secs")
    else
        opts+=(-runs=0)
    fi
    [ -f "tests/fuzz/$name.dict" ] && opts+=("-dict=tests/fuzz/$name.dict")
    [ -n "${FUZZ_SEED:-}" ] && opts+=("-seed=$FUZZ_SEED")
    local TIMEFORMAT='%3U %3S'
    {
        time ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
            UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
            "$bin" "${opts[@]}" "$corpus" "$seeds" >"$log" 2>&1
        echo $? >"$dir/logs/$name.rc"
    } 2>"$dir/logs/$name.time"
}

declare -A pids=()
next=0
while [ "$next" -lt "${#names[@]}" ] || [ "${#pids[@]}" -gt 0 ]; do
    while [ "$next" -lt "${#names[@]}" ] && [ "${#pids[@]}" -lt "$jobs" ]; do
        run_one "${names[$next]}" &
        pids[$!]=${names[$next]}
        next=$((next + 1))
    done
    wait -n -p done_pid
    unset "pids[$done_pid]"
done

failed=0
printf '%-10s %10s %8s %7s %6s %6s %7s %7s\n' harness execs exec/s cpu_s cov ft corpus crashes
for name in "${names[@]}"; do
    log=$dir/logs/$name.log
    rc=255
    [ -f "$dir/logs/$name.rc" ] && read -r rc <"$dir/logs/$name.rc"
    read -r user sys <"$dir/logs/$name.time" 2>/dev/null || { user=0; sys=0; }
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{ print $2 }')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | awk '{ print $2 }')
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | awk '{ print $2 }')
    crashes=$(find "$dir/artifacts/$name" -type f -newer "$dir/logs/$name.start" | wc -l)
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without saving an input: still a failure
    fi
    printf '%-10s %10s %8s %7s %6s %6s %7s %7s\n' "$name" "${execs:-?}" "${rate:-?}" "$cpu" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
    if [ "$crashes" -ne 0 ]; then
        failed=$((failed + 1))
        {
            echo "--- fuzz_$name failed (exit $rc); log $log:"
            grep -E 'ERROR|FUZZ_ASSERT|SUMMARY|runtime error|#[0-9]+ 0x' "$log" | head -n 40 |
                sed 's/^/    /'
            find "$dir/artifacts/$name" -type f -newer "$dir/logs/$name.start" |
                sed "s|^|    replay: $dir/fuzz_$name |"
        }
    fi
done
if [ "$secs" -gt 0 ]; then
    what="${secs} s each"
else
    what="seed corpora replayed"
fi
echo "fuzz: ${#names[@]} harnesses, $what, $failed with crashes"
[ "$failed" -eq 0 ]
