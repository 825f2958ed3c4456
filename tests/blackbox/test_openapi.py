"""Black-box tests of docs/openapi.json, the API's description (docs/openapi.md):

- it is the route table, both ways: every row of `setforge routes --json` is an
  operation with the same method, auth and body, and every operation is a row;
  the comparison is run on doctored inputs too, so that it is shown to catch a
  missing route, an extra path, a wrong method, a wrong auth and a lost body;
- the daemon serves the same bytes at GET /api/openapi.json, with an ETag, 304
  and gzip;
- Redocly's linter passes it with no error and no warning (every example held
  against its schema), and fails a doctored copy whose example breaks it;
- its examples are fresh: tools/capture-examples.py captures the real answers
  again and every example has exactly their keys (and doctored examples are
  caught)."""

import copy
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO, Daemon, bound, check, cli_ok, eq, expect_status, run, test  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tools"))
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("capture_examples", os.path.join(REPO, "tools", "capture-examples.py"))
capture_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capture_examples)

DOC_PATH = os.path.join(REPO, "docs", "openapi.json")
LINT_DIR = os.path.join(REPO, "tests", "openapi")
REDOCLY = os.path.join(LINT_DIR, "node_modules", ".bin", "redocly")
# Node.js for Redocly: the machine's, unless tools/deps.sh found it older than Redocly
# needs (20.19; Debian 12 ships 18) and installed one under tests/openapi/runtime.
RUNTIME_NODES = [os.path.join(LINT_DIR, "runtime", "node_modules", "node-linux-%s" % a, "bin", "node")
                 for a in ("x64", "arm64")]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
D = None


def load_doc():
    with open(DOC_PATH) as f:
        return json.load(f)


def routes():
    return json.loads(cli_ok(["routes", "--json"]).stdout)


# ---------------------------------------------------------------- the comparison


def normalize(path):
    """One spelling for a path of either side: ":id", ":index", "*" and "{name}" are all "{}"."""
    return re.sub(r"\{[^}/]+\}|:[a-z_]+|\*", "{}", path)


def auth_of(operation, doc):
    """"public" when the operation may be called without a token ({} among its
    security requirements), "admin" when it needs the bearer token; else what it
    says, so that a mistake shows."""
    sec = operation.get("security", doc.get("security"))
    if sec is None or {} in sec:
        return "public"
    if sec == [{"bearer": []}]:
        return "admin"
    return "security %s" % json.dumps(sec)


def compare(table, doc):
    """Every difference between the route table (setforge routes --json) and
    the document, as sentences; [] when they describe the same routes."""
    served = {(r["method"], normalize(r["pattern"])): r for r in table}
    described = {}
    for path, item in doc.get("paths", {}).items():
        for m in METHODS:
            if m in item:
                described[(m.upper(), normalize(path))] = (path, item[m])
    problems = []
    for key, r in served.items():
        if key not in described:
            problems.append("%s %s is served but not described" % (r["method"], r["pattern"]))
            continue
        path, operation = described[key]
        if auth_of(operation, doc) != r["auth"]:
            problems.append("%s %s: auth is %s, the document says %s" % (r["method"], r["pattern"], r["auth"],
                                                                         auth_of(operation, doc)))
        takes_body = "requestBody" in operation
        if takes_body != (r["body"] == "json"):
            problems.append("%s %s: body is %s, the document %s" % (r["method"], r["pattern"], r["body"],
                                                                     "describes one" if takes_body else "has none"))
        for name in re.findall(r"\{([^}/]+)\}", path):
            if not any(p.get("in") == "path" and p.get("name") == name for p in operation.get("parameters", [])):
                problems.append("%s %s: path parameter {%s} is not declared" % (key[0], path, name))
    for key, (path, _) in described.items():
        if key not in served:
            problems.append("%s %s is described but not served" % (key[0], path))
    return problems


