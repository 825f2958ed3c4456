"""Black-box tests of clients that send their request too slowly (docs/operations.md "Slow
clients"): one byte every few hundred milliseconds resets an idle timer forever, so the
daemon gives the request head a total deadline and the body a minimum rate, and ends the
connections that miss them while everyone else is served."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import Daemon, bound, check, eq, expect_json, run, test

D = None
HEAD_S = 2


def trickle(socks, payload_of, until):
    """Sends each socket its next byte every 0.3 s until until() or all are closed by the
    server; returns how many the server closed."""
    pos = {s: 0 for s in socks}
    closed = set()
    deadline = time.time() + bound(60)
    while time.time() < deadline and len(closed) < len(socks) and not until():
        for s in socks:
            if s in closed:
                continue
            data = payload_of(s)
            try:
                s.send(data[pos[s]:pos[s] + 1])
                pos[s] += 1
                s.setblocking(False)
                try:
                    if s.recv(1024) == b"":
                        closed.add(s)
                except BlockingIOError:
                    pass
                finally:
                    s.setblocking(True)
            except OSError:
                closed.add(s)
        time.sleep(0.3)  # the client's pace, the subject of the test
    return len(closed)


def connect(n):
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", D.port), timeout=bound(10))
        out.append(s)
    return out


@test
def a_trickled_head_is_cut_at_its_deadline_while_others_are_served():
    head = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400 + b"\r\n\r\n"
    socks = connect(40)
    t0 = time.time()
    served = []

    def health_meanwhile():
        served.append(harness.http_request(D.port, "GET", "/api/health", timeout=bound(5)).status)
        return False

    try:
        n = trickle(socks, lambda s: head, health_meanwhile)
    finally:
        for s in socks:
            s.close()
    eq(n, len(socks), "trickling connections the daemon ended")
    check(time.time() - t0 < bound(HEAD_S + 30), "they lasted %.1f s" % (time.time() - t0))
    check(served and set(served) == {200}, "health while trickled: %r" % served[:5])


@test
def a_trickled_body_is_cut_for_its_rate():
    body_head = (b"POST /api/batch-templates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    socks = connect(5)
    for s in socks:
        s.sendall(body_head)
    try:
        n = trickle(socks, lambda s: b"[" * 100000, lambda: False)
    finally:
        for s in socks:
            s.close()
    eq(n, len(socks), "connections with a trickled body the daemon ended")


@test
def a_prompt_client_is_not_affected():
    # a whole request sent at once, and a keep-alive connection reused at once
    s = socket.create_connection(("127.0.0.1", D.port), timeout=bound(10))
    try:
        for _ in range(3):
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            check(data.startswith(b"HTTP/1.1 200"), "keep-alive answer %r" % data[:40])
            length = int([l for l in data.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            rest = data.split(b"\r\n\r\n", 1)[1]
            while len(rest) < length:
                rest += s.recv(4096)
    finally:
        s.close()
    expect_json(D.get("/api/health"), 200)


def setup():
    global D
    D = Daemon(extra_args=["--request-head-timeout-s", str(HEAD_S), "--request-body-min-bps", "1024"])


def teardown(_):
    if D is not None:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
