"""Live steps benchmark (issue 10, printed, never asserted): what relaying steps and
previews costs.

Eight fake A1111 servers (tests/fakes/fake_a1111.py), each taking 200 ms per image with
concurrency 1 and moving through the image's 20 steps in that time, each step with a new
live preview (100 steps a second per server). A 400-item run of 64x64 images is drawn
twice, with a stream reading `?steps=1` events:
- live steps on: every item's poller asks POST /internal/progress every 250 ms;
- live steps off: the same fakes answer 404 to both progress routes, so each endpoint
  stops asking after its first two 404s (what an sd-server costs).
Printed for each: step events relayed per second (and per item), preview fetches served,
the GPU-busy share (sum of the servers' txt2img time / (8 x wall), as bench/endpoints.py
measures it; its target is >= 99% here too) and the gap between an answer and the next
request on the same endpoint.
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon  # noqa: E402

N_ENDPOINTS = int(os.environ.get("SF_LIVE_ENDPOINTS", "8"))
ITEMS = int(os.environ.get("SF_LIVE_ITEMS", "400"))
DELAY_MS = int(os.environ.get("SF_LIVE_DELAY_MS", "200"))
STEPS = 20


def start_fake(live):
    args = [sys.executable, os.path.join(REPO, "tests", "fakes", "fake_a1111.py"), "--port", "0",
            "--mode", "slow", "--delay-ms", str(DELAY_MS)]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    if not live:  # both progress routes 404: the endpoint stops asking
        body = json.dumps({"mode": "slow", "delay_ms": DELAY_MS, "no_internal_progress": True,
                           "no_sdapi_progress": True, "flavor": "a1111"}).encode()
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/_fake/mode" % port, data=body,
                                                      method="POST")).read()
    return p, port


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


class StepReader(threading.Thread):
    """Reads the run's stream with ?steps=1; counts step events; fetches a preview now and
    then, as a page would."""

    def __init__(self, port, rid):
        super().__init__(daemon=True)
        self.port, self.rid = port, rid
        self.steps = []
        self.previews_ok = 0
        self.previews_404 = 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", "/api/runs/%d/events?steps=1" % self.rid)
        resp = conn.getresponse()
        side = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        kind = None
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.decode().rstrip("\r\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "step":
                ev = json.loads(line[6:])
                self.steps.append((time.time(), ev))
                if ev["preview"] and len(self.steps) % 10 == 0:
                    side.request("GET", ev["preview"])
                    r = side.getresponse()
                    r.read()
                    if r.status == 200:
                        self.previews_ok += 1
                    else:
                        self.previews_404 += 1


def one(live):
    fakes = [start_fake(live) for _ in range(N_ENDPOINTS)]
    fd, cfg = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoints": [{"name": "gpu%d" % i, "type": "a1111", "url": "http://127.0.0.1:%d" % port,
                                  "flavor": "a1111"}
                                 for i, (_, port) in enumerate(fakes)]}, f)
    d = Daemon("--config", cfg)
    try:
        rows = "\n".join("item %d" % i for i in range(ITEMS))
        tid = d.post("/api/batch-templates", {"name": "bench", "prompt_template": "a {name}",
                                              "csv": "name\n" + rows + "\n", "width": 64, "height": 64})["id"]
        t0 = time.time()
        run = d.post("/api/batch-templates/%d/generate" % tid,
                     {"album_name": "b", "user_theme": "t", "steps": STEPS})["run"]
        reader = StepReader(d.port, run["id"])
        reader.start()
        while d.get("/api/runs/%d" % run["id"])["status"] in ("queued", "running"):
            time.sleep(0.05)
        reader.join(30)
        status = d.get("/api/runs/%d" % run["id"])
        busy, gaps, last_done, polls = 0.0, [], 0.0, 0
        for _, port in fakes:
            with urllib.request.urlopen("http://127.0.0.1:%d/_fake/requests" % port) as r:
                allreqs = json.loads(r.read())
            polls += sum(1 for q in allreqs if q["path"] in ("/internal/progress",)
                         or q["path"].startswith("/sdapi/v1/progress"))
            reqs = sorted((q for q in allreqs if q["path"] == "/sdapi/v1/txt2img"), key=lambda q: q["t_received"])
            for a, b in zip(reqs, reqs[1:]):
                gaps.append((b["t_received"] - a["t_done"]) * 1000)
            busy += sum(q["t_done"] - q["t_received"] for q in reqs)
            last_done = max([last_done] + [q["t_done"] for q in reqs])
        wall = last_done - t0
        n = len(reader.steps)
        span = (reader.steps[-1][0] - reader.steps[0][0]) if n > 1 else 0
        print("live steps %s: %d endpoints x %d ms (%d steps each), %d items: run %s, %d images" % (
            "on " if live else "off", N_ENDPOINTS, DELAY_MS, STEPS, ITEMS, status["status"],
            status["completed_items"]))
        print("  step events relayed: %d (%.1f/s over %.1f s, %.2f per item); progress polls %d; "
              "previews fetched %d (404 after the item ended: %d)" % (
                  n, n / span if span else 0, span, n / ITEMS, polls, reader.previews_ok, reader.previews_404))
        print("  wall %.2f s (ideal %.2f s); GPU-busy share %.1f%%; gap p50 %.2f ms, p99 %.2f ms" % (
            wall, ITEMS * DELAY_MS / 1000 / N_ENDPOINTS, 100 * busy / (N_ENDPOINTS * wall),
            percentile(gaps, 0.5), percentile(gaps, 0.99)))
    finally:
        d.stop()
        for p, _ in fakes:
            p.terminate()
            p.wait()
        os.unlink(cfg)


def main():
    one(live=True)
    one(live=False)


if __name__ == "__main__":
    main()
