#!/bin/sh
# make bench: HTTP throughput against a bare libmicrohttpd ceiling (wrk), the
# run engine's numbers (bench/engine.py), GPU-busy share for 8 endpoints and at
# scale (bench/endpoints.py), and a 60 s wrk mix of reads and generates
# (bench/wrk_mix.py). Prints numbers; asserts nothing.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh bench
cc -O2 -std=c11 -D_GNU_SOURCE -o bench/bare_server bench/bare_server.c $(pkg-config --cflags --libs libmicrohttpd)
python3 bench/http_bench.py
python3 bench/engine.py
python3 bench/endpoints.py
python3 bench/wrk_mix.py
