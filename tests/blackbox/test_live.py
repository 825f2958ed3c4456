"""Black-box tests of live steps and previews (docs/live.md): step events on a run's stream
(?steps=1) with one schema for every backend, at most ~4 a second per item whatever the
server's step rate, the preview route serving the latest preview while the item runs and 404
after, the A1111 routes (/internal/progress with force_task_id, and /sdapi/v1/progress when
that is missing), ComfyUI's websocket (previews in binary frames; no websocket: /history
polling still completes), sd-server (no steps), visibility (a private run's preview is 404
anonymously), and a stream opened without ?steps=1 (an old client) seeing no step event.

Fakes are the ones of tests/fakes (stdlib only). Every wait is on a condition, bounded by
harness.bound()."""

import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, SLOWDOWN, Daemon, TestFailure, bound, check, eq, expect_error, expect_json,  # noqa: E402
                     run, test, wait_for, wait_run)
from test_endpoints import Fake, config_file  # noqa: E402

FAKES = os.path.join(REPO, "tests", "fakes")
# The fakes' image time. Sanitizer builds (SLOWDOWN 4) get longer waits from bound(),
# but their fakes need only a little more time per image: every check here is relative
# to the fake's own pace (steps per image, events per second), and the daemon's poll
# interval does not slow down under a sanitizer. Scaling the fakes by SLOWDOWN made this
# file take 94 s of CI's sanitizer suites against 26 s in release.
PACE = 1.5 if SLOWDOWN > 1 else 1
STEP_KEYS = {"run_id", "index", "endpoint", "step", "steps", "preview"}


def daemon_with(endpoints):
    cfg = config_file(endpoints)
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    os.unlink(cfg)
    return d


def start_run(d, n, steps=20):
    rows = "\n".join("thing %d" % i for i in range(n))
    tid = expect_json(d.post("/api/batch-templates", {"name": "live %d" % n, "prompt_template": "a {name}",
                                                      "csv": "name\n" + rows + "\n", "width": 64, "height": 64}),
                      201)["id"]
    return expect_json(d.post("/api/batch-templates/%d/generate" % tid,
                              {"album_name": "live", "user_theme": "ink", "seed": 5, "steps": steps}), 202)["run"]["id"]


