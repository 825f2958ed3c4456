#!/usr/bin/env python3
"""Black-box tests of the real backends through the daemon, against the fake
A1111 and ComfyUI servers of tests/fakes/ and a command backend.

Covers: a run across three endpoints where one dies midway (every image still
arrives, the dead one is marked down), two of three endpoints that pass their
health call but fail every image (retries avoid every endpoint that failed
the item; the breaker lets one trial item through per passing probe), a hung
endpoint that times out and whose item moves on, a server that hangs after
answering quickly (its call is cut at the deadline learned from its speed,
not timeout_s, and its breaker opens at once), a ComfyUI run with the default SD1.5 workflow, a command
backend run, and bad endpoint configs refused at start with exit 2.
"""
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, REPO, SLOWDOWN, Daemon, bound, check, cli, eq, expect_json,  # noqa: E402
                     free_port, http_request, run, test, wait_for, wait_run)

FAKES = os.path.join(REPO, "tests", "fakes")


class Fake:
    """A fake inference server in its own process, on a free port."""

    def __init__(self, script, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(FAKES, script), "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("listening"), "fake %s did not start: %r" % (script, line))
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path):
        return http_request(self.port, "GET", path).json()

    def requests(self):
        return self.get("/_fake/requests")

    def mode(self, **kw):
        r = http_request(self.port, "POST", "/_fake/mode", body=kw)
        check(r.status == 200, "fake mode change failed: %s" % r.describe())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


def config_file(endpoints, **settings):
    fd, path = tempfile.mkstemp(prefix="sf-endpoints-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(dict(settings, endpoints=endpoints), f)
    return path


def make_template(d, n, width=64, height=64, loras=None):
    rows = "\n".join("thing %d" % i for i in range(n))
    body = {"name": "set of %d" % n, "prompt_template": "a picture of {name}", "csv": "name\n" + rows + "\n",
            "width": width, "height": height}
    if loras is not None:
        body["loras"] = loras
    return expect_json(d.post("/api/batch-templates", body), 201)["id"]


def generate(d, tid, **extra):
    body = {"album_name": "endpoint test", "user_theme": "ink", "seed": 100}
    body.update(extra)
    return expect_json(d.post("/api/batch-templates/%d/generate" % tid, body), 202)["run"]["id"]


def items_of(d, run_id):
    return expect_json(d.get("/api/runs/%d/items?per_page=100" % run_id), 200)["items"]


@test
def three_endpoints_one_dies_midway_every_image_arrives():
    fakes = [Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", "60") for _ in range(3)]
    cfg = config_file([{"name": "gpu%d" % i, "type": "a1111", "url": f.url, "timeout_s": 5}
                       for i, f in enumerate(fakes)], breaker_failures=2, breaker_delay_ms=60000)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        health = expect_json(d.get("/api/health"), 200)
        eq(sorted(b["name"] for b in health["backends"]), ["gpu0", "gpu1", "gpu2"], "health lists endpoints")
        check(all(b["state"] == "up" and b["type"] == "a1111" for b in health["backends"]), "all up")
        tid = make_template(d, 36, loras=[{"name": "ink_style", "weight": 0.7}])
        run_id = generate(d, tid)
        wait_run(d, run_id, cond=lambda r: r["completed_items"] >= 8, timeout=20)
        fakes[1].kill()
        r = wait_run(d, run_id, timeout=60)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 36, "every image arrived")
        eq(r["failed_items"], 0, "no item failed")
        items = items_of(d, run_id)
        used = {i["endpoint"] for i in items}
        check({"gpu0", "gpu2"} <= used, "the live endpoints drew items: %s" % used)
        health = expect_json(d.get("/api/health"), 200)
        state = {b["name"]: b for b in health["backends"]}
        check(state["gpu1"]["state"] in ("down", "probing"), "dead endpoint marked down: %s" % state["gpu1"])
        eq(state["gpu0"]["state"], "up", "gpu0 up")
        check(state["gpu0"]["done"] > 0 and state["gpu2"]["done"] > 0, "done counters move")
        # the prompt reached the server with the LoRA tag, A1111 style
        sent = [q for q in fakes[0].requests() if q.get("path") == "/sdapi/v1/txt2img"]
        check(sent, "gpu0 received txt2img calls")
        body = sent[0]["body"]
        check("<lora:ink_style:0.7" in body["prompt"], "LoRA tag in prompt: %r" % body["prompt"])
        eq((body["width"], body["height"], body["batch_size"], body["n_iter"]), (64, 64, 1, 1), "size/batch")
        # one worker, one kept-alive connection: no handshake between images
        eq(len({q["peer"] for q in sent}), 1, "connections used for %d txt2img calls to gpu0" % len(sent))
        metrics = d.get("/metrics").text
        check('setforge_backend_up{endpoint="gpu1"} 0' in metrics, "metrics show gpu1 down")
    finally:
        d.cleanup()
        for f in fakes:
            f.stop()
        os.unlink(cfg)


def txt2img_calls(fake):
    return [q for q in fake.requests() if q.get("path") == "/sdapi/v1/txt2img"]


@test
def failed_items_avoid_every_endpoint_that_failed_them():
    # Two servers whose health route answers 200 while txt2img answers 500
    # (a broken CUDA, say), one healthy that takes 100 ms an image, so the
    # run lasts several probe delays. Defaults: max_attempts 3,
    # breaker_failures 3, breaker_delay_ms 1000.
    n = 24 if SLOWDOWN > 1 else 54
    bad = [Fake("fake_a1111.py", "--mode", "fail500") for _ in range(2)]
    good = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", "100")
    cfg = config_file([{"name": "bad0", "type": "a1111", "url": bad[0].url},
                       {"name": "bad1", "type": "a1111", "url": bad[1].url},
                       {"name": "good", "type": "a1111", "url": good.url}])
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, n)
        t0 = time.time()
        r = wait_run(d, generate(d, tid), timeout=60)
        elapsed = time.time() - t0
        eq(r["status"], "completed", "run status")
        eq((r["completed_items"], r["failed_items"]), (n, 0), "every item drawn, none failed")
        items = items_of(d, r["id"])
        check(all(i["endpoint"] == "good" for i in items), "every image from the healthy endpoint")
        check(max(i["attempts"] for i in items) <= 3, "no item needed more than one try per endpoint")
        # Each broken server gets breaker_failures (3) calls before its breaker
        # opens, then one trial per passing health probe, at 1, 3, 7, 15 ... s.
        # Without the half-open trial the breaker closed on every probe; without
        # the failed-endpoint set items bounced between the broken two.
        limit = 3 + int(math.log2(elapsed + 1)) + 1
        for i, f in enumerate(bad):
            calls = len(txt2img_calls(f))
            check(calls <= limit, "bad%d got %d txt2img calls in %.1f s (at most %d)" % (i, calls, elapsed, limit))
        eq(len(txt2img_calls(good)), n, "the healthy endpoint drew each item once")
    finally:
        d.cleanup()
        for f in bad + [good]:
            f.stop()
        os.unlink(cfg)


