"""Black-box tests of generate and /api/runs (API.md "Generate" + "Runs", docs/runs.md):
prompt and seed resolution, validation, atomicity, the album of a finished run, cancel,
retry, idempotency, rate limiting, fairness and persistence."""

import json
import os
import shutil
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FINAL, SLOWDOWN, TS_RE, bound, wait_for, wait_run, wait_settled, Daemon, TestFailure, check, eq,
                     expect_error, expect_json, expect_status, http_request, run, snippet, test)

D = None  # examples, 2 workers, no delay
SLOW = None  # examples, 2 workers, 200 ms (x SLOWDOWN) per image (cancel / retry / progress)
RATE = None  # --generate-rate 3 per window of bound(RATE_WINDOW) seconds
FAIR = None  # 1 worker, 20 ms per image
FAILD = None  # --max-attempts 2, for storage failures

T = "/api/batch-templates"
# The rate limiter's window, in seconds (x SLOWDOWN): long enough that the
# few requests of one check fit in it (a check that straddles two windows is
# made again), short enough to wait for the next one.
RATE_WINDOW = 2
RUN_FIELDS = ["id", "template_id", "album_id", "album_name", "user_theme", "status", "total_items",
              "completed_items", "failed_items", "steps", "seed", "width", "height", "guidance_scale",
              "negative_prompt", "created_at", "started_at", "completed_at", "error_message",
              "canceled_items", "progress", "eta_s"]
ITEM_FIELDS = ["index", "prompt", "seed", "status", "attempts", "error", "image_id"]
PNG_SIG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- helpers


def template_by_count(d, n):
    j = expect_json(d.get(T + "?per_page=100"), 200)
    for t in j["templates"]:
        if t["template_item_count"] == n:
            return t
    raise TestFailure("no example template with %d items: %s" % (n, [t["template_item_count"] for t in j["templates"]]))


def make_template(d, **b):
    b.setdefault("name", "bb template")
    b.setdefault("prompt_template", "{card} of {theme}")
    if "csv" not in b:
        b.setdefault("csv_items", [{"card": "ace"}, {"card": "king"}])
    return expect_json(d.post(T, b), 201)


def gen(d, tid, token="admin", headers=None, **b):
    b.setdefault("album_name", "bb album")
    b.setdefault("user_theme", "noir")
    return d.post("%s/%d/generate" % (T, tid), b, token=token, headers=headers)


def gen_ok(d, tid, **b):
    r = gen(d, tid, **b)
    j = expect_json(r, 202)
    check(isinstance(j.get("run"), dict), "%s: no run object" % r.describe())
    return j["run"]


def get_run(d, rid):
    return expect_json(d.get("/api/runs/%d" % rid), 200)


def items(d, rid):
    out = []
    page = 1
    while True:
        j = expect_json(d.get("/api/runs/%d/items?per_page=100&page=%d" % (rid, page)), 200)
        out += j["items"]
        if page >= j["pages"]:
            break
        page += 1
    return out, j


def run_count(d):
    return expect_json(d.get("/api/runs?per_page=1"), 200)["total"]


def png_size(b):
    check(b[:8] == PNG_SIG, "not a PNG signature: %r" % b[:8])
    check(b[12:16] == b"IHDR", "first chunk is not IHDR: %r" % b[12:16])
    return struct.unpack(">II", b[16:24])


def sse_events(resp):
    """Parses a complete (finished) SSE body into [{"event": type, "id": n, **data}]."""
    expect_status(resp, 200)
    out = []
    for block in resp.text.replace("\r\n", "\n").split("\n\n"):
        ev = {}
        for line in block.split("\n"):
            k, _, v = line.partition(": ")
            if k in ("id", "event", "data"):
                ev[k] = v
        if "data" in ev:
            d = json.loads(ev["data"])
            d["event"], d["id"] = ev.get("event"), int(ev.get("id", "0"))
            out.append(d)
    return out


def album_images(d, aid):
    out = []
    page = 1
    while True:
        j = expect_json(d.get("/api/albums/%d?per_page=100&page=%d" % (aid, page), token="admin"), 200)
        out += j["images"]
        if page >= j["pages"]:
            return out, j
        page += 1


# ---------------------------------------------------------------- prompt and seed


@test
def prompts_are_one_line():
    # a CSV cell may hold a newline; the prompt sent to a backend never does (docs/runs.md)
    t = make_template(D, csv_items=[{"card": "ace\nImage saved to: /etc/shadow"}, {"card": "two\tthree"}])
    rid = expect_json(gen(D, t["id"]), 202)["run"]["id"]
    items = expect_json(D.get("/api/runs/%d/items" % rid), 200)["items"]
    for it in items:
        check(not any(ord(c) < 32 for c in it["prompt"]), "control character in prompt %r" % it["prompt"])
    check("ace Image saved to: /etc/shadow of" in items[0]["prompt"], "prompt %r" % items[0]["prompt"])


@test
def prompt_and_seed_rule():
    t = make_template(D, base_prompt="BASE", style_suffix="SUFFIX", prompt_template="a {card} in {colour}, {theme}",
                      negative_prompt="tneg", loras=[{"name": "tlora", "weight": 0.5}],
                      csv_items=[{"card": "ace", "colour": "red"}, {"card": "king", "colour": "black"},
                                 {"card": "queen", "colour": "gold"}])
    r = gen(D, t["id"], seed=100, user_theme="ink wash", negative_prompt="uneg",
            loras=[{"name": "ulora", "weight": 1.5}])
    j = expect_json(r, 202)
    run_ = j["run"]
    eq(run_["seed"], 100, "run seed")
    eq(run_["negative_prompt"], "uneg, tneg", "joined negative prompt")
    eq(run_.get("loras"), [{"name": "ulora", "weight": 1.5}], "run loras replaced by the request's")
    its, meta = items(D, run_["id"])
    eq(meta["total"], 3, "items total")
    eq([i["index"] for i in its], [0, 1, 2], "item indexes")
    for i in its:
        for f in ITEM_FIELDS:
            check(f in i, "item lacks %s: %s" % (f, sorted(i)))
    eq([i["prompt"] for i in its],
       ["BASE. Art style: ink wash. a ace in red, ink wash. SUFFIX",
        "BASE. Art style: ink wash. a king in black, ink wash. SUFFIX",
        "BASE. Art style: ink wash. a queen in gold, ink wash. SUFFIX"], "item prompts")
    eq([i["seed"] for i in its], [100, 101, 102], "item seeds = seed + i")
    # images carry the resolved values
    fin = wait_run(D, run_["id"])
    eq(fin["status"], "completed", "run status")
    its, _ = items(D, run_["id"])
    for i in its:
        img = expect_json(D.get("/api/images/%d" % i["image_id"]), 200)
        eq((img["prompt"], img["seed"], img["negative_prompt"], img["loras"], img["run_id"], img["item_index"]),
           (i["prompt"], i["seed"], "uneg, tneg", [{"name": "ulora", "weight": 1.5}], run_["id"], i["index"]),
           "image %d fields" % i["image_id"])


