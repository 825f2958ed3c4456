"""Black-box tests of who may see what (docs/visibility.md): privacy belongs to albums. A
run is visible to non-admins while it has no album or when its album is public; an image
when it is in a public album or belongs to such a run. Every image and run route is tried
anonymously, with a non-admin token and with the admin token, while the run's album is
flipped private and public again, and with images also filed in other albums."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, bound, check, eq, expect_error, expect_json, expect_status, run, test

D = None
T = "/api/batch-templates"
FINAL = ("completed", "failed", "canceled")
WHO = (None, "user")  # anonymous, non-admin token
S = {}  # what setup made: template, run, album, image ids


def wait_final(rid, limit=120):
    deadline = time.time() + bound(limit)
    while time.time() < deadline:
        r = expect_json(D.get("/api/runs/%d" % rid, token="admin"), 200)
        if r["status"] in FINAL and r["album_id"] is not None:
            return r
        time.sleep(0.05)
    raise AssertionError("run %d did not finish within %d s" % (rid, bound(limit)))


def set_public(album_id, public):
    expect_json(D.put("/api/albums/%d" % album_id, {"is_public": public}), 200)


def run_routes(rid):
    tid = S["tid"]
    return ["/api/runs/%d" % rid, "/api/runs/%d/items" % rid, "/api/batch-templates/%d/runs/%d" % (tid, rid)]


def image_routes(iid):
    return ["/api/images/%d" % iid, "/api/images/%d/file" % iid]


def listed_runs(token, tid=None):
    path = "/api/runs?per_page=100" if tid is None else "%s/%d/runs?per_page=100" % (T, tid)
    j = expect_json(D.get(path, token=token), 200)
    return {r["id"] for r in j["runs"]}, j["total"]


def listed_images(token):
    j = expect_json(D.get("/api/images?per_page=100", token=token), 200)
    return {i["id"] for i in j["images"]}, j["total"]


def events_status(rid, token):
    return D.get("/api/runs/%d/events" % rid, token=token, timeout=bound(30)).status


def assert_hidden(token, rid, images):
    for p in run_routes(rid):
        expect_error(D.get(p, token=token), 404, "not_found")
    eq(events_status(rid, token), 404, "event stream of a private run for %r" % token)
    for iid in images:
        for p in image_routes(iid):
            expect_error(D.get(p, token=token), 404, "not_found")
    runs, total = listed_runs(token)
    check(rid not in runs, "private run %d listed for %r" % (rid, token))
    eq(total, len(runs), "run total counts only visible runs for %r" % token)
    tr, _ = listed_runs(token, S["tid"])
    check(rid not in tr, "private run %d in its template's list for %r" % (rid, token))
    imgs, itotal = listed_images(token)
    check(not (imgs & set(images)), "private images listed for %r: %r" % (token, imgs & set(images)))
    eq(itotal, len(imgs), "image total counts only visible images for %r" % token)


def assert_visible(token, rid, images):
    for p in run_routes(rid):
        expect_status(D.get(p, token=token), 200)
    eq(events_status(rid, token), 200, "event stream of a public run for %r" % token)
    for iid in images:
        for p in image_routes(iid):
            expect_status(D.get(p, token=token), 200)
    runs, _ = listed_runs(token)
    check(rid in runs, "run %d not listed for %r" % (rid, token))
    imgs, _ = listed_images(token)
    check(set(images) <= imgs, "images of run %d not listed for %r" % (rid, token))


@test
def a_public_run_is_seen_by_everyone():
    for who in WHO + ("admin",):
        assert_visible(who, S["rid"], S["images"])


@test
def a_private_album_hides_its_run_and_images_from_non_admins():
    set_public(S["album"], False)
    try:
        for who in WHO:
            assert_hidden(who, S["rid"], S["images"])
        assert_visible("admin", S["rid"], S["images"])
        expect_error(D.get("/api/albums/%d" % S["album"]), 404, "not_found")
    finally:
        set_public(S["album"], True)
    for who in WHO:
        assert_visible(who, S["rid"], S["images"])


@test
def cached_answers_follow_the_flip():
    # the image list and detail are served from the response cache: warm it, flip, read
    for who in WHO:
        listed_images(who)
        expect_status(D.get("/api/images/%d" % S["images"][0], token=who), 200)
    set_public(S["album"], False)
    try:
        for who in WHO:
            imgs, _ = listed_images(who)
            check(S["images"][0] not in imgs, "cached list still shows a private image to %r" % who)
            expect_error(D.get("/api/images/%d" % S["images"][0], token=who), 404, "not_found")
    finally:
        set_public(S["album"], True)


@test
def an_image_in_a_public_album_stays_visible_when_its_run_goes_private():
    shown = S["images"][0]
    pub = expect_json(D.post("/api/albums", {"name": "picked", "is_public": True}), 201)
    expect_json(D.post("/api/albums/%d/images" % pub["id"], {"image_ids": [shown]}), 200)
    set_public(S["album"], False)
    try:
        for who in WHO:
            for p in image_routes(shown):
                expect_status(D.get(p, token=who), 200)
            for iid in S["images"][1:]:
                expect_error(D.get("/api/images/%d" % iid, token=who), 404, "not_found")
            for p in run_routes(S["rid"]):
                expect_error(D.get(p, token=who), 404, "not_found")
    finally:
        set_public(S["album"], True)
        expect_json(D.delete("/api/albums/%d" % pub["id"]), 200)


@test
def a_private_pick_of_public_images_hides_nothing_else():
    priv = expect_json(D.post("/api/albums", {"name": "secret picks", "is_public": False}), 201)
    expect_json(D.post("/api/albums/%d/images" % priv["id"], {"image_ids": S["images"][:2]}), 200)
    try:
        for who in WHO:
            expect_error(D.get("/api/albums/%d" % priv["id"], token=who), 404, "not_found")
            assert_visible(who, S["rid"], S["images"])
    finally:
        expect_json(D.delete("/api/albums/%d" % priv["id"]), 200)


@test
def walking_ids_finds_nothing_private():
    set_public(S["album"], False)
    try:
        top = max(S["images"]) + 3
        for iid in range(1, top):
            for who in WHO:
                r = D.get("/api/images/%d/file" % iid, token=who)
                check(r.status == 404, "image %d file answered %d to %r while private" % (iid, r.status, who))
    finally:
        set_public(S["album"], True)


@test
def a_run_being_drawn_is_public_until_its_album_exists():
    body = {"album_name": "fresh", "user_theme": "ink"}
    j = expect_json(D.post("%s/%d/generate" % (T, S["tid"]), body, token=None), 202)
    rid = j["run"]["id"]
    expect_status(D.get("/api/runs/%d" % rid), 200)
    r = wait_final(rid)
    set_public(r["album_id"], False)
    expect_error(D.get("/api/runs/%d" % rid), 404, "not_found")
    expect_status(D.get("/api/runs/%d" % rid, token="admin"), 200)


# ---------------------------------------------------------------- setup


def setup():
    global D
    D = Daemon(extra_args=["--workers", "2", "--generate-rate", "0"])
    tpl = expect_json(D.post(T, {"name": "vis", "prompt_template": "{card} in {theme}", "width": 64, "height": 64,
                                 "csv_items": [{"card": "c%d" % i} for i in range(4)]}), 201)
    S["tid"] = tpl["id"]
    j = expect_json(D.post("%s/%d/generate" % (T, tpl["id"]), {"album_name": "vis album", "user_theme": "ink"}), 202)
    r = wait_final(j["run"]["id"])
    eq(r["status"], "completed", "setup run")
    S["rid"], S["album"] = r["id"], r["album_id"]
    items = expect_json(D.get("/api/runs/%d/items" % r["id"], token="admin"), 200)["items"]
    S["images"] = [it["image_id"] for it in items]


def teardown(_):
    if D is not None:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
