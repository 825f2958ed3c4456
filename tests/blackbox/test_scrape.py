"""Black-box tests of scrape jobs (API.md "Scrape jobs", docs/scrape.md): the
routes and their validation, what a page yields (relative, absolute,
protocol-relative, srcset, picture, og:image, links, <base>, duplicates), each
reason a download is skipped (404, 50 MiB, HTML posing as a PNG, 5 redirects,
a drip), max_images on a page of 2,000, a URL that is an image, the album,
cancel, and a kill -9 in the middle of a job that resumes without fetching a
finished download again.

The daemon runs with outbound_addresses=all: the web site is a local fake
(tests/fakes/fake_web.py on 127.0.0.1). test_scrape_ssrf.py covers the guard."""

import io
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (bound, SLOWDOWN, TS_RE, Daemon, check, eq, expect_error, expect_json, expect_status, run, snippet,  # noqa: E402
                     test, wait_for)
from fakeweb import FakeWeb  # noqa: E402

D = None
WEB = None
J = "/api/scrape-jobs"
FINAL = ("completed", "failed", "canceled")
# The drip (1 byte a second) is cut after 3 s under 10 bytes a second; a
# small image from a fake stalled by a busy machine is not (scaled by SF_SLOW).
ARGS = ["--outbound-addresses", "all", "--scrape-low-speed-s", str(3 * SLOWDOWN), "--scrape-low-speed-bps", "10",
        "--scrape-parallel", "4"]


def setup():
    global D, WEB
    WEB = FakeWeb()
    D = Daemon(extra_args=ARGS)


def teardown(_):
    if D:
        D.cleanup()
    if WEB:
        WEB.stop()


def create(url, name="scraped", max_images=100, d=None, status=202):
    d = d or D
    r = d.post(J, {"url": url, "album_name": name, "max_images": max_images})
    j = expect_json(r, status)
    if status == 202:
        eq(r.headers.get("Location"), "%s/%d" % (J, j["id"]), "Location")
    return j


def wait_job(jid, d=None, timeout=60, cond=None):
    d = d or D
    last = [None]

    def reached():
        last[0] = expect_json(d.get("%s/%d" % (J, jid), token="admin"), 200)
        return last[0] if (cond(last[0]) if cond else last[0]["status"] in FINAL) else None

    return wait_for(reached, timeout, lambda: "scrape job %d (last: %s)" % (jid, snippet(str(last[0]))))


def items(jid, d=None):
    d = d or D
    out, page = [], 1
    while True:
        j = expect_json(d.get("%s/%d/items?per_page=100&page=%d" % (J, jid, page), token="admin"), 200)
        out += j["items"]
        if page >= j["pages"]:
            return out
        page += 1


# ---------------------------------------------------------------- the API


