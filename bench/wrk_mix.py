#!/usr/bin/env python3
"""make bench: wrk, 200 connections for 60 s, a mix of GET routes and generate
(bench/wrk_mix.lua; about 2 requests in 100 are generates of a one-item template with an
admin token, drawn meanwhile by the 2 procedural workers). Printed, never asserted:

- errors: wrk's socket errors and non-2xx/3xx answers;
- requests/s and latency p50/p99;
- the daemon's peak RSS (VmHWM; goal < 128 MiB), its threads and CPU time;
- SQLITE_BUSY: /metrics' setforge_db_busy_total (busy timeouts, and BUSY/LOCKED results)
  and setforge_db_lock_waits_total (statements that waited for the write lock), before
  and after;
- the generated items: drawn, failed, after the queue has drained.

The daemon runs with its defaults except `--per-ip-limit 256` (all 200 connections come
from 127.0.0.1, over the default 64 per address), `--access-log false`, and the example
templates. Environment: SF_WRK_SECONDS (60), SF_WRK_CONNECTIONS (200), SF_WRK_NO_GENERATE=1
(the GET routes alone, for comparison).
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon  # noqa: E402

SECONDS = int(os.environ.get("SF_WRK_SECONDS", "60"))
CONNS = int(os.environ.get("SF_WRK_CONNECTIONS", "200"))


def metrics(d):
    with urllib.request.urlopen(d.url("/metrics"), timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("setforge_db_") or line.startswith("setforge_items{"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def proc(pid):
    with open("/proc/%d/status" % pid) as f:
        s = f.read()
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {"threads": int(re.search(r"Threads:\s+(\d+)", s).group(1)),
            "hwm_kib": int(re.search(r"VmHWM:\s+(\d+)", s).group(1)),
            "cpu_s": (int(fields[11]) + int(fields[12])) / tick}


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main():
    d = Daemon("--examples", "true", "--per-ip-limit", "256")
    try:
        tpl = d.post("/api/batch-templates", {"name": "wrk", "prompt_template": "a {card}", "width": 64,
                                              "height": 64, "csv_items": [{"card": "one"}]})["id"]
        run = d.post("/api/batch-templates/%d/generate" % tpl, {"album_name": "wrk", "user_theme": "t"})["run"]
        while d.get("/api/runs/%d" % run["id"])["status"] in ("queued", "running"):
            time.sleep(0.05)
        run = d.get("/api/runs/%d" % run["id"])
        image = d.get("/api/images?limit=1")["images"][0]["id"]
        env = dict(os.environ, SF_TOKEN=d.token, SF_TEMPLATE=str(tpl), SF_RUN=str(run["id"]),
                   SF_IMAGE=str(image), SF_ALBUM=str(run["album_id"]))
        m0, p0 = metrics(d), proc(d.proc.pid)
        t0 = time.time()
        out = subprocess.run(["wrk", "-t2", "-c%d" % CONNS, "-d%ds" % SECONDS, "--timeout", "10s", "--latency",
                              "-s", os.path.join(REPO, "bench", "wrk_mix.lua"), d.url("/")],
                             capture_output=True, text=True, env=env, check=True).stdout
        wall = time.time() - t0
        p1 = proc(d.proc.pid)
        # let the generated items drain before counting them
        deadline = time.time() + 300
        while time.time() < deadline:
            m1 = metrics(d)
            if not m1.get('setforge_items{status="queued"}') and not m1.get('setforge_items{status="running"}'):
                break
            time.sleep(0.5)
        drained = time.time() - t0 - wall
        p2 = proc(d.proc.pid)

        total = int(re.search(r"(\d+) requests in", out).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = {q: ms(v, u) for q, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        sock_errors = sum(int(x) for x in sock.groups()) if sock else 0
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        non2xx = int(non2xx.group(1)) if non2xx else 0
        print("wrk -t2 -c%d -d%ds --latency -s bench/wrk_mix.lua (GET mix%s); daemon defaults but "
              "--per-ip-limit 256 --access-log false" % (
                  CONNS, SECONDS, " alone" if os.environ.get("SF_WRK_NO_GENERATE") == "1" else " + ~2% generate"))
        print("  requests %d, %.0f req/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms" % (
            total, rps, lat.get("50", float("nan")), lat.get("90", float("nan")), lat.get("99", float("nan"))))
        print("  errors: socket %s, non-2xx/3xx %d" % (sock.group(0) if sock else "none", non2xx))
        print("  daemon: peak RSS (VmHWM) %.1f MiB (goal < 128 MiB) during wrk, %.1f MiB after the drain; "
              "threads %d; CPU %.1f s in %.0f s (%.0f%% of one core)" % (
                  p1["hwm_kib"] / 1024, p2["hwm_kib"] / 1024, p1["threads"], p1["cpu_s"] - p0["cpu_s"], wall,
                  100 * (p1["cpu_s"] - p0["cpu_s"]) / wall))

        def delta(k):
            return m1.get(k, 0) - m0.get(k, 0)
        print("  SQLITE_BUSY seen: %d busy timeouts, %d BUSY/LOCKED results; %d lock waits (a writer waited "
              "for the write lock, then got it)" % (
                  delta('setforge_db_busy_total{kind="timeout"}'), delta('setforge_db_busy_total{kind="result"}'),
                  delta("setforge_db_lock_waits_total")))
        print("  the write lock: held %.1f s, waited for %.1f s in all (summed over threads), in %.0f s" % (
            delta('setforge_db_write_seconds_total{phase="hold"}'), delta('setforge_db_write_seconds_total{phase="wait"}'),
            wall))
        print("  generated items: %d succeeded, %d failed (queue drained %.1f s after wrk ended)" % (
            delta('setforge_items{status="succeeded"}'), delta('setforge_items{status="failed"}'), drained))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
