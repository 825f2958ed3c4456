"""Black-box tests of GET /api/runs/<id>/events (docs/runs.md "Live progress"): SSE framing,
event order, Last-Event-ID replay, live delivery, and many waiting streams holding no
HTTP threads."""

import http.client
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOWDOWN, bound, wait_for, wait_run, wait_settled, Daemon, TestFailure, check, eq, expect_error,
                     expect_json, http_request, run, snippet, test)

FAST = None  # 2 workers, no delay
SLOW = None  # 2 workers, 300 ms (600 ms in sanitizer builds) per image
# Doubled, not x SLOWDOWN, in sanitizer builds: the checks are relative to this pace
# (events spread over the run, resumes while it runs), and x 4 made this file 64 s.
DELAY_S = 0.3 * (2 if SLOWDOWN > 1 else 1)
T = "/api/batch-templates"


# ---------------------------------------------------------------- SSE client


class Stream:
    """An SSE connection read line by line with a per-read timeout, bound(timeout) (a hang fails, it does not
    block)."""

    def __init__(self, d, rid, last_id=None, query="", timeout=10.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=bound(timeout))
        hdrs = {"Accept": "text/event-stream"}
        if last_id is not None:
            hdrs["Last-Event-ID"] = str(last_id)
        self.path = "/api/runs/%s/events%s" % (rid, query)
        self.t0 = time.time()
        self.conn.request("GET", self.path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = dict((k.lower(), v) for k, v in self.resp.getheaders())
        self.events = []
        self.retry = None
        self.comments = []
        self.closed = False
        self.first_lines = []

    def body(self):
        return self.resp.read()

    def read_event(self):
        """Next event dict, or None at end of stream. Raises TestFailure on timeout."""
        ev = {}
        while True:
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError) as e:
                raise TestFailure("%s: no data within the timeout (events so far: %s)"
                                  % (self.path, [(x.get("id"), x.get("event")) for x in self.events])) from e
            except http.client.IncompleteRead:
                line = b""
            if not line:
                self.closed = True
                if ev:
                    raise TestFailure("%s: stream ended inside an event: %r" % (self.path, ev))
                return None
            line = line.decode("utf-8").rstrip("\r\n")
            if len(self.first_lines) < 3:
                self.first_lines.append(line)
            if line == "":
                if ev:
                    if "data" in ev:
                        try:
                            ev["json"] = json.loads(ev["data"])
                        except ValueError:
                            raise TestFailure("%s: data is not JSON: %r" % (self.path, ev["data"]))
                    ev["t"] = time.time()
                    if set(ev) - {"t"} == {"retry"}:
                        ev = {}
                        continue
                    self.events.append(ev)
                    return ev
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            k, _, v = line.partition(":")
            if v.startswith(" "):
                v = v[1:]
            if k == "retry":
                self.retry = v
                ev["retry"] = v
            elif k == "data":
                ev["data"] = ev["data"] + "\n" + v if "data" in ev else v
            else:
                ev[k] = v

    def read_all(self, limit=10000):
        while len(self.events) < limit:
            if self.read_event() is None:
                break
        return self.events

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def ids(events):
    return [int(e["id"]) for e in events]


def template_by_count(d, n):
    j = expect_json(d.get(T + "?per_page=100"), 200)
    for t in j["templates"]:
        if t["template_item_count"] == n:
            return t
    raise TestFailure("no example template with %d items" % n)


def gen(d, n=12, **b):
    b.setdefault("album_name", "sse")
    b.setdefault("user_theme", "neon")
    t = template_by_count(d, n)
    return expect_json(d.post("%s/%d/generate" % (T, t["id"]), b), 202)["run"]


def check_sequence(events, run_, total, final="completed"):
    """The event log of one run: status queued, running, items, final status; ids increasing."""
    rid = run_["id"]
    for e in events:
        for k in ("id", "event", "data"):
            check(k in e, "event without %s: %r" % (k, e))
        check(e["id"].isdigit(), "id %r is not a decimal integer" % e["id"])
        check(e["event"] in ("status", "item"), "unknown event type %r" % e["event"])
        eq(e["json"].get("run_id"), rid, "run_id of event %s" % e["id"])
    i = ids(events)
    check(all(a < b for a, b in zip(i, i[1:])), "ids not strictly increasing: %s" % i)
    st = [e["json"]["status"] for e in events if e["event"] == "status"]
    eq(st[0], "queued", "first status")
    eq(st[-1], final, "last status")
    check("running" in st, "no running status: %s" % st)
    eq(events[0]["event"], "status", "first event")
    eq(events[-1]["event"], "status", "last event")
    eq(set(events[0]["json"]), {"run_id", "status", "total_items"}, "keys of the creation status event")
    eq(events[0]["json"]["total_items"], total, "total_items of the creation event")
    first_item = next((k for k, e in enumerate(events) if e["event"] == "item"), None)
    run_pos = next(k for k, e in enumerate(events) if e["event"] == "status" and e["json"]["status"] == "running")
    if first_item is not None:
        check(run_pos < first_item, "running status after the first item event")
    return [e["json"] for e in events if e["event"] == "item"]