@test
def create_validates_every_field():
    bad = [
        ({}, ["url", "album_name", "max_images"]),
        ({"url": "ftp://x.test/a", "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "file:///etc/passwd", "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "gopher://127.0.0.1:70/", "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "dict://127.0.0.1:2628/", "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "http://", "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "http://a.test/x y", "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": 5, "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "http://a.test/" + "x" * 2100, "album_name": "a", "max_images": 1}, ["url"]),
        ({"url": "http://a.test/", "album_name": "", "max_images": 1}, ["album_name"]),
        ({"url": "http://a.test/", "album_name": "x" * 201, "max_images": 1}, ["album_name"]),
        ({"url": "http://a.test/", "album_name": "a\nb", "max_images": 1}, ["album_name"]),
        ({"url": "http://a.test/", "album_name": "a", "max_images": 0}, ["max_images"]),
        ({"url": "http://a.test/", "album_name": "a", "max_images": 1001}, ["max_images"]),
        ({"url": "http://a.test/", "album_name": "a", "max_images": "5"}, ["max_images"]),
        ({"url": "http://a.test/", "album_name": "a", "max_images": 2.5}, ["max_images"]),
    ]
    for body, fields in bad:
        r = D.post(J, body)
        expect_error(r, 400)
        got = r.json().get("fields", {})
        for f in fields:
            check(f in got, "%s: %s should be named in %s" % (snippet(str(body), 80), f, got))
    expect_error(D.post(J, {"url": "http://a.test/", "album_name": "a", "max_images": 1}, token=None), 401)
    expect_error(D.post(J, {"url": "http://a.test/", "album_name": "a", "max_images": 1}, token="user"), 403)
    expect_error(D.get(J, token="user"), 403)
    expect_error(D.get(J + "/999999", token="admin"), 404)
    expect_error(D.post(J + "/999999/cancel"), 404)
    expect_error(D.get(J + "?status=done", token="admin"), 400, field="status")
    expect_error(D.get(J + "?page=x", token="admin"), 400, field="page")


@test
def list_is_paginated_and_filtered():
    a = create(WEB.url("/page/empty.html"), "empty one")
    b = create(WEB.url("/page/empty.html"), "empty two")
    wait_job(a["id"])
    wait_job(b["id"])
    j = expect_json(D.get(J + "?per_page=1&status=failed", token="admin"), 200)
    check(j["total"] >= 2 and j["per_page"] == 1 and j["pages"] == j["total"], str(j))
    eq(j["scrape_jobs"][0]["id"], b["id"], "newest first")
    j = expect_json(D.get(J + "?status=completed&per_page=100", token="admin"), 200)
    check(all(x["status"] == "completed" for x in j["scrape_jobs"]), "the filter holds")


# ---------------------------------------------------------------- pages


@test
def mixed_page_every_rule_and_every_reason():
    job = create(WEB.url("/page/mixed.html"), "mixed page", 100)
    eq(job["status"], "pending")
    check(TS_RE.match(job["created_at"]), job["created_at"])
    j = wait_job(job["id"])
    eq(j["status"], "completed", "status: %s" % j)
    eq(j["images_found"], 17)
    eq(j["images_scraped"], 11)
    eq(j["images_skipped"], 6)
    eq(j["skipped"], {"duplicate": 1, "http_404": 1, "not_an_image": 1, "refused": 1, "too_large": 1,
                      "too_slow": 1})
    eq(j["progress"], 1.0)
    check(j["started_at"] and j["completed_at"] and j["error"] is None, str(j))
    its = items(job["id"])
    base = WEB.base
    want = ["/img/og.png", "/img/rel.png", "/img/abs.png", "/img/proto.png", "/img/large.png", "/img/w900.png",
            "/img/pic.webp", "/img/linked.jpg", "/img/anim.gif", "/same/one.png", "/same/two.png", "/missing.png",
            "/huge.png", "/posing.png", "/redirect/5.png", "/redirect/2.png", "/drip.png"]
    eq([i["url"] for i in its], [base + w for w in want], "page order, resolved, deduplicated")
    by = {i["url"][len(base):]: i for i in its}
    eq(by["/redirect/5.png"]["reason"], "refused")
    check("more than 3 redirects" in by["/redirect/5.png"]["error"], by["/redirect/5.png"]["error"])
    check("20 MiB" in by["/huge.png"]["error"], by["/huge.png"]["error"])
    check("not a readable" in by["/posing.png"]["error"], by["/posing.png"]["error"])
    check("too slow" in by["/drip.png"]["error"], by["/drip.png"]["error"])
    eq(by["/same/two.png"]["reason"], "duplicate")
    eq(by["/redirect/2.png"]["status"], "done")
    # the album: source scrape, this job, its name, the images in page order
    album = expect_json(D.get("/api/albums/%d?per_page=100" % j["album_id"]), 200)
    eq((album["source_type"], album["source_id"], album["name"], album["is_public"]),
       ("scrape", job["id"], "mixed page", True))
    done = [i["image_id"] for i in its if i["status"] == "done"]
    eq([im["id"] for im in album["images"]], done, "album order = page order")
    # each file is served with its real type; width and height from the header
    types = {}
    for i in its:
        if i["status"] == "done":
            r = D.get("/api/images/%d/file" % i["image_id"])
            eq(r.status, 200)
            types[i["url"][len(base):]] = r.headers.get("Content-Type")
    eq(types["/img/pic.webp"], "image/webp")
    eq(types["/img/linked.jpg"], "image/jpeg")
    eq(types["/img/anim.gif"], "image/gif")
    eq(types["/img/og.png"], "image/png")
    # the album is public, so are its images; it is listed as a scrape album
    expect_status(D.get("/api/images/%d" % by["/img/og.png"]["image_id"], token=None), 200)
    albums = expect_json(D.get("/api/albums?source_type=scrape&per_page=100", token=None), 200)["albums"]
    check(j["album_id"] in [a["id"] for a in albums], "listed with source_type=scrape")
    im = expect_json(D.get("/api/images/%d" % by["/img/linked.jpg"]["image_id"]), 200)
    eq((im["width"], im["height"], im["prompt"], im["mime_type"]), (40, 30, "", "image/jpeg"))
    # the album's zip names each file by its own type
    r = D.get("/api/albums/%d/download.zip" % j["album_id"], timeout=60)
    eq(r.status, 200)
    names = zipfile.ZipFile(io.BytesIO(r.body)).namelist()
    exts = sorted(os.path.splitext(n)[1] for n in names if not n.startswith("manifest"))
    eq(exts, sorted([".png"] * 8 + [".webp", ".jpg", ".gif"]), "entries: %s" % names)
    im = expect_json(D.get("/api/images/%d" % by["/img/pic.webp"]["image_id"]), 200)
    eq((im["width"], im["height"]), (7, 8))
    # the redirect chain of 5 stopped after 3 hops: /redirect/1 and /0 never asked
    log = WEB.log()
    eq(log.count("/redirect/5.png"), 1)
    eq(log.count("/redirect/1.png"), 1, "reached only by the chain of 2")
    # /metrics counts jobs and downloads by status
    m = D.get("/metrics").text
    check('setforge_scrape_jobs{status="completed"}' in m and 'setforge_scrape_downloads{status="skipped"}' in m,
          "metrics: %s" % [ln for ln in m.splitlines() if "scrape" in ln])


@test
def passing_failures_are_tried_again_up_to_three_times():
    """A 503, a 502 and a connection closed without an answer are tried again (500 ms,
    then 1 s apart, 3 tries in all); a 404 is not; a server still failing after the
    third try is a skipped download with the last status."""
    j = wait_job(create(WEB.url("/page/flaky.html?tag=r1"), "flaky")["id"], timeout=bound(60))
    eq(j["status"], "completed")
    by = {i["url"].split("/flaky/r1", 1)[1]: i for i in items(j["id"])}
    for k in ("a.png?fail=1", "b.png?fail=2&status=502", "c.png?fail=1&status=0"):
        eq(by[k]["status"], "done", k)
    eq((by["d.png?fail=9"]["status"], by["d.png?fail=9"]["reason"]), ("skipped", "http_503"))
    eq((by["e.png?fail=1&status=404"]["status"], by["e.png?fail=1&status=404"]["reason"]), ("skipped", "http_404"))
    eq(j["skipped"], {"http_503": 1, "http_404": 1})
    log = WEB.log()
    asked = {k: log.count("/flaky/r1" + k) for k in by}
    eq(asked, {"a.png?fail=1": 2, "b.png?fail=2&status=502": 3, "c.png?fail=1&status=0": 2,
               "d.png?fail=9": 3, "e.png?fail=1&status=404": 1}, "requests per download")


@test
def base_href_moves_relative_urls():
    j = wait_job(create(WEB.url("/page/base.html"), "base")["id"])
    eq(j["status"], "completed")
    eq([i["url"] for i in items(j["id"])],
       [WEB.url("/img/sub/b1.png"), WEB.url("/img/b2.png"), WEB.url("/img/b3.png")])


@test
def max_images_cuts_a_page_of_2000():
    j = wait_job(create(WEB.url("/page/many.html?n=2000"), "many", 100)["id"], timeout=120)
    eq((j["status"], j["images_found"], j["images_scraped"]), ("completed", 100, 100))
    its = items(j["id"])
    eq([i["url"] for i in its], [WEB.url("/img/m%d.png" % k) for k in range(100)])
    log = WEB.log()
    check(not any(p.startswith("/img/m%d.png" % k) for p in log for k in (100, 101, 1999)),
          "nothing past max_images is fetched")
    album = expect_json(D.get("/api/albums/%d" % j["album_id"]), 200)
    eq(album["image_count"], 100)


@test
def a_url_that_is_an_image_is_one_image():
    j = wait_job(create(WEB.url("/img/direct.jpg"), "one photo")["id"])
    eq((j["status"], j["images_found"], j["images_scraped"]), ("completed", 1, 1))
    its = items(j["id"])
    eq(len(its), 1)
    r = D.get("/api/images/%d/file" % its[0]["image_id"])
    eq(r.headers.get("Content-Type"), "image/jpeg")
    eq(WEB.log().count("/img/direct.jpg"), 1, "fetched once")


@test
def same_bytes_are_one_image_across_jobs():
    a = wait_job(create(WEB.url("/img/shared.png"), "first")["id"])
    b = wait_job(create(WEB.url("/img/shared.png"), "second")["id"])
    ia, ib = items(a["id"])[0]["image_id"], items(b["id"])[0]["image_id"]
    eq(ia, ib, "the same bytes are the same image")
    for job in (a, b):
        album = expect_json(D.get("/api/albums/%d" % job["album_id"]), 200)
        eq([im["id"] for im in album["images"]], [ia])


@test
def pages_that_fail_the_job():
    j = wait_job(create(WEB.url("/page/empty.html"), "nothing")["id"])
    eq(j["status"], "failed")
    check("no images found" in j["error"], j["error"])
    eq((j["album_id"], j["images_found"]), (None, 0))
    j = wait_job(create(WEB.url("/page/nowhere.html"), "404")["id"])
    eq(j["status"], "failed")
    check("HTTP 404" in j["error"], j["error"])
    j = wait_job(create(WEB.url("/posing.png"), "posing")["id"])
    eq(j["status"], "failed")
    check("not a usable image" in j["error"], j["error"])
    # every download skipped: failed, and the error counts the reasons
    j = wait_job(create(WEB.url("/page/refused.html?port=1"), "refused")["id"])
    eq(j["status"], "completed", "one of two images is fine")
    j = wait_job(create(WEB.url("/missing.png"), "missing")["id"])
    eq(j["status"], "failed")


@test
def cancel_stops_a_job_and_conflicts_after():
    jid = create(WEB.url("/page/slow.html?n=40&delay_ms=400"), "slow", 100)["id"]
    wait_job(jid, cond=lambda j: j["images_scraped"] >= 1)
    # before the job ends its images are in no album: admins only (visibility.md)
    first = [i for i in items(jid) if i["status"] == "done"][0]
    expect_status(D.get("/api/images/%d" % first["image_id"], token=None), 404)
    expect_status(D.get("/api/images/%d" % first["image_id"], token="admin"), 200)
    c = expect_json(D.post("%s/%d/cancel" % (J, jid)), 200)
    eq(c["status"], "canceled")
    expect_error(D.post("%s/%d/cancel" % (J, jid)), 409)
    j = wait_job(jid)
    eq(j["status"], "canceled")
    its = items(jid)
    check(not any(i["status"] in ("queued", "running") for i in its), "nothing left to do")
    check(sum(1 for i in its if i["status"] == "canceled") > 0, "the rest is canceled")
    # the images already in are filed
    if j["images_scraped"]:
        check(j["album_id"] is not None, "album of a canceled job with images")
    # a finished job cannot be canceled
    done = wait_job(create(WEB.url("/img/c.png"), "c")["id"])
    expect_error(D.post("%s/%d/cancel" % (J, done["id"])), 409)


def resumes_after(stop, n, delay_ms):
    """A job on a slow page, stopped (kill -9 or SIGTERM) in the middle, then
    the daemon started again: it completes, every download finished before
    the stop was fetched exactly once, and the page once. Each caller uses
    its own n and delay_ms: they are in every URL, so the fake's log tells
    the callers' requests apart."""
    d = Daemon(extra_args=ARGS[:-1] + ["2"])
    try:
        page = "/page/slow.html?n=%d&delay_ms=%d" % (n, delay_ms)
        jid = create(WEB.url(page), "resumed", 100, d=d)["id"]
        wait_job(jid, d=d, cond=lambda j: j["images_scraped"] >= 4)
        stop(d)
        done_before = [url for url, status in items_db(d, jid) if status == "done"]
        check(0 < len(done_before) < n, "stopped in the middle (%d done)" % len(done_before))
        d.start()
        j = wait_job(jid, d=d, timeout=90)
        eq((j["status"], j["images_scraped"]), ("completed", n))
        log = WEB.log()
        for url in done_before:
            path = url[len(WEB.base):]
            eq(log.count(path), 1, "a finished download (%s) is fetched once" % path)
        eq(log.count(page), 1, "the page is fetched once")
        album = expect_json(d.get("/api/albums/%d" % j["album_id"]), 200)
        eq(album["image_count"], n)
    finally:
        d.cleanup()


@test
def kill9_resumes_without_refetching_finished_downloads():
    resumes_after(lambda d: d.kill9(), 16, 350)


@test
def a_stop_resumes_without_refetching_finished_downloads():
    resumes_after(lambda d: eq(d.stop(), 0, "exit status on SIGTERM"), 14, 300)


def items_db(d, jid):
    return [(r[0], r[1]) for r in d.db_query(
        "SELECT url, status FROM scrape_items WHERE job_id = ? ORDER BY position", (jid,))]


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
