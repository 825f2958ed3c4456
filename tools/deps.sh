#!/bin/sh
# Installs the Debian packages setforge needs, only when they are missing.
# Run as root (or with sudo available); prints what it would install otherwise.
#   tools/deps.sh        what make, make test, asan and tsan need
#   tools/deps.sh fuzz   and clang with its compiler-rt (libFuzzer and the
#                        sanitizer runtimes), for make fuzz
#   tools/deps.sh bench  and wrk, for make bench (never for make test)
# The browser test (tests/browser/, docs/web.md) needs Debian's chromium and
# Node.js, and playwright-core from npm (tests/browser/package-lock.json,
# installed with npm ci; it drives /usr/bin/chromium and downloads no browser).
# The tests' webhook receiver (tests/webhooks/) needs Node.js and its one npm
# package, the Standard Webhooks reference library: installed from
# tests/webhooks/package-lock.json into tests/webhooks/node_modules (npm ci)
# when missing.
# The OpenAPI lint (tests/blackbox/test_openapi.py, docs/openapi.md) runs
# Redocly's CLI from npm (tests/openapi/package-lock.json, npm ci); it needs
# Node.js >= 20.19.
: "${FUZZ_CC:=clang}"
# The test for the fuzz packages is the real one: link a trivial fuzzer.
can_link_fuzzer() {
    dir=$(mktemp -d) || return 1
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$dir/probe.c"
    "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$dir/probe" "$dir/probe.c" >/dev/null 2>&1
    rc=$?
    rm -rf "$dir"
    return $rc
}
missing=""
need_pkg() { # pkg-config name, Debian package
    pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"
}
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
need_pkg libmicrohttpd libmicrohttpd-dev
need_pkg jansson libjansson-dev
need_pkg sqlite3 libsqlite3-dev
need_pkg libcurl libcurl4-openssl-dev
need_pkg libpng libpng-dev
need_pkg zlib zlib1g-dev
need_pkg libcrypto libssl-dev
need_pkg uuid uuid-dev
need_pkg libarchive libarchive-dev
# unzip: the zip tests check the archives with unzip -t.
command -v unzip >/dev/null 2>&1 || missing="$missing unzip"
need_pkg libxml-2.0 libxml2-dev
# libcsv ships no pkg-config file: look for its header.
[ -f /usr/include/csv.h ] || missing="$missing libcsv-dev"
# Nor does libwslay (websocket frames: ComfyUI's live steps, docs/live.md).
[ -f /usr/include/wslay/wslay.h ] || missing="$missing libwslay-dev"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ "${1:-}" = fuzz ] && ! can_link_fuzzer; then
    missing="$missing clang libclang-rt-dev"
fi
if [ "${1:-}" = bench ]; then
    command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
fi
# The tests' npm packages, each pinned by its package-lock.json and installed
# with npm ci when missing: the webhook receiver's library (docs/webhooks.md)
# the browser test's playwright-core (docs/web.md) and the OpenAPI lint's
# @redocly/cli (docs/openapi.md).
npm_ci() { # folder under tests/, a path that exists once installed, what for
    dir=$(dirname "$0")/../tests/$1
    [ -e "$dir/node_modules/$2" ] && return 0
    echo "setforge: installing $3's npm packages (tests/$1)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
}
# Redocly's CLI needs Node.js >= 20.19; Debian 12's nodejs is 18. When the
# machine's node is older, the lint gets its own Node.js 22 from the npm
# registry (the node-linux-<arch> package: the official binary), into
# tests/openapi/runtime; tests/blackbox/test_openapi.py runs Redocly with it.
NODE_RUNTIME=22.23.5
node_new_enough() {
    v=$(node -p 'process.versions.node' 2>/dev/null) || return 1
    major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
    [ "$major" -gt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -ge 19 ]; }
}
lint_runtime() {
    node_new_enough && return 0
    case $(uname -m) in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "setforge: node $(node -v 2>/dev/null) is older than 20.19 and no Node.js package exists for $(uname -m): the OpenAPI lint test will fail" >&2; return 0 ;;
    esac
    dir=$(dirname "$0")/../tests/openapi/runtime
    [ -x "$dir/node_modules/node-linux-$arch/bin/node" ] && return 0
    echo "setforge: node $(node -v 2>/dev/null) is older than Redocly needs (20.19); installing Node.js $NODE_RUNTIME for the OpenAPI lint (tests/openapi/runtime)"
    # Its own package.json, so that npm installs here and not in tests/openapi.
    mkdir -p "$dir" && echo '{"private": true}' >"$dir/package.json" &&
        npm install --prefix "$dir" --no-package-lock --no-audit --no-fund --loglevel=error \
            "node-linux-$arch@$NODE_RUNTIME" || exit 1
}
npm_deps() {
    npm_ci webhooks standardwebhooks "the webhook receiver"
    npm_ci browser playwright-core/package.json "the browser test"
    npm_ci openapi @redocly/cli/package.json "the OpenAPI lint"
    lint_runtime
}
[ -z "$missing" ] && { npm_deps; exit 0; }
echo "setforge: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setforge: run as root, or install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing || exit 1
if [ "${1:-}" = fuzz ] && ! can_link_fuzzer; then
    echo "setforge: $FUZZ_CC still cannot link a libFuzzer program" >&2
    exit 1
fi
npm_deps