# ---------------------------------------------------------------- tests


@test
def full_replay_of_a_finished_run():
    run_ = gen(FAST, 12)
    fin = wait_run(FAST, run_["id"])
    eq(fin["status"], "completed", "run status")
    s = Stream(FAST, run_["id"])
    try:
        eq(s.status, 200, "status")
        eq(s.headers.get("content-type", "").split(";")[0], "text/event-stream", "Content-Type")
        evs = s.read_all()
        check(s.closed, "stream not closed after the final status")
        eq(s.first_lines[:1], ["retry: 2000"], "stream start")
    finally:
        s.close()
    items = check_sequence(evs, run_, 12)
    eq(sorted(i["index"] for i in items), list(range(12)), "one item event per item")
    eq([i["completed_items"] for i in items], list(range(1, 13)), "completed_items in item events")
    its = expect_json(FAST.get("/api/runs/%d/items?per_page=100" % run_["id"]), 200)["items"]
    byidx = {i["index"]: i for i in items}
    for it in its:
        e = byidx[it["index"]]
        eq((e["status"], e["image_id"], e["attempts"], e["error"], e["total_items"]),
           ("succeeded", it["image_id"], it["attempts"], None, 12), "item event %d" % it["index"])
    eq(items[-1]["progress"], 1, "progress of the last item event")
    last = evs[-1]["json"]
    eq((last["completed_items"], last["failed_items"], last["canceled_items"], last["album_id"], last["error_message"]),
       (12, 0, 0, fin["album_id"], None), "final status event")
    # A client that watches status events alone gets progress and eta_s too.
    eq((last["progress"], last["eta_s"]), (1, 0), "progress and eta_s of the final status event")
    # (all but the creation event, which is the contract's short one)
    statuses = [e["json"] for e in evs if e["event"] == "status"][1:]
    check(statuses and all("progress" in st and "eta_s" in st for st in statuses),
          "every status event: %s" % statuses)


