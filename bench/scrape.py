"""Scrape job benchmark (issue 11, printed, never asserted).

A local page (tests/fakes/fake_web.py on 127.0.0.1) with N distinct PNGs of K KiB
each, scraped by a fresh daemon (outbound_addresses=all, scrape_parallel 4):
images per second from the POST to the job's end, and the daemon's peak RSS.
Run at several page and image sizes: memory should stay flat with the page
(the page is parsed by a SAX walk, no tree) and grow with the image size only
by scrape_parallel answers held at once.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, Daemon  # noqa: E402


def start_fake():
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "fakes", "fake_web.py"), "--host", "127.0.0.1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(p.stdout.readline().split()[1])
    return p, port


def get(d, path):
    req = urllib.request.Request(d.url(path))
    req.add_header("Authorization", "Bearer " + d.token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def one(fake_port, n, kb, parallel=4):
    d = Daemon("--outbound-addresses", "all", "--scrape-parallel", str(parallel))
    try:
        url = "http://127.0.0.1:%d/page/bench.html?n=%d&kb=%d" % (fake_port, n, kb)
        t0 = time.perf_counter()
        job = d.post("/api/scrape-jobs", {"url": url, "album_name": "bench", "max_images": min(n, 1000)})
        while True:
            j = get(d, "/api/scrape-jobs/%d" % job["id"])
            if j["status"] not in ("pending", "running"):
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        print("  %4d images of %5d KiB, %d at a time: %6.2f s, %6.1f images/s, %6.1f MiB/s; peak RSS %5.1f MiB; %s, %d scraped"
              % (n, kb, parallel, wall, j["images_scraped"] / wall, j["images_scraped"] * kb / 1024 / wall,
                 d.rss_peak_kib() / 1024, j["status"], j["images_scraped"]))
    finally:
        d.stop()


def main():
    fake, port = start_fake()
    try:
        print("scrape jobs: a local page of distinct PNGs (fake_web.py), fresh daemon each")
        one(port, 500, 100)
        one(port, 1000, 100)
        one(port, 500, 1024)
        one(port, 100, 10240)
        one(port, 20000, 1)  # a page of 20,000 images (~800 KB of HTML), cut at 1,000
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
