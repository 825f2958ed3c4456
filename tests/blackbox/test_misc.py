"""Black-box tests of /api/health, /metrics, CORS and a concurrency smoke test."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, check, eq, expect_error, expect_json, expect_status, run, test

D = None  # with --cors-origins http://ui.example
ORIGIN = "http://ui.example"
EVIL = "http://evil.example"


def hset(value):
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


@test
def health_shape():
    r = D.get("/api/health")
    j = expect_json(r, 200)
    eq(j.get("status"), "ok", "status")
    check(isinstance(j.get("version"), str) and j["version"], "version %r" % j.get("version"))
    eq(j.get("db"), "ok", "db")
    q = j.get("queue")
    check(isinstance(q, dict), "queue %r" % q)
    for k in ("queued", "running"):
        check(isinstance(q.get(k), int) and not isinstance(q.get(k), bool) and q[k] >= 0, "queue.%s %r" % (k, q.get(k)))
    check(isinstance(j.get("backends"), list), "backends %r" % j.get("backends"))


@test
def metrics_prometheus():
    r = D.get("/metrics")
    expect_status(r, 200)
    check(r.headers.get("Content-Type", "").startswith("text/plain"), "metrics Content-Type %r"
          % r.headers.get("Content-Type"))
    lines = [l for l in r.text.splitlines() if l and not l.startswith("#")]
    check(lines, "metrics has no samples")
    for l in lines:
        parts = l.rsplit(" ", 1)
        check(len(parts) == 2, "bad metrics line %r" % l)
        try:
            float(parts[1])
        except ValueError:
            raise AssertionError("metrics sample value not a number: %r" % l)


@test
def cors_preflight_allowed_origin():
    r = D.request("OPTIONS", "/api/albums", token=None,
                  headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                           "Access-Control-Request-Headers": "authorization, content-type"})
    eq(r.status, 204, "preflight status (%s)" % r.describe())
    eq(r.body, b"", "204 body")
    eq(r.headers.get("Access-Control-Allow-Origin"), ORIGIN, "ACAO")
    check("origin" in hset(r.headers.get("Vary")), "Vary %r lacks Origin" % r.headers.get("Vary"))
    meth = {m.upper() for m in hset(r.headers.get("Access-Control-Allow-Methods"))}
    check({"GET", "POST"} <= meth, "Allow-Methods %r" % r.headers.get("Access-Control-Allow-Methods"))
    hdrs = hset(r.headers.get("Access-Control-Allow-Headers"))
    check({"authorization", "content-type", "idempotency-key", "last-event-id"} <= hdrs,
          "Allow-Headers %r" % r.headers.get("Access-Control-Allow-Headers"))
    eq(r.headers.get("Access-Control-Max-Age"), "600", "Max-Age")
    allow = {m.upper() for m in hset(r.headers.get("Allow"))}
    check({"GET", "POST", "OPTIONS"} <= allow, "Allow %r" % r.headers.get("Allow"))


@test
def cors_preflight_item_path():
    r = D.request("OPTIONS", "/api/albums/1", token=None, headers={"Origin": ORIGIN,
                                                                   "Access-Control-Request-Method": "PUT"})
    eq(r.status, 204, "preflight on /api/albums/1 (%s)" % r.describe())
    meth = {m.upper() for m in hset(r.headers.get("Access-Control-Allow-Methods"))}
    check({"GET", "PUT", "DELETE"} <= meth, "Allow-Methods %r" % r.headers.get("Access-Control-Allow-Methods"))
    eq(r.headers.get("Access-Control-Allow-Origin"), ORIGIN, "ACAO")


@test
def cors_preflight_disallowed_origin():
    r = D.request("OPTIONS", "/api/albums", token=None,
                  headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    eq(r.status, 204, "status (%s)" % r.describe())
    check("Access-Control-Allow-Origin" not in r.headers, "ACAO for a disallowed origin: %r" % r.headers)
    check("Access-Control-Allow-Methods" not in r.headers, "Allow-Methods for a disallowed origin")
    check({"GET", "POST"} <= {m.upper() for m in hset(r.headers.get("Allow"))}, "Allow %r" % r.headers.get("Allow"))


@test
def options_without_origin():
    r = D.request("OPTIONS", "/api/batch-templates", token=None)
    eq(r.status, 204, "status (%s)" % r.describe())
    check({"GET", "POST", "OPTIONS"} <= {m.upper() for m in hset(r.headers.get("Allow"))},
          "Allow %r" % r.headers.get("Allow"))
    check("Access-Control-Allow-Origin" not in r.headers, "ACAO without Origin")


@test
def options_unknown_path_404():
    r = D.request("OPTIONS", "/api/nope", token=None, headers={"Origin": ORIGIN,
                                                               "Access-Control-Request-Method": "GET"})
    expect_error(r, 404, "not_found")


@test
def cors_simple_requests():
    r = D.get("/api/albums", headers={"Origin": ORIGIN})
    expect_json(r, 200)
    eq(r.headers.get("Access-Control-Allow-Origin"), ORIGIN, "ACAO on GET")
    check({"location", "retry-after"} <= hset(r.headers.get("Access-Control-Expose-Headers")),
          "Expose-Headers %r" % r.headers.get("Access-Control-Expose-Headers"))
    r = D.get("/api/albums", headers={"Origin": EVIL})
    expect_json(r, 200)
    check("Access-Control-Allow-Origin" not in r.headers, "ACAO for a disallowed origin on GET")
    # errors to an allowed origin carry it too (so the browser can read the error)
    r = D.get("/api/nope", headers={"Origin": ORIGIN})
    expect_error(r, 404, "not_found")
    eq(r.headers.get("Access-Control-Allow-Origin"), ORIGIN, "ACAO on a 404")
    r = D.post("/api/albums", {"name": "cors"}, token=None, headers={"Origin": ORIGIN})
    expect_error(r, 401, "unauthorized")
    eq(r.headers.get("Access-Control-Allow-Origin"), ORIGIN, "ACAO on a 401")
    r = D.post("/api/albums", {"name": "cors"}, token="admin", headers={"Origin": ORIGIN})
    expect_json(r, 201)
    eq(r.headers.get("Access-Control-Allow-Origin"), ORIGIN, "ACAO on a 201")


@test
def cors_wildcard_echoes_origin():
    d = Daemon(extra_args=["--cors-origins", "*"])
    try:
        r = d.request("OPTIONS", "/api/albums", token=None,
                      headers={"Origin": "http://anything.example", "Access-Control-Request-Method": "GET"})
        eq(r.status, 204, "status")
        eq(r.headers.get("Access-Control-Allow-Origin"), "http://anything.example", "ACAO with *")
    finally:
        d.cleanup()


@test
def cors_default_is_none():
    d = Daemon()
    try:
        r = d.request("OPTIONS", "/api/albums", token=None,
                      headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        eq(r.status, 204, "status")
        check("Access-Control-Allow-Origin" not in r.headers, "ACAO with no cors_origins configured")
    finally:
        d.cleanup()


def _parallel(n, fn):
    results = [None] * n
    errors = []

    def work(i):
        try:
            results[i] = fn(i)
        except Exception as e:
            errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    check(not errors, "request errors: %s" % errors[:5])
    return results


@test
def concurrency_50_parallel_gets():
    paths = ["/api/health", "/api/albums", "/api/batch-templates", "/api/albums?per_page=5"]
    res = _parallel(50, lambda i: D.get(paths[i % len(paths)]))
    bad = [r.describe() for r in res if r is None or r.status != 200]
    check(not bad, "%d of 50 parallel GETs failed: %s" % (len(bad), bad[:3]))


@test
def concurrency_parallel_creates():
    res = _parallel(20, lambda i: D.post("/api/albums", {"name": "par %d" % i}))
    bad = [r.describe() for r in res if r is None or r.status != 201]
    check(not bad, "%d of 20 parallel creates failed: %s" % (len(bad), bad[:3]))
    ids = [r.json()["id"] for r in res]
    eq(len(set(ids)), 20, "distinct ids")
    check(D.healthy(), "unhealthy after parallel creates")


def setup():
    global D
    D = Daemon(extra_args=["--cors-origins", ORIGIN])


def teardown(_):
    if D is not None:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