@test
def hung_endpoint_times_out_and_the_item_moves_on():
    hung = Fake("fake_a1111.py", "--mode", "hang")
    good = Fake("fake_a1111.py")
    cfg = config_file([{"name": "hung", "type": "a1111", "url": hung.url, "timeout_s": 1},
                       {"name": "good", "type": "a1111", "url": good.url, "timeout_s": 5}],
                      breaker_failures=1, breaker_delay_ms=60000)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 6)
        t0 = time.time()
        run_id = generate(d, tid)
        r = wait_run(d, run_id, timeout=30)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 6, "all items")
        check(time.time() - t0 < bound(15), "finished promptly after the timeout")
        items = items_of(d, run_id)
        check(all(i["endpoint"] == "good" for i in items), "every image from the good endpoint")
        retried = [i for i in items if i["attempts"] > 1]
        check(retried, "the item sent to the hung endpoint was retried")
        state = {b["name"]: b["state"] for b in expect_json(d.get("/api/health"), 200)["backends"]}
        check(state["hung"] in ("down", "probing"), "hung endpoint marked down: %s" % state)
    finally:
        d.cleanup()
        hung.stop()
        good.stop()
        os.unlink(cfg)


@test
def hang_is_cut_at_the_deadline_learned_from_the_endpoints_speed():
    # "hangy" draws its first 8 images at once (the samples its deadline needs)
    # and then never answers again; its timeout_s is the default 600 s. With a
    # floor of 1 s its deadline becomes max(1 s, 5 x p95 of a few ms) = 1 s.
    hangy = Fake("fake_a1111.py", "--mode", "hangafter", "--hang-after", "8")
    good = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", "100")
    cfg = config_file([{"name": "hangy", "type": "a1111", "url": hangy.url},
                       {"name": "good", "type": "a1111", "url": good.url}],
                      adaptive_timeout_floor_s=1, breaker_delay_ms=60000)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 30)
        r = wait_run(d, generate(d, tid), timeout=60)
        eq((r["status"], r["completed_items"], r["failed_items"]), ("completed", 30, 0), "every image arrived")
        calls = txt2img_calls(hangy)
        # the breaker opened on the first timeout (not after breaker_failures = 3)
        # and its next probe is a minute away: 8 answered calls and one hung
        eq(len(calls), 9, "txt2img calls to the hanging server")
        hung = wait_for(lambda: "t_closed" in txt2img_calls(hangy)[8] and txt2img_calls(hangy)[8], 10,
                        "the hung call ending")
        held = hung["t_closed"] - hung["t_received"]
        check(0.5 <= held <= bound(30), "the hung call was cut after %.2f s (deadline 1 s, timeout_s 600 s)" % held)
        state = {b["name"]: b for b in expect_json(d.get("/api/health"), 200)["backends"]}
        eq(state["hangy"]["state"], "down", "the hanging endpoint")
        check('setforge_backend_errors_total{endpoint="hangy"} 1\n' in d.get("/metrics").text,
              "one failed call (a timeout) opened the breaker")
        moved = [i for i in items_of(d, r["id"]) if i["attempts"] == 2]
        eq(len(moved), 1, "the hung item was drawn again")
        eq(moved[0]["endpoint"], "good", "elsewhere")
    finally:
        d.cleanup()
        hangy.stop()
        good.stop()
        os.unlink(cfg)


