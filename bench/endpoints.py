"""Multi-endpoint benchmark (issue 5 targets, printed, never asserted).

Eight fake A1111 servers (tests/fakes/fake_a1111.py), each taking 200 ms per
image with concurrency 1, and a 400-item run of 64x64 images:
- GPU-busy share = sum of the endpoints' busy time / (8 x wall time), where
  busy time is measured by each server (request received -> answer sent) and
  wall time from the generate call to the last answer (target >= 97%);
- the gap between an endpoint answering and receiving its next item
  (p50, p99, max; target p99 < 5 ms).
"""
import json
import os
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


if __name__ == "__main__":
    main()
