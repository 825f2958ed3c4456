#!/bin/sh
# make bench: HTTP throughput against a bare libmicrohttpd ceiling (wrk), then
# the run engine's numbers (bench/engine.py), GPU-busy share on 8 endpoints
# (bench/endpoints.py) and the cost of a server without TCP_NODELAY
# (bench/nodelay.py), and whether the webhook sender keeps up (bench/webhooks.py).
# Prints numbers; asserts nothing.
set -eu
cd "$(dirname "$0")/.."
command -v wrk >/dev/null 2>&1 || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cc -O2 -std=c11 -D_GNU_SOURCE -o bench/bare_server bench/bare_server.c $(pkg-config --cflags --libs libmicrohttpd)
python3 bench/http_bench.py
python3 bench/engine.py
python3 bench/endpoints.py
python3 bench/nodelay.py
python3 bench/webhooks.py