@test
def route_table_and_document_agree_both_ways():
    table = routes()
    check(len(table) >= 40, "setforge routes --json lists %d routes" % len(table))
    eq(compare(table, load_doc()), [], "differences between the route table and docs/openapi.json")
    # the people's table is the same table
    lines = cli_ok(["routes"]).stdout.decode().strip().splitlines()
    eq(len(lines), len(table) + 1, "lines of setforge routes (a header, then one per route)")
    check(lines[0].split() == ["METHOD", "PATTERN", "AUTH", "BODY"], "header: %r" % lines[0])
    for line, r in zip(lines[1:], table):
        eq(line.split()[:3], [r["method"], r["pattern"], r["auth"]], "row of setforge routes")


@test
def comparison_catches_each_kind_of_difference():
    table, doc = routes(), load_doc()

    def diff(table_, doc_):
        return compare(table_, doc_)

    # a route the document forgot
    d = copy.deepcopy(doc)
    del d["paths"]["/api/runs/{id}/retry"]
    eq(diff(table, d), ["POST /api/runs/:id/retry is served but not described"], "missing route")
    # a path the daemon does not serve
    d = copy.deepcopy(doc)
    d["paths"]["/api/runs/{id}/rewind"] = copy.deepcopy(doc["paths"]["/api/runs/{id}/retry"])
    eq(diff(table, d), ["POST /api/runs/{id}/rewind is described but not served"], "extra path")
    # a wrong method: both sides say so
    d = copy.deepcopy(doc)
    d["paths"]["/api/albums/{id}"]["patch"] = d["paths"]["/api/albums/{id}"].pop("put")
    eq(sorted(diff(table, d)), ["PATCH /api/albums/{id} is described but not served",
                                "PUT /api/albums/:id is served but not described"], "wrong method")
    # a wrong auth, either way
    d = copy.deepcopy(doc)
    d["paths"]["/api/images/{id}"]["delete"]["security"] = [{}, {"bearer": []}]
    d["paths"]["/api/images"]["get"]["security"] = [{"bearer": []}]
    eq(sorted(diff(table, d)), ["DELETE /api/images/:id: auth is admin, the document says public",
                                "GET /api/images: auth is public, the document says admin"], "wrong auth")
    # a body lost, a path parameter not declared
    d = copy.deepcopy(doc)
    del d["paths"]["/api/albums"]["post"]["requestBody"]
    d["paths"]["/api/images/{id}/file"]["get"]["parameters"] = []
    eq(sorted(diff(table, d)), ["GET /api/images/{id}/file: path parameter {id} is not declared",
                                "POST /api/albums: body is json, the document has none"], "lost body, parameter")
    # and from the other side: a row added to, or dropped from, the table
    t = table + [{"method": "GET", "pattern": "/api/secret", "auth": "admin", "body": "none"}]
    eq(diff(t, doc), ["GET /api/secret is served but not described"], "new route")
    t = [r for r in table if r["pattern"] != "/metrics"]
    eq(diff(t, doc), ["GET /metrics is described but not served"], "dropped route")


# ---------------------------------------------------------------- served


@test
def served_document_is_the_file_with_etag_304_and_gzip():
    with open(DOC_PATH, "rb") as f:
        raw = f.read()
    r = expect_status(D.get("/api/openapi.json"), 200)
    eq(r.body, raw, "the served document is docs/openapi.json as built in")
    check(r.headers.get("Content-Type", "").startswith("application/json"), "Content-Type %r" % r.headers)
    etag = r.headers.get("ETag")
    check(etag and etag.startswith('"'), "ETag %r" % etag)
    eq(r.headers.get("Cache-Control"), "no-cache", "Cache-Control")
    check("Content-Security-Policy" not in r.headers, "the page's CSP is the page's only")
    eq(D.get("/api/openapi.json", headers={"If-None-Match": etag}).status, 304, "If-None-Match")
    z = expect_status(D.get("/api/openapi.json", headers={"Accept-Encoding": "gzip"}), 200)
    eq(z.headers.get("Content-Encoding"), "gzip", "Content-Encoding")
    eq(gzip.decompress(z.body), raw, "gunzipped")
    check(len(z.body) * 4 < len(raw), "gzip saves: %d of %d bytes" % (len(z.body), len(raw)))
    eq(D.get("/api/openapi.json", headers={"Accept-Encoding": "gzip", "If-None-Match": z.headers["ETag"]}).status,
       304, "If-None-Match of the gzip one")
    eq(D.request("HEAD", "/api/openapi.json", token=None).status, 200, "HEAD")
    r = D.request("POST", "/api/openapi.json", token=None)
    eq((r.status, r.headers.get("Allow")), (405, "GET, HEAD, OPTIONS"), "POST")
    check(json.loads(raw)["openapi"].startswith("3.1"), "OpenAPI 3.1")


