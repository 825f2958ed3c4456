#!/bin/sh
# Installs what `make fuzz` needs beyond tools/deps.sh, only when missing:
# clang and its compiler-rt, which holds libFuzzer and the sanitizer
# runtimes. The test is the real one: link a trivial fuzzer.
# Run as root (or with sudo available); prints what it would install otherwise.
: "${FUZZ_CC:=clang}"
can_link_fuzzer() {
    dir=$(mktemp -d) || return 1
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
        >"$dir/probe.c"
    "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$dir/probe" "$dir/probe.c" >/dev/null 2>&1
    rc=$?
    rm -rf "$dir"
    return $rc
}
can_link_fuzzer && exit 0
missing="clang libclang-rt-dev"
echo "setforge: installing missing packages for make fuzz: $missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setforge: run as root, or install: $missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing || exit 1
can_link_fuzzer || {
    echo "setforge: $FUZZ_CC still cannot link a libFuzzer program" >&2
    exit 1
}
