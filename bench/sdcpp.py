"""sd-server benchmark (issue 10, finding 6: printed, never asserted).

One fake stable-diffusion.cpp sd-server (tests/fakes/fake_a1111.py --flavor
sdcpp), 300 ms per image, one endpoint with concurrency 1, 30 items of
64x64, drawn twice: through its job API (POST /sdcpp/v1/img_gen, polled),
and through /sdapi/v1/txt2img (an older build without the job API). Printed:
how long the GPU idled between two images (the server's own clock: one job
done -> the next one started; the first five skipped, while the endpoint's
usual job time is learned). Polling has a price txt2img has not; this is it.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon  # noqa: E402

ITEMS = 30
DELAY_MS = 300


def fake_call(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def idle_gaps_ms(native):
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "fakes", "fake_a1111.py"), "--port", "0",
                          "--flavor", "sdcpp", "--mode", "slow", "--delay-ms", str(DELAY_MS)],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    if not native:
        fake_call(port, "POST", "/_fake/mode", {"mode": "slow", "flavor": "sdcpp", "no_capabilities": True})
    fd, cfg = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoints": [{"name": "cpp0", "type": "a1111", "flavor": "sdcpp",
                                  "url": "http://127.0.0.1:%d" % port}]}, f)
    d = Daemon("--config", cfg)
    try:
        rows = "\n".join("item %d" % i for i in range(ITEMS))
        t = d.post("/api/batch-templates", {"name": "sdcpp", "prompt_template": "{name}",
                                            "csv": "name\n" + rows + "\n", "width": 64, "height": 64})
        run = d.post("/api/batch-templates/%d/generate" % t["id"], {"album_name": "a", "user_theme": "x"})["run"]
        while d.get("/api/runs/%d" % run["id"])["status"] not in ("completed", "failed", "canceled"):
            time.sleep(0.05)
        if native:
            jobs = sorted(fake_call(port, "GET", "/_fake/jobs"), key=lambda j: j["t_started"])
            return [(b["t_started"] - a["t_done"]) * 1000 for a, b in zip(jobs, jobs[1:])][5:]
        calls = [q for q in fake_call(port, "GET", "/_fake/requests") if q["path"] == "/sdapi/v1/txt2img"]
        return [(b["t_received"] - a["t_done"]) * 1000 for a, b in zip(calls, calls[1:])][5:]
    finally:
        d.stop()
        p.terminate()
        p.wait()
        os.unlink(cfg)


def main():
    print("sd-server, one endpoint, %d items of %d ms: GPU idle between two images" % (ITEMS, DELAY_MS))
    for native in (True, False):
        g = sorted(idle_gaps_ms(native))
        print("  %-24s p50 %.1f ms, p90 %.1f ms, max %.1f ms" % (
            "job API (img_gen, polled)" if native else "txt2img", statistics.median(g),
            g[int(len(g) * 0.9)], g[-1]))


if __name__ == "__main__":
    main()
