#!/usr/bin/env python3
"""Black-box tests of the a1111 backend against a fake stable-diffusion.cpp
sd-server as unkind as the real one (tests/fakes/fake_a1111.py --flavor
sdcpp: LoRAs only by listed path, a LoRA list read lazily, sizes aligned to
64, a capabilities route, info.version, seeds read as 32-bit ints, a job
queue whose generating job cannot be canceled).

Covers issue 10's findings on sd-server: LoRA names mapped to the listed
paths, with close matches when none fits (1); the list read before the first
LoRA item and again on "invalid lora path", then the item retried once (2);
the dialect detected whatever the configured flavor says, shown in
/api/health, a contradicting flavor logged (3); sizes aligned by the server
warned about at generate, "fit": "crop" cropping to the requested size, an
answer no alignment explains failing its item (4); cancel through sd-server's
job API, which drops a queued job and frees the worker from a generating one
(6); a checkpoint refused for sd-server (11); item seeds kept within 32 bits and the server's seed
recorded (12).
"""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, Daemon, bound, check, eq, expect_json, free_port, http_request, run, test, wait_for, wait_run  # noqa: E402,F401
from test_endpoints import Fake, config_file, items_of, make_template  # noqa: E402

del harness._TESTS[:]  # test_endpoints' own tests run from their file, not from this one


def sdcpp_daemon(fake, **endpoint):
    ep = {"name": "cpp0", "type": "a1111", "url": fake.url, "timeout_s": 10}
    ep.update(endpoint)
    cfg = config_file([ep], max_attempts=1)
    return Daemon(extra_args=["--config", cfg, "--access-log", "false"]), cfg


def run_once(d, tid, **extra):
    body = {"album_name": "sdcpp", "user_theme": "ink", "seed": 100}
    body.update(extra)
    run_id = expect_json(d.post("/api/batch-templates/%d/generate" % tid, body), 202)["run"]["id"]
    return run_id, wait_run(d, run_id, timeout=30)


GEN_PATHS = ("/sdapi/v1/txt2img", "/sdcpp/v1/img_gen")


def gen_calls(fake):
    """The requests that asked for an image: txt2img, or sd-server's img_gen."""
    return [q for q in fake.requests() if q.get("path") in GEN_PATHS]


def image_of(d, item):
    return expect_json(d.get("/api/images/%d" % item["image_id"]), 200)


def png_size(data):
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG")
    return struct.unpack(">II", data[16:24])


def health_entry(d, name="cpp0"):
    health = expect_json(d.get("/api/health"), 200)
    return {b["name"]: b for b in health["backends"]}[name]


# ---- finding 1: LoRA names become the paths sd-server lists ----

@test
def lora_names_map_to_the_listed_paths_case_and_extension_tolerant():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 2, loras=[{"name": "Detail", "weight": 0.5},
                                         {"path": "loras/film_grain", "weight": 0.25},
                                         {"name": "watercolor.SAFETENSORS", "weight": 1}])
        run_id, r = run_once(d, tid)
        eq((r["status"], r["completed_items"]), ("completed", 2), "both items drawn: %s" % r)
        sent = gen_calls(fake)
        eq([l["path"] for l in sent[0]["body"]["lora"]],
           ["detail.safetensors", "film_grain.safetensors", "styles/Watercolor.safetensors"], "listed paths sent")
        eq(sent[0]["applied_loras"], ["detail.safetensors", "film_grain.safetensors",
                                      "styles/Watercolor.safetensors"], "the server applied them")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


@test
def an_unknown_lora_fails_its_item_naming_the_close_matches():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 1, loras=[{"name": "detial", "weight": 0.5}])
        run_id, r = run_once(d, tid)
        eq(r["failed_items"], 1, "the item failed")
        err = items_of(d, run_id)[0]["error"]
        check("detial" in err and "close matches" in err and "detail.safetensors" in err,
              "the error names the close matches: %r" % err)
        eq(gen_calls(fake), [], "nothing was drawn for it")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


# ---- finding 2: the lazy LoRA list ----

