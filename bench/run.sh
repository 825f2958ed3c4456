#!/bin/sh
# make bench: HTTP throughput against a bare libmicrohttpd ceiling (wrk), then
# the run engine's numbers (bench/engine.py), GPU-busy share on 8 endpoints and
# at scale (bench/endpoints.py), the cost of a server without TCP_NODELAY
# (bench/nodelay.py), the album zip (bench/zip.py), whether the webhook sender
# keeps up (bench/webhooks.py), the GPU idle through sd-server (bench/sdcpp.py),
# scrape jobs (bench/scrape.py) and a 60 s wrk mix of reads and generates
# (bench/wrk_mix.py). Prints numbers; asserts nothing.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh bench
cc -O2 -std=c11 -D_GNU_SOURCE -o bench/bare_server bench/bare_server.c $(pkg-config --cflags --libs libmicrohttpd)
python3 bench/http_bench.py
python3 bench/engine.py
# The queue's claim on a 10,000-item queue (docs/run-controls.md), against the
# release objects (make all built them).
make -s all >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -Iinclude -o bench/claim bench/claim.c \
    $(ls build/release/src/*/*.o | grep -v '/main\.o$') build/release/sql_migrations.o \
    $(pkg-config --cflags --libs libmicrohttpd jansson sqlite3 libcurl libpng zlib libcrypto uuid libarchive libxml-2.0) -lcsv -lwslay -lpthread -lm
bench/claim 2>/dev/null
python3 bench/endpoints.py
python3 bench/live.py
python3 bench/nodelay.py
python3 bench/zip.py
python3 bench/webhooks.py
python3 bench/sdcpp.py
python3 bench/scrape.py
python3 bench/wrk_mix.py
