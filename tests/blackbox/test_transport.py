#!/usr/bin/env python3
"""Black-box tests of how the daemon talks to inference servers when the
connection itself goes wrong (issue 10, findings 7 to 10), against the fake
A1111 server of tests/fakes/.

Covers: a request that never reached a server (nothing listening) spends no
attempt and the item is drawn elsewhere, even with max_attempts 1; a server
that dies after reading a txt2img POST on a kept-alive connection receives
that body once (libcurl would send it again on a new connection), and the
item's error says the connection was lost mid-request; an endpoint's
mean_item_s counts successful items only, not a timed-out attempt; a server
restarted on its port is back in use within a probe interval, and the test
prints how long that took.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, check, eq, expect_json, free_port, run, test, wait_for, wait_run  # noqa: E402
from test_endpoints import Fake, config_file, generate, items_of, make_template, txt2img_calls  # noqa: E402


def unused_port():
    """A port on 127.0.0.1 where nothing listens (reserved by the harness)."""
    p = free_port()
    with socket.socket() as s:
        check(s.connect_ex(("127.0.0.1", p)) != 0, "port %d should be closed" % p)
    return p


@test
def undelivered_requests_spend_no_attempt():
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", "30")
    dead = "http://127.0.0.1:%d" % unused_port()
    cfg = config_file([{"name": "gone", "type": "a1111", "url": dead, "timeout_s": 5},
                       {"name": "live", "type": "a1111", "url": fake.url, "timeout_s": 5}],
                      max_attempts=1, breaker_delay_ms=60000)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 12)
        run_id = generate(d, tid)
        r = wait_run(d, run_id, timeout=60)
        eq(r["status"], "completed", "run status")
        eq((r["completed_items"], r["failed_items"]), (12, 0), "every item drawn by the live endpoint")
        items = items_of(d, run_id)
        eq({i["endpoint"] for i in items}, {"live"}, "endpoints that drew items")
        eq({i["attempts"] for i in items}, {1}, "attempts per item (a refused connection is none)")
        health = {b["name"]: b for b in expect_json(d.get("/api/health"), 200)["backends"]}
        check(health["gone"]["state"] in ("down", "probing"), "the dead endpoint is down: %s" % health["gone"])
        check("no attempt spent" in d.stderr_text(), "the log says the item was queued again")
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


@test
def a_server_killed_mid_item_receives_the_body_once():
    fake = Fake("fake_a1111.py")
    cfg = config_file([{"name": "gpu", "type": "a1111", "url": fake.url, "timeout_s": 10}],
                      max_attempts=1, workers=1)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 1)
        first = generate(d, tid, user_theme="warm up")
        eq(wait_run(d, first)["status"], "completed", "first run (opens the kept-alive connection)")
        fake.mode(mode="drop")
        second = generate(d, tid, user_theme="dropped")
        r = wait_run(d, second)
        eq((r["status"], r["failed_items"]), ("failed", 1), "the dropped item failed")
        err = items_of(d, second)[0]["error"] or ""
        check("connection lost mid-request" in err, "item error names what happened: %r" % err)
        sent = [q for q in txt2img_calls(fake) if "dropped" in (q["body"] or {}).get("prompt", "")]
        eq(len(sent), 1, "txt2img bodies of the dropped item received by the server")
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


@test
def mean_item_time_counts_successes_only():
    fake = Fake("fake_a1111.py", "--mode", "hang")
    cfg = config_file([{"name": "gpu", "type": "a1111", "url": fake.url, "timeout_s": 6}],
                      max_attempts=1, breaker_delay_ms=100)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 1)
        hung = generate(d, tid, user_theme="hangs")
        eq(wait_run(d, hung, timeout=30)["status"], "failed", "the hung item timed out")
        fake.mode(mode="ok")
        tid2 = make_template(d, 2)
        ok = generate(d, tid2, user_theme="quick")
        eq(wait_run(d, ok, timeout=30)["status"], "completed", "quick run")
        gpu = expect_json(d.get("/api/health"), 200)["backends"][0]
        eq(gpu["done"], 2, "images drawn")
        # Counting the 6 s timeout would make it at least 6 / 2 = 3 s.
        check(gpu["mean_item_s"] < 2.0, "mean_item_s of quick items: %s" % gpu["mean_item_s"])
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


@test
def a_restarted_server_is_back_in_use_soon():
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", "20")
    port = fake.port
    cfg = config_file([{"name": "gpu", "type": "a1111", "url": fake.url, "timeout_s": 5}],
                      breaker_delay_ms=1000)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    back = None
    try:
        tid = make_template(d, 40)
        run_id = generate(d, tid)
        wait_run(d, run_id, cond=lambda r: r["completed_items"] >= 3, timeout=30)
        fake.kill()
        wait_for(lambda: expect_json(d.get("/api/health"), 200)["backends"][0]["state"] != "up",
                 20, "the endpoint is marked down")
        # Down for a while: long enough for a doubling delay to have grown.
        time.sleep(4)
        back = Fake("fake_a1111.py", "--port", str(port), "--mode", "slow", "--delay-ms", "20")
        t_listening = time.time()
        first = wait_for(lambda: [q["t_received"] for q in txt2img_calls(back)], 30,
                         "the restarted server receives items")
        print("  restarted server: first item %.2f s after it was listening" % (min(first) - t_listening))
        eq(wait_run(d, run_id, timeout=60)["status"], "completed", "the run completes")
    finally:
        d.cleanup()
        for f in (fake, back):
            if f:
                f.stop()
        os.unlink(cfg)


if __name__ == "__main__":
    run(__file__)
