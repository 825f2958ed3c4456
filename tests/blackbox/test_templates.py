"""Black-box tests of /api/batch-templates (API.md + docs/api.md), plus the
request-level rules (JSON, content type, body limit, 404/405) exercised on it."""

import json
import math
import re
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TS_RE, Daemon, TestFailure, bound, check, eq, expect_error, expect_json, expect_status, now_ts,
                     run, snippet, test, wait_run)

D = None  # shared daemon, default settings
SMALL = None  # daemon with --body-limit 65536
T = "/api/batch-templates"

FIELDS = ["id", "name", "description", "prompt_template", "base_prompt", "style_suffix", "example_theme",
          "negative_prompt", "width", "height", "loras", "csv_columns", "template_item_count", "lora_count",
          "created_by", "created_at", "updated_at"]


def body(**over):
    b = {"name": "Test deck", "prompt_template": "{item} in the style of {theme}",
         "csv_items": [{"item": "ace"}, {"item": "king"}]}
    b.update(over)
    for k in [k for k, v in b.items() if v is ...]:
        del b[k]
    return b


def create(**over):
    r = D.post(T, body(**over))
    return expect_json(r, 201)


def bad_create(field, status=400, **over):
    r = D.post(T, body(**over))
    return expect_error(r, status, "invalid_request" if status == 400 else None, field)


def get_t(tid):
    return expect_json(D.get("%s/%d" % (T, tid)), 200)


# ---------------------------------------------------------------- list


@test
def list_empty_defaults():
    j = expect_json(D.get(T), 200)
    eq(j.get("templates"), [], "templates on a fresh db")
    eq((j.get("total"), j.get("page"), j.get("per_page"), j.get("pages")), (0, 1, 50, 0), "total/page/per_page/pages")


@test
def list_pagination_and_order():
    ids = [create(name="page %d" % i)["id"] for i in range(5)]
    check(ids == sorted(ids) and len(set(ids)) == 5, "ids not increasing: %s" % ids)
    j = expect_json(D.get(T), 200)
    total = j["total"]
    check(total >= 5, "total %s < 5 after creating 5" % total)
    got = [t["id"] for t in j["templates"]]
    eq(got, sorted(got, reverse=True), "list order (newest first)")
    eq(got[:5], list(reversed(ids)), "newest five")
    j = expect_json(D.get(T + "?per_page=2"), 200)
    eq((j["page"], j["per_page"], j["pages"], j["total"]), (1, 2, math.ceil(total / 2), total), "page meta per_page=2")
    eq(len(j["templates"]), 2, "rows on page 1 of per_page=2")
    seen = []
    for p in range(1, j["pages"] + 1):
        pj = expect_json(D.get(T + "?per_page=2&page=%d" % p), 200)
        eq(pj["page"], p, "page echo")
        seen += [t["id"] for t in pj["templates"]]
    eq(len(seen), total, "rows over all pages")
    eq(seen, sorted(set(seen), reverse=True), "ids over all pages (unique, descending)")
    past = expect_json(D.get(T + "?per_page=2&page=%d" % (j["pages"] + 5)), 200)
    eq(past["templates"], [], "page past the end")
    eq((past["total"], past["pages"], past["page"]), (total, j["pages"], j["pages"] + 5), "meta past the end")


@test
def list_per_page_clamped_to_100():
    j = expect_json(D.get(T + "?per_page=1000"), 200)
    eq(j["per_page"], 100, "per_page=1000 clamp")
    eq(j["pages"], math.ceil(j["total"] / 100), "pages computed with the clamped per_page")
    eq(len(j["templates"]), min(100, j["total"]), "rows with the clamped per_page")
    j = expect_json(D.get(T + "?per_page=101"), 200)
    eq(j["per_page"], 100, "per_page=101 clamp")
    j = expect_json(D.get(T + "?per_page=100"), 200)
    eq(j["per_page"], 100, "per_page=100")


@test
def list_bad_pagination_params():
    for q, f in [("page=abc", "page"), ("page=0", "page"), ("page=-1", "page"), ("page=1.5", "page"),
                 ("page=", "page"), ("per_page=abc", "per_page"), ("per_page=0", "per_page"),
                 ("per_page=-5", "per_page"), ("per_page=2x", "per_page"), ("page=%00", "page")]:
        expect_error(D.get(T + "?" + q), 400, "invalid_request", f)
    # beyond 64 bits: a 400 naming the parameter, or (for page) an empty page; never a 5xx
    r = D.get(T + "?page=99999999999999999999999")
    if r.status == 400:
        expect_error(r, 400, "invalid_request", "page")
    else:
        eq((r.status, r.json()["templates"]), (200, []), "page=1e23")
    # the largest int64 page must not overflow the offset
    j = expect_json(D.get(T + "?page=9223372036854775807&per_page=100"), 200)
    eq(j["templates"], [], "page=INT64_MAX")


@test
def list_rows_omit_csv_items():
    create(name="no items in list")
    j = expect_json(D.get(T), 200)
    for row in j["templates"]:
        check("csv_items" not in row, "list row has csv_items: %s" % sorted(row))
        check("csv_columns" in row, "list row lacks csv_columns: %s" % sorted(row))
        for f in FIELDS:
            check(f in row, "list row lacks %s" % f)


# ---------------------------------------------------------------- create


