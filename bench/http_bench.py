"""HTTP benchmark: setforge's read routes against a bare libmicrohttpd server.

wrk, 2 threads, 32 connections, on the 2-core machine (wrk shares the cores).
Both servers run a 2-thread epoll pool. The bare server answers a fixed body
of the same size, so the ratio is the cost of routing, SQLite and JSON.
Targets (issue 3): >= 50% of the ceiling, p99 < 10 ms. The template and
album reads are served from the response cache (src/http/cache.c) when
nothing was written since; the "(no cache)" rows show the SQLite path.
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon, free_port  # noqa: E402

DURATION = os.environ.get("SF_BENCH_SECONDS", "5")


def wrk(url):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ss" % DURATION, "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(errors.group(1)) if errors else 0


def body_size(url):
    with urllib.request.urlopen(url) as r:
        return len(r.read())


def bare(size):
    port = free_port()
    p = subprocess.Popen([os.path.join(REPO, "bench", "bare_server"), str(port), str(size), "2"],
                         stdout=subprocess.PIPE)
    p.stdout.readline()
    try:
        return wrk("http://127.0.0.1:%d/" % port)
    finally:
        p.terminate()
        p.wait()


def measure(d, path, label):
    size = body_size(d.url(path))
    rps, p99, errors = wrk(d.url(path))
    time.sleep(0.5)
    bare_rps, _, _ = bare(size)
    print("%-36s %6d %9.0f %9.0f %8.0f%% %5.2fms %d" % (label, size, rps, bare_rps,
                                                       100 * rps / bare_rps, p99, errors))


def main():
    print("HTTP read routes, wrk -t2 -c32 -d%ss, 2 server threads" % DURATION)
    print("%-36s %6s %9s %9s %9s %7s %s" % ("route", "bytes", "req/s", "bare", "ratio", "p99", "errors"))
    d = Daemon("--examples", "true", "--threads", "2")
    try:
        for path in ("/api/batch-templates/1", "/api/batch-templates", "/api/health"):
            measure(d, path, path)
    finally:
        d.stop()
    # The same reads when every one goes to SQLite: what a client sees right
    # after a write, or with the response cache turned off.
    d = Daemon("--examples", "true", "--threads", "2", "--response-cache", "false")
    try:
        for path in ("/api/batch-templates/1", "/api/batch-templates"):
            measure(d, path, path + " (no cache)")
    finally:
        d.stop()


if __name__ == "__main__":
    main()
