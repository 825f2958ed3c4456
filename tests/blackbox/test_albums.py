"""Black-box tests of /api/albums (API.md + docs/api.md)."""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TS_RE, Daemon, bound, check, eq, expect_error, expect_json, now_ts, run, test

D = None
A = "/api/albums"
FIELDS = ["id", "name", "description", "source_type", "source_id", "is_public", "image_count", "preview_images",
          "created_by", "created_at", "updated_at"]


def create(token="admin", **b):
    b.setdefault("name", "Album")
    return expect_json(D.post(A, b, token=token), 201)


def detail(aid, token="admin", q=""):
    return expect_json(D.get("%s/%d%s" % (A, aid, q), token=token), 200)


def add(aid, ids, status=200):
    r = D.post("%s/%d/images" % (A, aid), {"image_ids": ids})
    return expect_json(r, status)


def images(n, **kw):
    return [D.insert_image(prompt="img %d" % i, sha256="%064x" % (i + 1), **kw) for i in range(n)]


def list_ids(q="", token=None):
    j = expect_json(D.get(A + "?per_page=100" + q, token=token), 200)
    return [a["id"] for a in j["albums"]], j


# ---------------------------------------------------------------- create / detail


@test
def list_empty():
    j = expect_json(D.get(A), 200)
    eq((j.get("albums"), j.get("total"), j.get("page"), j.get("per_page"), j.get("pages")), ([], 0, 1, 50, 0),
       "empty album list")


@test
def create_shape_and_defaults():
    r = D.post(A, {"name": "Holiday", "description": "beach", "source_type": "scrape", "source_id": 9, "x": 1})
    j = expect_json(r, 201)
    for f in FIELDS:
        check(f in j, "album lacks %s: %s" % (f, sorted(j)))
    eq((j["name"], j["description"], j["source_type"], j["source_id"], j["is_public"]),
       ("Holiday", "beach", "manual", None, True), "album fields")
    eq((j["image_count"], j["preview_images"]), (0, []), "empty album images")
    eq(j["created_by"], Daemon.ADMIN_NAME, "created_by")
    check(TS_RE.match(j["created_at"]) and TS_RE.match(j["updated_at"]), "timestamps %r %r" % (j["created_at"],
                                                                                             j["updated_at"]))
    g = detail(j["id"])
    for f in FIELDS:
        eq(g.get(f), j[f], "detail %s" % f)
    eq(g.get("images"), [], "detail images")
    eq((g.get("total"), g.get("page"), g.get("per_page"), g.get("pages")), (0, 1, 50, 0), "detail image pagination")
    eq(create(name="minimal")["description"], "", "default description")


@test
def create_validation():
    for b, f in (({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"name": 3}, "name"),
                 ({"name": "a", "description": "d" * 2001}, "description"),
                 ({"name": "a", "is_public": "yes"}, "is_public"), ({"name": "a", "is_public": 1}, "is_public")):
        expect_error(D.post(A, b), 400, "invalid_request", f)
    create(name="x" * 200, description="d" * 2000)
    eq(create(name="Ā♠王" * 66 + "xy")["name"], "Ā♠王" * 66 + "xy", "200 multi-byte characters")
    expect_error(D.post(A, {"name": "王" * 201}), 400, "invalid_request", "name")
    for raw in (b"[]", b"{", b""):
        expect_error(D.post(A, raw=raw, headers={"Content-Type": "application/json"}), 400, "invalid_request")
    expect_error(D.post(A, raw=b'{"name": "t"}', headers={"Content-Type": "text/plain"}), 415,
                 "unsupported_media_type")


