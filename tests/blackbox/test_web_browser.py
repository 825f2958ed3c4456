"""The page in a real browser: starts the daemon (the example templates on,
the procedural backend taking 150 ms an image on two workers, so a run can be
watched and canceled), then runs tests/browser/web.test.mjs in headless
Chromium (Debian's chromium, driven by playwright-core; docs/web.md) and
counts its "ok"/"FAIL" steps as this file's checks. Screenshots go to
tests/artifacts/.

It runs under make asan and make tsan too (about 20 s against either
sanitizer build, as against the release build: the browser, not the daemon,
sets the pace), with every wait bound scaled by SF_SLOW. Without chromium,
node or playwright-core (tools/deps.sh installs them) it fails, saying what is
missing."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Daemon, bound

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
    passed = failed = 0
    try:
        url = "http://127.0.0.1:%d" % d.port
        env = dict(os.environ, SF_FAILED_RUN=str(failed_run(d)))
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
    print("# %s took %.1fs; screenshots in tests/artifacts/" % (NAME, time.time() - t0), flush=True)
    result(passed, failed)


if __name__ == "__main__":
    main()
