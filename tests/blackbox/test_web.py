"""Black-box tests of the page the daemon serves (docs/web.md): "/" and its
content-hashed assets, their caching (ETag, 304, Cache-Control), gzip against
identity, the Content-Security-Policy; and of POST
/api/batch-templates/<id>/preview, which must answer exactly the prompts and
seeds that generate stores."""

import gzip
import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Daemon, check, eq, expect_error, expect_json, run, test, wait_for, wait_run  # noqa: E402
from test_endpoints import Fake, config_file, make_template  # noqa: E402

del harness._TESTS[:]  # test_endpoints' own tests run from their file, not from this one

D = None
ZODIAC = None
ASSET_RE = re.compile(r'(?:src|href)="(/assets/[A-Za-z0-9_-]+\.([0-9a-f]{16})\.(js|css))"')


def page(accept=None, **headers):
    h = dict(headers)
    if accept is not None:
        h["Accept-Encoding"] = accept
    return D.request("GET", "/", headers=h, token=None)


def assets():
    """The assets the page names: [(path, hash, ext)]."""
    html = gzip.decompress(page("gzip").body).decode()
    found = ASSET_RE.findall(html)
    check(len(found) >= 2, "the page names no js and css asset: %s" % html[:300])
    return found


@test
def page_is_served_with_csp_and_no_cache():
    r = page(accept="")
    eq(r.status, 200)
    check(r.headers["Content-Type"].startswith("text/html"), r.headers["Content-Type"])
    csp = r.headers.get("Content-Security-Policy", "")
    check("default-src 'self'" in csp and "img-src 'self' data: blob:" in csp, "CSP: %r" % csp)
    check("script-src" not in csp or "'unsafe-inline'" not in csp, "inline scripts allowed: %r" % csp)
    eq(r.headers.get("Cache-Control"), "no-cache")
    check("Accept-Encoding" in r.headers.get("Vary", ""), "Vary: %r" % r.headers.get("Vary"))
    eq(r.headers.get("X-Content-Type-Options"), "nosniff")
    check(r.headers.get("Content-Encoding") is None, "gzip sent to a client that did not ask for it")
    html = r.body.decode()
    check("<title>setforge</title>" in html, html[:200])
    # nothing from another host
    check(not re.search(r'(?:src|href)="(?:https?:)?//', html), "the page loads something from another host")


@test
def gzip_and_identity_are_the_same_page():
    plain = page(accept="identity")
    zipped = page(accept="br;q=1.0, gzip;q=0.8")
    eq(zipped.headers.get("Content-Encoding"), "gzip")
    eq(gzip.decompress(zipped.body), plain.body)
    check(plain.headers["ETag"] != zipped.headers["ETag"], "both encodings share one ETag")
    # q=0 refuses gzip; "*" allows it
    check(page(accept="gzip;q=0").headers.get("Content-Encoding") is None, "gzip;q=0 got gzip")
    eq(page(accept="*").headers.get("Content-Encoding"), "gzip")
    check(page(accept="deflate").headers.get("Content-Encoding") is None, "deflate got gzip")
    check(len(zipped.body) < len(plain.body), "gzip is not smaller")


@test
def etag_revalidation_gives_304():
    for accept in ("gzip", ""):
        first = page(accept=accept)
        etag = first.headers["ETag"]
        check(re.match(r'^"[0-9a-f]{16}(-gz)?"$', etag), "ETag %r" % etag)
        again = page(accept=accept, **{"If-None-Match": etag})
        eq(again.status, 304)
        eq(again.body, b"")
        eq(again.headers.get("ETag"), etag)
        other = page(accept=accept, **{"If-None-Match": '"0000000000000000"'})
        eq(other.status, 200)