@test
def auth_rules():
    r = D.post(A, {"name": "x"}, token=None)
    expect_error(r, 401, "unauthorized")
    check(r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), "401 lacks WWW-Authenticate: Bearer")
    expect_error(D.post(A, {"name": "x"}, token="user"), 403, "forbidden")
    expect_error(D.post(A, {"name": "x"}, token="sf_" + "a" * 64), 401, "unauthorized")
    aid = create()["id"]
    for m, p, b in (("PUT", "/%d" % aid, {"name": "y"}), ("DELETE", "/%d" % aid, None),
                    ("POST", "/%d/images" % aid, {"image_ids": [1]}), ("DELETE", "/%d/images/1" % aid, None)):
        expect_error(D.request(m, A + p, b, token=None), 401, "unauthorized")
        expect_error(D.request(m, A + p, b, token="user"), 403, "forbidden")
    expect_error(D.get(A, token="sf_" + "b" * 64), 401, "unauthorized")
    expect_error(D.get("%s/%d" % (A, aid), token="sf_" + "b" * 64), 401, "unauthorized")


@test
def detail_404s():
    for p in ("/999999", "/abc", "/0", "/-3", "/", "/1/"):
        expect_error(D.get(A + p), 404, "not_found")
    expect_error(D.put(A + "/999999", {"name": "x"}), 404, "not_found")
    expect_error(D.delete(A + "/999999"), 404, "not_found")
    expect_error(D.post(A + "/999999/images", {"image_ids": [1]}), 404, "not_found")


@test
def method_not_allowed():
    for m, p, must in (("PATCH", A, {"GET", "POST"}), ("DELETE", A, {"GET", "POST"}),
                       ("PATCH", A + "/1", {"GET", "PUT", "DELETE"}), ("GET", A + "/1/images", {"POST"}),
                       ("GET", A + "/1/images/1", {"DELETE"})):
        r = D.request(m, p)
        expect_error(r, 405, "method_not_allowed")
        allow = {a.strip().upper() for a in r.headers.get("Allow", "").split(",") if a.strip()}
        check(must <= allow and m not in allow, "%s %s: Allow %r" % (m, p, r.headers.get("Allow")))


# ---------------------------------------------------------------- list


@test
def list_order_and_pagination():
    made = [create(name="L%d" % i)["id"] for i in range(4)]
    ids, j = list_ids()
    eq(ids, sorted(ids, reverse=True), "newest first")
    eq(ids[:4], list(reversed(made)), "the four newest")
    total = j["total"]
    p = expect_json(D.get(A + "?per_page=3&page=2"), 200)
    eq((p["page"], p["per_page"], p["total"], p["pages"]), (2, 3, total, math.ceil(total / 3)), "page 2 meta")
    eq([a["id"] for a in p["albums"]], ids[3:6], "page 2 rows")
    expect_error(D.get(A + "?page=abc"), 400, "invalid_request", "page")
    expect_error(D.get(A + "?per_page=x"), 400, "invalid_request", "per_page")
    eq(expect_json(D.get(A + "?per_page=500"), 200)["per_page"], 100, "clamp")
    for row in j["albums"]:
        for f in FIELDS:
            check(f in row, "list row lacks %s" % f)


@test
def source_type_filter():
    manual = create(name="manual one")["id"]
    scrape = D.insert_album(name="scraped", source_type="scrape", source_id=77)
    batch = D.insert_album(name="batch", source_type="batch_generation")
    ids, j = list_ids("&source_type=manual")
    check(manual in ids and scrape not in ids and batch not in ids, "manual filter: %s" % ids)
    check(all(a["source_type"] == "manual" for a in j["albums"]), "manual filter returned other types")
    eq(j["total"], len(ids), "total matches the filter")
    ids, j = list_ids("&source_type=scrape")
    eq(ids, [scrape], "scrape filter")
    eq((j["albums"][0]["source_id"], j["albums"][0]["source_type"]), (77, "scrape"), "scrape album fields")
    ids, _ = list_ids("&source_type=batch_generation")
    eq(ids, [batch], "batch_generation filter")
    for bad in ("bogus", "", "MANUAL", "manual,scrape"):
        expect_error(D.get(A + "?source_type=" + bad), 400, "invalid_request", "source_type")


@test
def is_set_template_deprecated():
    base_ids, base = list_ids()
    check(base["total"] > 0, "need albums for this test")
    for v in ("true", "1", "yes", "on", "TRUE", "Yes", "On"):
        j = expect_json(D.get(A + "?is_set_template=" + v), 200)
        eq((j["albums"], j["total"]), ([], 0), "is_set_template=%s" % v)
    for v in ("false", "0", "no", "off", "banana", ""):
        ids, j = list_ids("&is_set_template=" + v)
        eq((ids, j["total"]), (base_ids, base["total"]), "is_set_template=%s is ignored" % v)


