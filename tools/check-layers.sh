#!/bin/sh
# Checks that every #include in src/ points the way docs/architecture.md
# draws the layers, with no exceptions:
#
#   http     -> util
#   api      -> http (http/http.h and http/router.h: request, response and
#               route types only), store, queue, util
#   queue    -> store, backends, util
#   backends -> util
#   cli      -> backends/http_client.h (the one outbound client), util
#   store    -> util
#   util     -> (nothing else)
#   main.c   -> everything
#
# A layer may always include its own headers and include/setforge.h. The
# libraries that belong to one layer stay there: <microhttpd.h> in http/,
# <curl/curl.h> and libxml2 (<libxml/...>) in backends/, <sqlite3.h> in store/,
# <archive.h> in util/ (util/zipstream.c). cli/ (the terminal client) reaches
# libcurl only through backends/http_client.h.
#
# Prints each crossing as "file:line: layer -> what" and a RESULT line for
# tests/run.sh. Exit 1 when anything crosses.
#   tools/check-layers.sh [SRC_DIR]     check a tree (default: src)
#   tools/check-layers.sh --self-test   prove the check catches crossings
set -u

allowed() { # layer, included path ("store/db.h") -> 0 when allowed
    layer=$1
    inc=$2
    case "$inc" in
    setforge.h) return 0 ;;
    */*) target=${inc%%/*} ;;
    *) return 0 ;; # a header beside the file (generated ones)
    esac
    [ "$target" = "$layer" ] && return 0
    case "$layer:$target" in
    main:*) return 0 ;;
    http:util) return 0 ;;
    api:util | api:store | api:queue) return 0 ;;
    api:http) case "$inc" in http/http.h | http/router.h) return 0 ;; esac ;;
    queue:store | queue:backends | queue:util) return 0 ;;
    backends:util) return 0 ;;
    cli:util) return 0 ;;
    cli:backends) case "$inc" in backends/http_client.h) return 0 ;; esac ;;
    store:util) return 0 ;;
    esac
    return 1
}

library_allowed() { # layer, <library header> -> 0 when allowed
    case "$2" in
    microhttpd.h) [ "$1" = http ] ;;
    curl/*) [ "$1" = backends ] ;;
    libxml/*) [ "$1" = backends ] ;;
    sqlite3.h) [ "$1" = store ] ;;
    archive.h | archive_entry.h) [ "$1" = util ] ;;
    *) return 0 ;;
    esac
}

check_tree() { # src dir -> prints crossings, returns their count in $crossings
    src=$1
    crossings=0
    files=0
    for f in $(find "$src" -name '*.[ch]' | sort); do
        files=$((files + 1))
        rel=${f#"$src"/}
        case "$rel" in
        */*) layer=${rel%%/*} ;;
        *) layer=main ;;
        esac
        out=$(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" | while IFS= read -r line; do
            num=${line%%:*}
            text=${line#*:}
            case "$text" in
            *'"'*)
                inc=$(echo "$text" | sed 's/.*"\([^"]*\)".*/\1/')
                allowed "$layer" "$inc" || echo "$rel:$num: $layer -> $inc"
                ;;
            *)
                inc=$(echo "$text" | sed 's/.*<\([^>]*\)>.*/\1/')
                library_allowed "$layer" "$inc" || echo "$rel:$num: $layer -> <$inc>"
                ;;
            esac
        done)
        if [ -n "$out" ]; then
            echo "$out"
            crossings=$((crossings + $(echo "$out" | wc -l)))
        fi
    done
}

if [ "${1:-}" = "--self-test" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/http" "$tmp/api" "$tmp/queue" "$tmp/store" "$tmp/util" "$tmp/backends" "$tmp/cli"
    pass=0
    fail=0
    expect() { # what, expected crossings
        check_tree "$tmp" >/dev/null
        if [ "$crossings" -eq "$2" ]; then
            echo "ok $1"
            pass=$((pass + 1))
        else
            echo "not ok $1: $crossings crossings, expected $2"
            fail=$((fail + 1))
        fi
    }
    printf '#include "util/xalloc.h"\n#include <microhttpd.h>\n' >"$tmp/http/a.c"
    printf '#include "http/http.h"\n#include "store/db.h"\n#include "queue/engine.h"\n' >"$tmp/api/a.c"
    printf '#include "store/db.h"\n#include "backends/backend.h"\n' >"$tmp/queue/a.c"
    printf '#include "http/server.h"\n#include "store/db.h"\n' >"$tmp/main.c"
    printf '#include "backends/http_client.h"\n#include "util/xalloc.h"\n' >"$tmp/cli/a.c"
    expect "allowed includes pass" 0
    printf '#include "store/db.h"\n' >"$tmp/http/b.c"
    expect "http -> store is caught" 1
    printf '#include "http/server.h"\n' >"$tmp/api/b.c"
    expect "api -> http/server.h is caught" 2
    printf '#include <microhttpd.h>\n#  include "api/api.h"\n' >"$tmp/queue/b.h"
    expect "queue -> <microhttpd.h> and indented api include are caught" 4
    printf '#include "queue/queue.h"\n' >"$tmp/store/b.c"
    printf '#include "store/db.h"\n' >"$tmp/backends/b.c"
    printf '#include "backends/backend.h"\n' >"$tmp/util/b.c"
    expect "store -> queue, backends -> store, util -> backends are caught" 7
    printf '#include "store/db.h"\n#include "backends/backend.h"\n#include <curl/curl.h>\n' >"$tmp/cli/b.c"
    expect "cli -> store, backends/backend.h, <curl/curl.h> are caught" 10
    echo "RESULT check_layers_self_test passed=$pass failed=$fail"
    [ "$fail" -eq 0 ]
    exit
fi

check_tree "${1:-src}"
if [ "$crossings" -eq 0 ]; then
    echo "ok: $files files, no include crosses a layer"
    echo "RESULT check_layers passed=$files failed=0"
else
    echo "$crossings includes cross a layer (see tools/check-layers.sh)"
    echo "RESULT check_layers passed=$((files - crossings)) failed=$crossings"
    exit 1
fi
