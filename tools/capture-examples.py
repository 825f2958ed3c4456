#!/usr/bin/env python3
"""capture-examples.py: the examples of docs/openapi.json are real answers.

Starts a daemon the way the black-box tests do (tests/blackbox/harness.py:
fresh database, free port, procedural backend), walks it through one story
(a template from CSV, a run drawn to its end, a second run paused, resumed,
re-prioritised, canceled and retried, albums, images, a scrape job held on a
page that never answers, and the error answers), and records every JSON
answer (and one event stream) under the operation and status that produced it. Then:

    tools/capture-examples.py            writes them into docs/openapi.json
                                         as each response's "example"
    tools/capture-examples.py --check    changes nothing; exits 1 when the
                                         document's examples are stale

Stale means: an example whose keys (at every depth) differ from a fresh
answer's, an operation the story captures whose response has no example, or
an example in the document that the story no longer produces. Values are not
compared (ids, times and hashes differ from one capture to the next); the
shapes are. tests/blackbox/test_openapi.py runs the check, so a field added
to or removed from an answer fails the suite until this tool is run again
(and the lint then holds the new example against the schema).
"""

import http.client
import http.server
import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
from harness import Daemon, TestFailure, bound, wait_for, wait_run  # noqa: E402

DOC = os.path.join(REPO, "docs", "openapi.json")

PLANETS = ("planet,feature\n"
           "Mercury,\"scorched, cratered surface\"\n"
           "Venus,thick golden clouds\n"
           "Earth,blue oceans and white swirls\n")


class HeldPage:
    """A web server whose one page never answers until release(): a scrape job
    stays running on it for as long as the story needs."""

    def __init__(self):
        self.release_ev = threading.Event()
        ev = self.release_ev

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                ev.wait(60)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.release_ev.set()
        self.srv.shutdown()
        self.srv.server_close()


