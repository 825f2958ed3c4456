#!/usr/bin/env python3
"""make load (first part): 10,000 malformed requests over raw sockets, figures printed,
never asserted (tests/blackbox holds the asserted cases).

Twelve families, the ones issue 9 probed with: bad JSON, wrong types, huge bodies, broken
CSV, bad Transfer-Encoding, long or odd queries, control characters in paths, bad
Authorization headers, unknown ids, odd methods, truncated requests, slowloris-lite. Each
request is a plan of raw bytes, pauses and half-closes, sent from one of 16 loopback
addresses (127.0.0.2-17) with at most CONCURRENCY in flight; the daemon runs with its
defaults except `--per-ip-limit` (raised so the load generator's own addresses do not
trip it: the figure is about malformed input, test_trickle.py covers the limit) and the
access log off.

Each request ends one of three ways: answered (a status line came back), closed (the
daemon closed or reset the connection without one), or hung (neither within BOUND_S
seconds; the request-head deadline is 10 s). Printed per family: requests, statuses,
closed, hung, slowest end. Then: crashes (the daemon exited, or its stderr shows an
abort), 5xx by origin (JSON = our code, else libmicrohttpd's fixed HTML), 503 from load
shedding counted apart, /api/health from a further address meanwhile, open files,
threads and peak RSS before and after.

Environment: MALFORMED_N (10000), MALFORMED_SEED, MALFORMED_CONCURRENCY (256).
"""
import asyncio
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
import harness  # noqa: E402

N = int(os.environ.get("MALFORMED_N", "10000"))
SEED = int(os.environ.get("MALFORMED_SEED", str(int(time.time()))))
CONCURRENCY = int(os.environ.get("MALFORMED_CONCURRENCY", "256"))
BOUND_S = 20.0
SOURCES = ["127.0.0.%d" % i for i in range(2, 18)]
PROBE_FROM = "127.0.0.40"

# --------------------------------------------------------------------------
# Request plans: a list of ("send", bytes) | ("sleep", s) | ("shut",)