@test
def private_albums_hidden_from_non_admins():
    priv = create(name="secret", is_public=False)
    eq(priv["is_public"], False, "is_public false")
    pub = create(name="open")["id"]
    for tok in (None, "user"):
        ids, j = list_ids(token=tok)
        check(priv["id"] not in ids and pub in ids, "token %s sees %s" % (tok, ids))
        check(all(a["is_public"] for a in j["albums"]), "non-admin list has private albums")
        eq(j["total"], len(ids), "non-admin total counts only visible albums")
        expect_error(D.get("%s/%d" % (A, priv["id"]), token=tok), 404, "not_found")
    ids, j = list_ids(token="admin")
    check(priv["id"] in ids and pub in ids, "admin does not see the private album")
    eq(detail(priv["id"], token="admin")["name"], "secret", "admin detail")
    # the filter path obeys visibility too
    ids, _ = list_ids("&source_type=manual", token=None)
    check(priv["id"] not in ids, "private album leaks through source_type filter")
    # making it public shows it
    expect_json(D.put("%s/%d" % (A, priv["id"]), {"is_public": True}), 200)
    ids, _ = list_ids(token=None)
    check(priv["id"] in ids, "album not visible after is_public=true")


# ---------------------------------------------------------------- update / delete


@test
def update_partial():
    a = create(name="Before", description="keep me")
    # Timestamps have one-second resolution: rather than wait for the next
    # second, move the stored updated_at back, so the PUT has to write the
    # time it happened at.
    D.db_exec("UPDATE albums SET updated_at = '2001-01-01T00:00:00Z' WHERE id = ?", (a["id"],))
    t0 = now_ts()
    u = expect_json(D.put("%s/%d" % (A, a["id"]), {"name": "After", "source_type": "scrape"}), 200)
    t1 = now_ts()
    eq((u["name"], u["description"], u["source_type"], u["is_public"], u["created_at"]),
       ("After", "keep me", "manual", True, a["created_at"]), "after PUT name")
    check(t0 <= u["updated_at"] <= t1, "updated_at %s is not the time of the PUT (%s..%s)" % (u["updated_at"], t0, t1))
    check(u["updated_at"] >= a["updated_at"], "updated_at went backwards: %s -> %s" % (a["updated_at"], u["updated_at"]))
    u = expect_json(D.put("%s/%d" % (A, a["id"]), {"description": "new", "is_public": False}), 200)
    eq((u["name"], u["description"], u["is_public"]), ("After", "new", False), "after PUT description")
    for b, f in (({"name": ""}, "name"), ({"name": None}, "name"), ({"is_public": "no"}, "is_public"),
                 ({"description": "x" * 2001}, "description")):
        expect_error(D.put("%s/%d" % (A, a["id"]), b), 400, "invalid_request", f)
    for raw, ct, st in ((b"", "application/json", 400), (b"[]", "application/json", 400),
                        (b'{"name": "z"}', "text/plain", 415)):
        r = D.put("%s/%d" % (A, a["id"]), raw=raw, headers={"Content-Type": ct})
        expect_error(r, st)
    g = detail(a["id"])
    eq((g["name"], g["description"], g["is_public"]), ("After", "new", False), "after refused updates")


@test
def delete_album_keeps_images():
    a = create(name="to delete")["id"]
    imgs = images(3)
    eq(add(a, imgs)["added_count"], 3, "added")
    dj = expect_json(D.delete("%s/%d" % (A, a)), 200)
    check(isinstance(dj, dict), "delete body")
    expect_error(D.get("%s/%d" % (A, a), token="admin"), 404, "not_found")
    expect_error(D.delete("%s/%d" % (A, a)), 404, "not_found")
    eq(len(D.db_query("SELECT id FROM images WHERE id IN (%s)" % ",".join(map(str, imgs)))), 3, "images kept")
    eq(D.db_query("SELECT count(*) FROM album_images WHERE album_id = ?", (a,))[0][0], 0, "links removed")


