"""Black-box tests of /api/images (API.md "Images", docs/runs.md "Images"): list, detail,
the file (ETag, caching, HEAD, 304) and delete (links, file on disk, run item)."""

import hashlib
import json
import os
import re
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TS_RE, TestFailure, Daemon, bound, check, eq, expect_error, expect_json, expect_status, run, snippet,
                     test, wait_run)

D = None
T = "/api/batch-templates"
FIELDS = ["id", "prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "loras", "run_id",
          "item_index", "sha256", "bytes", "created_at", "url"]
PNG_SIG = b"\x89PNG\r\n\x1a\n"
RUN = {}  # the run made in setup: id, items


# ---------------------------------------------------------------- helpers


def make_run(tid, **b):
    b.setdefault("album_name", "img album")
    b.setdefault("user_theme", "woodcut")
    j = expect_json(D.post("%s/%d/generate" % (T, tid), b), 202)
    rid = j["run"]["id"]
    r = wait_run(D, rid, timeout=30)
    eq(r["status"], "completed", "run %d status" % rid)
    its = expect_json(D.get("/api/runs/%d/items?per_page=100" % rid), 200)["items"]
    return r, its


def template(**b):
    b.setdefault("name", "img template")
    b.setdefault("prompt_template", "{card} in {theme}")
    b.setdefault("csv_items", [{"card": "c%d" % i} for i in range(6)])
    return expect_json(D.post(T, b), 201)


def img_path(sha):
    return os.path.join(D.data_dir, "images", sha[:2], sha + ".png")


def raw_head(path, extra=""):
    s = socket.create_connection(("127.0.0.1", D.port), timeout=bound(5))
    try:
        s.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (path, extra)).encode())
        data = b""
        while True:
            try:
                c = s.recv(65536)
            except socket.timeout:
                raise TestFailure("HEAD %s: connection not closed within %g s (got %r)" % (path, bound(5), snippet(data)))
            if not c:
                break
            data += c
    finally:
        s.close()
    head, sep, rest = data.partition(b"\r\n\r\n")
    check(sep, "HEAD %s: no end of headers: %r" % (path, snippet(data)))
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


# ---------------------------------------------------------------- list / detail