@test
def prompt_empty_parts_skipped():
    t = make_template(D, prompt_template="{card}", csv_items=[{"card": "ace"}, {"card": ""}])
    run_ = gen_ok(D, t["id"], seed=7, user_theme="pastel")
    its, _ = items(D, run_["id"])
    eq([i["prompt"] for i in its], ["Art style: pastel. ace", "Art style: pastel"], "prompts without empty parts")
    # only a suffix, no base
    t2 = make_template(D, style_suffix="SFX", prompt_template="{card} {{x}}", csv_items=[{"card": "joker"}])
    run2 = gen_ok(D, t2["id"], seed=7, user_theme="t")
    its, _ = items(D, run2["id"])
    eq([i["prompt"] for i in its], ["Art style: t. joker {x}. SFX"], "prompt with suffix only and literal braces")


@test
def negative_prompt_each_alone_and_loras_default():
    tl = [{"name": "tlora", "weight": 0.5}]
    t = make_template(D, negative_prompt="tneg", loras=tl)
    eq(gen_ok(D, t["id"])["negative_prompt"], "tneg", "template negative alone")
    r = gen_ok(D, t["id"])
    eq(r["loras"], tl, "loras default to the template's")
    eq(gen_ok(D, t["id"], loras=[])["loras"], [], "loras [] means none")
    t2 = make_template(D)
    eq(gen_ok(D, t2["id"], negative_prompt="uneg")["negative_prompt"], "uneg", "user negative alone")
    r = D.post("%s/%d/generate" % (T, t2["id"]), {"album_name": "a", "user_theme": "t",
                                                   "loras": [{"path": "../../etc/passwd"}]})
    expect_error(r, 400, "invalid_request", field="loras")
    p = gen_ok(D, t2["id"], loras=[{"path": "x/y.safetensors"}])["loras"]
    eq(p, [{"path": "x/y.safetensors", "weight": 1.0}], "request loras normalised")


@test
def template_edit_does_not_change_existing_run():
    t = make_template(D, base_prompt="OLD")
    run_ = gen_ok(D, t["id"], seed=1)
    before, _ = items(D, run_["id"])
    expect_json(D.put("%s/%d" % (T, t["id"]), {"base_prompt": "NEW", "csv_items": [{"card": "x"}]}), 200)
    after, _ = items(D, run_["id"])
    eq([i["prompt"] for i in after], [i["prompt"] for i in before], "prompts after a template edit")
    check(before[0]["prompt"].startswith("OLD. "), "prompt %r does not start with OLD" % before[0]["prompt"])


@test
def random_seed_recorded():
    t = make_template(D)
    a = gen_ok(D, t["id"])
    b = gen_ok(D, t["id"])
    for r in (a, b):
        check(isinstance(r["seed"], int) and 0 <= r["seed"] <= 2147483647, "random seed %r" % r["seed"])
        eq(get_run(D, r["id"])["seed"], r["seed"], "seed stored")
        its, _ = items(D, r["id"])
        eq([i["seed"] for i in its], [r["seed"], (r["seed"] + 1) % 2**31], "item seeds from the random seed")
    check(a["seed"] != b["seed"], "two random seeds are equal: %s" % a["seed"])


@test
def item_seeds_wrap_within_int32():
    t = make_template(D, csv_items=[{"card": "a"}, {"card": "b"}, {"card": "c"}])
    r = gen_ok(D, t["id"], seed=2147483647)
    its, _ = items(D, r["id"])
    eq([i["seed"] for i in its], [2147483647, 0, 1], "item seeds wrap modulo 2^31 (docs/runs.md)")


# ---------------------------------------------------------------- generate: response and validation


@test
def generate_202_shape():
    t = make_template(D, width=256, height=128)
    r = gen(D, t["id"], album_name="Shape", user_theme="th")
    j = expect_json(r, 202)
    rid = j["run"]["id"]
    eq(r.headers.get("Location"), "/api/runs/%d" % rid, "Location header")
    check(isinstance(j.get("message"), str) and j["message"], "no message: %s" % j)
    check(isinstance(j.get("template"), dict), "no template")
    eq(j["template"]["id"], t["id"], "template id")
    check("csv_items" not in j["template"], "generate response template has csv_items")
    run_ = j["run"]
    for f in RUN_FIELDS:
        check(f in run_, "run lacks %s: %s" % (f, sorted(run_)))
    eq((run_["template_id"], run_["album_id"], run_["album_name"], run_["user_theme"], run_["total_items"],
        run_["completed_items"], run_["failed_items"], run_["canceled_items"], run_["steps"], run_["width"],
        run_["height"], run_["guidance_scale"], run_["completed_at"], run_["error_message"]),
       (t["id"], None, "Shape", "th", 2, 0, 0, 0, 25, 256, 128, 7.5, None, None), "new run fields")
    check(run_["status"] in ("queued", "running"), "new run status %r" % run_["status"])
    check(TS_RE.match(run_["created_at"] or ""), "created_at %r" % run_["created_at"])
    eq(run_["progress"], 0, "progress of a new run")
    eq(run_["eta_s"], None, "eta_s of a new run")
    g = get_run(D, rid)
    for f in RUN_FIELDS:
        check(f in g, "GET run lacks %s" % f)
    eq((g["id"], g["created_at"], g["seed"]), (rid, run_["created_at"], run_["seed"]), "GET run")
    fin = wait_run(D, rid)
    eq(fin["status"], "completed", "final status")
    check(TS_RE.match(fin["started_at"] or "") and TS_RE.match(fin["completed_at"] or ""),
          "started_at/completed_at %r %r" % (fin["started_at"], fin["completed_at"]))
    check(fin["started_at"] >= fin["created_at"] and fin["completed_at"] >= fin["started_at"], "timestamps order")
    eq((fin["progress"], fin["eta_s"], fin["completed_items"]), (1, 0, 2), "final progress/eta/completed")
    check(isinstance(fin["album_id"], int), "album_id %r" % fin["album_id"])