@test
def delete_album_of_run_nulls_album_id():
    tid = D.db_exec("INSERT INTO batch_templates (name, prompt_template, created_at, updated_at) VALUES "
                    "('t', 'p', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')")
    a = D.insert_album(name="run album", source_type="batch_generation")
    rid = D.insert_run(tid, status="completed", album_id=a)
    expect_json(D.delete("%s/%d" % (A, a)), 200)
    eq(D.db_query("SELECT album_id FROM runs WHERE id = ?", (rid,)), [(None,)], "run album_id after delete")


# ---------------------------------------------------------------- images


@test
def add_images_counts_and_order():
    a = create(name="with images")["id"]
    i = images(7, width=640, height=768)
    eq(add(a, [i[0], i[1], i[2]]), {"added_count": 3}, "first add")
    eq(add(a, [i[1], i[3], i[3]])["added_count"], 1, "already linked and repeated ids not counted")
    eq(add(a, [i[1]])["added_count"], 0, "all already linked")
    eq(add(a, [i[6], i[5], i[4]])["added_count"], 3, "third add")
    order = [i[0], i[1], i[2], i[3], i[6], i[5], i[4]]
    g = detail(a)
    eq([x["id"] for x in g["images"]], order, "image order = add order")
    eq(g["image_count"], 7, "image_count")
    eq(g["total"], 7, "images total")
    check(all(isinstance(p, dict) and "id" in p and "url" in p for p in g["preview_images"]),
          "preview_images entries lack id/url: %s" % g["preview_images"])
    eq([(p["id"], p["url"]) for p in g["preview_images"]], [(x, "/api/images/%d/file" % x) for x in order[:5]],
       "preview_images")
    img = g["images"][0]
    for f in ("id", "prompt", "width", "height", "sha256", "bytes", "created_at", "url"):
        check(f in img, "album image lacks %s: %s" % (f, sorted(img)))
    eq((img["prompt"], img["width"], img["height"], img["url"]), ("img 0", 640, 768, "/api/images/%d/file" % i[0]),
       "image fields")
    p2 = detail(a, q="?per_page=3&page=2")
    eq([x["id"] for x in p2["images"]], order[3:6], "images page 2")
    eq((p2["total"], p2["page"], p2["per_page"], p2["pages"]), (7, 2, 3, 3), "images pagination")
    expect_error(D.get("%s/%d?page=zz" % (A, a)), 400, "invalid_request", "page")
    row = [x for x in list_ids(token="admin")[1]["albums"] if x["id"] == a][0]
    eq(row["image_count"], 7, "list image_count")
    eq([p["id"] for p in row["preview_images"]], order[:5], "list preview_images")


@test
def add_images_errors_add_nothing():
    a = create(name="errors")["id"]
    i = images(2)
    add(a, [i[0]])
    r = D.post("%s/%d/images" % (A, a), {"image_ids": [i[1], 999999]})
    expect_error(r, 404, "not_found", mentions="999999")
    for b in ({"image_ids": []}, {"image_ids": "1"}, {"image_ids": [str(i[1])]}, {"image_ids": [1.5]},
              {"image_ids": [0]}, {"image_ids": [-1]}, {"image_ids": [None]}, {"image_ids": {"1": 1}}, {},
              {"image_ids": [True]}, {"image_ids": list(range(1, 1002))}):
        expect_error(D.post("%s/%d/images" % (A, a), b), 400, "invalid_request")
    expect_error(D.post("%s/%d/images" % (A, a), raw=b"", headers={"Content-Type": "application/json"}), 400,
                 "invalid_request")
    g = detail(a)
    eq([x["id"] for x in g["images"]], [i[0]], "nothing added by refused requests")
    eq(g["image_count"], 1, "image_count")


