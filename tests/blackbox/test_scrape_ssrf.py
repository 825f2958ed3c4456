"""Black-box tests of the SSRF guard on scrape jobs (docs/security.md,
docs/scrape.md): with the default outbound_addresses=public, every spelling
of this machine's address is refused with a recorded error naming the rule,
and a raw listener on the target port proves that no connection was made;
other schemes are refused (at the API, and on a redirect); with the test-only
test_deny_127_0_0_1, a page on 127.0.0.2 that redirects to 127.0.0.1 is
refused at the hop.

Only addresses of this machine appear here: the other ranges are covered by
tests/unit/test_netfilter.c as a pure function, without any traffic."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, check, eq, expect_error, expect_json, run, snippet, test, wait_for  # noqa: E402
from fakeweb import FakeWeb  # noqa: E402

J = "/api/scrape-jobs"
FINAL = ("completed", "failed", "canceled")


class Listener:
    """A raw TCP listener on 127.0.0.1 (and ::1 when this machine has IPv6)
    on one port, that only counts the connections it could accept."""

    def __init__(self):
        self.socks = []
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self.socks.append(s)
        try:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.bind(("::1", self.port))
            s6.listen(16)
            s6.setblocking(False)
            self.socks.append(s6)
        except OSError:
            pass  # no IPv6 loopback here: [::1] cannot be reached anyway

    def accepted(self):
        n = 0
        for s in self.socks:
            while True:
                try:
                    c, _ = s.accept()
                    c.close()
                    n += 1
                except (BlockingIOError, InterruptedError):
                    break
        return n

    def close(self):
        for s in self.socks:
            s.close()


def wait_job(d, jid, timeout=30):
    last = [None]

    def reached():
        last[0] = expect_json(d.get("%s/%d" % (J, jid), token="admin"), 200)
        return last[0] if last[0]["status"] in FINAL else None

    return wait_for(reached, timeout, lambda: "scrape job %d (last: %s)" % (jid, snippet(str(last[0]))))


def create(d, url, status=202):
    r = d.post(J, {"url": url, "album_name": "ssrf", "max_images": 5})
    return expect_json(r, status)


@test
def every_spelling_of_this_machine_is_refused_before_connecting():
    d = Daemon()  # outbound_addresses: public, the default
    lis = Listener()
    try:
        p = lis.port
        hosts = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0.0.0.0", "[::1]",
                 "[::ffff:127.0.0.1]", "localhost"]
        jobs = [(h, create(d, "http://%s:%d/page.html" % (h, p))["id"]) for h in hosts]
        for h, jid in jobs:
            j = wait_job(d, jid)
            eq(j["status"], "failed", "%s: %s" % (h, j))
            err = j["error"] or ""
            check("refused" in err and "outbound_addresses" in err, "%s: the error names the rule: %r" % (h, err))
            check("loopback" in err or "0.0.0.0/8" in err or "unspecified" in err or "this network" in err,
                  "%s: the range is named: %r" % (h, err))
        eq(lis.accepted(), 0, "connections the listener saw")
        # other schemes never get as far as a job
        for url in ("file:///etc/passwd", "gopher://127.0.0.1:%d/" % p, "dict://127.0.0.1:%d/" % p):
            expect_error(d.post(J, {"url": url, "album_name": "x", "max_images": 1}), 400, field="url")
        eq(lis.accepted(), 0, "connections the listener saw")
    finally:
        lis.close()
        d.cleanup()


@test
def a_redirect_to_127_0_0_1_is_refused_at_the_hop():
    d = Daemon(extra_args=["--outbound-addresses", "test_deny_127_0_0_1"])
    web = FakeWeb("127.0.0.2")
    lis = Listener()
    try:
        # the page itself redirects to the listener on 127.0.0.1
        j = wait_job(d, create(d, web.url("/to/%d/x.png" % lis.port))["id"])
        eq(j["status"], "failed")
        check("refused" in j["error"] and "127.0.0.1" in j["error"], j["error"])
        # an image of a page does: that download is skipped as refused
        j = wait_job(d, create(d, web.url("/page/refused.html?port=%d" % lis.port))["id"])
        eq(j["status"], "completed", str(j))
        eq(j["skipped"], {"refused": 1})
        its = expect_json(d.get("%s/%d/items" % (J, j["id"]), token="admin"), 200)["items"]
        check("127.0.0.1" in its[0]["error"], its[0]["error"])
        # a redirect to another scheme is refused by the client too
        for u in ("file:///etc/passwd", "gopher://127.0.0.2:%d/" % web.port, "dict://127.0.0.2:%d/" % web.port):
            j = wait_job(d, create(d, web.url("/goto?u=" + u))["id"])
            eq(j["status"], "failed", u)
            check("only http and https" in j["error"], "%s: %r" % (u, j["error"]))
        eq(lis.accepted(), 0, "connections the listener saw")
        check("/to/%d/x.png" % lis.port in web.log(), "the first hop on 127.0.0.2 was allowed")
    finally:
        lis.close()
        web.stop()
        d.cleanup()


if __name__ == "__main__":
    run(__file__)