@test
def generate_overrides():
    t = make_template(D)
    r = gen_ok(D, t["id"], steps=150, seed=0, width=64, height=64, guidance_scale=30, album_name="x" * 200,
               user_theme="y" * 500, negative_prompt="n" * 2000)
    eq((r["steps"], r["seed"], r["width"], r["height"], r["guidance_scale"], len(r["album_name"]),
        len(r["user_theme"])), (150, 0, 64, 64, 30, 200, 500), "override fields")
    r2 = gen_ok(D, t["id"], steps=1, seed=2147483647, guidance_scale=0, width=2048, height=64, is_set_template=True,
                extra_field={"a": 1})
    eq((r2["steps"], r2["seed"], r2["guidance_scale"], r2["width"]), (1, 2147483647, 0, 2048), "boundary fields")
    r3 = gen_ok(D, t["id"], album_name="\u00e9" * 200, user_theme="\u6f22" * 500)  # characters, not bytes
    eq((r3["album_name"], r3["user_theme"]), ("\u00e9" * 200, "\u6f22" * 500), "multibyte names at the limit")
    fin = wait_run(D, r["id"])
    eq(fin["status"], "completed", "64x64 run status")
    its, _ = items(D, r["id"])
    for i in its:
        img = expect_json(D.get("/api/images/%d" % i["image_id"]), 200)
        eq((img["width"], img["height"], img["steps"], img["guidance_scale"]), (64, 64, 150, 30), "image row")
        f = expect_status(D.get("/api/images/%d/file" % i["image_id"]), 200)
        eq(png_size(f.body), (64, 64), "PNG IHDR size")


@test
def generate_validation():
    t = make_template(D)
    url = "%s/%d/generate" % (T, t["id"])
    base = {"album_name": "v", "user_theme": "w"}
    before = run_count(D)
    cases = [
        ("album_name", {"album_name": ...}),
        ("album_name", {"album_name": ""}),
        ("album_name", {"album_name": "a" * 201}),
        ("album_name", {"album_name": 5}),
        ("album_name", {"album_name": "\u00e9" * 201}),
        ("user_theme", {"user_theme": ...}),
        ("user_theme", {"user_theme": ""}),
        ("user_theme", {"user_theme": "a" * 501}),
        ("user_theme", {"user_theme": "steampunk\nImage saved to: /etc/passwd"}),
        ("user_theme", {"user_theme": "ink\x1b[2J"}),
        ("album_name", {"album_name": "a\tb"}),
        ("negative_prompt", {"negative_prompt": "blurry\r\nx"}),
        ("steps", {"steps": 0}),
        ("steps", {"steps": 151}),
        ("steps", {"steps": "5"}),
        ("steps", {"steps": 5.5}),
        ("seed", {"seed": -1}),
        ("seed", {"seed": 2147483648}),
        ("seed", {"seed": "1"}),
        ("width", {"width": 100}),
        ("width", {"width": 2056}),
        ("width", {"width": 56}),
        ("height", {"height": 100}),
        ("height", {"height": "512"}),
        ("guidance_scale", {"guidance_scale": 31}),
        ("guidance_scale", {"guidance_scale": -0.5}),
        ("guidance_scale", {"guidance_scale": "7"}),
        ("negative_prompt", {"negative_prompt": "n" * 2001}),
        ("negative_prompt", {"negative_prompt": 3}),
        ("loras", {"loras": "x"}),
        ("loras", {"loras": [{"weight": 1}]}),
        ("loras", {"loras": [{"name": "a", "weight": 6}]}),
        ("loras", {"loras": [{"name": ""}]}),
        ("loras", {"loras": [5]}),
    ]
    for field, over in cases:
        b = dict(base)
        for k, v in over.items():
            if v is ...:
                del b[k]
            else:
                b[k] = v
        r = D.post(url, b)
        try:
            expect_error(r, 400, "invalid_request", field)
        except TestFailure as e:
            raise TestFailure("%s %s: %s" % (field, snippet(json.dumps(over), 80), e))
    # several bad fields at once are all named
    j = expect_error(D.post(url, {"album_name": "", "steps": 0, "seed": -1}), 400, "invalid_request")
    for f in ("album_name", "user_theme", "steps", "seed"):
        check(f in j.get("fields", {}), "multi-error does not name %s: %s" % (f, j))
    expect_error(D.post(url, raw=b"{nope", headers={"Content-Type": "application/json"}), 400)
    expect_error(D.post(url, raw=b"[]", headers={"Content-Type": "application/json"}), 400)
    expect_error(D.post(url, raw=json.dumps(base).encode(), headers={"Content-Type": "text/plain"}), 415)
    eq(run_count(D), before, "runs created by rejected generates")


@test
def generate_template_errors():
    r = D.post(T, {"name": "empty", "prompt_template": "just {theme}"})
    empty = expect_json(r, 201)
    eq(empty["template_item_count"], 0, "empty template items")
    before = run_count(D)
    expect_error(gen(D, empty["id"]), 400, "invalid_request", "template")
    expect_error(gen(D, 999999), 404, "not_found")
    expect_error(D.post(T + "/abc/generate", {"album_name": "a", "user_theme": "b"}), 404)
    expect_error(D.get("%s/%d/generate" % (T, empty["id"])), 405)
    eq(run_count(D), before, "runs after failed generates")


@test
def generate_is_public():
    t = make_template(D)
    r = gen(D, t["id"], token=None)
    expect_json(r, 202)
    r = gen(D, t["id"], token="user")
    expect_json(r, 202)
    expect_error(gen(D, t["id"], token="sf_" + "0" * 64), 401)


# ---------------------------------------------------------------- atomicity


