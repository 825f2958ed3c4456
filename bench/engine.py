"""Run engine benchmark (issue 4 targets, printed, never asserted).

- generate latency for 1,000 and 10,000 items (target < 50 ms and < 500 ms);
- end-to-end throughput with 64x64 procedural images and no delay
  (target >= 1,000 items/s on 2 cores);
- peak RSS of the daemon during a 10,000-item run (target < 64 MiB).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Daemon  # noqa: E402


def make_template(d, n):
    rows = "\n".join("item %d,%s" % (i, "abcdefg"[i % 7]) for i in range(n))
    t = d.post("/api/batch-templates", {"name": "bench %d" % n, "prompt_template": "a {name} of kind {kind}",
                                        "csv": "name,kind\n" + rows + "\n", "width": 64, "height": 64})
    return t["id"]


def wait_done(d, run_id, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = d.get("/api/runs/%d" % run_id)
        if r["status"] not in ("queued", "running"):
            return r
        time.sleep(0.05)
    raise RuntimeError("run %d did not finish" % run_id)


def main():
    # Generate latency: workers are busy with nothing (a huge delay keeps
    # them from competing for the write lock while we time the insert).
    d = Daemon("--workers", "1", "--procedural-delay-ms", "600000")
    try:
        print("generate latency (one transaction: the run and all its items)")
        for n in (1000, 10000):
            tid = make_template(d, n)
            times = []
            for i in range(5):
                t0 = time.perf_counter()
                d.post("/api/batch-templates/%d/generate" % tid, {"album_name": "b", "user_theme": "t"})
                times.append((time.perf_counter() - t0) * 1000)
            print("  %6d items: median %7.1f ms, max %7.1f ms (target %s)" % (
                n, statistics.median(times), max(times), "< 50 ms" if n == 1000 else "< 500 ms"))
    finally:
        d.stop()

    d = Daemon("--workers", "2")
    try:
        n = 10000
        tid = make_template(d, n)
        t0 = time.perf_counter()
        run = d.post("/api/batch-templates/%d/generate" % tid, {"album_name": "b", "user_theme": "t"})["run"]
        r = wait_done(d, run["id"])
        wall = time.perf_counter() - t0
        print("end to end: %d items of 64x64, 2 workers, no delay: %.2f s, %.0f items/s "
              "(target >= 1000/s); status %s, %d images" % (n, wall, n / wall, r["status"], r["completed_items"]))
        print("peak RSS of the daemon during that run: %.1f MiB (target < 64 MiB)" % (d.rss_peak_kib() / 1024))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