@test
def create_from_csv_items_full_shape():
    r = D.post(T, body(name="Full", description="desc", base_prompt="base", style_suffix="suffix",
                       example_theme="steampunk", negative_prompt="blurry", width=768, height=1024,
                       loras=[{"name": "devil_carnival", "weight": 0.5}, {"path": "l/x.safetensors"}],
                       csv_items=[{"item": "ace", "suit": "spades"}, {"suit": "hearts", "item": "two"}],
                       prompt_template="{item} of {suit}, {theme}", extra_unknown_field=[1, 2]))
    j = expect_json(r, 201)
    for f in FIELDS + ["csv_items"]:
        check(f in j, "created template lacks %s: %s" % (f, sorted(j)))
    eq(j["name"], "Full")
    eq((j["description"], j["base_prompt"], j["style_suffix"], j["example_theme"], j["negative_prompt"]),
       ("desc", "base", "suffix", "steampunk", "blurry"), "string fields")
    eq((j["width"], j["height"]), (768, 1024), "size")
    eq(j["loras"], [{"name": "devil_carnival", "weight": 0.5}, {"path": "l/x.safetensors", "weight": 1.0}],
       "loras normalised")
    eq(j["lora_count"], 2, "lora_count")
    eq(j["csv_columns"], ["item", "suit"], "csv_columns (first-seen order)")
    eq(j["csv_items"], [{"item": "ace", "suit": "spades"}, {"item": "two", "suit": "hearts"}], "csv_items")
    eq(j["template_item_count"], 2, "template_item_count")
    eq(j["created_by"], Daemon.ADMIN_NAME, "created_by")
    check(TS_RE.match(j["created_at"]) and TS_RE.match(j["updated_at"]), "timestamps not RFC 3339 UTC: %r %r"
          % (j["created_at"], j["updated_at"]))
    check("extra_unknown_field" not in j, "unknown field echoed back")
    loc = r.headers.get("Location", "")
    check(loc.endswith("/api/batch-templates/%d" % j["id"]), "Location %r for id %d" % (loc, j["id"]))
    g = get_t(j["id"])
    eq(g, j, "GET after create")


@test
def create_defaults():
    j = create(name="Defaults", csv_items=..., prompt_template="plain prompt")
    eq((j["width"], j["height"]), (512, 512), "default size")
    for f in ("description", "base_prompt", "style_suffix", "example_theme", "negative_prompt"):
        eq(j[f], "", "default %s" % f)
    eq((j["loras"], j["lora_count"]), ([], 0), "default loras")
    eq((j["csv_items"], j["csv_columns"], j["template_item_count"]), ([], [], 0), "empty items")
    j = create(name="Nulls", description=None, base_prompt=None)
    eq((j["description"], j["base_prompt"]), ("", ""), "null strings become empty")


@test
def create_size_boundaries():
    j = create(width=64, height=2048)
    eq((j["width"], j["height"]), (64, 2048), "boundary sizes")


@test
def create_csv_items_value_types():
    j = create(csv_items=[{"item": 7, "n": 1.5}, {"item": None}, {"item": "x", "late": "y"}],
               prompt_template="{item}")
    eq(j["csv_columns"], ["item", "n", "late"], "columns")
    eq(j["csv_items"], [{"item": "7", "n": "1.5", "late": ""}, {"item": "", "n": "", "late": ""},
                        {"item": "x", "n": "", "late": "y"}], "normalised items")
    for bad in ([{"item": True}], [{"item": [1]}], [{"item": {"a": 1}}], ["str"], [1], {"item": "x"}, "a,b"):
        bad_create("csv_items", csv_items=bad)
    e = bad_create("csv_items", csv_items=[{"item": "ok"}, {"item": False}])
    check(re.search(r"\[1\]|row 1\b|row 2\b|item 1\b|item 2\b", json.dumps(e)), "bad row not named: %s" % e)


@test
def create_from_csv_quoting_newlines_utf8_bom():
    csv = ('\ufeff name , note\r\n'
           '"Ace, of spades","He said ""hi"""\r\n'
           '\r\n'
           '"multi\nline",Ā♠ 王\n'
           'plain,\n')
    j = create(csv_items=..., csv=csv, prompt_template="{name}: {note}")
    eq(j["csv_columns"], ["name", "note"], "columns (BOM stripped, trimmed)")
    eq(j["csv_items"], [{"name": "Ace, of spades", "note": 'He said "hi"'},
                        {"name": "multi\nline", "note": "Ā♠ 王"},
                        {"name": "plain", "note": ""}], "items from csv")
    eq(j["template_item_count"], 3, "item count (blank line skipped)")
    eq(get_t(j["id"])["csv_items"], j["csv_items"], "csv_items after GET")


@test
def create_csv_header_only():
    j = create(csv_items=..., csv="item,other\r\n", prompt_template="{item} {other}")
    eq((j["csv_columns"], j["csv_items"], j["template_item_count"]), (["item", "other"], [], 0), "header-only csv")
    j = create(csv_items=[], prompt_template="{theme}")
    eq((j["csv_columns"], j["csv_items"]), ([], []), "empty csv_items")


@test
def create_csv_errors():
    e = bad_create("csv", csv_items=..., csv="a,b\n1,2\n3\n", prompt_template="{a}")
    check("row 3" in json.dumps(e, ensure_ascii=False), "ragged csv error does not name row 3: %s" % e)
    e = bad_create("csv", csv_items=..., csv='a,b\n"x"y,2\n', prompt_template="{a}")
    check(re.search(r"(byte|offset)\D{0,12}\d+", json.dumps(e)), "bad quoting error names no byte offset: %s" % e)
    bad_create("csv", csv_items=..., csv='a,b\n"unterminated,2\n', prompt_template="{a}")
    bad_create("csv", csv_items=..., csv="a,a\n1,2\n", prompt_template="{a}")  # duplicate header
    bad_create("csv", csv_items=..., csv="a,,c\n1,2,3\n", prompt_template="{a}")  # empty header name
    bad_create("csv", csv_items=..., csv=123, prompt_template="{a}")