def head(method, target, headers=(), version=b"HTTP/1.1"):
    if isinstance(method, str):
        method = method.encode()
    if isinstance(target, str):
        target = target.encode()
    lines = [method + b" " + target + b" " + version, b"Host: 127.0.0.1"]
    for h in headers:
        lines.append(h if isinstance(h, bytes) else h.encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Ctx:
    """What the plans may refer to: tokens and ids that exist."""

    def __init__(self, admin, user, template_id, run_id, image_id, album_id):
        self.admin, self.user = admin, user
        self.template_id, self.run_id, self.image_id, self.album_id = template_id, run_id, image_id, album_id

    def auth(self, rng):
        return [["Authorization: Bearer " + self.admin], ["Authorization: Bearer " + self.user], []][rng.randrange(3)]


def with_body(method, target, body, extra=(), ctype="application/json"):
    hs = list(extra) + ["Content-Type: " + ctype, "Content-Length: %d" % len(body)]
    return [("send", head(method, target, hs) + body)]


def json_targets(c):
    return [("POST", "/api/batch-templates"), ("PUT", "/api/batch-templates/%d" % c.template_id),
            ("POST", "/api/batch-templates/%d/generate" % c.template_id), ("POST", "/api/albums"),
            ("PUT", "/api/albums/%d" % c.album_id), ("POST", "/api/albums/%d/images" % c.album_id),
            ("PATCH", "/api/runs/%d" % c.run_id)]


VALID_TEMPLATE = {"name": "m", "prompt_template": "a {card}", "width": 64, "height": 64,
                  "csv_items": [{"card": "x"}]}


def fam_bad_json(rng, c):
    bodies = [b"", b"{", b"[1,2", b"{\"name\":", b"{\"name\": \"x\",}", b"nul", b"null", b"123", b"\"str\"",
              b"{\"a\":1}{\"b\":2}", b"\xef\xbb\xbf{}", b"{\"name\": \"\xff\xfe\"}", b"{\"name\": NaN}",
              b"{\"width\": 1e99999}", b"{\"width\": -0}", b"[" * 20000 + b"]" * 20000, b"{\"a\":" * 5000,
              b"{\"name\": \"\\ud800\"}", b"{\"name\": \"\\u0000\"}", b"{'name': 'x'}", b"\x00" * 64,
              b"{\"name\": \"x\", \"name\": \"y\"}", b"{\"" + b"k" * 100000 + b"\": 1}"]
    body = rng.choice(bodies)
    if rng.random() < 0.4:  # a valid body with bytes flipped
        b = bytearray(json.dumps(VALID_TEMPLATE).encode())
        for _ in range(rng.randrange(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        body = bytes(b)
    method, target = rng.choice(json_targets(c))
    ctype = rng.choice(["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", ""])
    return with_body(method, target, body, c.auth(rng), ctype)


def fam_wrong_types(rng, c):
    odd = [None, True, 0, -1, 1.5, 2 ** 63, -(2 ** 63) - 1, 1e308, "", "x" * 5000, [], {}, [1, "a"], {"a": {"b": []}},
           "64", "\u202e\u0000bad", "../../etc/passwd", "{card}" * 1000]
    doc = dict(VALID_TEMPLATE)
    keys = ["name", "prompt_template", "width", "height", "csv_items", "csv", "steps", "cfg_scale", "seed",
            "negative_prompt", "loras", "album_name", "user_theme", "is_public", "image_ids", "description",
            "sampler", "model", "endpoint", "theme", "unknown_field"]
    for _ in range(rng.randrange(1, 4)):
        doc[rng.choice(keys)] = rng.choice(odd)
    if rng.random() < 0.2:
        doc = rng.choice(odd)
    method, target = rng.choice(json_targets(c))
    return with_body(method, target, json.dumps(doc).encode(), c.auth(rng))


def fam_huge_body(rng, c):
    method, target = rng.choice(json_targets(c))
    auth = c.auth(rng)
    k = rng.randrange(8)
    if k == 0:  # declared far over the limit, nothing sent
        return [("send", head(method, target, auth + ["Content-Type: application/json", "Content-Length: 1000000000000"]))]
    if k == 1:  # just over the limit, sent in part
        return [("send", head(method, target, auth + ["Content-Type: application/json",
                                                      "Content-Length: 10485761"]) + b"[" * 65536)]
    if k == 2:
        return [("send", head(method, target, auth + ["Content-Length: 99999999999999999999999999"]))]
    if k == 3:
        return [("send", head(method, target, auth + ["Content-Length: -5"]) + b"{}")]
    if k == 4:
        return [("send", head(method, target, auth + ["Content-Length: 2", "Content-Length: 4"]) + b"{}{}")]
    if k == 5:
        return [("send", head(method, target, auth + ["Content-Length: 0x10"]) + b"{}")]
    if k == 6 and rng.random() < 0.05:  # chunked past the limit: 11 MiB actually sent (rare: costly)
        chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
        return [("send", head(method, target, auth + ["Content-Type: application/json",
                                                      "Transfer-Encoding: chunked"]))] + \
            [("send", chunk)] * 176 + [("send", b"0\r\n\r\n")]
    # a large but allowed body of junk: 1 MiB of one JSON string
    body = b"\"" + b"a" * (1 << 20) + b"\""
    return with_body(method, target, body, auth)


def fam_broken_csv(rng, c):
    csvs = ["", "\n", "card", "card\n", "card\n\"open", "card,x\n1\n2,3,4\n", "a,a\nx,y\n", "\ufeffcard\nx\n",
            "card\rx\ry\r", "card\n" + "x" * 200000 + "\n", ",".join("c%d" % i for i in range(5000)) + "\n1\n",
            "card\n" + "\n".join("r%d" % i for i in range(20000)) + "\n", "card\n\"a\"\"b\nc\n", "card\n\x00\x01\n",
            "c\u0000ard\nx\n", "\"\"\n\"\"\n", "card\n\"x\"y\n", "card,theme\n\"a,b\",\"c\n"]
    csv = rng.choice(csvs)
    doc = {"name": "csv", "prompt_template": "{card}", "width": 64, "height": 64, "csv": csv}
    body = json.dumps(doc).encode()
    if rng.random() < 0.3:  # invalid UTF-8 inside the CSV string
        body = body.replace(b"\"csv\": \"", b"\"csv\": \"\xc3\x28\xff", 1)
    method, target = rng.choice([("POST", "/api/batch-templates"), ("PUT", "/api/batch-templates/%d" % c.template_id)])
    auth = [["Authorization: Bearer " + c.admin], ["Authorization: Bearer " + c.admin], []][rng.randrange(3)]
    return with_body(method, target, body, auth)


def fam_transfer_encoding(rng, c):
    method, target = rng.choice(json_targets(c) + [("GET", "/api/health")])
    auth = c.auth(rng)
    te = rng.choice(["gzip", "chunked, chunked", "xchunked", "chunked;q=1", "identity", "chunked, gzip", "", " chunked",
                     "CHUNKED", "chunked\x0b", "deflate, chunked"])
    body = b"2\r\n{}\r\n0\r\n\r\n"
    k = rng.randrange(6)
    if k == 0:
        return [("send", head(method, target, auth + ["Transfer-Encoding: " + te]) + body)]
    if k == 1:  # both framings
        return [("send", head(method, target, auth + ["Transfer-Encoding: chunked", "Content-Length: 3"]) + body)]
    if k == 2:  # bad chunk sizes
        size = rng.choice([b"zz", b"-1", b"FFFFFFFFFFFFFFFFFFFF", b"", b"2;" + b"x" * 9000, b"0x2", b"2 2"])
        return [("send", head(method, target, auth + ["Transfer-Encoding: chunked"]) + size + b"\r\n{}\r\n0\r\n\r\n")]
    if k == 3:  # chunk longer than declared
        return [("send", head(method, target, auth + ["Transfer-Encoding: chunked"]) + b"2\r\n{\"a\":1}\r\n0\r\n\r\n")]
    if k == 4:  # two Transfer-Encoding headers
        return [("send", head(method, target, auth + ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]) + body)]
    # trailers, some odd
    return [("send", head(method, target, auth + ["Transfer-Encoding: chunked"]) + b"2\r\n{}\r\n0\r\nX-T: 1\r\n"
             + rng.choice([b"Content-Length: 5\r\n", b"\x00\r\n", b""]) + b"\r\n")]


def fam_queries(rng, c):
    base = rng.choice(["/api/images", "/api/runs", "/api/albums", "/api/batch-templates",
                       "/api/runs/%d/items" % c.run_id, "/api/health", "/api/batch-templates/%d/runs" % c.template_id,
                       "/api/albums/%d/download.zip" % c.album_id, "/api/runs/%d/download.zip" % c.run_id])
    k = rng.randrange(9)
    if k == 0:
        q = "&".join("p%d=%d" % (i, i) for i in range(rng.choice([100, 257, 300, 400, 600, 1100])))
    elif k == 1:
        q = "x=" + "a" * rng.choice([1000, 8000, 8200, 16000, 30000])
    elif k == 2:
        q = rng.choice(["limit=-1", "limit=0", "limit=99999999999999999999", "limit=abc", "offset=-5",
                        "offset=1e9", "limit=1.5", "limit=", "limit", "limit=%00", "limit=1&limit=2",
                        "cursor=%zz", "album_id=x", "run_id=-1", "status=%ff", "sort=;DROP TABLE runs"])
    elif k == 3:
        q = rng.choice(["", "&&&", "=", "==", "%", "%%", "%2", "%u0041", "a=%E2%82", "a[]=1&a[]=2", "?", "#frag"])
    elif k == 4:
        q = "".join(chr(rng.randrange(0x21, 0x7f)) for _ in range(rng.randrange(1, 200)))
    elif k == 5:
        q = "q=" + "".join("%%%02X" % rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    elif k == 6:
        q = "limit=10&" * rng.randrange(1, 200)
    elif k == 7:
        return [("send", head("GET", base.encode() + b"?q=\xff\xfe\x00\x01\x7f" + bytes(rng.randrange(256) for _ in range(20))))]
    else:
        q = "x=" + "\u00e9\u4e2d\U0001F600" * rng.randrange(1, 500)
        return [("send", head("GET", base.encode() + b"?" + q.encode("utf-8")))]
    return [("send", head("GET", (base + "?" + q).encode("latin-1", "replace")))]


def fam_control_paths(rng, c):
    k = rng.randrange(6)
    if k == 0:
        ch = bytes([rng.choice(list(range(1, 32)) + [127])])
        path = b"/api/albums/" + ch + b"1"
    elif k == 1:
        path = b"/api/" + rng.choice([b"%00", b"%0a", b"%0d%0a", b"%1b[31m", b"%7f", b"%c0%ae", b"%ff", b"%2e%2e/%2e%2e",
                                      b"images/1%00", b"albums/%0aX-Injected:%201", b"runs/1%09", b"..%2f..%2fetc%2fpasswd"])
    elif k == 2:
        path = rng.choice([b"//api//health", b"/api/health/", b"/api/./health", b"/api/../api/health", b"\\api\\health",
                           b"/API/HEALTH", b"/api/health;x", b"/api/images/1/file/..", b"*", b"api/health", b"",
                           b"http://127.0.0.1/api/health", b"/%", b"/%%", b"/~", b"/api/images/" + b"9" * 400])
    elif k == 3:
        path = b"/api/batch-templates/" + bytes(rng.randrange(128, 256) for _ in range(rng.randrange(1, 40)))
    elif k == 4:
        path = b"/" + b"/".join(b"a" for _ in range(rng.randrange(1, 3000)))
    else:
        path = b"/api/images/%d/file" % c.image_id + rng.choice([b"\x1b]0;pwned\x07", b"\r", b"\x00", b"\t"])
    method = rng.choice(["GET", "GET", "DELETE", "POST", "HEAD"])
    return [("send", head(method, path, c.auth(rng)))]


def fam_bad_auth(rng, c):
    tok = c.admin
    values = [b"Bearer", b"Bearer ", b"Bearer sf_", b"Bearer sf_abc", b"bearer " + tok.encode(), b"BEARER " + tok.encode(),
              b"Bearer  " + tok.encode(), b"Bearer " + tok.encode() + b"\x00junk", b"Bearer " + tok.encode() + b" junk",
              b"Bearer " + tok.encode()[:-1], b"Bearer " + tok.encode() + b"0", b"Basic YWRtaW46YWRtaW4=", b"Token " + tok.encode(),
              b"Bearer " + b"A" * 40000, b"Bearer " + bytes(rng.randrange(128, 256) for _ in range(67)),
              b"Bearer\t" + tok.encode(), b"Bearer sf_" + b"g" * 64, b"\x01\x02", b"Bearer " + tok.upper().encode()]
    v = rng.choice(values)
    hs = [b"Authorization: " + v]
    if rng.random() < 0.2:
        hs.append(b"Authorization: Bearer " + c.user.encode())
    method, target = rng.choice([("GET", "/api/images"), ("DELETE", "/api/albums/999999"), ("POST", "/api/albums"),
                                 ("GET", "/api/runs"), ("POST", "/api/runs/%d/cancel" % c.run_id),
                                 ("DELETE", "/api/images/999999"), ("PUT", "/api/batch-templates/999999"),
                                 ("POST", "/api/queue/resume"), ("PATCH", "/api/runs/%d" % c.run_id)])
    body = b"{\"name\": \"x\"}" if method in ("POST", "PUT", "PATCH") else b""
    return [("send", head(method, target, hs + [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]) + body)]


def fam_unknown_ids(rng, c):
    ids = ["0", "-1", "999999999", "99999999999999999999999", "18446744073709551616", "9223372036854775807",
           "9223372036854775808", "abc", "1.5", "1e3", "%31", "0x10", "+1", " 1", "01", "1%20", "", "NaN"]
    i = rng.choice(ids)
    method, target = rng.choice([
        ("GET", "/api/batch-templates/%s"), ("GET", "/api/batch-templates/%s/items.csv"),
        ("GET", "/api/batch-templates/%s/runs"), ("GET", "/api/batch-templates/1/runs/%s"),
        ("GET", "/api/runs/%s"), ("GET", "/api/runs/%s/items"), ("GET", "/api/runs/%s/events"),
        ("POST", "/api/runs/%s/cancel"), ("POST", "/api/runs/%s/retry"), ("GET", "/api/images/%s"),
        ("GET", "/api/images/%s/file"), ("DELETE", "/api/images/%s"), ("GET", "/api/albums/%s"),
        ("DELETE", "/api/albums/%s"), ("DELETE", "/api/albums/1/images/%s"), ("POST", "/api/batch-templates/%s/generate"),
        ("POST", "/api/runs/%s/pause"), ("POST", "/api/runs/%s/resume"), ("PATCH", "/api/runs/%s"),
        ("GET", "/api/runs/%s/download.zip"), ("GET", "/api/albums/%s/download.zip")])
    target = target % i
    body = b"{\"album_name\": \"a\", \"user_theme\": \"t\"}" if method in ("POST", "PATCH") else b""
    hs = c.auth(rng) + ["Content-Type: application/json", "Content-Length: %d" % len(body)]
    return [("send", head(method, target.replace(" ", "%20"), hs) + body)]


def fam_odd_methods(rng, c):
    target = rng.choice(["/api/health", "/api/images", "/api/albums/%d" % c.album_id, "/metrics", "/nope",
                         "/api/batch-templates/%d/generate" % c.template_id])
    m = rng.choice([b"PATCH", b"TRACE", b"CONNECT", b"OPTIONS", b"HEAD", b"GETT", b"get", b"PROPFIND", b"BREW",
                    b"M" * 300, b"G\x00ET", b"GET\x1b", b"\xff\xfe", b"-", b"POST", b"PUT", b"DELETE"])
    hs = c.auth(rng)
    if rng.random() < 0.3:
        hs = hs + ["Origin: http://evil.example", "Access-Control-Request-Method: DELETE"]
    if m == b"CONNECT" and rng.random() < 0.5:
        target = "127.0.0.1:80"
    version = rng.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"HTTP/1.10", b"HTTPS/1.1", b""])
    return [("send", head(m, target, hs, version))]


def fam_truncated(rng, c):
    full = head("POST", "/api/batch-templates/%d/generate" % c.template_id,
                ["Content-Type: application/json", "Content-Length: 40"]) + b"{\"album_name\": \"a\", \"user_theme\": \"t\"}"
    k = rng.randrange(7)
    if k == 0:  # cut anywhere, then half-close
        return [("send", full[:rng.randrange(1, len(full))]), ("shut",)]
    if k == 1:  # cut anywhere, then wait (the head or body deadline must end it)
        return [("send", full[:rng.randrange(1, len(full))])]
    if k == 2:
        return [("send", rng.choice([b"GET /\r\n", b"GET / HTTP/1.1\r\n", b"\r\n\r\n", b"\r\n" * 100, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32), b"GET / HTTP/1.1\nHost: x\n\n",
                                     b"GET / HTTP/1.1\r\nHost: x\r\n X-Folded: y\r\n\r\n", b"GET / HTTP/1.1\r\n: empty\r\n\r\n",
                                     b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", b"GET  /api/health  HTTP/1.1\r\n\r\n"])), ("shut",)]
    if k == 3:  # random bytes
        return [("send", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))), ("shut",)]
    if k == 4:  # a good request, then garbage on the same connection
        return [("send", head("GET", "/api/health") + bytes(rng.randrange(256) for _ in range(200))), ("shut",)]
    if k == 5:  # pipelined: three requests at once, the second broken
        return [("send", head("GET", "/api/health") + b"GET /api/\x00 HTTP/1.1\r\n\r\n" + head("GET", "/api/health")), ("shut",)]
    return [("send", b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab"), ("shut",)]


def fam_slowloris(rng, c):
    full = head("GET", "/api/images", ["X-Pad: " + "a" * 200])
    if rng.random() < 0.5:  # the head, a byte every 0.5 s, never finished
        return [x for i in range(40) for x in (("send", full[i:i + 1]), ("sleep", 0.5))]
    # a body at 10 bytes a second
    plan = [("send", head("POST", "/api/albums", ["Authorization: Bearer " + c.admin, "Content-Type: application/json",
                                                  "Content-Length: 100000"]))]
    return plan + [x for _ in range(40) for x in (("send", b"a" * 5), ("sleep", 0.5))]


FAMILIES = [("bad JSON", fam_bad_json), ("wrong types", fam_wrong_types), ("huge bodies", fam_huge_body),
            ("broken CSV", fam_broken_csv), ("bad Transfer-Encoding", fam_transfer_encoding),
            ("long/odd queries", fam_queries), ("control chars in paths", fam_control_paths),
            ("bad auth headers", fam_bad_auth), ("unknown ids", fam_unknown_ids), ("odd methods", fam_odd_methods),
            ("truncated requests", fam_truncated), ("slowloris-lite", fam_slowloris)]

# --------------------------------------------------------------------------


STATUS_RE = re.compile(rb"^HTTP/1\.[01] (\d{3})")


async def exchange(port, plan, src):
    """('answered', status, content_type) | ('closed', None, None) | ('hung', None, None), and seconds."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 10)
    except (OSError, asyncio.TimeoutError):
        return ("refused", None, None), loop.time() - t0

    async def drive():
        for act in plan:
            if act[0] == "send":
                writer.write(act[1])
                await writer.drain()
            elif act[0] == "sleep":
                await asyncio.sleep(act[1])
            else:
                writer.write_eof()

    async def read():
        data = b""
        while True:
            try:
                chunk = await reader.read(65536)
            except OSError:
                return ("closed", None, None)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data or len(data) > 65536:
                break
        m = STATUS_RE.match(data)
        if not m:
            return ("closed", None, None) if not data else ("garbage", None, None)
        ct = re.search(rb"(?im)^content-type:\s*([^\r\n;]*)", data)
        return ("answered", int(m.group(1)), ct.group(1).decode() if ct else "")

    driver = asyncio.ensure_future(drive())
    try:
        out = await asyncio.wait_for(read(), BOUND_S)
    except asyncio.TimeoutError:
        out = ("hung", None, None)
    elapsed = loop.time() - t0
    driver.cancel()
    try:
        await driver
    except (asyncio.CancelledError, OSError):
        pass
    writer.close()
    return out, elapsed


async def health_probe(port, stop, lat):
    while not stop.is_set():
        t = time.perf_counter()
        ok = False
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=(PROBE_FROM, 0)), 5)
            w.write(head("GET", "/api/health", ["Connection: close"]))
            data = await asyncio.wait_for(r.read(), 5)
            ok = data.startswith(b"HTTP/1.1 200")
            w.close()
        except (OSError, asyncio.TimeoutError):
            pass
        lat.append(((time.perf_counter() - t) * 1000, ok))
        await asyncio.sleep(0.1)


def proc_numbers(pid):
    with open("/proc/%d/status" % pid) as f:
        s = f.read()
    return {"fds": len(os.listdir("/proc/%d/fd" % pid)),
            "threads": int(re.search(r"Threads:\s+(\d+)", s).group(1)),
            "hwm_kib": int(re.search(r"VmHWM:\s+(\d+)", s).group(1)),
            "rss_kib": int(re.search(r"VmRSS:\s+(\d+)", s).group(1))}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


def prepare(d):
    tpl = harness.expect_json(d.post("/api/batch-templates", {
        "name": "malformed", "prompt_template": "{card} in {theme}", "width": 64, "height": 64,
        "csv_items": [{"card": "c%d" % i} for i in range(5)]}), 201)
    run = harness.expect_json(d.post("/api/batch-templates/%d/generate" % tpl["id"],
                                     {"album_name": "m", "user_theme": "ink"}), 202)["run"]
    run = harness.wait_run(d, run["id"], timeout=60)
    images = harness.expect_json(d.get("/api/images", token="admin"), 200)
    items = images["images"]
    image_id = items[0]["id"] if items else 1
    return Ctx(d.admin_token, d.user_token, tpl["id"], run["id"], image_id, run["album_id"])


async def main_async(d, ctx):
    rng = random.Random(SEED)
    plans = []
    for i in range(N):
        name, fn = FAMILIES[i % len(FAMILIES)]
        plans.append((name, fn(rng, ctx), SOURCES[i % len(SOURCES)]))
    rng.shuffle(plans)
    sem = asyncio.Semaphore(CONCURRENCY)
    results = []

    async def one(name, plan, src):
        async with sem:
            out, secs = await exchange(d.port, plan, src)
            results.append((name, out, secs))

    stop = asyncio.Event()
    lat = []
    probe = asyncio.ensure_future(health_probe(d.port, stop, lat))
    t0 = time.time()
    await asyncio.gather(*(one(*p) for p in plans))
    wall = time.time() - t0
    stop.set()
    await probe
    return results, lat, wall


def main():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = harness.Daemon(extra_args=["--access-log", "false", "--per-ip-limit", "1024"])
    try:
        ctx = prepare(d)
        before = proc_numbers(d.proc.pid)
        results, lat, wall = asyncio.run(main_async(d, ctx))
        time.sleep(1)
        alive = d.alive()
        after = proc_numbers(d.proc.pid) if alive else None
        healthy = alive and d.healthy()
        err = d.stderr_text()
        print("%d malformed requests (seed %d), %d at a time from %d addresses, in %.0f s; daemon with defaults "
              "but --per-ip-limit 1024 --access-log false" % (len(results), SEED, CONCURRENCY, len(SOURCES), wall))
        print("%-24s %6s %9s %7s %5s %8s  statuses" % ("family", "sent", "answered", "closed", "hung", "slowest"))
        tot = {"answered": 0, "closed": 0, "hung": 0, "refused": 0, "garbage": 0}
        ours_5xx, mhd_5xx, shed, refused_te = {}, {}, 0, 0
        for name, _ in FAMILIES:
            rs = [r for r in results if r[0] == name]
            counts = {k: sum(1 for r in rs if r[1][0] == k) for k in tot}
            for k in tot:
                tot[k] += counts[k]
            statuses = {}
            for _, (kind, status, ctype), _ in rs:
                if kind != "answered":
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                if status == 503:
                    shed += 1
                elif status == 501 and ctype.startswith("application/json"):
                    refused_te += 1
                elif status >= 500:
                    bucket = ours_5xx if ctype.startswith("application/json") else mhd_5xx
                    bucket[status] = bucket.get(status, 0) + 1
            other = counts["refused"] + counts["garbage"]
            print("%-24s %6d %9d %7d %5d %7.1fs  %s%s" % (
                name, len(rs), counts["answered"], counts["closed"], counts["hung"], max(r[2] for r in rs),
                " ".join("%d:%d" % kv for kv in sorted(statuses.items())),
                ("  (refused or garbage: %d)" % other) if other else ""))
        print("total: answered %d, closed without an answer %d, hung (> %.0f s) %d, connect refused %d, "
              "not HTTP %d" % (tot["answered"], tot["closed"], BOUND_S, tot["hung"], tot["refused"], tot["garbage"]))
        crashed = not alive or "AddressSanitizer" in err or "Aborted" in err or "runtime error" in err
        print("crashes: %d (alive %s, /api/health %s after)" % (int(crashed), alive, "200" if healthy else "failing"))
        print("5xx from our code (JSON answers), besides the two deliberate ones: %d" % sum(ours_5xx.values()))
        print("  deliberate: 501 not_implemented for a Transfer-Encoding other than one chunked (RFC 9112 6.1): %d; "
              "503 (load shedding): %d" % (refused_te, shed))
        print("  from libmicrohttpd itself, before our handler (its fixed HTML): %s" % (
            ", ".join("%d: %d" % kv for kv in sorted(mhd_5xx.items())) or "none"))
        for k, v in sorted(ours_5xx.items()):
            print("  our %d: %d" % (k, v))
        ms = [x for x, _ in lat]
        print("/api/health from %s meanwhile: %d requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms, failed %d" % (
            PROBE_FROM, len(lat), pct(ms, 50), pct(ms, 99), max(ms) if ms else float("nan"),
            sum(1 for _, ok in lat if not ok)))
        if after:
            print("daemon before -> after: open files %d -> %d, threads %d -> %d, RSS %.1f -> %.1f MiB, "
                  "peak RSS %.1f MiB" % (before["fds"], after["fds"], before["threads"], after["threads"],
                                         before["rss_kib"] / 1024, after["rss_kib"] / 1024, after["hwm_kib"] / 1024))
        if crashed:
            print("daemon stderr (tail):\n" + err[-2000:])
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