class Stream:
    """A run's SSE stream read in a thread; events are (time, event, id, data)."""

    def __init__(self, d, rid, query="?steps=1", token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=bound(60))
        hdrs = {"Accept": "text/event-stream"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        self.conn.request("GET", "/api/runs/%d/events%s" % (rid, query), headers=hdrs)
        self.resp = self.conn.getresponse()
        self.events = []
        self.ended = False
        self.error = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        ev = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if "event" in ev:
                        with self.lock:
                            self.events.append((time.time(), ev["event"], ev.get("id"),
                                                json.loads(ev.get("data", "null"))))
                    ev = {}
                    continue
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                ev[k] = v[1:] if v.startswith(" ") else v
        except Exception as e:  # noqa: BLE001 - reported by wait_end
            self.error = e
        self.ended = True

    def steps(self):
        with self.lock:
            return [(t, data) for t, kind, _, data in self.events if kind == "step"]

    def kinds(self):
        with self.lock:
            return [(kind, i) for _, kind, i, _ in self.events]

    def wait_end(self, timeout=60):
        wait_for(lambda: self.ended, timeout, "the stream's end")
        self.conn.close()
        if self.error:
            raise TestFailure("stream failed: %r" % self.error)


def check_step_schema(steps, endpoint, total_steps):
    check(steps, "no step event arrived")
    for _, s in steps:
        eq(set(s), STEP_KEYS, "step event keys")
        eq(s["endpoint"], endpoint, "step endpoint")
        eq(s["steps"], total_steps, "steps")
        check(0 <= s["step"] <= total_steps, "step in range: %r" % s)
        check(s["preview"] is None or s["preview"].startswith(
            "/api/runs/%d/items/%d/preview?v=" % (s["run_id"], s["index"])), "preview URL: %r" % s)
    by_item = {}
    for _, s in steps:
        by_item.setdefault(s["index"], []).append(s["step"])
    for idx, seq in by_item.items():
        check(seq == sorted(seq), "item %d's steps go forward: %r" % (idx, seq))
    return by_item


def check_rate(steps, fake_steps_per_item, fake_seconds_per_item=None):
    """At most ~4 events a second per item: over an item's span of events, no more than
    span*4 + 2, and fewer than the server's own steps when those came at least twice as
    fast (a sanitizer build's slower fakes may step slower than the throttle)."""
    if fake_seconds_per_item and fake_steps_per_item / fake_seconds_per_item < 8:
        fake_steps_per_item = 0
    by_item = {}
    for t, s in steps:
        by_item.setdefault(s["index"], []).append(t)
    for idx, ts in by_item.items():
        span = ts[-1] - ts[0]
        check(len(ts) <= span * 4 + 2, "item %d: %d step events in %.2f s" % (idx, len(ts), span))
        if fake_steps_per_item:
            check(len(ts) < fake_steps_per_item, "item %d: %d events for %d server steps: not throttled"
                  % (idx, len(ts), fake_steps_per_item))


def fetch_a_preview(d, stream, want_type, token="admin"):
    """While the run goes on: GET the preview an event points at, until one answers 200
    (an item may end between the event and the GET). Returns the response."""
    def attempt():
        for _, s in reversed(stream.steps()):
            if s["preview"]:
                r = d.get(s["preview"], token=token)
                if r.status == 200:
                    return r
                expect_error(r, 404, "not_found")
                return None
        return None
    r = wait_for(attempt, 30, "a preview served while its item runs")
    eq(r.headers.get("Content-Type"), want_type, "preview content type")
    eq(r.headers.get("Cache-Control"), "no-store", "preview cache control")
    return r


# ---------------------------------------------------------------- A1111


@test
def a1111_internal_progress_steps_previews_and_old_clients():
    delay_ms = int(1600 * PACE)
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", str(delay_ms))
    d = daemon_with([{"name": "gpu0", "type": "a1111", "url": fake.url}])
    try:
        rid = start_run(d, 3, steps=30)
        s = Stream(d, rid)
        old = Stream(d, rid, query="")
        r = fetch_a_preview(d, s, "image/jpeg")
        check(r.body.startswith(b"\xff\xd8"), "a JPEG preview")
        s.wait_end()
        old.wait_end()
        by_item = check_step_schema(s.steps(), "gpu0", 30)
        eq(sorted(by_item), [0, 1, 2], "every item had steps")
        check(any(x["preview"] for _, x in s.steps()), "previews announced")
        check_rate(s.steps(), 30, delay_ms / 1000)
        eq([k for k, _ in old.kinds() if k == "step"], [], "no step event without ?steps=1")
        check(all(i is not None for _, i in old.kinds()), "every event of the old stream has an id")
        check(all(i is None for k, i in s.kinds() if k == "step"), "step events carry no id")
        eq(wait_run(d, rid)["status"], "completed", "run status")
        # After the item: gone.
        expect_error(d.get("/api/runs/%d/items/0/preview" % rid), 404, "not_found")
        expect_error(d.get("/api/runs/%d/items/99/preview" % rid), 404, "not_found")
        expect_error(d.get("/api/runs/999999/items/0/preview"), 404, "not_found")
        # The wire: force_task_id on txt2img, and polls naming that task.
        reqs = fake.requests()
        tasks = [q["body"].get("force_task_id") for q in reqs if q["path"] == "/sdapi/v1/txt2img"]
        eq(len(tasks), 3, "three txt2img calls")
        check(all(t and t.startswith("task(") for t in tasks), "force_task_id sent: %r" % tasks)
        polled = {q["body"]["id_task"] for q in reqs if q["path"] == "/internal/progress"}
        check(set(tasks) <= polled, "every task polled: %r vs %r" % (tasks, polled))
        # Polls stop with the item: none names a task after it was answered.
        done_at = {q["body"]["force_task_id"]: q["t_done"] for q in reqs if q["path"] == "/sdapi/v1/txt2img"}
        late = [q for q in reqs if q["path"] == "/internal/progress"
                and q["t_received"] > done_at.get(q["body"]["id_task"], 1e18) + 1.0 * SLOWDOWN]
        eq(late, [], "polls after the item ended")
    finally:
        d.cleanup()
        fake.stop()


@test
def a1111_without_internal_progress_uses_sdapi_progress():
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", str(int(1600 * PACE)),
                "--no-internal-progress")
    d = daemon_with([{"name": "forge", "type": "a1111", "url": fake.url}])
    try:
        rid = start_run(d, 2, steps=20)
        s = Stream(d, rid)
        r = fetch_a_preview(d, s, "image/png")
        check(r.body.startswith(b"\x89PNG"), "a PNG preview (current_image)")
        s.wait_end()
        check_step_schema(s.steps(), "forge", 20)
        check_rate(s.steps(), 20, 1.6 * PACE)
        eq(wait_run(d, rid)["status"], "completed", "run status")
        reqs = fake.requests()
        internal = [q for q in reqs if q["path"] == "/internal/progress"]
        check(1 <= len(internal) <= 2, "the missing route is asked once per endpoint, not per poll: %d"
              % len(internal))
        check(any(q["path"].startswith("/sdapi/v1/progress") for q in reqs), "/sdapi/v1/progress polled")
    finally:
        d.cleanup()
        fake.stop()


