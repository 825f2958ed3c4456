"""Black-box tests of a connection flood under a small open-file limit (docs/operations.md
"Open files"): the daemon raises its soft limit, keeps conn_limit within what is left after
a reserve for the database, images and backends, and never aborts; a run drawn during the
flood loses no item. The daemon is started with RLIMIT_NOFILE 256 (soft and hard), so the
default conn_limit of 1024 cannot fit."""

import os
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import Daemon, check, eq, expect_json, run, test

LIMIT = 256
BOUND = harness.bound(120)  # seconds: only turns a hang into a failure
D = None
T = "/api/batch-templates"


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def flood(n):
    """n connections from 16 loopback addresses (127.0.0.2-17), as a crowd would come."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.%d" % (2 + i % 16), 0))
        try:
            s.connect(("127.0.0.1", D.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def wait_for(cond, what):
    deadline = time.time() + BOUND
    while time.time() < deadline:
        check(D.alive(), "daemon died while waiting for %s; stderr:\n%s" % (what, D.stderr_text()[-2000:]))
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("%s: not within %d s" % (what, BOUND))


def settled(rid):
    db = sqlite3.connect("file:%s?mode=ro" % D.db, uri=True, timeout=10)
    try:
        row = db.execute("SELECT completed_items + failed_items FROM runs WHERE id = ?", (rid,)).fetchone()
        return row[0] if row else 0
    finally:
        db.close()


def health_ok():
    try:
        return harness.http_request(D.port, "GET", "/api/health", timeout=5).status == 200
    except OSError:
        return False


@test
def conn_limit_is_clamped_and_logged():
    err = D.stderr_text()
    check("conn_limit 1024 does not fit" in err, "no clamp warning in stderr:\n%s" % err[-2000:])
    check("open files: limit %d" % LIMIT in err, "no open-files line in stderr:\n%s" % err[-2000:])
    check("and per_ip_limit 4 " in err, "no per-IP line in stderr:\n%s" % err[-2000:])


@test
def flood_during_a_run_kills_nothing_and_loses_nothing():
    tpl = expect_json(D.post(T, {"name": "flood", "prompt_template": "{card} in {theme}", "width": 64,
                                 "height": 64, "csv_items": [{"card": "c%d" % i} for i in range(12)]}), 201)
    rid = expect_json(D.post("%s/%d/generate" % (T, tpl["id"]), {"album_name": "f", "user_theme": "ink"}), 202)[
        "run"]["id"]
    base = open_fds(D.proc.pid)
    socks = flood(400)
    try:
        # the daemon has taken every connection it will take (with the fix: conn_limit of them;
        # without: until it ran out of files)
        wait_for(lambda: open_fds(D.proc.pid) >= base + 40, "the flood to be accepted")
        # new connections while the slots are full: each lands on a pool thread
        socks += flood(40)
        # the run goes on while the flood holds every slot: watched in the database itself
        wait_for(lambda: settled(rid) >= 12, "the run's items to settle during the flood")
        check(D.alive(), "daemon died under the flood; stderr:\n%s" % D.stderr_text()[-2000:])
    finally:
        for s in socks:
            s.close()
    wait_for(health_ok, "health after the flood")
    r = wait_for(lambda: (lambda j: j if j["status"] in ("completed", "failed", "canceled") else None)(
        expect_json(D.get("/api/runs/%d" % rid, token="admin"), 200)), "the run to end")
    eq((r["status"], r["completed_items"], r["failed_items"]), ("completed", 12, 0), "run drawn during the flood")
    check(D.alive(), "daemon died after the flood")


def setup():
    global D
    D = Daemon(nofile=LIMIT, extra_args=["--workers", "2", "--generate-rate", "0", "--procedural-delay-ms", "1000"])


def teardown(_):
    if D is not None:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