@test
def the_lora_list_is_read_before_the_first_lora_item_and_again_when_stale():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    fake.mode(mode="ok", flavor="sdcpp", no_capabilities=True)  # the /sdapi route of the real build
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 1, loras=[{"name": "detail", "weight": 0.5}])
        run_id, r = run_once(d, tid)
        eq(r["completed_items"], 1, "a fresh server's empty list is filled first: %s" % items_of(d, run_id))
        paths = [q["path"] for q in fake.requests() if q["path"].startswith("/sdapi/")]
        check(paths.index("/sdapi/v1/loras") < paths.index("/sdapi/v1/txt2img"),
              "GET /sdapi/v1/loras came before txt2img: %s" % paths)
        # The server forgets its list (a restart): the first answer is
        # "invalid lora path", the list is read again, the item retried once.
        fake.mode(mode="ok", flavor="sdcpp", forget_loras=True, no_capabilities=True)
        http_request(fake.port, "POST", "/_fake/reset")
        run_id, r = run_once(d, tid)
        eq(r["completed_items"], 1, "retried after reading the list again: %s" % items_of(d, run_id))
        paths = [q["path"] for q in fake.requests() if q["path"].startswith("/sdapi/")]
        eq(paths, ["/sdapi/v1/txt2img", "/sdapi/v1/loras", "/sdapi/v1/txt2img"], "refused, list read, retried")
        # A file added since: not in the list read before; read again, found.
        fake.mode(mode="ok", flavor="sdcpp", no_capabilities=True,
                  lora_files=["detail.safetensors", "new_style.safetensors"])
        tid2 = make_template(d, 1, loras=[{"name": "new_style", "weight": 0.5}])
        run_id, r = run_once(d, tid2)
        eq(r["completed_items"], 1, "a LoRA added later is found: %s" % items_of(d, run_id))
        eq(gen_calls(fake)[-1]["applied_loras"], ["new_style.safetensors"], "applied")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


# ---- finding 3: the dialect is detected ----

@test
def the_default_flavor_against_sd_server_speaks_its_dialect():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, flavor="a1111")
    try:
        tid = make_template(d, 1, loras=[{"name": "detail", "weight": 0.5}])
        run_id, r = run_once(d, tid)
        eq(r["completed_items"], 1, "drawn: %s" % items_of(d, run_id))
        sent = gen_calls(fake)[-1]
        check("<lora:" not in sent["body"]["prompt"], "no LoRA tag in the prompt: %r" % sent["body"]["prompt"])
        eq(sent["applied_loras"], ["detail.safetensors"], "the LoRA was applied")
        eq(health_entry(d)["dialect"], "sdcpp", "health shows the detected dialect")
        wait_for(lambda: "configured flavor" in d.stderr_text(), 5, "a warning about the flavor")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


@test
def the_dialect_is_known_before_the_first_item():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake)  # no flavor configured
    a1111 = Fake("fake_a1111.py")
    try:
        wait_for(lambda: health_entry(d).get("dialect") == "sdcpp", 10, "health shows sdcpp")
        eq(gen_calls(fake), [], "asked at start, before any item")
        tid = make_template(d, 1, width=72, height=64)
        warnings = generate_answer(d, tid).get("warnings") or []
        check(len(warnings) == 1 and "128x64" in warnings[0], "warned at the first generate: %s" % warnings)
        d.stop()
        os.unlink(cfg)
        d, cfg = sdcpp_daemon(a1111)
        wait_for(lambda: health_entry(d).get("dialect") == "a1111", 10, "health shows a1111")
    finally:
        d.stop()
        fake.stop()
        a1111.stop()
        os.unlink(cfg)


@test
def an_older_sd_server_without_capabilities_is_recognised_by_its_answer():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    fake.mode(mode="ok", flavor="sdcpp", no_capabilities=True)
    d, cfg = sdcpp_daemon(fake)
    try:
        tid = make_template(d, 1, loras=[{"name": "detail", "weight": 0.5}])
        run_id, r = run_once(d, tid)
        eq(r["completed_items"], 1, "drawn: %s" % items_of(d, run_id))
        sent = gen_calls(fake)
        eq(len(sent), 2, "the image drawn without its LoRA was drawn again")
        eq(sent[-1]["applied_loras"], ["detail.safetensors"], "the kept image has the LoRA")
        eq(health_entry(d)["dialect"], "sdcpp", "dialect")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


@test
def an_a1111_server_configured_as_sdcpp_gets_tags():
    fake = Fake("fake_a1111.py")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 1, loras=[{"name": "detail", "weight": 0.5}])
        run_id, r = run_once(d, tid)
        eq(r["completed_items"], 1, "drawn: %s" % items_of(d, run_id))
        eq(gen_calls(fake)[-1]["applied_loras"], ["detail"], "LoRA as an A1111 tag")
        eq(health_entry(d)["dialect"], "a1111", "dialect")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