@test
def create_csv_and_csv_items_both_400():
    r = D.post(T, body(csv="item\nx\n"))
    expect_error(r, 400, "invalid_request")


@test
def create_missing_or_bad_name():
    bad_create("name", name=...)
    bad_create("name", name="")
    bad_create("name", name="n" * 201)
    bad_create("name", name=5)
    j = create(name="n" * 200)
    eq(len(j["name"]), 200, "200-char name")
    j = create(name="王" * 200)
    eq(j["name"], "王" * 200, "200 three-byte characters (limit counts characters)")
    bad_create("name", name="王" * 201)


@test
def create_missing_or_bad_prompt_template():
    bad_create("prompt_template", prompt_template=...)
    bad_create("prompt_template", prompt_template="")
    bad_create("prompt_template", prompt_template=["{item}"])
    bad_create("prompt_template", prompt_template="x" * 5001)


@test
def create_item_limits():
    cols = ["c%d" % i for i in range(65)]
    bad_create("csv", csv_items=..., csv=",".join(cols) + "\n" + ",".join("v" for _ in cols) + "\n",
               prompt_template="{c0}")
    bad_create("csv_items", csv_items=[{c: "v" for c in cols}], prompt_template="{c0}")
    j = create(csv_items=[{c: "v" for c in cols[:64]}], prompt_template="{c0}")
    eq(len(j["csv_columns"]), 64, "64 columns accepted")
    bad_create("csv_items", csv_items=[{"item": "x" * 4001}])
    bad_create("csv", csv_items=..., csv="item\n" + "x" * 4001 + "\n", prompt_template="{item}")
    j = create(csv_items=[{"item": "é" * 2000}])
    eq(j["csv_items"][0]["item"], "é" * 2000, "4000-byte value accepted")
    bad_create("csv_items", csv_items=[{"item": str(i)} for i in range(10001)])
    bad_create("csv", csv_items=..., csv="item\n" + "".join("%d\n" % i for i in range(10001)),
               prompt_template="{item}")
    j = create(csv_items=..., csv="item\n" + "".join("%d\n" % i for i in range(10000)), prompt_template="{item}")
    eq(j["template_item_count"], 10000, "10000 items accepted")
    eq(j["csv_items"][9999], {"item": "9999"}, "last item")


@test
def create_string_length_limits():
    for f, n in (("description", 2001), ("base_prompt", 2001), ("style_suffix", 2001), ("negative_prompt", 2001),
                 ("example_theme", 501)):
        bad_create(f, **{f: "x" * n})
    j = create(description="d" * 2000, example_theme="e" * 500)
    eq((len(j["description"]), len(j["example_theme"])), (2000, 500), "max lengths accepted")


@test
def create_bad_width_height():
    for v in (63, 2056, 513, 0, -512, "512", 512.5, True, 2049):
        bad_create("width", width=v)
    for v in (63, 2056, 900, "768"):
        bad_create("height", height=v)


@test
def create_bad_loras():
    bad_create("loras", loras=[{"name": "x", "weight": 6}])
    bad_create("loras", loras=[{"name": "x", "weight": -5.5}])
    bad_create("loras", loras=[{"name": "x", "weight": "x"}])
    bad_create("loras", loras=[{"weight": 0.5}])
    bad_create("loras", loras=[{"name": ""}])
    bad_create("loras", loras=[{"name": "p" * 501}])
    bad_create("loras", loras="devil_carnival")
    bad_create("loras", loras=[{"name": "x"}] * 33)
    # a LoRA reference stays inside the server's LoRA folder (docs/api.md)
    for ref in ("../../../../etc/shadow", "/root/.ssh/id_rsa", "a/../../b", "..\\..\\win.ini", "\\\\host\\share",
                "C:\\loras\\x", "x\nInjected: 1"):
        bad_create("loras", loras=[{"path": ref}])
        bad_create("loras", loras=[{"name": ref}])
    j = create(loras=[{"path": "styles/ink..v2.safetensors"}, {"name": "a..b"}])
    eq([l.get("path") or l.get("name") for l in j["loras"]], ["styles/ink..v2.safetensors", "a..b"],
       "dots inside a name are fine")
    j = create(loras=[{"name": "lo", "weight": -5}, {"name": "hi", "weight": 5}, {"name": "i", "weight": 2}])
    eq([l["weight"] for l in j["loras"]], [-5, 5, 2], "weights at the bounds")
    eq(j["lora_count"], 3, "lora_count")


@test
def create_placeholders():
    e = bad_create("prompt_template", prompt_template="{item} {bogus} and {other}")
    msg = str(e["fields"]["prompt_template"]) + " " + e["error"]
    check("bogus" in msg and "other" in msg, "unknown placeholders not named: %s" % e)
    # theme is always known, {{ }} are literal, names are trimmed, an unclosed { is literal
    create(prompt_template="{ item } of {theme} {{not a placeholder}} and {unclosed")
    # placeholders with no items at all: only theme is known
    bad_create("prompt_template", csv_items=..., prompt_template="{item}")
    create(csv_items=..., prompt_template="just {theme}")
    # UTF-8 column names; {{{x}}} is a literal brace around a real placeholder
    create(csv_items=..., csv="königin,王\nA,B\n", prompt_template="{ königin } {王} {theme}")
    create(csv_items=[], prompt_template="{{literal}} {{{theme}}}")
    e = bad_create("prompt_template", csv_items=[], prompt_template="{{{nope}}}")
    check("nope" in json.dumps(e, ensure_ascii=False), "unknown placeholder inside braces not named: %s" % e)