@test
def concurrent_generates_atomic():
    csv = "card\n" + "\n".join("c%d" % i for i in range(37)) + "\n"
    t = expect_json(D.post(T, {"name": "atom", "prompt_template": "{card}", "csv": csv}), 201)
    eq(t["template_item_count"], 37, "csv template items")
    results = [None] * 20

    def work(k):
        try:
            results[k] = http_request(D.port, "POST", "%s/%d/generate" % (T, t["id"]),
                                      body={"album_name": "atom %d" % k, "user_theme": "x", "seed": k},
                                      token=D.admin_token, timeout=30)
        except Exception as e:  # noqa
            results[k] = e

    ths = [threading.Thread(target=work, args=(k,)) for k in range(20)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(bound(40))
    ids = []
    for k, r in enumerate(results):
        check(not isinstance(r, Exception) and r is not None, "generate %d: %r" % (k, r))
        j = expect_json(r, 202)
        eq(j["run"]["total_items"], 37, "run total_items")
        ids.append(j["run"]["id"])
    eq(len(set(ids)), 20, "distinct run ids")
    listed = expect_json(D.get("%s/%d/runs?per_page=100" % (T, t["id"])), 200)
    eq(sorted(r["id"] for r in listed["runs"]), sorted(ids), "runs of the template")
    for rid in ids:
        _, meta = items(D, rid)
        eq(meta["total"], 37, "items total of run %d" % rid)
    rows = dict(D.db_query("SELECT run_id, count(*) FROM run_items WHERE run_id IN (%s) GROUP BY run_id"
                           % ",".join(str(i) for i in ids)))
    eq(rows, {i: 37 for i in ids}, "run_items rows per run (sqlite)")
    seeds = dict((r[0], r[1]) for r in D.db_query("SELECT run_id, min(seed) FROM run_items WHERE run_id IN (%s) "
                                                   "GROUP BY run_id" % ",".join(str(i) for i in ids)))
    eq(sorted(seeds.values()), list(range(20)), "first seeds of the 20 runs")


# ---------------------------------------------------------------- a full deck


@test
def deck_run_completes_with_album():
    deck = template_by_count(D, 54)
    eq((deck["width"], deck["height"]), (512, 720), "deck size")
    # Drawing 54 images of 512x720 takes minutes under a sanitizer: there the
    # run asks for a sixteenth of the pixels, and the images must have that
    # size instead of the deck's (generate_202_shape shows a run taking the
    # template's size).
    size = {} if SLOWDOWN == 1 else {"width": 128, "height": 176}
    w, h = size.get("width", 512), size.get("height", 720)
    run_ = gen_ok(D, deck["id"], album_name="My deck", seed=1000, **size)
    eq((run_["width"], run_["height"]), (w, h), "run size")
    fin = wait_run(D, run_["id"], timeout=40)
    eq((fin["status"], fin["completed_items"], fin["failed_items"], fin["canceled_items"], fin["error_message"]),
       ("completed", 54, 0, 0, None), "final deck run")
    its, _ = items(D, run_["id"])
    eq([i["status"] for i in its], ["succeeded"] * 54, "item statuses")
    eq([i["attempts"] for i in its], [1] * 54, "item attempts")
    for i in its:
        check(i.get("endpoint") == "procedural", "item %d endpoint %r" % (i["index"], i.get("endpoint")))
        check(isinstance(i.get("duration_ms"), int) and i["duration_ms"] >= 0,
              "item %d duration_ms %r" % (i["index"], i.get("duration_ms")))
    check(all(isinstance(i["image_id"], int) for i in its), "items without image_id")
    eq(len(set(i["image_id"] for i in its)), 54, "distinct images")
    aid = fin["album_id"]
    check(isinstance(aid, int), "album_id %r" % aid)
    imgs, alb = album_images(D, aid)
    eq((alb["name"], alb["source_type"], alb["source_id"], alb["image_count"], alb["is_public"], alb["created_by"]),
       ("My deck", "batch_generation", run_["id"], 54, True, Daemon.ADMIN_NAME), "album fields")
    eq([im["item_index"] for im in imgs], list(range(54)), "album images in item order")
    eq([im["id"] for im in imgs], [i["image_id"] for i in its], "album images = item images")
    for im in imgs:
        eq((im["width"], im["height"], im["run_id"]), (w, h, run_["id"]), "image %d" % im["id"])
    for im in (imgs[0], imgs[27], imgs[53]):
        f = expect_status(D.get("/api/images/%d/file" % im["id"]), 200)
        eq(png_size(f.body), (w, h), "PNG size of image %d" % im["id"])
        eq(len(f.body), im["bytes"], "bytes of image %d" % im["id"])
    # the album is listed as a batch_generation album
    j = expect_json(D.get("/api/albums?source_type=batch_generation&per_page=100"), 200)
    check(aid in [a["id"] for a in j["albums"]], "album %d not in batch_generation list" % aid)


# ---------------------------------------------------------------- listing


@test
def runs_list_and_status_filter():
    t = make_template(D)
    rid = gen_ok(D, t["id"])["id"]
    wait_run(D, rid)
    j = expect_json(D.get("/api/runs?per_page=100"), 200)
    for k in ("runs", "total", "page", "per_page", "pages"):
        check(k in j, "runs list lacks %s" % k)
    ids = [r["id"] for r in j["runs"]]
    eq(ids, sorted(ids, reverse=True), "runs newest first")
    check(rid in ids, "run %d not listed" % rid)
    allruns = j["total"]
    c = expect_json(D.get("/api/runs?status=completed&per_page=100"), 200)
    check(c["total"] >= 1, "no completed runs")
    check(all(r["status"] == "completed" for r in c["runs"]), "status filter leaks: %s"
          % set(r["status"] for r in c["runs"]))
    check(rid in [r["id"] for r in c["runs"]], "completed run not in filtered list")
    q = expect_json(D.get("/api/runs?status=canceled"), 200)
    check(all(r["status"] == "canceled" for r in q["runs"]), "canceled filter")
    check(q["total"] < allruns, "canceled filter total %s not below all %s" % (q["total"], allruns))
    expect_error(D.get("/api/runs?status=bogus"), 400, "invalid_request", "status")
    expect_error(D.get("/api/runs?page=abc"), 400, "invalid_request", "page")
    expect_error(D.get("/api/runs/999999"), 404, "not_found")
    expect_error(D.get("/api/runs/999999/items"), 404, "not_found")
    expect_error(D.get("/api/runs/abc"), 404)
    expect_error(D.get("/api/runs/%d/items?per_page=x" % rid), 400, "invalid_request", "per_page")
    p = expect_json(D.get("/api/runs?per_page=1&page=2"), 200)
    eq((p["per_page"], p["page"], len(p["runs"]), p["runs"][0]["id"]), (1, 2, 1, ids[1]), "page 2 of per_page 1")


@test
def items_pagination():
    deck = template_by_count(D, 54)
    rid = gen_ok(D, deck["id"], seed=5, width=64, height=64)["id"]
    j = expect_json(D.get("/api/runs/%d/items?per_page=20&page=3" % rid), 200)
    eq((j["total"], j["page"], j["per_page"], j["pages"]), (54, 3, 20, 3), "items page meta")
    eq([i["index"] for i in j["items"]], list(range(40, 54)), "items of page 3")
    eq([i["seed"] for i in j["items"]], list(range(45, 59)), "seeds of page 3")
    j = expect_json(D.get("/api/runs/%d/items?per_page=500" % rid), 200)
    eq((j["per_page"], len(j["items"])), (100, 54), "per_page clamp")
    wait_run(D, rid)


@test
def template_runs_routes():
    a = make_template(D, name="tpl A")
    b = make_template(D, name="tpl B")
    ra = [gen_ok(D, a["id"])["id"] for _ in range(2)]
    rb = gen_ok(D, b["id"])["id"]
    j = expect_json(D.get("%s/%d/runs" % (T, a["id"])), 200)
    eq([r["id"] for r in j["runs"]], sorted(ra, reverse=True), "runs of template A (newest first)")
    eq((j["total"], j["page"], j["per_page"], j["pages"]), (2, 1, 50, 1), "template runs page meta")
    eq(j["template"]["id"], a["id"], "template of the runs list")
    j = expect_json(D.get("%s/%d/runs/%d" % (T, a["id"], ra[0])), 200)
    eq((j["run"]["id"], j["template"]["id"]), (ra[0], a["id"]), "template run detail")
    expect_error(D.get("%s/%d/runs/%d" % (T, a["id"], rb)), 404, "not_found")
    expect_error(D.get("%s/%d/runs/999999" % (T, a["id"])), 404, "not_found")
    expect_error(D.get("%s/999999/runs" % T), 404, "not_found")
    expect_error(D.get("%s/999999/runs/%d" % (T, rb)), 404, "not_found")
    # a template with runs cannot be deleted
    expect_error(D.delete("%s/%d" % (T, b["id"])), 409, "conflict")
    for rid in ra + [rb]:
        wait_run(D, rid)


# ---------------------------------------------------------------- idempotency


@test
def idempotency_key():
    t = make_template(D)
    url = "%s/%d/generate" % (T, t["id"])
    body = {"album_name": "idem", "user_theme": "x", "seed": 3}
    h = {"Idempotency-Key": "bb-key-1"}
    r1 = D.post(url, body, headers=h)
    j1 = expect_json(r1, 202)
    r2 = D.post(url, body, headers=h)
    j2 = expect_json(r2, 202)
    eq(j2["run"]["id"], j1["run"]["id"], "same key + same body: run id")
    eq(r2.headers.get("Location"), "/api/runs/%d" % j1["run"]["id"], "replayed Location")
    eq(j2.get("message"), "run already created for this Idempotency-Key", "replay message")
    eq(expect_json(D.get("%s/%d/runs" % (T, t["id"])), 200)["total"], 1, "runs after a replay")
    expect_error(D.post(url, dict(body, seed=4), headers=h), 409, "conflict")
    # another template, same key and body: a different request
    t2 = make_template(D)
    expect_error(D.post("%s/%d/generate" % (T, t2["id"]), body, headers=h), 409, "conflict")
    j3 = expect_json(D.post(url, body, headers={"Idempotency-Key": "bb-key-2"}), 202)
    check(j3["run"]["id"] != j1["run"]["id"], "a new key made no new run")
    j4 = expect_json(D.post(url, body), 202)
    check(j4["run"]["id"] not in (j1["run"]["id"], j3["run"]["id"]), "no key made no new run")
    eq(expect_json(D.get("%s/%d/runs" % (T, t["id"])), 200)["total"], 3, "runs of the template")
    eq(expect_json(D.get("%s/%d/runs" % (T, t2["id"])), 200)["total"], 0, "runs of the other template")


@test
def idempotency_key_concurrent():
    t = make_template(D)
    url = "%s/%d/generate" % (T, t["id"])
    body = {"album_name": "idem-c", "user_theme": "x", "seed": 9}
    res = [None] * 8

    def work(k):
        try:
            res[k] = http_request(D.port, "POST", url, body=body, headers={"Idempotency-Key": "bb-conc"},
                                  token=D.admin_token, timeout=30)
        except Exception as e:  # noqa
            res[k] = e

    ths = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(bound(40))
    ids = set()
    for r in res:
        check(not isinstance(r, Exception) and r is not None, "request failed: %r" % r)
        ids.add(expect_json(r, 202)["run"]["id"])
    eq(len(ids), 1, "run ids for 8 concurrent requests with one key")
    eq(expect_json(D.get("%s/%d/runs" % (T, t["id"])), 200)["total"], 1, "runs created")


# ---------------------------------------------------------------- cancel / retry / progress (slow daemon)


@test
def progress_eta_cancel_and_retry():
    z = template_by_count(SLOW, 12)
    run_ = gen_ok(SLOW, z["id"], album_name="zodiac slow", seed=50)
    rid = run_["id"]
    eq((run_["progress"], run_["eta_s"]), (0, None), "progress/eta at creation")
    mid = wait_run(SLOW, rid, cond=lambda r: r["completed_items"] >= 1, timeout=10)
    eq(mid["status"], "running", "status while drawing")
    check(0 < mid["progress"] < 1, "progress %r while running" % mid["progress"])
    check(abs(mid["progress"] - mid["completed_items"] / 12.0) < 0.01, "progress %r vs %d/12 completed"
          % (mid["progress"], mid["completed_items"]))
    check(isinstance(mid["eta_s"], (int, float)) and mid["eta_s"] > 0, "eta_s %r while running" % mid["eta_s"])
    check(mid["eta_s"] < bound(30), "eta_s %r implausible (≈ %.1f s × %d left / 2)"
          % (mid["eta_s"], 0.2 * SLOWDOWN, 12 - mid["completed_items"]))
    check(TS_RE.match(mid["started_at"] or ""), "started_at %r" % mid["started_at"])
    h = expect_json(SLOW.get("/api/health"), 200)
    check(h["queue"]["running"] >= 1 and h["queue"]["queued"] >= 1, "health queue while drawing: %s" % h["queue"])
    mid_its, _ = items(SLOW, rid)
    # Two workers draw at most two items at once; each worker's finisher may
    # still be recording the item drawn before (docs/runs.md), and that item
    # is "running" until its image commits. So: at most two drawing, at most
    # four running.
    eq(sum(1 for i in mid_its if i["status"] == "running") <= 4, True, "more items running than workers × 2")
    check(sum(b["in_flight"] for b in h["backends"]) <= 2, "more items drawing than workers: %s" % h["backends"])
    # auth on cancel
    cu = "/api/runs/%d/cancel" % rid
    expect_error(SLOW.post(cu, token=None), 401, "unauthorized")
    expect_error(SLOW.post(cu, token="user"), 403, "forbidden")
    check(get_run(SLOW, rid)["status"] == "running", "run changed by a refused cancel")
    r = SLOW.post(cu)
    expect_status(r, 200)
    c = get_run(SLOW, rid)
    eq((c["status"], c["error_message"]), ("canceled", "canceled by an operator"), "run right after cancel")
    its = wait_settled(SLOW, rid)
    sts = [i["status"] for i in its]
    check(not any(s in ("queued", "running") for s in sts), "items left queued/running after cancel: %s" % sts)
    c = get_run(SLOW, rid)
    eq(c["status"], "canceled", "run status after cancel")
    check(c["canceled_items"] > 0, "canceled_items %r" % c["canceled_items"])
    eq(c["completed_items"], sts.count("succeeded"), "completed_items vs succeeded items")
    eq(c["canceled_items"], sts.count("canceled"), "canceled_items vs canceled items")
    eq(c["completed_items"] + c["canceled_items"] + c["failed_items"], 12, "counts add up")
    eq(c["progress"], 1, "progress of a canceled run")
    eq(c["eta_s"], 0, "eta_s of a canceled run")
    check(c["completed_items"] >= 1, "no image before cancel")
    # images made before the cancel are filed into the run's album
    check(isinstance(c["album_id"], int), "canceled run with images has no album: %r" % c["album_id"])
    imgs, alb = album_images(SLOW, c["album_id"])
    done = [i for i in its if i["status"] == "succeeded"]
    eq([im["id"] for im in imgs], [i["image_id"] for i in done], "album of the canceled run (item order)")
    eq((alb["source_type"], alb["source_id"], alb["name"]), ("batch_generation", rid, "zodiac slow"), "album")
    for i in its:
        if i["status"] == "canceled":
            eq(i["image_id"], None, "canceled item %d image_id" % i["index"])
    # cancel again / unknown
    expect_error(SLOW.post(cu), 409, "conflict")
    expect_error(SLOW.post("/api/runs/999999/cancel"), 404, "not_found")
    # retry: auth, then for real
    ru = "/api/runs/%d/retry" % rid
    expect_error(SLOW.post("/api/runs/999999/retry"), 404, "not_found")
    expect_error(SLOW.post(ru, token=None), 401, "unauthorized")
    expect_error(SLOW.post(ru, token="user"), 403, "forbidden")
    eq(get_run(SLOW, rid)["status"], "canceled", "run changed by a refused retry")
    before = {i["index"]: i for i in its}
    expect_status(SLOW.post(ru), 200)
    r = get_run(SLOW, rid)
    eq((r["status"], r["completed_at"], r["error_message"]), ("running", None, None), "run right after retry")
    eq(r["canceled_items"], 0, "canceled_items right after retry")
    fin = wait_run(SLOW, rid, timeout=20)
    eq((fin["status"], fin["completed_items"], fin["canceled_items"], fin["failed_items"], fin["error_message"]),
       ("completed", 12, 0, 0, None), "run after retry")
    eq(fin["album_id"], c["album_id"], "album id kept across the retry")
    its2, _ = items(SLOW, rid)
    eq([i["status"] for i in its2], ["succeeded"] * 12, "items after retry")
    for i in its2:
        b = before[i["index"]]
        if b["status"] == "succeeded":
            eq((i["attempts"], i["image_id"]), (b["attempts"], b["image_id"]), "item %d done before" % i["index"])
        else:
            eq(i["attempts"], b["attempts"] + 1, "item %d attempts (kept + 1)" % i["index"])
    imgs, alb = album_images(SLOW, fin["album_id"])
    eq(alb["image_count"], 12, "album image_count after retry")
    eq([im["item_index"] for im in imgs], list(range(12)), "album item order after retry")
    eq([im["id"] for im in imgs], [i["image_id"] for i in its2], "album images after retry")
    expect_error(SLOW.post(ru), 409, "conflict")


@test
def cancel_queued_run_makes_no_album():
    z = template_by_count(SLOW, 12)
    # keep the workers busy with a first run so the second stays queued
    busy = gen_ok(SLOW, z["id"], album_name="busy")["id"]
    rid = gen_ok(SLOW, z["id"], album_name="never")["id"]
    expect_status(SLOW.post("/api/runs/%d/cancel" % busy), 200)
    expect_status(SLOW.post("/api/runs/%d/cancel" % rid), 200)
    wait_settled(SLOW, rid)
    r = get_run(SLOW, rid)
    eq(r["status"], "canceled", "status")
    if r["completed_items"] == 0:
        eq(r["album_id"], None, "album of a run canceled before any image")
        eq(r["canceled_items"], 12, "canceled_items")
    its, _ = items(SLOW, rid)
    check(all(i["status"] in ("canceled", "succeeded") for i in its), "items: %s" % [i["status"] for i in its])
    # retry of a completed run with nothing failed/canceled
    t = make_template(SLOW, csv_items=[{"card": "a"}])
    one = gen_ok(SLOW, t["id"])["id"]
    wait_run(SLOW, one, timeout=10)
    expect_error(SLOW.post("/api/runs/%d/retry" % one), 409, "conflict")
    expect_error(SLOW.post("/api/runs/%d/cancel" % one), 409, "conflict")


@test
def failed_items_failed_run_and_retry():
    """Storage made to fail (data_dir/images is a file): transient errors, retried up to
    --max-attempts 2, then the items and the run fail; retry after the fault is gone completes."""
    d = FAILD
    t = make_template(d, csv_items=[{"card": "c%d" % i} for i in range(4)])
    imgdir = os.path.join(d.data_dir, "images")
    if os.path.isdir(imgdir):
        shutil.rmtree(imgdir)
    open(imgdir, "w").close()
    rid = gen_ok(d, t["id"], album_name="doomed", width=64, height=64, seed=11)["id"]
    fin = wait_run(d, rid, timeout=15)
    eq((fin["status"], fin["completed_items"], fin["failed_items"], fin["album_id"], fin["progress"], fin["eta_s"]),
       ("failed", 0, 4, None, 1, 0), "run with every item failed")
    em = fin["error_message"] or ""
    check(em.startswith("4 of 4 items failed; last error: ") and len(em) > len("4 of 4 items failed; last error: "),
          "error_message %r" % em)
    its, _ = items(d, rid)
    eq([(i["status"], i["attempts"], i["image_id"]) for i in its], [("failed", 2, None)] * 4,
       "failed items (status, attempts = max_attempts, image_id)")
    check(all(isinstance(i["error"], str) and i["error"] for i in its), "items without error: %s" % its)
    evs = sse_events(d.get("/api/runs/%d/events" % rid, timeout=10))
    item_evs = [e for e in evs if e["event"] == "item"]
    eq(sorted((e["index"], e["status"], e["attempts"], e["image_id"]) for e in item_evs),
       [(k, "failed", 2, None) for k in range(4)], "item events of the failed run")
    check(all(e["error"] == its[e["index"]]["error"] for e in item_evs), "item event errors differ from the items")
    eq((evs[-1]["event"], evs[-1]["status"], evs[-1]["failed_items"], evs[-1]["album_id"], evs[-1]["error_message"]),
       ("status", "failed", 4, None, fin["error_message"]), "final status event of the failed run")
    os.unlink(imgdir)
    expect_status(d.post("/api/runs/%d/retry" % rid), 200)
    r = get_run(d, rid)
    eq((r["status"], r["completed_at"], r["error_message"], r["failed_items"]), ("running", None, None, 0),
       "run right after retry")
    fin = wait_run(d, rid, timeout=15)
    eq((fin["status"], fin["completed_items"], fin["failed_items"], fin["error_message"]),
       ("completed", 4, 0, None), "run after retry")
    its, _ = items(d, rid)
    eq([(i["status"], i["attempts"], i["error"]) for i in its], [("succeeded", 3, None)] * 4,
       "items after retry (attempts kept + 1, error cleared)")
    imgs, alb = album_images(d, fin["album_id"])
    eq([im["item_index"] for im in imgs], [0, 1, 2, 3], "album after retry")


@test
def partial_failure_then_retry_fills_album_in_order():
    d = FAILD
    t = make_template(d, csv_items=[{"card": "left"}, {"card": "mid"}, {"card": "right"}])
    body = dict(album_name="partial", width=64, height=64, seed=321, user_theme="pp")
    # the procedural backend is deterministic: learn where item 1's bytes will be stored
    probe = gen_ok(d, t["id"], **body)["id"]
    wait_run(d, probe, timeout=15)
    pits, _ = items(d, probe)
    shas = [expect_json(d.get("/api/images/%d" % i["image_id"]), 200)["sha256"] for i in pits]
    check(len(set(s[:2] for s in shas)) == 3, "setup: items share a shard directory (%s); pick another seed" % shas)
    for i in pits:
        expect_json(d.delete("/api/images/%d" % i["image_id"]), 200)
    shard = os.path.join(d.data_dir, "images", shas[1][:2])
    if os.path.isdir(shard):
        shutil.rmtree(shard)
    open(shard, "w").close()
    try:
        rid = gen_ok(d, t["id"], **body)["id"]
        fin = wait_run(d, rid, timeout=15)
    finally:
        os.unlink(shard)
    eq((fin["status"], fin["completed_items"], fin["failed_items"]), ("completed", 2, 1), "partially failed run")
    em = fin["error_message"] or ""
    check(em.startswith("1 of 3 items failed; last error: "), "error_message %r" % em)
    its, _ = items(d, rid)
    eq([i["status"] for i in its], ["succeeded", "failed", "succeeded"], "item statuses")
    imgs, alb = album_images(d, fin["album_id"])
    eq([im["item_index"] for im in imgs], [0, 2], "album of the partial run")
    expect_status(d.post("/api/runs/%d/retry" % rid), 200)
    fin2 = wait_run(d, rid, timeout=15)
    eq((fin2["status"], fin2["completed_items"], fin2["failed_items"], fin2["error_message"], fin2["album_id"]),
       ("completed", 3, 0, None, fin["album_id"]), "run after retry")
    imgs, alb = album_images(d, fin["album_id"])
    eq([im["item_index"] for im in imgs], [0, 1, 2], "retried image joins the album at its item position")
    eq(alb["image_count"], 3, "album image_count")


# ---------------------------------------------------------------- rate limit


def rate_window():
    """The rate limiter's window now: windows are aligned to the Unix clock."""
    return int(time.time()) // bound(RATE_WINDOW)


def in_one_rate_window(requests):
    """requests() made so that all of them fall in one window of the rate
    limiter: when they straddle two, the second window has already counted
    some, so wait for the one after it (nothing counted) and make them again."""
    for _ in range(5):
        w = rate_window()
        out = requests()
        if rate_window() == w:
            return out
        fresh = rate_window() + 1
        wait_for(lambda: rate_window() >= fresh, 2 * RATE_WINDOW, "the rate limiter's next window", 0.01)
    raise TestFailure("five tries in a row straddled two %d s rate windows" % bound(RATE_WINDOW))


@test
def generate_rate_limit():
    t = make_template(RATE)
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"}

    def requests():
        before = expect_json(RATE.get("%s/%d/runs" % (T, t["id"])), 200)["total"]
        public = [gen(RATE, t["id"], token=None) for _ in range(4)]
        user = gen(RATE, t["id"], token="user")
        # a client-supplied forwarding header must not buy a fresh quota (no trusted proxy configured)
        fwd = gen(RATE, t["id"], token=None, headers=forwarded)
        admin = [gen(RATE, t["id"], token="admin") for _ in range(3)]
        return before, public, user, fwd, admin

    before, public, user, fwd, admin = in_one_rate_window(requests)
    for r in public[:3]:
        expect_json(r, 202)
    r = public[3]
    expect_error(r, 429, "rate_limited")
    ra = r.headers.get("Retry-After")
    check(ra is not None and ra.isdigit() and 1 <= int(ra) <= bound(RATE_WINDOW), "Retry-After %r" % ra)
    expect_error(user, 429, "rate_limited")
    expect_error(fwd, 429, "rate_limited")
    for r in admin:
        expect_json(r, 202)
    eq(expect_json(RATE.get("%s/%d/runs" % (T, t["id"])), 200)["total"] - before, 6,
       "runs created (3 public + 3 admin)")
    # a later window brings a fresh quota

    def accepted():
        r = gen(RATE, t["id"], token=None)
        if r.status != 202:
            expect_error(r, 429, "rate_limited")
        return r.status == 202

    wait_for(accepted, 2 * RATE_WINDOW + 1, "a public generate accepted in a later window")


# ---------------------------------------------------------------- fairness


@test
def fairness_small_run_not_starved():
    csv = "card\n" + "\n".join("big %d" % i for i in range(200)) + "\n"
    big_t = expect_json(FAIR.post(T, {"name": "big", "prompt_template": "{card}", "csv": csv}), 201)
    eq(big_t["template_item_count"], 200, "big template items")
    small_t = template_by_count(FAIR, 12)
    big = gen_ok(FAIR, big_t["id"], width=64, height=64)["id"]
    small = gen_ok(FAIR, small_t["id"], width=64, height=64)["id"]
    s = wait_run(FAIR, small, timeout=20)
    b = get_run(FAIR, big)
    eq(s["status"], "completed", "small run status")
    left = 200 - b["completed_items"] - b["failed_items"] - b["canceled_items"]
    check(left > 100, "big run had only %d items left when the small one completed (%s)" % (left, b["status"]))
    expect_status(FAIR.post("/api/runs/%d/cancel" % big), 200)


@test
def long_run_keeps_the_wal_bounded():
    # ~10 WAL pages per item: 800 items write ~8,000 pages. The checkpointer
    # thread copies them back (the WAL hook replaced SQLite's own
    # auto-checkpoint), so the -wal file stays near the 1,000-page mark, and
    # never past the 4,000-page hard bound.
    csv = "card\n" + "\n".join("c%d" % i for i in range(800)) + "\n"
    t = expect_json(D.post(T, {"name": "wal", "prompt_template": "{card}", "csv": csv}), 201)
    rid = gen_ok(D, t["id"], width=64, height=64)["id"]
    r = wait_run(D, rid, timeout=120)
    eq((r["status"], r["completed_items"]), ("completed", 800), "the 800-item run")
    m = {}
    for line in D.get("/metrics").text.splitlines():
        if line.startswith("setforge_db_checkpoints_total{"):
            k, v = line.rsplit(" ", 1)
            m[k] = float(v)
    check(m.get('setforge_db_checkpoints_total{by="checkpointer"}', 0) >= 1, "checkpoints: %s" % m)
    check('setforge_db_checkpoints_total{by="inline"}' in m, "checkpoints: %s" % m)
    wal = os.path.getsize(D.db + "-wal")
    check(wal < 4100 * (4096 + 24), "-wal file of %d bytes after 800 items" % wal)


# ---------------------------------------------------------------- persistence


@test
def restart_keeps_runs_and_images():
    # everything on D must be final so nothing moves across the restart
    last = [None]

    def all_final():
        last[0] = expect_json(D.get("/api/runs?per_page=100"), 200)
        return last[0] if all(r["status"] in FINAL for r in last[0]["runs"]) else None

    j = wait_for(all_final, 30, lambda: "every run final (%s)" % [r["status"] for r in last[0]["runs"]], 0.1)
    check(j["total"] <= 100, "too many runs for one page")
    runs_before = j
    imgs_before = expect_json(D.get("/api/images?per_page=100"), 200)
    some = runs_before["runs"][0]["id"]
    items_before = expect_json(D.get("/api/runs/%d/items?per_page=100" % some), 200)
    img = imgs_before["images"][0]
    file_before = expect_status(D.get(img["url"]), 200).body
    D.restart()
    eq(expect_json(D.get("/api/runs?per_page=100"), 200), runs_before, "runs after restart")
    eq(expect_json(D.get("/api/images?per_page=100"), 200), imgs_before, "images after restart")
    eq(expect_json(D.get("/api/runs/%d/items?per_page=100" % some), 200), items_before, "items after restart")
    eq(expect_status(D.get(img["url"]), 200).body, file_before, "image file after restart")


@test
def restart_and_kill_mid_run_finish_the_run():
    z = template_by_count(SLOW, 12)
    rid = gen_ok(SLOW, z["id"], album_name="interrupted", width=64, height=64)["id"]
    wait_run(SLOW, rid, cond=lambda r: r["completed_items"] >= 2, timeout=10)
    SLOW.restart()  # SIGTERM: items being drawn go back to queued, attempt not charged
    r = get_run(SLOW, rid)
    check(r["status"] in ("running", "queued"), "run status after SIGTERM restart: %s" % r["status"])
    wait_run(SLOW, rid, cond=lambda r: r["completed_items"] >= 6, timeout=10)
    SLOW.kill9()  # the items being drawn stay 'running' in the db; rescued at start-up
    SLOW.start()
    fin = wait_run(SLOW, rid, timeout=20)
    eq((fin["status"], fin["completed_items"], fin["failed_items"], fin["canceled_items"]), ("completed", 12, 0, 0),
       "run after restart + kill -9")
    its, _ = items(SLOW, rid)
    eq([i["status"] for i in its], ["succeeded"] * 12, "item statuses")
    att = [i["attempts"] for i in its]
    check(all(1 <= a <= 2 for a in att), "attempts after one SIGTERM and one kill -9: %s" % att)
    check(att.count(2) <= 2, "more items charged twice than workers (kill -9 only): %s" % att)
    imgs, alb = album_images(SLOW, fin["album_id"])
    eq([im["item_index"] for im in imgs], list(range(12)), "album after restarts (one image per item)")
    n = SLOW.db_query("SELECT count(*) FROM images WHERE run_id = ?", (rid,))[0][0]
    eq(n, 12, "image rows of the run (no duplicates)")


# ---------------------------------------------------------------- setup


def setup():
    global D, SLOW, RATE, FAIR, FAILD
    D = Daemon(examples=True, extra_args=["--workers", "2", "--generate-rate", "0"])
    SLOW = Daemon(examples=True, extra_args=["--workers", "2", "--procedural-delay-ms", str(200 * SLOWDOWN),
                                             "--generate-rate", "0"])
    RATE = Daemon(extra_args=["--generate-rate", "3", "--generate-rate-window-s", str(bound(RATE_WINDOW)), "--workers", "1"])
    FAILD = Daemon(extra_args=["--workers", "2", "--max-attempts", "2", "--generate-rate", "0"])
    FAIR = Daemon(examples=True, extra_args=["--workers", "1", "--procedural-delay-ms", "20", "--generate-rate", "0"])


def teardown(_):
    for d in (D, SLOW, RATE, FAIR, FAILD):
        if d is not None:
            d.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