# ---- finding 4: sizes ----

def generate_answer(d, tid, **extra):
    body = {"album_name": "sdcpp", "user_theme": "ink", "seed": 100}
    body.update(extra)
    return expect_json(d.post("/api/batch-templates/%d/generate" % tid, body), 202)


def png_text_chunks(data):
    """{keyword: text} of a PNG's tEXt chunks."""
    out, pos = {}, 8
    while pos + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"tEXt":
            key, _, text = data[pos + 8:pos + 8 + n].partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        pos += n + 12
    return out


@test
def aligned_sizes_are_warned_about_at_generate_and_kept_as_returned():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 1, width=72, height=64)
        doc = generate_answer(d, tid)
        warnings = doc.get("warnings") or []
        eq(len(warnings), 1, "one warning: %s" % doc.get("warnings"))
        check("cpp0" in warnings[0] and "128x64" in warnings[0] and "72x64" in warnings[0] and "crop" in warnings[0],
              "says which endpoint, what comes back, and the way out: %r" % warnings[0])
        r = wait_run(d, doc["run"]["id"], timeout=30)
        eq(r["completed_items"], 1, "drawn")
        img = image_of(d, items_of(d, doc["run"]["id"])[0])
        eq((img["width"], img["height"], img["cropped_from"]), (128, 64, None), "the returned size is recorded")
        tid64 = make_template(d, 1, width=64, height=64)
        check("warnings" not in generate_answer(d, tid64), "no warning for a size it honours")
        # A server with another alignment (16): learned from its first answer.
        fake.mode(mode="ok", flavor="sdcpp", align=16)
        run_id, r = run_once(d, tid)
        eq(image_of(d, items_of(d, run_id)[0])["width"], 80, "72 came back 80")
        warnings = generate_answer(d, tid).get("warnings") or []
        check(len(warnings) == 1 and "80x64" in warnings[0], "the learned alignment: %s" % warnings)
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


@test
def fit_crop_centre_crops_the_image_to_the_requested_size():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 2, width=72, height=64)
        doc = generate_answer(d, tid, fit="crop")
        eq(doc["run"]["fit"], "crop", "the run says fit")
        warnings = doc.get("warnings") or []
        check(len(warnings) == 1 and "centre-cropped to 72x64" in warnings[0], "warned: %s" % warnings)
        r = wait_run(d, doc["run"]["id"], timeout=30)
        eq(r["completed_items"], 2, "drawn")
        for item in items_of(d, doc["run"]["id"]):
            img = image_of(d, item)
            eq((img["width"], img["height"], img["cropped_from"]), (72, 64, "128x64"), "the image row says so")
            data = expect_json_bytes(d, "/api/images/%d/file" % img["id"])
            eq(png_size(data), (72, 64), "the PNG is the requested size")
            eq(png_text_chunks(data).get("fit"), "centre-cropped from 128x64 to 72x64 (fit: crop)",
               "the PNG says so")
        eq(expect_json(d.get("/api/runs/%d" % doc["run"]["id"]), 200)["fit"], "crop", "fit is kept")
        # fit is checked
        resp = d.post("/api/batch-templates/%d/generate" % tid,
                      {"album_name": "x", "user_theme": "y", "fit": "stretch"})
        eq(resp.status, 400, "an unknown fit is refused")
        check("fit" in resp.json().get("fields", {}), "the field is named: %s" % resp.text)
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


def expect_json_bytes(d, path):
    resp = d.get(path)
    eq(resp.status, 200, "GET %s" % path)
    return resp.body


@test
def a_size_no_alignment_explains_fails_the_item_or_is_cropped_only_when_larger():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    fake.mode(mode="ok", flavor="sdcpp", broken_size=[256, 368])
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 1, width=512, height=720)
        run_id, r = run_once(d, tid)
        eq((r["completed_items"], r["failed_items"]), (0, 1), "not recorded as succeeded")
        err = items_of(d, run_id)[0]["error"]
        check("256x368" in err and "512x720" in err and "no size alignment explains" in err, "clear: %r" % err)
        run_id, r = run_once(d, tid, fit="crop")
        eq(r["failed_items"], 1, "a smaller image is not cropped either")
        fake.mode(mode="ok", flavor="sdcpp", broken_size=[1024, 1024])
        run_id, r = run_once(d, tid)
        eq(r["failed_items"], 1, "a larger one that no alignment explains fails without fit crop")
        run_id, r = run_once(d, tid, fit="crop")
        eq(r["completed_items"], 1, "with fit crop it is cropped")
        img = image_of(d, items_of(d, run_id)[0])
        eq((img["width"], img["height"], img["cropped_from"]), (512, 720, "1024x1024"), "and says so")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