@test
def sdserver_has_no_steps_and_still_draws():
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", str(int(600 * PACE)), "--flavor", "sdcpp")
    d = daemon_with([{"name": "sd", "type": "a1111", "url": fake.url, "flavor": "sdcpp"}])
    try:
        rid = start_run(d, 2)
        s = Stream(d, rid)
        s.wait_end()
        eq(s.steps(), [], "no step events from sd-server")
        eq(wait_run(d, rid)["status"], "completed", "run status")
    finally:
        d.cleanup()
        fake.stop()


@test
def private_run_preview_is_hidden_from_anonymous_callers():
    fake = Fake("fake_a1111.py", "--mode", "slow", "--delay-ms", str(int(1500 * PACE)))
    d = daemon_with([{"name": "gpu0", "type": "a1111", "url": fake.url}])
    try:
        rid = start_run(d, 2)
        items = lambda: expect_json(d.get("/api/runs/%d/items" % rid, token="admin"), 200)["items"]  # noqa: E731
        wait_for(lambda: items()[0]["status"] == "succeeded", 30, "item 0 drawn")
        expect_json(d.post("/api/runs/%d/cancel" % rid), 200)
        run_ = wait_run(d, rid, cond=lambda r: r["album_id"] and r["canceled_items"] == 1)
        expect_json(d.put("/api/albums/%d" % run_["album_id"], {"is_public": False}), 200)
        expect_json(d.post("/api/runs/%d/retry" % rid), 200)
        url = "/api/runs/%d/items/1/preview" % rid
        r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(d.get(url, token="admin")), 30,
                     "the admin sees the retried item's preview")
        eq(r.headers.get("Content-Type"), "image/jpeg", "preview type")
        expect_error(d.get(url), 404, "not_found")
        expect_error(d.get("/api/runs/%d/events?steps=1" % rid), 404, "not_found")
        wait_for(lambda: expect_json(d.get("/api/runs/%d" % rid, token="admin"), 200)["status"] == "completed",
                 30, "the retried run's end")
    finally:
        d.cleanup()
        fake.stop()


# ---------------------------------------------------------------- ComfyUI