@test
def garbage_answers_become_item_errors_and_retry_elsewhere():
    bad = Fake("fake_a1111.py", "--mode", "badbase64")
    good = Fake("fake_a1111.py")
    cfg = config_file([{"name": "bad", "type": "a1111", "url": bad.url},
                       {"name": "good", "type": "a1111", "url": good.url}],
                      breaker_failures=100)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 8)
        r = wait_run(d, generate(d, tid), timeout=30)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 8, "all items")
        items = items_of(d, r["id"])
        check(all(i["endpoint"] == "good" for i in items), "images come from the good endpoint")
        bad_calls = [q for q in bad.requests() if q.get("path") == "/sdapi/v1/txt2img"]
        check(bad_calls, "the bad endpoint was tried")
    finally:
        d.cleanup()
        bad.stop()
        good.stop()
        os.unlink(cfg)


@test
def every_endpoint_failing_fails_items_with_the_message():
    bad = Fake("fake_a1111.py", "--mode", "jpeg")
    cfg = config_file([{"name": "bad", "type": "a1111", "url": bad.url}], breaker_failures=100)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false", "--max-attempts", "2"])
    try:
        tid = make_template(d, 2)
        r = wait_run(d, generate(d, tid), timeout=30)
        eq(r["status"], "failed", "run status")
        eq(r["failed_items"], 2, "failed items")
        check(r["error_message"] and "2 of 2 items failed" in r["error_message"], r["error_message"])
        items = items_of(d, r["id"])
        check(all(i["attempts"] == 2 for i in items), "max_attempts used: %s" % [i["attempts"] for i in items])
        check(all("PNG" in (i["error"] or "") for i in items), "error names the problem: %s" % items[0]["error"])
        check(r["album_id"] is None, "no album for a run without images")
    finally:
        d.cleanup()
        bad.stop()
        os.unlink(cfg)


@test
def comfyui_run_with_the_default_workflow():
    fake = Fake("fake_comfyui.py")
    wf = os.path.join(FAKES, "workflows", "sd15_default.json")
    cfg = config_file([{"name": "comfy", "type": "comfyui", "url": fake.url, "workflow": wf}])
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 3, width=128, height=192)
        r = wait_run(d, generate(d, tid, steps=12, guidance_scale=5.5, negative_prompt="blurry"), timeout=30)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 3, "images")
        prompts = [q["body"]["prompt"] for q in fake.requests()
                   if q.get("path") in ("/prompt", "/api/prompt") and q.get("method") == "POST"]
        eq(len(prompts), 3, "three graphs posted")
        graph = prompts[0]
        eq(graph["3"]["inputs"]["steps"], 12, "steps substituted")
        eq(graph["3"]["inputs"]["cfg"], 5.5, "cfg substituted")
        eq((graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]), (128, 192), "size substituted")
        texts = {graph["6"]["inputs"]["text"], graph["7"]["inputs"]["text"]}
        check(any("a picture of thing" in t for t in texts), "positive prompt substituted: %s" % texts)
        check(any(t.startswith("blurry") for t in texts), "negative prompt substituted: %s" % texts)
        img = expect_json(d.get("/api/images/%d" % items_of(d, r["id"])[0]["image_id"]), 200)
        eq((img["width"], img["height"]), (128, 192), "image size recorded from the PNG")
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


