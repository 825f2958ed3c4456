"""Multi-endpoint benchmark (issue 5 and issue 9 targets, printed, never asserted).

Eight fake A1111 servers (tests/fakes/fake_a1111.py), each taking 200 ms per
image with concurrency 1, and a 400-item run of 64x64 images:
- GPU-busy share = sum of the endpoints' busy time / (8 x wall time), where
  busy time is measured by each server (request received -> answer sent) and
  wall time from the generate call to the last answer (target >= 97%);
- the gap between an endpoint answering and receiving its next item
  (p50, p99, max; target p99 < 5 ms).

Then the scale figure (issue 9): for each N in SF_SCALE_ENDPOINTS (250,500,1000), N
simulated GPUs at 1 image/s each (bench/fake_gpus.py, one asyncio process serving N
ports) and N x SF_SCALE_SECONDS (30) items: GPU-busy share over the whole run and over
its middle 80% (goal >= 99%), the gap p50/p99, the daemon's CPU (% of one core), threads
and peak RSS, and the fake's own CPU (it shares the two cores).
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon  # noqa: E402

N_ENDPOINTS = 8
ITEMS = 400
DELAY_MS = 200


def start_fake():
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "fakes", "fake_a1111.py"), "--port", "0",
                          "--mode", "slow", "--delay-ms", str(DELAY_MS)], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    return p, port


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    fakes = [start_fake() for _ in range(N_ENDPOINTS)]
    fd, cfg = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoints": [{"name": "gpu%d" % i, "type": "a1111", "url": "http://127.0.0.1:%d" % port}
                                 for i, (_, port) in enumerate(fakes)]}, f)
    d = Daemon("--config", cfg)
    try:
        rows = "\n".join("item %d" % i for i in range(ITEMS))
        tid = d.post("/api/batch-templates", {"name": "bench", "prompt_template": "a {name}",
                                              "csv": "name\n" + rows + "\n", "width": 64, "height": 64})["id"]
        t0 = time.time()
        run = d.post("/api/batch-templates/%d/generate" % tid, {"album_name": "b", "user_theme": "t"})["run"]
        while d.get("/api/runs/%d" % run["id"])["status"] in ("queued", "running"):
            time.sleep(0.05)
        status = d.get("/api/runs/%d" % run["id"])
        busy = 0.0
        gaps = []
        last_done = 0.0
        for _, port in fakes:
            with urllib.request.urlopen("http://127.0.0.1:%d/_fake/requests" % port) as r:
                reqs = [q for q in json.loads(r.read()) if q["path"] == "/sdapi/v1/txt2img"]
            reqs.sort(key=lambda q: q["t_received"])
            for a, b in zip(reqs, reqs[1:]):
                gaps.append((b["t_received"] - a["t_done"]) * 1000)
            busy += sum(q["t_done"] - q["t_received"] for q in reqs)
            last_done = max([last_done] + [q["t_done"] for q in reqs])
        wall = last_done - t0
        print("%d endpoints x %d ms per image, concurrency 1, %d items: run %s, %d images" % (
            N_ENDPOINTS, DELAY_MS, ITEMS, status["status"], status["completed_items"]))
        print("  wall %.2f s (ideal %.2f s); GPU-busy share %.1f%% (target >= 97%%)" % (
            wall, ITEMS * DELAY_MS / 1000 / N_ENDPOINTS, 100 * busy / (N_ENDPOINTS * wall)))
        print("  gap between an answer and the next request on the same endpoint: "
              "p50 %.2f ms, p99 %.2f ms, max %.2f ms (target p99 < 5 ms)" % (
                  percentile(gaps, 0.5), percentile(gaps, 0.99), max(gaps)))
    finally:
        d.stop()
        for p, _ in fakes:
            p.terminate()
            p.wait()
        os.unlink(cfg)


SCALE_SIZES = [int(x) for x in os.environ.get("SF_SCALE_ENDPOINTS", "250,500,1000").split(",") if x]
SCALE_SECONDS = int(os.environ.get("SF_SCALE_SECONDS", "30"))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_of(pid, key):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(key + r":\s+(\d+)", f.read()).group(1))


def busy_within(spans, lo, hi):
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in spans)


def scale(n):
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    fake = subprocess.Popen([sys.executable, os.path.join(REPO, "bench", "fake_gpus.py"), "--count", str(n),
                             "--delay-ms", "1000", "--out", out], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    ports = json.loads(fake.stdout.readline().split(" ", 1)[1])
    fd, cfg = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoints": [{"name": "gpu%d" % i, "type": "a1111", "url": "http://127.0.0.1:%d" % port}
                                 for i, port in enumerate(ports)]}, f)
    d = Daemon("--config", cfg)
    try:
        items = n * SCALE_SECONDS
        nruns = math.ceil(items / 10000)  # a template holds at most 10,000 items
        per_run = items // nruns
        items = per_run * nruns
        rows = "\n".join("item %d" % i for i in range(per_run))
        tid = d.post("/api/batch-templates", {"name": "scale", "prompt_template": "a {name}",
                                              "csv": "name\n" + rows + "\n", "width": 64, "height": 64})["id"]
        threads_idle = status_of(d.proc.pid, "Threads")
        c0, f0, t0 = cpu_s(d.proc.pid), cpu_s(fake.pid), time.time()
        runs = [d.post("/api/batch-templates/%d/generate" % tid, {"album_name": "s%d" % k, "user_theme": "t"})["run"]
                for k in range(nruns)]
        threads = 0
        for run in runs:
            while d.get("/api/runs/%d" % run["id"])["status"] in ("queued", "running"):
                threads = max(threads, status_of(d.proc.pid, "Threads"))
                time.sleep(0.5)
        c1, f1, t1 = cpu_s(d.proc.pid), cpu_s(fake.pid), time.time()
        done = sum(d.get("/api/runs/%d" % r["id"])["completed_items"] for r in runs)
        failed = sum(d.get("/api/runs/%d" % r["id"])["failed_items"] for r in runs)
        hwm = status_of(d.proc.pid, "VmHWM")
        with urllib.request.urlopen(d.url("/metrics")) as r:
            lines = r.read().decode().splitlines()
        db = {k: float(v) for k, v in (x.rsplit(" ", 1) for x in lines if x.startswith("setforge_db_"))}
    finally:
        d.stop()
        fake.stdin.close()
        fake.wait()
        os.unlink(cfg)
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    spans = res["spans"]
    last = max(b for sp in spans for _, b in sp)
    wall = last - t0
    whole = sum(busy_within(sp, t0, last) for sp in spans) / (n * wall)
    lo, hi = t0 + 0.1 * wall, t0 + 0.9 * wall
    middle = sum(busy_within(sp, lo, hi) for sp in spans) / (n * (hi - lo))
    gaps = res["gaps_ms"]
    print("%d simulated GPUs x 1 image/s, concurrency 1, %d items in %d runs: %d done, %d failed" % (
        n, items, len(runs), done, failed))
    print("  wall %.1f s (ideal %.0f s); GPU-busy share %.1f%% over the whole run, %.1f%% over its middle 80%% "
          "(goal >= 99%%); gap p50 %.1f ms, p99 %.1f ms" % (
              wall, items / n, 100 * whole, 100 * middle, percentile(gaps, 0.5), percentile(gaps, 0.99)))
    print("  daemon: CPU %.0f%% of one core, threads %d (idle %d), peak RSS %.1f MiB; the fake GPUs' process: "
          "CPU %.0f%%" % (100 * (c1 - c0) / (t1 - t0), threads, threads_idle, hwm / 1024,
                          100 * (f1 - f0) / (t1 - t0)))
    print("  SQLite: %d lock waits (a writer found the write lock held and slept), busy timeouts %d, "
          "BUSY results %d" % (db.get("setforge_db_lock_waits_total", -1),
                               db.get('setforge_db_busy_total{kind="timeout"}', -1),
                               db.get('setforge_db_busy_total{kind="result"}', -1)))
    hold = db.get('setforge_db_write_seconds_total{phase="hold"}', float("nan"))
    wait = db.get('setforge_db_write_seconds_total{phase="wait"}', float("nan"))
    print("  the write lock: held %.1f s of %.1f s (%.0f%%), %.1f ms per item; writers waited %.1f s in all" % (
        hold, t1 - t0, 100 * hold / (t1 - t0), 1000 * hold / max(1, done), wait))


if __name__ == "__main__":
    if os.environ.get("SF_SCALE_ONLY") != "1":
        main()
    for size in SCALE_SIZES:
        scale(size)