@test
def create_bad_json_types_top_level():
    r = D.post(T, raw=b'[{"name": "x"}]', headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    r = D.post(T, raw=b'"just a string"', headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")


# ---------------------------------------------------------------- auth


@test
def auth_rules():
    r = D.post(T, body(), token=None)
    expect_error(r, 401, "unauthorized")
    check(r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"),
          "401 without WWW-Authenticate: Bearer (%r)" % r.headers.get("WWW-Authenticate"))
    expect_error(D.post(T, body(), token="user"), 403, "forbidden")
    r = D.post(T, body(), token="sf_" + "0" * 64)
    expect_error(r, 401, "unauthorized")
    check("WWW-Authenticate" in r.headers, "401 (bogus token) without WWW-Authenticate")
    expect_error(D.post(T, body(), token="garbage"), 401, "unauthorized")
    expect_error(D.post(T, body(), headers={"Authorization": "Basic YWRtaW46YWRtaW4="}, token=None), 401,
                 "unauthorized")
    # public reads: no token fine, user token fine, bogus token 401
    expect_json(D.get(T, token=None), 200)
    expect_json(D.get(T, token="user"), 200)
    expect_error(D.get(T, token="sf_" + "1" * 64), 401, "unauthorized")
    tid = create()["id"]
    expect_json(D.get("%s/%d" % (T, tid), token="user"), 200)
    expect_error(D.put("%s/%d" % (T, tid), {"name": "x"}, token=None), 401, "unauthorized")
    expect_error(D.put("%s/%d" % (T, tid), {"name": "x"}, token="user"), 403, "forbidden")
    expect_error(D.delete("%s/%d" % (T, tid), token=None), 401, "unauthorized")
    expect_error(D.delete("%s/%d" % (T, tid), token="user"), 403, "forbidden")
    eq(get_t(tid)["name"], "Test deck", "name after refused PUT")


# ---------------------------------------------------------------- detail, update, delete


@test
def detail_404s():
    for p in ("/999999", "/abc", "/0", "/-1", "/1.0", "/", "/1/"):
        expect_error(D.get(T + p), 404, "not_found")
    expect_error(D.put(T + "/999999", {"name": "x"}), 404, "not_found")
    expect_error(D.delete(T + "/999999"), 404, "not_found")
    expect_error(D.get(T + "/999999/items.csv"), 404, "not_found")


@test
def update_partial():
    j = create(name="Before", description="keep", width=640, loras=[{"name": "l", "weight": 0.3}])
    # Timestamps have one-second resolution: rather than wait for the next
    # second, move the stored updated_at back, so the PUT has to write the
    # time it happened at.
    D.db_exec("UPDATE batch_templates SET updated_at = '2001-01-01T00:00:00Z' WHERE id = ?", (j["id"],))
    t0 = now_ts()
    r = D.put("%s/%d" % (T, j["id"]), {"name": "After", "unknown": 1})
    t1 = now_ts()
    u = expect_json(r, 200)
    eq(u["name"], "After", "updated name")
    for f in ("description", "prompt_template", "width", "height", "loras", "csv_items", "csv_columns",
              "created_at", "created_by", "template_item_count", "lora_count"):
        eq(u[f], j[f], "unchanged %s" % f)
    check(t0 <= u["updated_at"] <= t1, "updated_at %s is not the time of the PUT (%s..%s)" % (u["updated_at"], t0, t1))
    check(u["updated_at"] >= j["updated_at"], "updated_at went backwards")
    g = get_t(j["id"])
    eq(g, u, "GET after PUT")
    u2 = expect_json(D.put("%s/%d" % (T, j["id"]), {"width": 1024, "loras": [], "description": None}), 200)
    eq((u2["width"], u2["loras"], u2["lora_count"], u2["description"], u2["name"]), (1024, [], 0, "", "After"),
       "second update")


@test
def update_validation_and_placeholder_recheck():
    j = create(csv_items=[{"item": "a"}], prompt_template="{item}")
    path = "%s/%d" % (T, j["id"])
    e = expect_error(D.put(path, {"prompt_template": "{item} {nope}"}), 400, "invalid_request", "prompt_template")
    check("nope" in json.dumps(e), "unknown placeholder not named: %s" % e)
    expect_error(D.put(path, {"csv_items": [{"other": "x"}]}), 400, "invalid_request", "prompt_template")
    expect_error(D.put(path, {"csv": "other\nx\n"}), 400, "invalid_request", "prompt_template")
    expect_error(D.put(path, {"width": 513}), 400, "invalid_request", "width")
    expect_error(D.put(path, {"name": ""}), 400, "invalid_request", "name")
    expect_error(D.put(path, {"csv": "item\nb\n", "csv_items": [{"item": "c"}]}), 400, "invalid_request")
    eq(get_t(j["id"]), j, "template after refused updates")
    u = expect_json(D.put(path, {"csv_items": [{"other": "x"}, {"other": "y"}], "prompt_template": "{other}"}), 200)
    eq((u["csv_columns"], u["template_item_count"], u["prompt_template"]), (["other"], 2, "{other}"),
       "items + template together")
    u = expect_json(D.put(path, {"csv": "other,more\nz,1\n"}), 200)
    eq(u["csv_items"], [{"other": "z", "more": "1"}], "items replaced from csv")
    for bad in (b"", b"[]", b"{bad"):
        r = D.put(path, raw=bad, headers={"Content-Type": "application/json"})
        expect_error(r, 400, "invalid_request")


@test
def delete_then_404():
    j = create()
    r = D.delete("%s/%d" % (T, j["id"]))
    dj = expect_json(r, 200)
    check(isinstance(dj.get("message"), str) and dj["message"], "delete answer lacks message: %s" % dj)
    expect_error(D.get("%s/%d" % (T, j["id"])), 404, "not_found")
    expect_error(D.delete("%s/%d" % (T, j["id"])), 404, "not_found")
    expect_error(D.put("%s/%d" % (T, j["id"]), {"name": "x"}), 404, "not_found")


@test
def delete_with_run_is_409():
    j = create()
    for status in ("queued", "running", "completed", "failed", "canceled"):
        run_id = D.insert_run(j["id"], status=status)
        expect_error(D.delete("%s/%d" % (T, j["id"])), 409, "conflict")
        eq(get_t(j["id"])["id"], j["id"], "template still there after 409")
        D.db_exec("DELETE FROM runs WHERE id = ?", (run_id,))
    expect_json(D.delete("%s/%d" % (T, j["id"])), 200)


# ---------------------------------------------------------------- runs of a template


@test
def template_runs_list_and_detail():
    j = create()
    other = create()
    r1 = D.insert_run(j["id"], album_name="first")
    r2 = D.insert_run(j["id"], album_name="second", status="completed")
    r3 = D.insert_run(other["id"], album_name="other")
    rl = expect_json(D.get("%s/%d/runs" % (T, j["id"])), 200)
    eq([r["id"] for r in rl.get("runs", [])], [r2, r1], "runs of the template, newest first")
    eq((rl.get("total"), rl.get("page"), rl.get("per_page"), rl.get("pages")), (2, 1, 50, 1), "runs pagination")
    eq(rl.get("template", {}).get("id"), j["id"], "runs list template")
    run = rl["runs"][0]
    for f in ("id", "template_id", "album_id", "album_name", "user_theme", "status", "total_items",
              "completed_items", "failed_items", "steps", "seed", "width", "height", "guidance_scale",
              "negative_prompt", "created_at", "started_at", "completed_at", "error_message"):
        check(f in run, "run lacks %s: %s" % (f, sorted(run)))
    eq((run["album_name"], run["status"], run["template_id"]), ("second", "completed", j["id"]), "run fields")
    d = expect_json(D.get("%s/%d/runs/%d" % (T, j["id"], r1)), 200)
    eq(d.get("run", {}).get("id"), r1, "run detail id")
    eq(d.get("template", {}).get("id"), j["id"], "run detail template")
    expect_error(D.get("%s/%d/runs/%d" % (T, j["id"], r3)), 404, "not_found")
    expect_error(D.get("%s/%d/runs/999999" % (T, j["id"])), 404, "not_found")
    expect_error(D.get("%s/999999/runs" % T), 404, "not_found")
    expect_error(D.get("%s/%d/runs?page=abc" % (T, j["id"])), 400, "invalid_request", "page")


# ---------------------------------------------------------------- generate


@test
def generate_creates_run_and_items():
    j = create(base_prompt="Base", style_suffix="Suffix", prompt_template="{item} of {theme}",
               csv_items=[{"item": "ace"}, {"item": "king"}, {"item": "queen"}], negative_prompt="tplneg")
    r = D.post("%s/%d/generate" % (T, j["id"]), {"album_name": "My deck", "user_theme": "noir", "seed": 100,
                                                  "steps": 30, "negative_prompt": "userneg"}, token=None)
    g = expect_json(r, 202)
    run = g.get("run") or {}
    check(isinstance(g.get("message"), str), "generate answer lacks message")
    eq(g.get("template", {}).get("id"), j["id"], "generate template")
    eq((run.get("total_items"), run.get("seed"), run.get("steps"), run.get("album_name"), run.get("user_theme")),
       (3, 100, 30, "My deck", "noir"), "run fields")
    eq((run.get("width"), run.get("height"), run.get("guidance_scale")), (512, 512, 7.5), "run defaults")
    eq(run.get("negative_prompt"), "userneg, tplneg", "joined negative prompt")
    check(run.get("status") in ("queued", "running"), "new run status %r" % run.get("status"))
    eq(r.headers.get("Location", "").rsplit("/api/", 1)[-1], "runs/%d" % run.get("id", -1), "Location")
    rows = D.db_query("SELECT item_index, prompt, seed FROM run_items WHERE run_id = ? ORDER BY item_index",
                      (run["id"],))
    eq(rows, [(0, "Base. Art style: noir. ace of noir. Suffix", 100),
              (1, "Base. Art style: noir. king of noir. Suffix", 101),
              (2, "Base. Art style: noir. queen of noir. Suffix", 102)], "run_items")
    # a random seed is recorded
    g2 = expect_json(D.post("%s/%d/generate" % (T, j["id"]), {"album_name": "a", "user_theme": "b"}), 202)
    check(isinstance(g2["run"].get("seed"), int) and 0 <= g2["run"]["seed"] <= 2147483647,
          "random seed not recorded: %r" % g2["run"].get("seed"))
    eq((g2["run"]["steps"], g2["run"]["guidance_scale"]), (25, 7.5), "default steps/guidance")
    # the template now has runs: delete is 409
    expect_error(D.delete("%s/%d" % (T, j["id"])), 409, "conflict")


@test
def generate_run_completes_into_album():
    j = create(prompt_template="{item} card", csv_items=[{"item": "a"}, {"item": "b"}, {"item": "c"}])
    g = expect_json(D.post("%s/%d/generate" % (T, j["id"]), {"album_name": "Done deck", "user_theme": "ink",
                                                             "seed": 5}), 202)
    rid = g["run"]["id"]
    run = wait_run(D, rid, timeout=15)
    eq(run.get("status"), "completed", "run status (procedural backend) %s" % run)
    eq((run.get("completed_items"), run.get("failed_items")), (3, 0), "item counts")
    check(run.get("album_id"), "completed run has no album_id")
    check(TS_RE.match(run.get("completed_at") or ""), "completed_at %r" % run.get("completed_at"))
    alb = expect_json(D.get("/api/albums/%d" % run["album_id"], token="admin"), 200)
    eq((alb["name"], alb["source_type"], alb["source_id"], alb["image_count"]),
       ("Done deck", "batch_generation", rid, 3), "run album")
    rows = D.db_query("SELECT id, item_index, seed FROM images WHERE run_id = ? ORDER BY item_index", (rid,))
    eq([(r[1], r[2]) for r in rows], [(0, 5), (1, 6), (2, 7)], "images per item")
    eq([x["id"] for x in alb["images"]], [r[0] for r in rows], "album images in item order")
    d = expect_json(D.get("%s/%d/runs/%d" % (T, j["id"], rid)), 200)
    eq(d["run"]["status"], "completed", "run via template route")


@test
def generate_rate_limited():
    t = expect_json(SMALL.post(T, body(name="rated")), 201)
    codes = []
    for _ in range(4):
        r = SMALL.post("%s/%d/generate" % (T, t["id"]), {"album_name": "a", "user_theme": "b"}, token=None)
        codes.append(r.status)
        if r.status == 429:
            expect_error(r, 429, "rate_limited")
            ra = r.headers.get("Retry-After", "")
            check(ra.isdigit() and int(ra) > 0, "Retry-After %r" % ra)
            break
    eq(codes, [202, 202, 429], "generate statuses with --generate-rate 2")


@test
def generate_405():
    r = D.get("%s/1/generate" % T)
    expect_error(r, 405, "method_not_allowed")
    check("POST" in r.headers.get("Allow", ""), "Allow %r" % r.headers.get("Allow"))


@test
def generate_validation():
    j = create()
    p = "%s/%d/generate" % (T, j["id"])
    ok = {"album_name": "a", "user_theme": "b"}
    for over, f in ((dict(album_name=None), "album_name"), (dict(album_name=""), "album_name"),
                    (dict(album_name="x" * 201), "album_name"), (dict(user_theme=""), "user_theme"),
                    (dict(user_theme="x" * 501), "user_theme"), (dict(steps=0), "steps"), (dict(steps=151), "steps"),
                    (dict(seed=-1), "seed"), (dict(seed=2147483648), "seed"),
                    (dict(guidance_scale=30.5), "guidance_scale"), (dict(width=513), "width"),
                    (dict(negative_prompt="x" * 2001), "negative_prompt")):
        b = dict(ok)
        b.update(over)
        b = {k: v for k, v in b.items() if v is not None}
        expect_error(D.post(p, b), 400, "invalid_request", f)
    empty = create(csv_items=..., prompt_template="{theme}")
    expect_error(D.post("%s/%d/generate" % (T, empty["id"]), ok), 400, "invalid_request")
    expect_error(D.post("%s/999999/generate" % T, ok), 404, "not_found")
    eq(D.db_query("SELECT count(*) FROM runs WHERE template_id IN (?, ?)", (j["id"], empty["id"]))[0][0], 0,
       "runs created by refused generates")


# ---------------------------------------------------------------- items.csv


TRICKY = [{"name": "Ace, of \"spades\"", "note": "line1\nline2", "u": "Ā♠ 王", "col, \"odd\"": "h"},
          {"name": "", "note": "  spaced  ", "u": "x"},
          {"name": "=1+1", "note": "'quote", "u": "\r\ncrlf", "col, \"odd\"": ","}]


@test
def items_csv_export_and_round_trip():
    j = create(csv_items=TRICKY, prompt_template="{name} {note} {u}")
    r = D.get("%s/%d/items.csv" % (T, j["id"]))
    expect_status(r, 200)
    ct = r.headers.get("Content-Type", "")
    check(ct.lower().replace(" ", "") == "text/csv;charset=utf-8", "items.csv Content-Type %r" % ct)
    cd = r.headers.get("Content-Disposition", "")
    check('filename="template-%d-items.csv"' % j["id"] in cd and cd.startswith("attachment"),
          "Content-Disposition %r" % cd)
    text = r.body.decode("utf-8")
    eq(text.split("\r\n", 1)[0], '"name","note","u","col, ""odd"""', "header line (every field quoted, CRLF)")
    check(text.endswith("\r\n"), "export does not end with CRLF")
    lines_outside_quotes = text.replace('""', "")
    check("\n" not in "".join(p for i, p in enumerate(lines_outside_quotes.split('"')) if i % 2 == 0).replace("\r\n", ""),
          "bare LF line end outside quotes: %r" % text)
    back = create(csv_items=..., csv=text, prompt_template="{name}")
    eq(back["csv_columns"], j["csv_columns"], "round-trip columns")
    eq(back["csv_items"], j["csv_items"], "round-trip items")
    # empty template exports just the (empty) header or nothing, still text/csv
    e = create(csv_items=..., prompt_template="{theme}")
    r = D.get("%s/%d/items.csv" % (T, e["id"]))
    expect_status(r, 200)
    check(r.headers.get("Content-Type", "").startswith("text/csv"), "empty export content type")


@test
def items_csv_bogus_token_401():
    j = create()
    expect_error(D.get("%s/%d/items.csv" % (T, j["id"]), token="sf_" + "2" * 64), 401, "unauthorized")


# ---------------------------------------------------------------- request-level rules


@test
def method_not_allowed_with_allow():
    for m, p, must in (("PATCH", T, {"GET", "POST"}), ("DELETE", T, {"GET", "POST"}), ("PUT", T, {"GET", "POST"}),
                       ("PATCH", T + "/1", {"GET", "PUT", "DELETE"}), ("POST", T + "/1", {"GET", "PUT", "DELETE"}),
                       ("POST", T + "/1/items.csv", {"GET"})):
        r = D.request(m, p, token="admin")
        expect_error(r, 405, "method_not_allowed")
        allow = {a.strip().upper() for a in r.headers.get("Allow", "").split(",") if a.strip()}
        check(must <= allow, "%s %s: Allow %r lacks %s" % (m, p, r.headers.get("Allow"), must - allow))
        check("OPTIONS" in allow, "%s %s: Allow %r lacks OPTIONS" % (m, p, r.headers.get("Allow")))
        check(m not in allow, "%s %s: Allow %r lists the refused method" % (m, p, r.headers.get("Allow")))


@test
def unknown_paths_404_json():
    for p in ("/api/nope", "/nope", "/index.html", "/api/batch-templates/1/nope", "/api/batch-templatesx", "/api"):
        expect_error(D.get(p), 404, "not_found")
    expect_error(D.post("/api/nope", {"a": 1}), 404, "not_found")


@test
def content_type_415():
    raw = json.dumps(body()).encode()
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", None):
        r = D.post(T, raw=raw, headers={"Content-Type": ct} if ct else {"Content-Type": None})
        expect_error(r, 415, "unsupported_media_type")
    r = D.post(T, raw=raw, headers={"Content-Type": "application/json; charset=utf-8"})
    expect_json(r, 201)
    r = D.put(T + "/1", raw=b'{"name": "x"}', headers={"Content-Type": "text/plain"})
    expect_error(r, 415, "unsupported_media_type")


@test
def post_without_body_400():
    r = D.post(T, raw=b"", headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    r = D.post(T)
    expect_error(r, 400, "invalid_request")


@test
def malformed_json_400():
    for raw in (b'{"name": "x",', b"{name: 1}", b'{"name": "x"} trailing', b"\xef\xbb\xbf", b"nul",
                b'{"name": "x", "name": NaN}'):
        r = D.post(T, raw=raw, headers={"Content-Type": "application/json"})
        expect_error(r, 400, "invalid_request")


@test
def deep_nesting_400_no_crash():
    r = D.post(T, raw=b"[" * 100000, headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    r = D.post(T, raw=b'{"name": "x", "prompt_template": "p", "loras": ' + b"[" * 100000 + b"]" * 100000 + b"}",
               headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    check(D.healthy(), "daemon unhealthy after deep nesting")


@test
def nesting_limit():
    ok = body()
    raw = json.dumps(ok).encode()[:-1] + b', "deep": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    expect_json(D.post(T, raw=raw, headers={"Content-Type": "application/json"}), 201)
    raw = json.dumps(ok).encode()[:-1] + b', "deep": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    expect_error(D.post(T, raw=raw, headers={"Content-Type": "application/json"}), 400, "invalid_request")


@test
def case_insensitive_media_type_and_scheme():
    raw = json.dumps(body(name="ci")).encode()
    expect_json(D.post(T, raw=raw, headers={"Content-Type": "Application/JSON"}), 201)
    expect_json(D.post(T, raw=raw, headers={"Content-Type": "application/json", "Authorization": "bearer " +
                                            D.admin_token}, token=None), 201)
    expect_error(D.post(T, raw=raw, headers={"Content-Type": "application/json", "Authorization": "Bearer "},
                        token=None), 401, "unauthorized")
    expect_error(D.get(T, headers={"Authorization": "Bearer"}), 401, "unauthorized")


@test
def huge_integer_400():
    r = D.post(T, raw=json.dumps(body()).replace('"name"', '"width": 1000000000000000000000000000000, "name"')
               .encode(), headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    r = D.post(T, raw=json.dumps(body()).replace('"name"', '"width": 18446744073709551616, "name"').encode(),
               headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    expect_error(D.post(T, body(width=2 ** 62)), 400, "invalid_request", "width")


@test
def invalid_utf8_and_nul_400():
    r = D.post(T, raw=b'{"name": "bad \xff\xfe utf8", "prompt_template": "p"}',
               headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    r = D.post(T, raw=b'{"name": "overlong \xc0\xaf", "prompt_template": "p"}',
               headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    r = D.post(T, raw=b'{"name": "nul \\u0000 inside", "prompt_template": "p"}',
               headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")
    # a lone surrogate escape is not valid Unicode either
    r = D.post(T, raw=b'{"name": "\\ud800", "prompt_template": "p"}', headers={"Content-Type": "application/json"})
    expect_error(r, 400, "invalid_request")


def _head(path, length=None, chunked=False, token=None, ct="application/json"):
    h = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n" % (path, ct)
    if token:
        h += "Authorization: Bearer %s\r\n" % token
    if chunked:
        h += "Transfer-Encoding: chunked\r\n"
    else:
        h += "Content-Length: %d\r\n" % length
    h += "Connection: close\r\n\r\n"
    return h.encode()


@test
def body_20mb_content_length_413():
    n = 20 * 1024 * 1024
    chunk = b" " * 65536
    t0 = time.time()
    r = D.raw(_head(T, length=n, token=D.admin_token), (chunk for _ in range(n // len(chunk))))
    expect_error(r, 413, "payload_too_large")
    check(time.time() - t0 < bound(20), "413 took too long")
    check(D.healthy(), "daemon unhealthy after 20 MB body")


@test
def body_20mb_unauthenticated_413_or_401():
    n = 20 * 1024 * 1024
    chunk = b" " * 65536
    r = D.raw(_head(T, length=n), (chunk for _ in range(n // len(chunk))))
    check(r.status in (401, 413), "20 MB POST without token: %s" % r.describe())
    expect_error(r, r.status)
    check(D.healthy(), "daemon unhealthy")


def _chunked(payload_iter):
    for c in payload_iter:
        yield b"%x\r\n" % len(c) + c + b"\r\n"
    yield b"0\r\n\r\n"


@test
def chunked_11mb_413():
    n = 11 * 1024 * 1024
    pre = json.dumps(body(name="big")).encode()[:-1] + b', "pad": "'
    parts = [pre] + [b"x" * 65536] * (n // 65536) + [b'"}']
    r = D.raw(_head(T, chunked=True, token=D.admin_token), _chunked(parts))
    expect_error(r, 413, "payload_too_large")
    check(D.healthy(), "daemon unhealthy after chunked 11 MB body")
    eq(D.db_query("SELECT count(*) FROM batch_templates WHERE name = 'big'")[0][0], 0, "template created by 413 body")


@test
def chunked_small_body_works():
    raw = json.dumps(body(name="chunked ok")).encode()
    r = D.raw(_head(T, chunked=True, token=D.admin_token), _chunked([raw[:10], raw[10:]]))
    j = expect_json(r, 201)
    eq(j["name"], "chunked ok", "name")


def _padded(size, name):
    b = json.dumps(body(name=name)).encode()
    check(len(b) < size, "base body too big")
    return b + b" " * (size - len(b))


@test
def body_limit_boundary():
    limit = 65536
    r = SMALL.post(T, raw=_padded(limit, "exact"), headers={"Content-Type": "application/json"})
    j = expect_json(r, 201)
    eq(j["name"], "exact", "name at exactly the limit")
    r = SMALL.post(T, raw=_padded(limit - 1, "under"), headers={"Content-Type": "application/json"})
    expect_json(r, 201)
    r = SMALL.raw(_head(T, length=limit + 1, token=SMALL.admin_token), [_padded(limit + 1, "over")])
    expect_error(r, 413, "payload_too_large")
    raw = _padded(limit + 1, "over chunked")
    r = SMALL.raw(_head(T, chunked=True, token=SMALL.admin_token), _chunked([raw[:40000], raw[40000:]]))
    expect_error(r, 413, "payload_too_large")
    raw = _padded(limit, "exact chunked")
    r = SMALL.raw(_head(T, chunked=True, token=SMALL.admin_token), _chunked([raw[:30000], raw[30000:]]))
    expect_json(r, 201)
    names = sorted(x[0] for x in SMALL.db_query("SELECT name FROM batch_templates WHERE name LIKE '%exact%' OR "
                                                "name LIKE '%under%' OR name LIKE '%over%'"))
    eq(names, ["exact", "exact chunked", "under"], "templates created around the limit")
    check(SMALL.healthy(), "small-limit daemon unhealthy")


@test
def body_limit_applies_to_every_body_route():
    t = expect_json(SMALL.post(T, body(name="limit target")), 201)["id"]
    a = expect_json(SMALL.post("/api/albums", {"name": "limit target"}), 201)["id"]
    for m, p in (("PUT", "%s/%d" % (T, t)), ("POST", "/api/albums"), ("PUT", "/api/albums/%d" % a),
                 ("POST", "/api/albums/%d/images" % a), ("POST", "%s/%d/generate" % (T, t))):
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                "Content-Length: 70000\r\nConnection: close\r\n\r\n" % (m, p, SMALL.admin_token)).encode()
        expect_error(SMALL.raw(head, [b" " * 70000]), 413, "payload_too_large")


@test
def expect_100_continue():
    import socket
    # oversized: 413 straight away, no "100 Continue", no need to send the body
    s = socket.create_connection(("127.0.0.1", SMALL.port), timeout=bound(5))
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n" % (T, SMALL.admin_token)).encode())
        got = b""
        while b"\r\n\r\n" not in got:
            c = s.recv(4096)
            if not c:
                break
            got += c
        check(got.startswith(b"HTTP/1.1 413"), "oversized Expect: 100-continue answered %r" % got[:80])
    finally:
        s.close()
    # within the limit: 100 Continue, then the real answer
    raw = json.dumps(body(name="expect ok")).encode()
    s = socket.create_connection(("127.0.0.1", SMALL.port), timeout=bound(5))
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                   % (T, SMALL.admin_token, len(raw))).encode())
        first = s.recv(4096)
        check(first.startswith(b"HTTP/1.1 100"), "expected 100 Continue, got %r" % first[:80])
        s.sendall(raw)
        rest = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            rest += c
        check(rest.startswith(b"HTTP/1.1 201"), "after 100 Continue: %r" % rest[:120])
    finally:
        s.close()


@test
def survives_restart():
    j = create(name="Persistent", csv="k,v\n\"a,b\",2\n", csv_items=..., prompt_template="{k}",
               loras=[{"name": "z", "weight": 0.25}])
    before = expect_json(D.get(T + "?per_page=100"), 200)
    D.restart()
    eq(get_t(j["id"]), j, "template after restart")
    after = expect_json(D.get(T + "?per_page=100"), 200)
    eq(after, before, "list after restart")


def setup():
    global D, SMALL
    D = Daemon()
    SMALL = Daemon(extra_args=["--body-limit", "65536", "--generate-rate", "2"])


def teardown(_):
    for d in (D, SMALL):
        if d is not None:
            d.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