@test
def list_newest_first_paginated():
    j = expect_json(D.get("/api/images?per_page=100"), 200)
    for k in ("images", "total", "page", "per_page", "pages"):
        check(k in j, "list lacks %s" % k)
    total = j["total"]
    check(total >= 12, "total %d < 12 images made in setup" % total)
    ids = [i["id"] for i in j["images"]]
    eq(ids, sorted(ids, reverse=True), "images newest first")
    eq(len(ids), min(total, 100), "rows on page 1")
    seen = []
    pages = expect_json(D.get("/api/images?per_page=5"), 200)["pages"]
    eq(pages, -(-total // 5), "pages for per_page=5")
    for p in range(1, pages + 1):
        pj = expect_json(D.get("/api/images?per_page=5&page=%d" % p), 200)
        eq((pj["page"], pj["per_page"], pj["total"]), (p, 5, total), "page meta")
        check(len(pj["images"]) <= 5, "more than per_page rows")
        seen += [i["id"] for i in pj["images"]]
    eq(seen, ids[:len(seen)] if total <= 100 else seen, "ids over pages")
    eq(len(set(seen)), total, "distinct ids over pages")
    past = expect_json(D.get("/api/images?page=%d&per_page=5" % (pages + 1)), 200)
    eq((past["images"], past["total"]), ([], total), "page past the end")
    expect_error(D.get("/api/images?page=abc"), 400, "invalid_request", "page")
    expect_error(D.get("/api/images?per_page=0"), 400, "invalid_request", "per_page")
    eq(expect_json(D.get("/api/images?per_page=1000"), 200)["per_page"], 100, "per_page clamp")


@test
def detail_fields():
    rid = RUN["run"]["id"]
    for it in RUN["items"]:
        j = expect_json(D.get("/api/images/%d" % it["image_id"]), 200)
        for f in FIELDS:
            check(f in j, "image lacks %s: %s" % (f, sorted(j)))
        eq(j["id"], it["image_id"], "id")
        eq(j["url"], "/api/images/%d/file" % j["id"], "url")
        eq((j["run_id"], j["item_index"], j["prompt"], j["seed"]), (rid, it["index"], it["prompt"], it["seed"]),
           "provenance of image %d" % j["id"])
        eq((j["width"], j["height"], j["steps"], j["guidance_scale"]), (128, 96, 12, 4.5), "generation params")
        eq(j["negative_prompt"], "smudge, tneg", "negative prompt")
        eq(j["loras"], [{"name": "ink", "weight": 0.25}], "loras")
        check(re.match(r"^[0-9a-f]{64}$", j["sha256"] or ""), "sha256 %r" % j["sha256"])
        check(isinstance(j["bytes"], int) and j["bytes"] > 0, "bytes %r" % j["bytes"])
        check(TS_RE.match(j["created_at"] or ""), "created_at %r" % j["created_at"])
    # the list rows equal the details
    lst = {i["id"]: i for i in expect_json(D.get("/api/images?per_page=100"), 200)["images"]}
    it = RUN["items"][0]
    eq(lst.get(it["image_id"]), expect_json(D.get("/api/images/%d" % it["image_id"]), 200), "list row vs detail")


@test
def unknown_image_404():
    for p in ("/api/images/999999", "/api/images/999999/file", "/api/images/0", "/api/images/abc",
              "/api/images/abc/file"):
        expect_error(D.get(p), 404)
    expect_error(D.delete("/api/images/999999"), 404, "not_found")
    expect_error(D.request("POST", "/api/images/1", body={}), 405)


# ---------------------------------------------------------------- the file


@test
def file_headers_and_bytes():
    for it in RUN["items"][:3]:
        img = expect_json(D.get("/api/images/%d" % it["image_id"]), 200)
        r = expect_status(D.get(img["url"]), 200)
        eq(r.headers.get("Content-Type", "").split(";")[0].strip().lower(), "image/png", "Content-Type")
        eq(r.headers.get("ETag"), '"%s"' % img["sha256"], "ETag")
        eq(hashlib.sha256(r.body).hexdigest(), img["sha256"], "sha256 of the bytes")
        eq(len(r.body), img["bytes"], "bytes")
        eq(r.headers.get("Content-Length"), str(img["bytes"]), "Content-Length")
        cc = r.headers.get("Cache-Control", "")
        m = re.search(r"max-age=(\d+)", cc)
        check(m and int(m.group(1)) >= 86400, "Cache-Control %r has no long max-age" % cc)
        eq(r.body[:8], PNG_SIG, "PNG signature")
        eq(r.body[12:16], b"IHDR", "IHDR chunk")
        eq(struct.unpack(">II", r.body[16:24]), (128, 96), "PNG size")
        check(r.body[-12:-8] == b"\x00\x00\x00\x00" and r.body[-8:-4] == b"IEND", "PNG does not end with IEND")
        # on disk, named by its hash
        with open(img_path(img["sha256"]), "rb") as f:
            eq(f.read(), r.body, "file on disk")


@test
def file_conditional_get():
    img = expect_json(D.get("/api/images/%d" % RUN["items"][1]["image_id"]), 200)
    etag = '"%s"' % img["sha256"]
    for inm in (etag, "*", '"nope", %s' % etag, "W/" + etag):
        r = D.get(img["url"], headers={"If-None-Match": inm})
        eq(r.status, 304, "If-None-Match %s: status (%s)" % (inm, r.describe()))
        eq(r.body, b"", "304 body")
        eq(r.headers.get("ETag"), etag, "ETag on 304")
    r = D.get(img["url"], headers={"If-None-Match": '"%s"' % ("0" * 64)})
    eq(r.status, 200, "other ETag: status")
    eq(hashlib.sha256(r.body).hexdigest(), img["sha256"], "other ETag: full body")


@test
def file_head():
    img = expect_json(D.get("/api/images/%d" % RUN["items"][2]["image_id"]), 200)
    g = expect_status(D.get(img["url"]), 200)
    status, h, rest = raw_head(img["url"])
    eq(status, 200, "HEAD status")
    eq(rest, b"", "HEAD body")
    for k in ("Content-Type", "ETag", "Cache-Control", "Content-Length"):
        eq(h.get(k.lower()), g.headers.get(k), "HEAD %s" % k)
    status, h, rest = raw_head(img["url"], 'If-None-Match: "%s"\r\n' % img["sha256"])
    eq((status, rest), (304, b""), "conditional HEAD")
    status, h, rest = raw_head("/api/images/999999/file")
    eq(status, 404, "HEAD unknown image")


# ---------------------------------------------------------------- delete


@test
def delete_needs_admin():
    iid = RUN["items"][3]["image_id"]
    expect_error(D.delete("/api/images/%d" % iid, token=None), 401, "unauthorized")
    expect_error(D.delete("/api/images/%d" % iid, token="user"), 403, "forbidden")
    expect_json(D.get("/api/images/%d" % iid), 200)


@test
def delete_image_everywhere():
    run_, its = make_run(TPL["id"], seed=777, album_name="to delete from")
    aid = run_["album_id"]
    alb = expect_json(D.get("/api/albums/%d?per_page=100" % aid), 200)
    eq(alb["image_count"], 6, "album image_count before")
    # also put the image into a manual album
    man = expect_json(D.post("/api/albums", {"name": "manual"}), 201)["id"]
    victim = its[2]
    iid = victim["image_id"]
    expect_json(D.post("/api/albums/%d/images" % man, {"image_ids": [iid, its[0]["image_id"]]}), 200)
    img = expect_json(D.get("/api/images/%d" % iid), 200)
    path = img_path(img["sha256"])
    check(os.path.exists(path), "image file %s missing before delete" % path)
    total = expect_json(D.get("/api/images?per_page=1"), 200)["total"]
    expect_json(D.delete("/api/images/%d" % iid), 200)
    expect_error(D.get("/api/images/%d" % iid), 404, "not_found")
    expect_error(D.get("/api/images/%d/file" % iid), 404)
    expect_error(D.delete("/api/images/%d" % iid), 404, "not_found")
    eq(expect_json(D.get("/api/images?per_page=1"), 200)["total"], total - 1, "images total after delete")
    alb = expect_json(D.get("/api/albums/%d?per_page=100" % aid), 200)
    eq(alb["image_count"], 5, "run album image_count after delete")
    eq([i["id"] for i in alb["images"]], [i["image_id"] for i in its if i["image_id"] != iid], "run album images")
    check(iid not in [p["id"] for p in alb["preview_images"]], "deleted image still in preview_images")
    m = expect_json(D.get("/api/albums/%d" % man), 200)
    eq((m["image_count"], [i["id"] for i in m["images"]]), (1, [its[0]["image_id"]]), "manual album after delete")
    eq(D.db_query("SELECT count(*) FROM album_images WHERE image_id = ?", (iid,))[0][0], 0, "album_images rows")
    check(not os.path.exists(path), "image file %s still on disk" % path)
    its2 = expect_json(D.get("/api/runs/%d/items?per_page=100" % run_["id"]), 200)["items"]
    eq((its2[2]["status"], its2[2]["image_id"]), ("succeeded", None), "run item of the deleted image")
    eq([i["image_id"] for i in its2 if i["index"] != 2], [i["image_id"] for i in its if i["index"] != 2],
       "other items untouched")
    # the other images' files are still there
    for i in its2:
        if i["image_id"]:
            expect_status(D.get("/api/images/%d/file" % i["image_id"]), 200)


@test
def shared_bytes_file_kept_until_last_row():
    # the procedural backend draws from (prompt, seed, size): two runs with the same inputs make the same bytes
    t = template(csv_items=[{"card": "twin"}])
    r1, i1 = make_run(t["id"], seed=4242, user_theme="same")
    r2, i2 = make_run(t["id"], seed=4242, user_theme="same")
    a = expect_json(D.get("/api/images/%d" % i1[0]["image_id"]), 200)
    b = expect_json(D.get("/api/images/%d" % i2[0]["image_id"]), 200)
    check(a["id"] != b["id"], "two runs share one image row")
    if a["sha256"] != b["sha256"]:
        raise TestFailure("procedural output not deterministic (%s vs %s): cannot test shared files"
                          % (a["sha256"], b["sha256"]))
    path = img_path(a["sha256"])
    d = os.path.dirname(path)
    eq(len([f for f in os.listdir(d) if f.startswith(a["sha256"])]), 1, "identical bytes stored once")
    expect_json(D.delete("/api/images/%d" % a["id"]), 200)
    check(os.path.exists(path), "shared file removed while image %d still uses it" % b["id"])
    g = expect_status(D.get(b["url"]), 200)
    eq(hashlib.sha256(g.body).hexdigest(), b["sha256"], "remaining image's file")
    expect_json(D.delete("/api/images/%d" % b["id"]), 200)
    check(not os.path.exists(path), "file kept after its last image row went")


# ---------------------------------------------------------------- setup

TPL = None


def setup():
    global D, TPL
    D = Daemon(extra_args=["--workers", "2", "--generate-rate", "0"])
    TPL = template(negative_prompt="tneg", loras=[{"name": "ink", "weight": 0.25}])
    r, its = make_run(TPL["id"], seed=10, steps=12, guidance_scale=4.5, width=128, height=96, negative_prompt="smudge")
    RUN["run"], RUN["items"] = r, its
    # a second run so the list has 12 images
    make_run(TPL["id"], seed=20, width=128, height=96)


def teardown(_):
    if D is not None:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