# ---- finding 6: cancel through sd-server's job API ----

def jobs_of(fake):
    return http_request(fake.port, "GET", "/_fake/jobs").json()


@test
def cancel_on_sd_server_cancels_its_queued_job_and_frees_the_generating_one():
    # Each job takes 60 s: long past anything this test waits for.
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp", "--mode", "slow", "--delay-ms", "60000")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp", concurrency=2, timeout_s=120)
    try:
        tid = make_template(d, 4)
        rid = generate_answer(d, tid)["run"]["id"]
        wait_for(lambda: sorted(j["status"] for j in jobs_of(fake)) == ["generating", "queued"], 15,
                 "one job generating and one queued on the server")
        resp = d.post("/api/runs/%d/cancel" % rid)
        check(resp.status in (200, 202), "cancel accepted: %s" % resp.describe())
        r = wait_run(d, rid, timeout=15,
                     cond=lambda r: r["status"] == "canceled" and r["canceled_items"] == 4)
        eq([i["status"] for i in items_of(d, rid)], ["canceled"] * 4, "every item canceled")
        js = {j["status"]: j for j in jobs_of(fake)}
        eq(sorted(js), ["cancelled", "generating"], "the queued job never runs; the generating one cannot stop")
        eq(js["cancelled"]["cancel_requests"], 1, "asked to cancel the queued job")
        eq(js["generating"]["cancel_requests"], 1, "asked to cancel the generating one too (409)")
        # The workers were freed while the server still draws the dropped image.
        eq(health_entry(d)["in_flight"], 0, "no slot held by the dropped job")
        check(not [q for q in fake.requests() if q["path"] == "/sdapi/v1/interrupt"],
              "no interrupt route asked (sd-server has none)")
    finally:
        d.stop()
        fake.kill()
        os.unlink(cfg)


# ---- finding 11: checkpoints ----

@test
def a_checkpoint_on_an_sdcpp_endpoint_is_refused():
    cfg = config_file([{"name": "cpp0", "type": "a1111", "url": "http://127.0.0.1:9", "flavor": "sdcpp",
                        "checkpoint": "v1-5.safetensors"}])
    db = tempfile.mktemp(suffix=".db")
    try:
        p = subprocess.run([BIN, "serve", "--config", cfg, "--db", db, "--port", str(free_port())],
                           capture_output=True, text=True, timeout=bound(10))
        eq(p.returncode, 2, "exit status")
        check('endpoints[0] ("cpp0")' in p.stderr and "checkpoint" in p.stderr and "override_settings" in p.stderr,
              "the message names the endpoint and why: %r" % p.stderr)
    finally:
        os.unlink(cfg)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
    # Not configured as sd-server, but it is one: each item fails, clearly.
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, checkpoint="v1-5.safetensors")
    try:
        tid = make_template(d, 1)
        run_id, r = run_once(d, tid)
        eq(r["failed_items"], 1, "not drawn with the wrong model")
        err = items_of(d, run_id)[0]["error"]
        check("checkpoint" in err and "override_settings" in err, "says why: %r" % err)
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


# ---- finding 12: seeds ----

@test
def item_seeds_stay_within_32_bits_and_the_server_seed_is_recorded():
    fake = Fake("fake_a1111.py", "--flavor", "sdcpp")
    d, cfg = sdcpp_daemon(fake, flavor="sdcpp")
    try:
        tid = make_template(d, 3)
        run_id, r = run_once(d, tid, seed=2147483646)
        eq(r["completed_items"], 3, "drawn")
        items = sorted(items_of(d, run_id), key=lambda i: i["index"])
        eq([i["seed"] for i in items], [2147483646, 2147483647, 0], "seed + index, wrapped modulo 2^31")
        sent = sorted(b["body"]["seed"] for b in gen_calls(fake))
        eq(sent, [0, 2147483646, 2147483647], "sent as recorded")
        eq(sorted(image_of(d, i)["seed"] for i in items), [0, 2147483646, 2147483647], "the server's seeds")
    finally:
        d.stop()
        fake.stop()
        os.unlink(cfg)


if __name__ == "__main__":
    run(__file__)