def capture():
    """Runs the story against a fresh daemon; returns {key: body} where key is
    "METHOD /openapi/path STATUS" for an operation's answer, or
    "#/components/responses/Name" for a shared error answer."""
    out = {}
    page = HeldPage()
    d = Daemon(examples=False, extra_args=["--outbound-addresses", "all", "--access-log", "false"])
    try:
        def rec(key, resp, status, token="admin"):
            if resp.status != status:
                raise TestFailure("%s: %s" % (key, resp.describe()))
            out[key] = resp.json()
            return out[key]

        def op(method, path, status, real_path=None, body=None, token="admin", headers=None):
            r = d.request(method, real_path or path, body=body, token=token, headers=headers)
            return rec("%s %s %d" % (method, path.split("?")[0], status), r, status)

        T = "/api/batch-templates"
        op("GET", "/api/health", 200, token=None)
        t = op("POST", T, 201, body={
            "name": "Planets", "description": "the inner planets",
            "prompt_template": "the planet {planet}, {feature}, seen from orbit",
            "style_suffix": "poster art", "width": 512, "height": 512,
            "loras": [{"name": "retro_poster", "weight": 0.6}], "csv": PLANETS})
        tid = t["id"]
        op("GET", T, 200, token=None)
        op("GET", T + "/{id}", 200, "%s/%d" % (T, tid), token=None)
        op("PUT", T + "/{id}", 200, "%s/%d" % (T, tid), body={"description": "Mercury to Earth"})
        gen = {"album_name": "Steampunk planets", "user_theme": "steampunk", "seed": 42}
        op("POST", T + "/{id}/preview", 200, "%s/%d/preview?limit=2" % (T, tid), body=gen, token=None)
        run1 = op("POST", T + "/{id}/generate", 202, "%s/%d/generate" % (T, tid), body=gen,
                  token=None)["run"]["id"]
        wait_run(d, run1)

        # a second run, held by the queue-wide pause while its controls are shown
        op("POST", "/api/queue/pause", 200)
        run2 = d.post("%s/%d/generate" % (T, tid), dict(gen, album_name="Noir planets", user_theme="noir"),
                      token="admin").json()["run"]["id"]
        r2 = "/api/runs/%d" % run2
        op("POST", "/api/runs/{id}/pause", 200, r2 + "/pause")
        op("POST", "/api/runs/{id}/resume", 200, r2 + "/resume")
        op("PATCH", "/api/runs/{id}", 200, r2, body={"priority": 5})
        op("POST", "/api/runs/{id}/cancel", 200, r2 + "/cancel")
        op("POST", "/api/runs/{id}/retry", 200, r2 + "/retry")
        op("POST", "/api/queue/resume", 200)
        wait_run(d, run2)

        # the event stream of a finished run: every event, then the end
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=bound(10))
        try:
            conn.request("GET", "/api/runs/%d/events" % run1, headers={"Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise TestFailure("events: HTTP %d" % resp.status)
            out["GET /api/runs/{id}/events 200"] = resp.read().decode()
        finally:
            conn.close()
        op("GET", "/api/runs", 200, token=None)
        op("GET", "/api/runs/{id}", 200, "/api/runs/%d" % run1, token=None)
        op("GET", "/api/runs/{id}/items", 200, "/api/runs/%d/items" % run1, token=None)
        op("GET", T + "/{id}/runs", 200, "%s/%d/runs" % (T, tid), token=None)
        op("GET", T + "/{template_id}/runs/{run_id}", 200, "%s/%d/runs/%d" % (T, tid, run1), token=None)

        images = op("GET", "/api/images", 200, token=None)["images"]
        img = images[-1]["id"]
        op("GET", "/api/images/{id}", 200, "/api/images/%d" % img, token=None)
        albums = op("GET", "/api/albums", 200, token=None)["albums"]
        op("GET", "/api/albums/{id}", 200, "/api/albums/%d" % albums[-1]["id"], token=None)
        a = op("POST", "/api/albums", 201, body={"name": "Favourites", "description": "the best of both",
                                                 "is_public": True})["id"]
        A = "/api/albums/%d" % a
        op("PUT", "/api/albums/{id}", 200, A, body={"description": "the best ones"})
        op("POST", "/api/albums/{id}/images", 200, A + "/images", body={"image_ids": [img, images[0]["id"]]})
        op("DELETE", "/api/albums/{album_id}/images/{image_id}", 200, "%s/images/%d" % (A, img))
        op("DELETE", "/api/albums/{id}", 200, A)
        op("DELETE", "/api/images/{id}", 200, "/api/images/%d" % images[0]["id"])

        spare = d.post(T, {"name": "Spare", "prompt_template": "{x}", "csv_items": [{"x": "a"}]}).json()["id"]
        op("DELETE", T + "/{id}", 200, "%s/%d" % (T, spare))

        S = "/api/scrape-jobs"
        job = op("POST", S, 202, body={"url": "http://127.0.0.1:%d/gallery.html" % page.port,
                                       "album_name": "Gallery", "max_images": 100})["id"]
        wait_for(lambda: d.get("%s/%d" % (S, job), token="admin").json()["status"] == "running", 10,
                 "scrape job %d running" % job)
        op("GET", S, 200)
        op("GET", S + "/{id}", 200, "%s/%d" % (S, job))
        op("GET", S + "/{id}/items", 200, "%s/%d/items" % (S, job))
        op("POST", S + "/{id}/cancel", 200, "%s/%d/cancel" % (S, job))

        # the shared error answers
        C = "#/components/responses/"
        rec(C + "BadRequest", d.post(T, {"name": "x", "prompt_template": "{nope}", "csv": "a\n1\n",
                                         "width": 500}), 400)
        rec(C + "Unauthorized", d.post(T, {"name": "x"}, token=None), 401)
        rec(C + "Forbidden", d.post(T, {"name": "x"}, token="user"), 403)
        rec(C + "NotFound", d.get(T + "/999999"), 404)
        rec(C + "Conflict", d.delete("%s/%d" % (T, tid)), 409)
        rec(C + "UnsupportedMediaType", d.request("POST", T, raw=b"name=x",
                                                  headers={"Content-Type": "text/plain"}), 415)
    finally:
        d.cleanup()
        page.stop()
    return out


def sse_shape(text):
    """An event stream's shape: each event type with the shape of its data."""
    seen = set()
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "data" in fields:
            seen.add((fields.get("event", "message"), json.dumps(shape(json.loads(fields["data"])), sort_keys=True)))
    return sorted(seen)


def shape(v, top=True):
    """The keys of v at every depth: what must not drift between an example and
    a fresh answer. A list's shape is the union of its elements' shapes; an
    event stream's, its event types with their data's shapes."""
    if isinstance(v, str):
        return sse_shape(v) if top else None  # a value may be a string or null: not a shape
    if isinstance(v, dict):
        return {k: shape(x, False) for k, x in v.items()}
    if isinstance(v, list):
        merged = {}
        for x in v:
            s = shape(x, False)
            if isinstance(s, dict):
                merged.update(s)
        return [merged] if merged else []
    return None


def media_type(body):
    return "text/event-stream" if isinstance(body, str) else "application/json"


def slot(doc, key, media="application/json"):
    """The media object of docs/openapi.json that key's example goes in, or
    None when the document has no such response."""
    try:
        if key.startswith("#/"):
            node = doc
            for part in key[2:].split("/"):
                node = node[part]
        else:
            method, path, status = key.split(" ")
            node = doc["paths"][path][method.lower()]["responses"][status]
        return node["content"][media]
    except (KeyError, TypeError):
        return None


def examples_in(doc):
    """Every key of a JSON example the document holds."""
    keys = []
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            for status, resp in operation.get("responses", {}).items():
                for media in ("application/json", "text/event-stream"):
                    if "example" in resp.get("content", {}).get(media, {}):
                        keys.append("%s %s %s" % (method.upper(), path, status))
    for name, resp in doc.get("components", {}).get("responses", {}).items():
        if "example" in resp.get("content", {}).get("application/json", {}):
            keys.append("#/components/responses/" + name)
    return keys


def stale(doc, captured):
    """Sentences naming each stale example (the module's docstring says which);
    [] when every example is fresh."""
    problems = []
    for key, body in captured.items():
        media = slot(doc, key, media_type(body))
        if media is None:
            problems.append("%s: captured, but the document has no such %s response" % (key, media_type(body)))
        elif "example" not in media:
            problems.append("%s: no example" % key)
        elif shape(media["example"]) != shape(body):
            problems.append("%s: the example's keys differ from a fresh answer's:\n  example %s\n  answer  %s"
                            % (key, json.dumps(shape(media["example"])), json.dumps(shape(body))))
    for key in examples_in(doc):
        if key not in captured:
            problems.append("%s: an example no capture produces any more" % key)
    return problems


def write(doc, captured):
    for key, body in captured.items():
        media = slot(doc, key, media_type(body))
        if media is None:
            raise SystemExit("capture-examples: %s has no %s response in docs/openapi.json" % (key, media_type(body)))
        media["example"] = body


def main():
    check_only = "--check" in sys.argv[1:]
    with open(DOC) as f:
        doc = json.load(f)
    captured = capture()
    if check_only:
        problems = stale(doc, captured)
        for p in problems:
            print("stale: " + p)
        print("%d examples captured, %d stale" % (len(captured), len(problems)))
        sys.exit(1 if problems else 0)
    write(doc, captured)
    with open(DOC + ".tmp", "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(DOC + ".tmp", DOC)
    print("wrote %d examples into %s" % (len(captured), os.path.relpath(DOC, REPO)))


if __name__ == "__main__":
    main()