@test
def remove_image():
    a = create(name="remove")["id"]
    i = images(3)
    add(a, i)
    expect_json(D.delete("%s/%d/images/%d" % (A, a, i[1])), 200)
    expect_error(D.delete("%s/%d/images/%d" % (A, a, i[1])), 404, "not_found")
    expect_error(D.delete("%s/%d/images/999999" % (A, a)), 404, "not_found")
    expect_error(D.delete("%s/%d/images/abc" % (A, a)), 404, "not_found")
    g = detail(a)
    eq([x["id"] for x in g["images"]], [i[0], i[2]], "images after removal")
    eq(g["image_count"], 2, "image_count after removal")
    eq(len(D.db_query("SELECT id FROM images WHERE id = ?", (i[1],))), 1, "removed image row kept")
    eq(add(a, [i[1]])["added_count"], 1, "re-adding a removed image")
    eq([x["id"] for x in detail(a)["images"]], [i[0], i[2], i[1]], "re-added image goes to the end")


@test
def image_in_two_albums():
    a, b = create(name="A")["id"], create(name="B")["id"]
    i = images(1)
    eq(add(a, i)["added_count"], 1, "add to A")
    eq(add(b, i)["added_count"], 1, "add to B (linked elsewhere does not count as already linked)")
    expect_json(D.delete("%s/%d" % (A, a)), 200)
    eq([x["id"] for x in detail(b)["images"]], i, "B keeps the image after A is deleted")


@test
def concurrent_adds_link_once():
    import threading
    a = create(name="race")["id"]
    i = images(10)
    res = []

    def work(k):
        res.append(D.post("%s/%d/images" % (A, a), {"image_ids": i[k % 3:]}))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(bound(30))
    bad = [r.describe() for r in res if r.status != 200]
    check(not bad, "concurrent adds failed: %s" % bad[:3])
    eq(sum(r.json()["added_count"] for r in res), 10, "sum of added_count over concurrent adds")
    g = detail(a)
    eq(g["image_count"], 10, "image_count")
    eq(sorted(x["id"] for x in g["images"]), sorted(i), "each image linked once")


@test
def concurrent_deletes_succeed_once():
    import threading
    a = create(name="del race")["id"]
    i = images(1)
    add(a, i)
    res = []

    def rm(_):
        res.append(D.delete("%s/%d/images/%d" % (A, a, i[0])).status)

    def dl(_):
        res.append(D.delete("%s/%d" % (A, a)).status)

    for fn in (rm, dl):
        res.clear()
        ts = [threading.Thread(target=fn, args=(k,)) for k in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(bound(30))
        eq(sorted(res), [200] + [404] * 9, "statuses of 10 concurrent %s" % fn.__name__)


@test
def write_waits_for_a_brief_external_lock():
    import sqlite3
    import threading
    c = sqlite3.connect(D.db, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO albums (name, created_at, updated_at) VALUES ('locker', ?, ?)",
                  ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"))
        answer = []
        th = threading.Thread(target=lambda: answer.append(D.post(A, {"name": "during lock"})))
        th.start()
        # the create cannot commit while we hold the write lock: for as long
        # as we hold it (the brief lock of the test's name), it waits
        th.join(0.8)
        check(not answer, "create answered while the database was locked: %s" % (answer and answer[0].describe()))
        c.execute("COMMIT")
        th.join(bound(15))
        check(answer, "create did not answer after the lock was released")
        j = expect_json(answer[0], 201)
        eq(j["name"], "during lock", "album created while the database was briefly locked")
    finally:
        c.close()


@test
def acknowledged_writes_survive_kill9():
    a = create(name="durable")["id"]
    i = images(2)
    add(a, i)
    expect_json(D.put("%s/%d" % (A, a), {"description": "after put"}), 200)
    D.kill9()
    D.start()
    g = detail(a)
    eq((g["name"], g["description"], [x["id"] for x in g["images"]]), ("durable", "after put", i),
       "album after kill -9")


@test
def survives_restart():
    a = create(name="Persistent", description="kept")["id"]
    i = images(2)
    add(a, [i[1], i[0]])
    before = detail(a)
    before_list = expect_json(D.get(A + "?per_page=100", token="admin"), 200)
    D.restart()
    eq(detail(a), before, "album detail after restart")
    eq(expect_json(D.get(A + "?per_page=100", token="admin"), 200), before_list, "album list after restart")


def setup():
    global D
    D = Daemon()


def teardown(_):
    if D is not None:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
