#!/usr/bin/env python3
"""make load: the daemon under hostile connection patterns, with figures printed (never
asserted). Each phase starts its own daemon (release build) with a fresh database.

1. flood at start: the daemon runs under `ulimit -n 1024`; 1,100 idle connections from 8
   addresses (127.0.0.2-9) arrive in the first second, while a 54-item run is drawn.
   Printed: alive, how long until /api/health from a ninth address (127.0.0.10) answers,
   its p99 afterwards, items failed.
2. trickle: 1,000 connections from 8 addresses send one byte every 3 s (reconnecting when
   cut) and 1,000 more sit idle, for DURATION seconds, while a 54-item run is drawn.
   Printed: alive, connections the daemon ended, /api/health p50/p99/max from a ninth
   address and its failures, items failed.
"""
import http.client
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
import harness  # noqa: E402

DURATION = float(os.environ.get("LOAD_SECONDS", "30"))
ATTACKERS = ["127.0.0.%d" % i for i in range(2, 10)]
PROBE_FROM = "127.0.0.10"


def raise_own_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(extra=(), nofile=None):
    return harness.Daemon(nofile=nofile, extra_args=["--access-log", "false", "--generate-rate", "0",
                                                      "--procedural-delay-ms", "50"] + list(extra))


def connect_from(addr, port):
    s = socket.socket()
    s.setblocking(False)
    s.bind((addr, 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        return None
    return s


def health_once(port, timeout=5.0):
    t = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(PROBE_FROM, 0))
        c.request("GET", "/api/health")
        ok = c.getresponse().status == 200
        c.close()
    except OSError:
        ok = False
    return ok, (time.perf_counter() - t) * 1000


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def start_run(d, n=54):
    tpl = harness.expect_json(d.post("/api/batch-templates", {
        "name": "load", "prompt_template": "{card} in {theme}", "width": 64, "height": 64,
        "csv_items": [{"card": "c%d" % i} for i in range(n)]}), 201)
    return harness.expect_json(d.post("/api/batch-templates/%d/generate" % tpl["id"],
                                      {"album_name": "load", "user_theme": "ink"}), 202)["run"]["id"]


def finish_run(d, rid):
    r = harness.wait_run(d, rid, timeout=300)
    return r["completed_items"], r["failed_items"]


def phase_flood():
    d = start(nofile=1024)
    try:
        rid = start_run(d)
        socks = []
        t0 = time.time()
        for i in range(1100):
            s = connect_from(ATTACKERS[i % len(ATTACKERS)], d.port)
            if s:
                socks.append(s)
        flood_s = time.time() - t0
        first = None
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < 60:
            ok, _ = health_once(d.port, timeout=2)
            if ok:
                first = (time.perf_counter() - t1) * 1000
                break
        lat = [health_once(d.port)[1] for _ in range(200)]
        done, failed = finish_run(d, rid)
        for s in socks:
            s.close()
        print("flood at start (ulimit -n 1024, 1,100 idle connections from 8 addresses in %.2f s):" % flood_s)
        print("  alive: %s; first health answer from a ninth address after %s ms" %
              (d.alive(), "%.0f" % first if first is not None else "none within 60 s"))
        print("  health then: p50 %.1f ms, p99 %.1f ms; run: %d completed, %d failed" %
              (pct(lat, 50), pct(lat, 99), done, failed))
        err = d.stderr_text()
        for line in err.splitlines():
            if "open files" in line or "per_ip_limit" in line:
                print("  daemon: " + line.split(" ", 2)[-1])
    finally:
        d.cleanup()


def phase_trickle():
    d = start()
    try:
        rid = start_run(d)
        sel = selectors.DefaultSelector()
        trickling = {}
        idle = []
        head = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000

        def open_trickler(addr):
            s = connect_from(addr, d.port)
            if s:
                trickling[s] = [addr, 0, time.time()]
                sel.register(s, selectors.EVENT_READ)

        for i in range(1000):
            open_trickler(ATTACKERS[i % len(ATTACKERS)])
        for i in range(1000):
            s = connect_from(ATTACKERS[i % len(ATTACKERS)], d.port)
            if s:
                idle.append(s)
        lat, fails, cut = [], 0, 0
        t_end = time.time() + DURATION
        next_probe = time.time()
        while time.time() < t_end:
            for key, _ in sel.select(timeout=0.01):
                s = key.fileobj
                try:
                    gone = s.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:
                    addr = trickling.pop(s)[0]
                    sel.unregister(s)
                    s.close()
                    cut += 1
                    open_trickler(addr)
            now = time.time()
            for s, st in list(trickling.items()):
                if now - st[2] >= 3:
                    st[2] = now
                    try:
                        s.send(head[st[1]:st[1] + 1])
                        st[1] += 1
                    except OSError:
                        pass
            if now >= next_probe:
                ok, ms = health_once(d.port)
                lat.append(ms)
                fails += not ok
                next_probe = now + 0.05
        done, failed = finish_run(d, rid)
        for s in list(trickling) + idle:
            s.close()
        print("trickle (%.0f s; 1,000 connections sending a byte every 3 s and 1,000 idle, from 8 addresses):"
              % DURATION)
        print("  alive: %s; connections the daemon closed (cut by the watchdog, or refused at once over the "
              "per-address limit, then reopened by the attacker): %d" % (d.alive(), cut))
        print("  health from a ninth address: %d requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms, failed %d" %
              (len(lat), pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan"), fails))
        print("  run drawn meanwhile: %d completed, %d failed" % (done, failed))
    finally:
        d.cleanup()


def main():
    raise_own_limit()
    phase_flood()
    phase_trickle()


if __name__ == "__main__":
    main()
