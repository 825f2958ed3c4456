"""The page in a real browser: starts the daemon (the example templates on,
the procedural backend taking 150 ms an image on two workers, so a run can be
watched and canceled), then runs tests/browser/web.test.mjs in headless
Chromium (Debian's chromium, driven by playwright-core; docs/web.md) and
counts its "ok"/"FAIL" steps as this file's checks. Screenshots go to
tests/artifacts/.

For live previews it also starts tests/fakes/fake_a1111.py (slow, with live
previews) and a second daemon whose one endpoint is that fake: the
procedural backend sends steps but no previews (docs/live.md). The browser
test gets its address and admin token in SF_LIVE_BASE and SF_LIVE_TOKEN.

It runs under make asan and make tsan too, with every wait bound (and the
fake's image time) scaled by SF_SLOW; about 25 s against the release build,
where the browser and the fake's 2.5 s images, not the daemon, set the pace. Without chromium,
node or playwright-core (tools/deps.sh installs them) it fails, saying what is
missing."""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, SLOWDOWN, Daemon, bound

NAME = os.path.basename(__file__)
SCRIPT = os.path.join(REPO, "tests", "browser", "web.test.mjs")
DRIVER = os.path.join(REPO, "tests", "browser", "node_modules", "playwright-core", "package.json")
ARTIFACTS = os.path.join(REPO, "tests", "artifacts")


def result(passed, failed):
    print("RESULT %s passed=%d failed=%d" % (NAME, passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def failed_run(d):
    """A finished run of the zodiac template whose three items failed, written
    into the database as a crashed backend would have left it (the procedural
    backend never fails); its id. One error names an endpoint's address, which
    the read-only page must show as <url>."""
    ts = d.get("/api/batch-templates").json()["templates"]
    zodiac = [t for t in ts if t["name"] == "Zodiac Signs"][0]["id"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rid = d.insert_run(zodiac, status="failed", album_name="All failed", total_items=3, failed_items=3,
                       started_at=now, completed_at=now, error_message="no image was made")
    errors = ["connection refused by http://127.0.0.1:9/sdapi/v1/txt2img", "HTTP 500: out of memory",
              "timed out after 30 s"]
    for i, err in enumerate(errors):
        d.db_exec("INSERT INTO run_items (run_id, item_index, prompt, seed, status, attempts, error) "
                  "VALUES (?, ?, ?, ?, 'failed', 3, ?)", (rid, i, "prompt %d" % i, 7 + i, err))
    return rid


def live_daemon():
    """The fake A1111 server (each image takes 2.5 s, a new live preview at every
    step) and a daemon drawing on it; both to be stopped by the caller. Its
    /internal/progress is off: the JPEG previews it sends there are only a
    header, which a browser cannot decode, so the daemon reads
    /sdapi/v1/progress, whose previews are real PNGs (docs/live.md)."""
    fake = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "fakes", "fake_a1111.py"), "--port", "0",
                             "--mode", "slow", "--delay-ms", str(int(2500 * SLOWDOWN)), "--no-internal-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = fake.stdout.readline()
    if not line.startswith("listening"):
        fake.kill()
        raise RuntimeError("fake_a1111.py did not start: %r" % line)
    fd, cfg = tempfile.mkstemp(prefix="sf-web-live-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoints": [{"name": "gpu0", "type": "a1111",
                                  "url": "http://127.0.0.1:%d" % int(line.split()[1])}]}, f)
    try:
        return fake, Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    except BaseException:
        fake.kill()
        raise
    finally:
        os.unlink(cfg)


def main():
    missing = [what for what, ok in (("/usr/bin/chromium", os.path.exists("/usr/bin/chromium")),
                                     ("node", subprocess.call(["sh", "-c", "command -v node"],
                                                              stdout=subprocess.DEVNULL) == 0),
                                     ("playwright-core", os.path.exists(DRIVER))) if not ok]
    if missing:
        print("FAIL browser test cannot run, missing: %s (make deps installs them)" % ", ".join(missing), flush=True)
        result(0, 1)
    t0 = time.time()
    d = Daemon(examples=True, extra_args=["--workers", "2", "--procedural-delay-ms", "150"])
    fake = live = None
    passed = failed = 0
    try:
        fake, live = live_daemon()
        url = "http://127.0.0.1:%d" % d.port
        env = dict(os.environ, SF_FAILED_RUN=str(failed_run(d)),
                   SF_LIVE_BASE="http://127.0.0.1:%d" % live.port, SF_LIVE_TOKEN=live.admin_token)
        proc = subprocess.Popen(["node", SCRIPT, url, d.admin_token, ARTIFACTS], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=bound(300))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += "\nFAIL the browser test did not finish within %ds\n" % bound(300)
        for line in out.splitlines():
            if line.startswith("RESULT "):
                continue  # this file's own RESULT line is the one counted
            print(line, flush=True)
            if line.startswith("ok "):
                passed += 1
            elif line.startswith("FAIL "):
                failed += 1
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and failed == 0):
            print("FAIL node exited with %s" % proc.returncode, flush=True)
            failed += 1
    finally:
        d.cleanup()
        if live:
            live.cleanup()
        if fake:
            fake.terminate()
            fake.wait()
    print("# %s took %.1fs; screenshots in tests/artifacts/" % (NAME, time.time() - t0), flush=True)
    result(passed, failed)


if __name__ == "__main__":
    main()