@test
def assets_are_hashed_immutable_and_gzipped():
    for path, digest, ext in assets():
        plain = D.request("GET", path, headers={"Accept-Encoding": ""}, token=None)
        eq(plain.status, 200)
        eq(plain.headers.get("Cache-Control"), "public, max-age=31536000, immutable")
        # the name's hash is the content's
        eq(hashlib.sha256(plain.body).hexdigest()[:16], digest)
        eq(plain.headers["ETag"], '"%s"' % digest)
        want = "text/javascript" if ext == "js" else "text/css"
        check(plain.headers["Content-Type"].startswith(want), plain.headers["Content-Type"])
        zipped = D.request("GET", path, headers={"Accept-Encoding": "gzip"}, token=None)
        eq(zipped.headers.get("Content-Encoding"), "gzip")
        eq(gzip.decompress(zipped.body), plain.body)
        eq(D.request("GET", path, headers={"If-None-Match": zipped.headers["ETag"]}, token=None).status, 304)
        head = D.request("HEAD", path, token=None)
        eq(head.status, 200)
        eq(head.body, b"")


@test
def the_script_uses_no_external_resource():
    for path, _, ext in assets():
        body = D.request("GET", path, headers={"Accept-Encoding": ""}, token=None).body.decode()
        check(not re.search(r"https?://", body), "%s names another host" % path)
        check("eval(" not in body and "innerHTML" not in body, "%s builds code or markup from strings" % path)


@test
def unknown_assets_are_json_404s():
    for path in ("/assets/app.0000000000000000.js", "/assets/nope", "/assets/app.js", "/index.html",
                 "/assets/", "/assets/x/y.js", "/favicon.ico"):
        expect_error(D.request("GET", path, token=None), 404, "not_found")
    r = D.request("POST", "/", body={}, token=None)
    eq(r.status, 405)
    check("GET" in r.headers.get("Allow", ""), "Allow %r" % r.headers.get("Allow"))


@test
def page_needs_no_token_and_ignores_none():
    eq(D.request("GET", "/", token="admin").status, 200)
    eq(D.request("GET", "/", token=None).status, 200)


# ---- preview ------------------------------------------------------------------


def preview(tid, body, query="", token=None):
    return D.request("POST", "/api/batch-templates/%d/preview%s" % (tid, query), body=body, token=token)


BODY = {"album_name": "preview album", "user_theme": "linocut", "seed": 40, "steps": 12,
        "negative_prompt": "text", "width": 256, "height": 384}


@test
def preview_equals_the_run():
    p = expect_json(preview(ZODIAC, BODY, "?limit=100"), 200)
    eq(p["total"], 12)
    eq(len(p["items"]), 12)
    before = expect_json(D.get("/api/runs"), 200)["total"]
    r = expect_json(D.post("/api/batch-templates/%d/generate" % ZODIAC, BODY, token=None), 202)
    rid = r["run"]["id"]
    items = expect_json(D.get("/api/runs/%d/items?per_page=100" % rid), 200)["items"]
    eq([(i["index"], i["prompt"], i["seed"]) for i in items],
       [(i["index"], i["prompt"], i["seed"]) for i in p["items"]])
    run_ = wait_run(D, rid)
    for i in p["items"]:
        eq(i["negative_prompt"], run_["negative_prompt"])
        eq((i["width"], i["height"]), (run_["width"], run_["height"]))
    eq(expect_json(D.get("/api/runs"), 200)["total"], before + 1)


@test
def preview_queues_nothing_and_defaults_to_eight():
    before = expect_json(D.get("/api/runs"), 200)["total"]
    p = expect_json(preview(ZODIAC, BODY), 200)
    eq(len(p["items"]), 8)
    eq([i["index"] for i in p["items"]], list(range(8)))
    eq([i["seed"] for i in p["items"]], [40 + i for i in range(8)])
    check(all("linocut" in i["prompt"] for i in p["items"]), "theme missing")
    eq(set(p["items"][0]), {"index", "prompt", "negative_prompt", "seed", "width", "height"})
    eq(expect_json(D.get("/api/runs"), 200)["total"], before)
    eq(expect_json(D.get("/api/health"), 200)["queue"]["queued"], 0)


@test
def preview_without_seed_has_null_seeds():
    body = dict(BODY)
    del body["seed"]
    p = expect_json(preview(ZODIAC, body, "?limit=3"), 200)
    eq([i["seed"] for i in p["items"]], [None, None, None])
    body["seed"] = None
    eq(expect_json(preview(ZODIAC, body, "?limit=1"), 200)["items"][0]["seed"], None)


