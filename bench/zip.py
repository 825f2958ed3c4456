"""Album download benchmark (issue 12, printed, never asserted).

A 500-image album drawn by the procedural backend at 512x512, then its zip
(GET /api/albums/<id>/download.zip) fetched five times, one after another,
and four at once: time to first byte (the snapshot: rows, holds and the
manifests, before the first byte of the archive), total time, MB/s, and the
daemon's peak RSS. The files are in the page cache after the run wrote them,
so this is the daemon's cost, not the disk's.
"""
import http.client
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Daemon  # noqa: E402
from engine import make_template, wait_done  # noqa: E402

N = 500


def fetch(port, path):
    """(time to first byte, total time, bytes) of one GET, read in 64 KiB."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("GET", path)
    r = c.getresponse()
    first = r.read(1)
    ttfb = time.perf_counter() - t0
    n = len(first)
    while True:
        b = r.read(65536)
        if not b:
            break
        n += len(b)
    total = time.perf_counter() - t0
    c.close()
    if r.status != 200:
        raise RuntimeError("GET %s: %d" % (path, r.status))
    return ttfb, total, n


def main():
    d = Daemon("--workers", "2")
    try:
        tid = make_template(d, N)
        t0 = time.perf_counter()
        run = d.post("/api/batch-templates/%d/generate" % tid,
                     {"album_name": "bench zip", "user_theme": "t", "width": 512, "height": 512})["run"]
        r = wait_done(d, run["id"])
        print("zip download: album of %d procedural 512x512 images (drawn in %.1f s)"
              % (r["completed_items"], time.perf_counter() - t0))
        path = "/api/albums/%d/download.zip" % r["album_id"]
        rss0 = d.rss_peak_kib()
        runs = [fetch(d.port, path) for _ in range(5)]
        size = runs[0][2]
        print("  zip size %.1f MB (%d entries)" % (size / 1e6, N + 2))
        ttfb = statistics.median(x[0] for x in runs) * 1000
        total = statistics.median(x[1] for x in runs)
        print("  one client, median of 5: first byte %.1f ms, total %.3f s, %.0f MB/s"
              % (ttfb, total, size / 1e6 / total))
        out = []
        t0 = time.perf_counter()
        ths = [threading.Thread(target=lambda: out.append(fetch(d.port, path))) for _ in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        wall = time.perf_counter() - t0
        print("  four clients at once: first byte max %.1f ms, all done in %.3f s, %.0f MB/s together"
              % (max(x[0] for x in out) * 1000, wall, 4 * size / 1e6 / wall))
        print("  daemon peak RSS: %d KiB before the downloads, %d KiB after" % (rss0, d.rss_peak_kib()))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