@test
def last_event_id_resume():
    run_ = gen(FAST, 22)
    wait_run(FAST, run_["id"])
    s = Stream(FAST, run_["id"])
    full = s.read_all()
    s.close()
    check(len(full) >= 25, "only %d events for 22 items" % len(full))
    for cut in (len(full) // 2, 1, len(full) - 2):
        mid = full[cut - 1]["id"]
        s = Stream(FAST, run_["id"], last_id=mid)
        got = s.read_all()
        s.close()
        check(s.closed, "resumed stream not closed")
        eq([(e["id"], e["event"], e["data"]) for e in got],
           [(e["id"], e["event"], e["data"]) for e in full[cut:]], "events after Last-Event-ID %s" % mid)
    mid = full[5]["id"]
    s = Stream(FAST, run_["id"], query="?last_event_id=%s" % mid)
    got = s.read_all()
    s.close()
    eq(ids(got), ids(full[6:]), "events after ?last_event_id=%s" % mid)
    # resuming after the final event of a finished run: nothing to send, and the stream must end
    s = Stream(FAST, run_["id"], last_id=full[-1]["id"], timeout=5)
    got = s.read_all()
    s.close()
    eq(got, [], "events after the last id")


@test
def streams_only_carry_their_run():
    a = gen(FAST, 12, album_name="a")
    b = gen(FAST, 12, album_name="b")
    wait_run(FAST, a["id"])
    wait_run(FAST, b["id"])
    ea = Stream(FAST, a["id"]).read_all()
    eb = Stream(FAST, b["id"]).read_all()
    check(all(e["json"]["run_id"] == a["id"] for e in ea), "run A stream carries other runs")
    check(all(e["json"]["run_id"] == b["id"] for e in eb), "run B stream carries other runs")
    check(not set(ids(ea)) & set(ids(eb)), "two runs share event ids")


@test
def unknown_run_404():
    for rid in ("999999", "abc", "0"):
        r = FAST.get("/api/runs/%s/events" % rid, headers={"Accept": "text/event-stream"})
        expect_error(r, 404)
    expect_error(FAST.request("POST", "/api/runs/1/events", body={}), 405)


@test
def live_delivery():
    run_ = gen(SLOW, 12, width=64, height=64)
    rid = run_["id"]
    seen = {}  # completed_items -> first time the REST API showed it
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                r = http_request(SLOW.port, "GET", "/api/runs/%d" % rid, timeout=5)
                j = json.loads(r.body)
                seen.setdefault(j["completed_items"], time.time())
                if j["status"] in ("completed", "failed", "canceled"):
                    return
            except Exception:
                pass
            time.sleep(0.03)

    th = threading.Thread(target=poll)
    th.start()
    s = Stream(SLOW, rid, timeout=10)
    try:
        evs = s.read_all()
    finally:
        stop.set()
        th.join(bound(10))
        s.close()
    items = check_sequence(evs, run_, 12)
    eq(len(items), 12, "item events")
    item_evs = [e for e in evs if e["event"] == "item"]
    spread = item_evs[-1]["t"] - item_evs[0]["t"]
    check(spread > 1.0, "item events arrived within %.2fs of each other (run takes ~%.1f s): not live"
          % (spread, 6 * DELAY_S))
    late = []
    for e in item_evs:
        k = e["json"]["completed_items"]
        if k in seen and e["t"] - seen[k] > bound(1.0):
            late.append((k, round(e["t"] - seen[k], 2)))
    check(not late, "item events delivered > %g s after the REST API showed them: %s" % (bound(1.0), late))
    check(len(seen) >= 6, "poller saw only %d distinct completed counts" % len(seen))


@test
def cancel_ends_the_stream():
    run_ = gen(SLOW, 12, width=64, height=64)
    rid = run_["id"]
    s = Stream(SLOW, rid, timeout=10)
    try:
        while True:
            e = s.read_event()
            check(e is not None, "stream ended before the first item")
            if e["event"] == "item":
                break
        t = time.time()
        expect_json(SLOW.post("/api/runs/%d/cancel" % rid), 200)
        evs = s.read_all()
        check(s.closed, "stream not closed after cancel")
        check(time.time() - t < bound(3), "stream took %.1fs to end after cancel" % (time.time() - t))
    finally:
        s.close()
    items = check_sequence(evs, run_, 12, final="canceled")
    eq(evs[-1]["json"]["error_message"], "canceled by an operator", "final status error_message")
    wait_settled(SLOW, rid)
    r = expect_json(SLOW.get("/api/runs/%d" % rid), 200)
    problems = []
    canceled = [i for i in items if i["status"] == "canceled"]
    if len(canceled) != r["canceled_items"]:
        problems.append("%d item events with status canceled, but run.canceled_items = %d"
                        % (len(canceled), r["canceled_items"]))
    if len(items) != 12:
        problems.append("%d item events for 12 items (indexes %s)" % (len(items), sorted(i["index"] for i in items)))
    last = evs[-1]["json"]
    got = (last["completed_items"], last["failed_items"], last["canceled_items"])
    want = (r["completed_items"], r["failed_items"], r["canceled_items"])
    if got != want:
        problems.append("final status event counts (completed, failed, canceled) %s, run settles at %s" % (got, want))
    check(not problems, "; ".join(problems))


@test
def resume_mid_run_misses_nothing():
    run_ = gen(SLOW, 12, width=64, height=64)
    rid = run_["id"]
    s = Stream(SLOW, rid, timeout=10)
    first = []
    try:
        while len([e for e in first if e["event"] == "item"]) < 3:
            e = s.read_event()
            check(e is not None, "stream ended early")
            first.append(e)
    finally:
        s.close()
    # more items complete while disconnected
    seen = first[-1]["json"]["completed_items"]
    wait_run(SLOW, rid, cond=lambda r: r["completed_items"] >= seen + 2, timeout=10)
    s = Stream(SLOW, rid, last_id=first[-1]["id"], timeout=10)
    rest = s.read_all()
    s.close()
    check(s.closed, "resumed stream not closed at the end")
    full = Stream(SLOW, rid).read_all()
    eq(ids(first) + ids(rest), ids(full), "first part + resumed part vs full replay")
    eq([e["data"] for e in first + rest], [e["data"] for e in full], "event data vs full replay")
    check_sequence(full, run_, 12)


@test
def many_streams_hold_no_threads():
    run_ = gen(SLOW, 54, width=64, height=64)  # 54 × 0.3 s / 2 workers ≈ 8 s (x SLOWDOWN)
    rid = run_["id"]
    n = 30
    results = [None] * n
    opened = [0]
    lock = threading.Lock()

    def work(k):
        s = None
        try:
            s = Stream(SLOW, rid, timeout=15)
            with lock:
                opened[0] += 1
            if s.status != 200:
                results[k] = "status %s" % s.status
                return
            s.read_all()
            results[k] = (s.closed, ids(s.events), [e["event"] for e in s.events], time.time())
        except Exception as e:  # noqa
            results[k] = "%s: %s" % (type(e).__name__, e)
        finally:
            if s:
                s.close()

    ths = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(n)]
    for th in ths:
        th.start()
    wait_for(lambda: opened[0] >= n, 5, lambda: "response headers of %d streams (%d so far)" % (n, opened[0]), 0.02)
    t = time.time()
    try:
        h = http_request(SLOW.port, "GET", "/api/health", timeout=3.0)
    except (OSError, http.client.HTTPException) as e:
        raise TestFailure("/api/health did not answer within %g s with %d streams open: %r" % (bound(3.0), n, e))
    eq(h.status, 200, "health with open streams")
    health_t = time.time()
    # streams that held pool threads would keep it waiting until the run ends
    check(health_t - t < bound(3.0), "health took %.2fs" % (health_t - t))
    # a normal API call too
    expect_json(SLOW.get("/api/runs/%d" % rid), 200)
    for th in ths:
        th.join(bound(25))
    bad = [(k, r) for k, r in enumerate(results) if not isinstance(r, tuple) or not r[0]]
    check(not bad, "streams that did not finish: %s" % snippet(repr(bad), 600))
    ref = results[0][1]
    check(len(ref) >= 57, "only %d events in a stream of a 54-item run" % len(ref))
    for k, r in enumerate(results):
        eq(r[1], ref, "event ids of stream %d" % k)
        eq(r[2][-1], "status", "last event of stream %d" % k)
    fin = expect_json(SLOW.get("/api/runs/%d" % rid), 200)
    eq(fin["status"], "completed", "run status")
    check(all(r[3] > health_t for r in results), "a stream ended before the health check: they were not waiting")