@test
def command_backend_runs_a_program_per_image():
    script = os.path.join(FAKES, "gen_png.py")
    cfg = config_file([{"name": "cmd", "type": "command", "concurrency": 2, "timeout_s": 20,
                        "argv": [sys.executable, script, "--prompt", "{prompt}", "--seed", "{seed}",
                                 "--width", "{width}", "--height", "{height}", "--output", "{output}"]}])
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 4)
        r = wait_run(d, generate(d, tid), timeout=40)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 4, "images")
        f = d.get("/api/images/%d/file" % items_of(d, r["id"])[0]["image_id"])
        eq(f.status, 200, "file served")
        check(f.body.startswith(b"\x89PNG"), "a PNG")
    finally:
        d.cleanup()
        os.unlink(cfg)


@test
def public_errors_hide_urls_and_paths():
    # a failing program prints a path and a URL; admins read them, others read placeholders
    cfg = config_file([{"name": "cmd", "type": "command", "timeout_s": 20,
                        "argv": ["sh", "-c", "echo 'opening /srv/secret/model.ckpt via http://10.1.2.3:7860/x'; "
                                             "exit 1"]}])
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false", "--max-attempts", "1"])
    try:
        tid = make_template(d, 2)
        rid = generate(d, tid)
        r = wait_run(d, rid, timeout=40)
        eq(r["status"], "failed", "run status")
        admin_items = expect_json(d.get("/api/runs/%d/items" % rid, token="admin"), 200)["items"]
        check("/srv/secret/model.ckpt" in admin_items[0]["error"], "admin error %r" % admin_items[0]["error"])
        check("http://10.1.2.3:7860/x" in admin_items[0]["error"], "admin error %r" % admin_items[0]["error"])
        for who in (None, "user"):
            items = expect_json(d.get("/api/runs/%d/items" % rid, token=who), 200)["items"]
            run_ = expect_json(d.get("/api/runs/%d" % rid, token=who), 200)
            events = d.get("/api/runs/%d/events" % rid, token=who, timeout=bound(30)).text
            for text in [it["error"] for it in items] + [run_["error_message"], events]:
                check("/srv/secret" not in text and "10.1.2.3" not in text, "%r sees %r" % (who, text[:300]))
            check("<path>" in items[0]["error"] and "<url>" in items[0]["error"], "public error %r" % items[0]["error"])
    finally:
        d.cleanup()
        os.unlink(cfg)


@test
def mixed_endpoint_types_share_one_run():
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", "40")
    script = os.path.join(FAKES, "gen_png.py")
    cfg = config_file([
        {"name": "a1111", "type": "a1111", "url": fake.url},
        {"name": "drawer", "type": "procedural", "delay_ms": 40},
        {"name": "cmd", "type": "command", "argv": [sys.executable, script, "--prompt", "{prompt}",
                                                     "--seed", "{seed}", "--width", "{width}",
                                                     "--height", "{height}", "--output", "{output}"]}])
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 24)
        r = wait_run(d, generate(d, tid), timeout=60)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 24, "images")
        used = {i["endpoint"] for i in items_of(d, r["id"])}
        eq(used, {"a1111", "drawer", "cmd"}, "every endpoint type drew part of the run")
        album = expect_json(d.get("/api/albums/%d?per_page=100" % r["album_id"]), 200)
        eq([i["item_index"] for i in album["images"]], list(range(24)), "album in item order")
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


@test
def bad_endpoint_configs_are_refused_with_exit_2():
    cases = [
        ([{"name": "x", "type": "gpu"}], "type"),
        ([{"name": "x", "type": "a1111"}], "url"),
        ([{"name": "x", "type": "a1111", "url": "ftp://h"}], "url"),
        ([{"name": "x", "type": "a1111", "url": "http://h", "concurrency": 0}], "concurrency"),
        ([{"name": "x", "type": "comfyui", "url": "http://h", "workflow": "/nonexistent.json"}], "workflow"),
        ([{"name": "x", "type": "command", "argv": []}], "argv"),
        ([{"name": "a", "type": "procedural"}, {"name": "a", "type": "procedural"}], "twice"),
    ]
    for endpoints, word in cases:
        cfg = config_file(endpoints)
        db = tempfile.mktemp(suffix=".db")
        try:
            p = subprocess.run([BIN, "serve", "--config", cfg, "--db", db, "--port", str(free_port())],
                               capture_output=True, text=True, timeout=bound(10))
            eq(p.returncode, 2, "exit status for %s" % endpoints)
            check("endpoints[" in p.stderr and word in p.stderr, "message names entry and field: %r" % p.stderr)
        finally:
            os.unlink(cfg)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.unlink(db + suffix)


if __name__ == "__main__":
    run(__file__)