# ---------------------------------------------------------------- lint


def lint(path):
    """Redocly's lint of path with tests/openapi/redocly.yaml: (exit status,
    error count, warning count, output)."""
    check(os.path.exists(REDOCLY), "%s is missing: run make deps (tools/deps.sh installs tests/openapi's npm "
                                   "packages)" % REDOCLY)
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_COLOR="1")
    node = [n for n in RUNTIME_NODES if os.access(n, os.X_OK)][:1]
    p = subprocess.run(node + [REDOCLY, "lint", path, "--config", os.path.join(LINT_DIR, "redocly.yaml"),
                        "--format", "json"], capture_output=True, timeout=bound(120), cwd=LINT_DIR, env=env)
    out = p.stdout.decode()
    try:
        totals = json.loads(out[out.index("{"):])["totals"]
    except (ValueError, KeyError) as e:
        raise AssertionError("redocly printed no JSON report (%r): %s %s" % (e, out[-500:], p.stderr.decode()[-500:]))
    return p.returncode, totals["errors"], totals["warnings"], out


@test
def redocly_lint_passes_with_no_warning():
    t = time.time()
    rc, errors, warnings, out = lint(DOC_PATH)
    print("# redocly lint: %.2fs" % (time.time() - t))
    eq((rc, errors, warnings), (0, 0, 0), "exit, errors, warnings of redocly lint (%s)" % out[:1500])


@test
def redocly_lint_fails_an_example_that_breaks_its_schema():
    doc = load_doc()
    ex = doc["paths"]["/api/runs/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    ex["progress"] = "half"  # a string where the schema says number
    ex["surprise"] = 1       # a key the schema does not have
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    try:
        rc, errors, _, out = lint(f.name)
    finally:
        os.unlink(f.name)
    check(rc != 0 and errors >= 1, "a doctored example passed the lint: %s" % out[:800])
    check("progress" in out and "surprise" in out, "the report names both faults: %s" % out[:1500])


# ---------------------------------------------------------------- examples


@test
def examples_are_fresh_real_answers():
    doc = load_doc()
    captured = capture_examples.capture()
    check(len(captured) >= 40, "captured %d answers" % len(captured))
    eq(capture_examples.stale(doc, captured), [], "stale examples (run tools/capture-examples.py)")
    # a doctored document is caught: a key gone, a key added, an example missing, one no capture makes
    key = "GET /api/runs/{id} 200"
    d = copy.deepcopy(doc)
    del capture_examples.slot(d, key)["example"]["eta_s"]
    capture_examples.slot(d, "GET /api/images/{id} 200")["example"]["thumbnail"] = "/t.png"
    del capture_examples.slot(d, "GET /api/health 200")["example"]
    d["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["application/json"] = {"example": {}}
    problems = capture_examples.stale(d, captured)
    eq(len(problems), 4, "problems found: %s" % problems)
    check(problems[0].startswith("GET /api/health 200: no example"), problems[0])
    check(any(p.startswith(key + ": the example's keys differ") for p in problems), "eta_s gone: %s" % problems)
    check(any(p.startswith("GET /api/images/{id} 200: the example's keys differ") for p in problems), "thumbnail")
    check(any(p.startswith("GET /metrics 200: an example no capture produces") for p in problems), "orphan")
    # and an event stream whose events changed shape
    d = copy.deepcopy(doc)
    media = capture_examples.slot(d, "GET /api/runs/{id}/events 200", "text/event-stream")
    media["example"] = media["example"].replace('"attempts":', '"tries":')
    eq(len(capture_examples.stale(d, captured)), 1, "a renamed field of an item event")


def setup():
    global D
    D = Daemon(examples=False)


def teardown(_):
    if D:
        D.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