@test
def preview_limit_bounds():
    eq(len(expect_json(preview(ZODIAC, BODY, "?limit=1"), 200)["items"]), 1)
    eq(len(expect_json(preview(ZODIAC, BODY, "?limit=12"), 200)["items"]), 12)
    eq(len(expect_json(preview(ZODIAC, BODY, "?limit=100"), 200)["items"]), 12)
    eq(len(expect_json(preview(ZODIAC, BODY, "?limit=5000"), 200)["items"]), 12)  # clamped to 100
    for bad in ("0", "-1", "abc", "1.5", "", "99999999999999999999"):
        expect_error(preview(ZODIAC, BODY, "?limit=" + bad), 400, "invalid_request", "limit")


@test
def preview_errors_are_generates():
    expect_error(preview(999999, BODY), 404, "not_found")
    for bad, field in ((dict(BODY, steps=0), "steps"), (dict(BODY, width=100), "width"),
                       ({"user_theme": "x"}, "album_name"), ({"album_name": "x"}, "user_theme"),
                       (dict(BODY, seed=-1), "seed"), (dict(BODY, guidance_scale="7"), "guidance_scale"),
                       (dict(BODY, loras=[{"name": "/etc/passwd"}]), "loras")):
        e = expect_error(preview(ZODIAC, bad), 400, "invalid_request", field)
        g = expect_error(D.post("/api/batch-templates/%d/generate" % ZODIAC, bad, token=None), 400,
                         "invalid_request", field)
        eq(e["fields"], g["fields"])
    r = D.request("POST", "/api/batch-templates/%d/preview" % ZODIAC, raw=b"not json",
                  headers={"Content-Type": "application/json"}, token=None)
    expect_error(r, 400, "invalid_request")
    r = D.request("POST", "/api/batch-templates/%d/preview" % ZODIAC, raw=b"{}",
                  headers={"Content-Type": "text/plain"}, token=None)
    expect_error(r, 415)
    empty = expect_json(D.post("/api/batch-templates", {"name": "empty", "prompt_template": "x"}), 201)
    expect_error(preview(empty["id"], BODY), 400, "invalid_request", "template")
    # a priority above 0 needs an admin token, for preview as for generate
    expect_error(preview(ZODIAC, dict(BODY, priority=5)), 401)
    expect_error(preview(ZODIAC, dict(BODY, priority=5), token="user"), 403)
    eq(expect_json(preview(ZODIAC, dict(BODY, priority=5), token="admin"), 200)["total"], 12)
    # a present bad token is a 401 on a public route, as everywhere
    expect_error(preview(ZODIAC, BODY, token="sf_" + "0" * 64), 401)


@test
def preview_warns_about_sizes_as_generate_does():
    # a fake stable-diffusion.cpp server, which aligns sizes to 64
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    cfg = config_file([{"name": "cpp0", "type": "a1111", "url": fake.url, "timeout_s": 10}], max_attempts=1)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        wait_for(lambda: any(b.get("dialect") == "sdcpp" for b in d.get("/api/health").json()["backends"]),
                 10, "the endpoint's dialect known")
        tid = make_template(d, 2, width=72, height=64)
        body = {"album_name": "sizes", "user_theme": "ink", "seed": 3}
        p = expect_json(d.post("/api/batch-templates/%d/preview" % tid, body, token=None), 200)
        g = expect_json(d.post("/api/batch-templates/%d/generate" % tid, body, token=None), 202)
        check(len(g.get("warnings") or []) == 1, "generate did not warn: %s" % g)
        eq(p.get("warnings"), g["warnings"])
        fine = expect_json(d.post("/api/batch-templates/%d/preview" % tid, dict(body, width=128), token=None), 200)
        check("warnings" not in fine, "a size the server keeps was warned about: %s" % fine)
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


def setup():
    global D, ZODIAC
    D = Daemon(examples=True)
    ts = expect_json(D.get("/api/batch-templates"), 200)["templates"]
    ZODIAC = [t for t in ts if t["name"] == "Zodiac Signs"][0]["id"]


def teardown(_):
    if D:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