def comfy_daemon(fake):
    wf = os.path.join(FAKES, "workflows", "sd15_default.json")
    return daemon_with([{"name": "comfy", "type": "comfyui", "url": fake.url, "workflow": wf}])


@test
def comfyui_websocket_steps_and_previews():
    fake = Fake("fake_comfyui.py", "--mode", "slow", "--delay-ms", str(int(1600 * PACE)))
    d = comfy_daemon(fake)
    try:
        rid = start_run(d, 3, steps=30)
        s = Stream(d, rid)
        r = fetch_a_preview(d, s, "image/jpeg")
        check(r.body.startswith(b"\xff\xd8"), "a JPEG preview from a binary frame")
        s.wait_end()
        by_item = check_step_schema(s.steps(), "comfy", 30)
        eq(sorted(by_item), [0, 1, 2], "every item had steps")
        check_rate(s.steps(), 30, 1.6 * PACE)
        eq(wait_run(d, rid)["status"], "completed", "run status")
        expect_error(d.get("/api/runs/%d/items/2/preview" % rid), 404, "not_found")
        # One websocket per prompt, with the prompt's client_id, closed after it.
        ws = fake.get("/_fake/ws")
        posted = [q["body"]["client_id"] for q in fake.requests() if q["path"] == "/prompt"]
        eq(sorted(w["client_id"] for w in ws), sorted(posted), "a websocket per prompt, same client_id")
        wait_for(lambda: all(w["closed"] for w in fake.get("/_fake/ws")), 10, "websockets closed")
        # The end came from the websocket: the history was read about once per prompt, not polled.
        hist = [q for q in fake.requests() if q["path"].startswith("/history/")]
        check(len(hist) <= 3 * 3, "history polled %d times for 3 prompts followed on the websocket" % len(hist))
    finally:
        d.cleanup()
        fake.stop()


@test
def comfyui_without_websocket_polls_history():
    fake = Fake("fake_comfyui.py", "--mode", "slow", "--delay-ms", str(int(800 * PACE)), "--no-ws")
    d = comfy_daemon(fake)
    try:
        rid = start_run(d, 3)
        s = Stream(d, rid)
        s.wait_end()
        eq(s.steps(), [], "no steps without the websocket")
        r = wait_run(d, rid)
        eq(r["status"], "completed", "run status")
        eq(r["completed_items"], 3, "images")
        ws_tries = [q for q in fake.requests() if q["path"].startswith("/ws")]
        eq(len(ws_tries), 1, "the missing websocket is asked once, not per item")
        check(len([q for q in fake.requests() if q["path"].startswith("/history/")]) >= 3, "history polled")
    finally:
        d.cleanup()
        fake.stop()


@test
def comfyui_websocket_without_previews_still_steps():
    fake = Fake("fake_comfyui.py", "--mode", "slow", "--delay-ms", str(int(800 * PACE)), "--no-previews")
    d = comfy_daemon(fake)
    try:
        rid = start_run(d, 2, steps=10)
        s = Stream(d, rid)
        s.wait_end()
        check_step_schema(s.steps(), "comfy", 10)
        check(all(x["preview"] is None for _, x in s.steps()), "no preview announced")
        eq(wait_run(d, rid)["status"], "completed", "run status")
    finally:
        d.cleanup()
        fake.stop()


# ---------------------------------------------------------------- procedural


@test
def procedural_backend_reports_steps_without_previews():
    d = Daemon(extra_args=["--workers", "2", "--procedural-delay-ms", str(int(1200 * PACE)),
                           "--access-log", "false"])
    try:
        rid = start_run(d, 2, steps=25)
        s = Stream(d, rid)
        s.wait_end()
        check_step_schema(s.steps(), "procedural", 25)
        check(all(x["preview"] is None for _, x in s.steps()), "no previews")
        check_rate(s.steps(), 0)
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(__file__)