@test
def bad_last_event_id_does_not_hang():
    run_ = gen(FAST, 12)
    wait_run(FAST, run_["id"])
    full = Stream(FAST, run_["id"]).read_all()
    for bad in ("abc", "-5", "99999999999999999999999"):
        s = Stream(FAST, run_["id"], last_id=bad, timeout=5)
        try:
            if s.status == 200:
                got = s.read_all()
                check(s.closed, "Last-Event-ID %r: stream not closed" % bad)
                check(ids(got) in (ids(full), []), "Last-Event-ID %r: got ids %s" % (bad, ids(got)))
            else:
                eq(s.status, 400, "Last-Event-ID %r: status" % bad)
                check(s.headers.get("content-type", "").startswith("application/json"), "400 not JSON")
                s.body()
        finally:
            s.close()
    check(FAST.healthy(), "daemon unhealthy after bad Last-Event-ID values")


@test
def sigterm_with_open_streams():
    run_ = gen(SLOW, 22, width=64, height=64)
    rid = run_["id"]
    streams = [Stream(SLOW, rid, timeout=10) for _ in range(5)]
    last = None
    try:
        for s in streams:
            e = s.read_event()
            check(e is not None, "stream ended at once")
            last = e["id"]
        t = time.time()
        rc = SLOW.stop(timeout=8)
        eq(rc, 0, "exit status on SIGTERM with 5 open streams")
        check(time.time() - t < bound(5), "SIGTERM took %.1fs with open streams" % (time.time() - t))
        for s in streams:
            try:
                s.read_all()
            except TestFailure as e:
                raise TestFailure("a stream did not end when the daemon stopped: %s" % e)
    finally:
        for s in streams:
            s.close()
        if not SLOW.alive():
            SLOW.start()
    # the run goes on after the restart and the log misses nothing
    wait_run(SLOW, rid, timeout=30)
    full = Stream(SLOW, rid).read_all()
    check_sequence(full, run_, 22)
    items = [e["json"] for e in full if e["event"] == "item"]
    eq(sorted(i["index"] for i in items), list(range(22)), "item events across the restart")
    s = Stream(SLOW, rid, last_id=last)
    got = s.read_all()
    s.close()
    eq(ids(got), [i for i in ids(full) if i > int(last)], "resume across the restart")


@test
def replay_survives_restart():
    run_ = gen(FAST, 12)
    wait_run(FAST, run_["id"])
    before = Stream(FAST, run_["id"]).read_all()
    FAST.restart()
    after = Stream(FAST, run_["id"]).read_all()
    eq([(e["id"], e["event"], e["data"]) for e in after], [(e["id"], e["event"], e["data"]) for e in before],
       "event log after restart")
    # ids keep increasing across the restart
    r2 = gen(FAST, 12)
    wait_run(FAST, r2["id"])
    new = Stream(FAST, r2["id"]).read_all()
    check(min(ids(new)) > max(ids(before)), "event ids restarted after a restart: %s <= %s"
          % (min(ids(new)), max(ids(before))))


def setup():
    global FAST, SLOW
    FAST = Daemon(examples=True, extra_args=["--workers", "2", "--generate-rate", "0"])
    SLOW = Daemon(examples=True, extra_args=["--workers", "2", "--procedural-delay-ms", str(int(DELAY_S * 1000)),
                                             "--generate-rate", "0"])


def teardown(_):
    for d in (FAST, SLOW):
        if d is not None:
            d.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
