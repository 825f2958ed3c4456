"""Per-item overhead against a server without TCP_NODELAY (issue 10, finding 5;
printed, never asserted).

One fake A1111 endpoint answering at once (mode ok, 64x64), one worker, a
run of ITEMS items: the wall time per item is setforge's own cost plus the
fake's. The fake runs with TCP_NODELAY (as uvicorn does) and without it (as
sd-server's cpp-httplib does); the difference is what a server without
TCP_NODELAY costs per item. The second pair of rows repeats it with the
client's TCP_QUICKACK turned off (SETFORGE_NO_QUICKACK=1), to show what the
fix is worth. Goal: <= 2 ms added per item without TCP_NODELAY.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon  # noqa: E402

ITEMS = int(os.environ.get("NODELAY_ITEMS", "300"))


def start_fake(*extra):
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "fakes", "fake_a1111.py"), "--port", "0",
                          "--mode", "ok"] + list(extra), stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    return p, port


def per_item_ms(no_nodelay, quickack):
    fake, port = start_fake(*(["--no-nodelay"] if no_nodelay else []))
    fd, cfg = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoints": [{"name": "gpu", "type": "a1111", "url": "http://127.0.0.1:%d" % port,
                                  "timeout_s": 30}]}, f)
    env = dict(os.environ)
    if not quickack:
        env["SETFORGE_NO_QUICKACK"] = "1"
    old = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    try:
        d = Daemon("--config", cfg, "--workers", "1")
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        rows = "\n".join("item %d" % i for i in range(ITEMS))
        t = d.post("/api/batch-templates", {"name": "nodelay", "prompt_template": "{name}",
                                            "csv": "name\n" + rows + "\n", "width": 64, "height": 64})
        t0 = time.time()
        run = d.post("/api/batch-templates/%d/generate" % t["id"], {"album_name": "a", "user_theme": "x"})["run"]
        while True:
            r = d.get("/api/runs/%d" % run["id"])
            if r["status"] in ("completed", "failed", "canceled"):
                break
            time.sleep(0.05)
        wall = time.time() - t0
        return wall * 1000.0 / ITEMS
    finally:
        d.stop()
        fake.terminate()
        fake.wait()
        os.unlink(cfg)


def main():
    print("per-item wall time, %d items, one worker, one endpoint answering at once:" % ITEMS)
    res = {}
    for quickack in (True, False):
        for no_nodelay in (False, True):
            ms = per_item_ms(no_nodelay, quickack)
            res[(quickack, no_nodelay)] = ms
            print("  server %-20s client quickack %-3s  %.2f ms/item" %
                  ("without TCP_NODELAY" if no_nodelay else "with TCP_NODELAY", "on" if quickack else "off", ms))
    print("added per item by a server without TCP_NODELAY: %.2f ms with TCP_QUICKACK (goal <= 2), "
          "%.2f ms without it" % (res[(True, True)] - res[(True, False)], res[(False, True)] - res[(False, False)]))


if __name__ == "__main__":
    main()
