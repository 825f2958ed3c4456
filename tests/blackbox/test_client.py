"""Black-box tests of setforge as a client of a running daemon (docs/client.md):
every client command against a real daemon (procedural backend), --json through
pipes equal to the API's answers, the tables for people, the progress bar of
generate --wait through a pty and plain lines through a pipe, the exit codes
0 / 1 / 2 / 3 (a run made to fail, one canceled while a client waits on it),
errors printed with the API's sentence, and a download that zipfile and unzip
accept. (test_cli.py tests the daemon's own command line: serve, migrate,
token.)"""

import csv
import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, Daemon, bound, check, eq, expect_json, free_port, run, snippet, test, wait_for,
                     wait_run)

D = None     # the daemon most tests talk to
FAIL = None  # a daemon whose image store fails: its runs fail
TMP = None
T = "/api/batch-templates"
PLANETS = "planet,feature\nMercury,\"scorched, cratered\"\nVenus,thick golden clouds\nEarth,blue oceans\n"


def client_env(d, token="admin", url=True):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SETFORGE_") or k == "SETFORGE_BIN"}
    if url:
        e["SETFORGE_URL"] = "http://127.0.0.1:%d" % d.port
    tok = d.tok(token)
    if tok:
        e["SETFORGE_TOKEN"] = tok
    return e


def sf(args, d=None, token="admin", timeout=30, url=True):
    """Runs `setforge ARGS` against d with stdout and stderr piped."""
    d = d or D
    t = time.time()
    p = subprocess.run([BIN] + list(args), capture_output=True, timeout=bound(timeout),
                       env=client_env(d, token, url), cwd=TMP, stdin=subprocess.DEVNULL)
    p.seconds = time.time() - t
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


def ok(args, **kw):
    p = sf(args, **kw)
    check(p.returncode == 0, "setforge %s: exit %d; stderr: %s" % (" ".join(args), p.returncode, snippet(p.err)))
    return p


def js(args, **kw):
    p = ok(list(args) + ["--json"], **kw)
    try:
        return json.loads(p.out)
    except ValueError as e:
        raise AssertionError("setforge %s --json: not JSON (%s): %s" % (" ".join(args), e, snippet(p.out)))


def fails(args, code, mentions, **kw):
    """The command exits code, says mentions on stderr, prints nothing on stdout."""
    p = sf(args, **kw)
    check(p.returncode == code, "setforge %s: exit %d, expected %d; stderr: %s"
          % (" ".join(args), p.returncode, code, snippet(p.err)))
    check(mentions in p.err, "setforge %s: stderr %r does not say %r" % (" ".join(args), p.err, mentions))
    check(p.err.startswith("setforge: "), "one line starting setforge: %r" % p.err)
    eq(p.out, "", "stdout of a failed command")
    return p


def csv_file(text=PLANETS):
    fd, path = tempfile.mkstemp(suffix=".csv", dir=TMP)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def import_planets(d=None, name="Planets"):
    return js(["import", csv_file(), "--name", name, "--prompt", "the planet {planet}, {feature}",
               "--size", "64x64"], d=d)["id"]


def run_ids():
    return [r["id"] for r in expect_json(D.get("/api/runs?per_page=100", token="admin"), 200)["runs"]]


# ---------------------------------------------------------------- reading


@test
def templates_and_template_json_are_the_apis_answers():
    tid = import_planets()
    eq(js(["templates"]), expect_json(D.get(T + "?page=1&per_page=100"), 200), "templates --json")
    eq(js(["template", str(tid)]), expect_json(D.get("%s/%d" % (T, tid)), 200), "template --json")
    eq(js(["runs"]), expect_json(D.get("/api/runs?page=1&per_page=100", token="admin"), 200), "runs --json")


@test
def tables_for_people():
    tid = import_planets(name="Table test")
    out = ok(["templates"]).out.splitlines()
    eq(out[0].split(), ["ID", "NAME", "ITEMS", "SIZE", "COLUMNS"], "templates header")
    row = next(line for line in out if line.startswith("%d " % tid))
    check("Table test" in row and "64x64" in row and "planet, feature" in row, "templates row: %r" % row)
    # columns line up: every row's NAME starts where the header's does
    col = out[0].index("NAME")
    check(all(line[col - 2:col] == "  " for line in out[1:]), "aligned:\n%s" % "\n".join(out))
    out = ok(["template", str(tid)]).out
    check(out.startswith("template %d: Table test\n" % tid), out[:200])
    check("  size             64x64" in out and "  items            3" in out, out)
    lines = out.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("#")))
    eq(lines[head].split(), ["#", "planet", "feature"], "items header")
    check(lines[head + 1].split()[:2] == ["0", "Mercury"] and "scorched, cratered" in lines[head + 1], lines[head + 1])
    rid = js(["generate", str(tid), "--theme", "ink", "--album", "people", "--wait"])["id"]
    out = ok(["runs"]).out.splitlines()
    eq(out[0].split(), ["ID", "TEMPLATE", "STATUS", "DONE", "FAILED", "TOTAL", "PRIORITY", "ALBUM", "CREATED"],
       "runs header")
    row = next(line for line in out if line.startswith("%d " % rid))
    eq(row.split()[:7], [str(rid), str(tid), "completed", "3", "0", "3", "0"], "runs row")
    eq([r["id"] for r in js(["runs", "--status", "completed"])["runs"]][:1], [rid], "--status")
    fails(["runs", "--status", "sideways"], 1, "unknown run status")


# ---------------------------------------------------------------- import


@test
def import_sends_the_csv_as_the_create_body():
    tid = import_planets(name="Imported")
    t = expect_json(D.get("%s/%d" % (T, tid)), 200)
    eq((t["name"], t["width"], t["height"], t["csv_columns"]), ("Imported", 64, 64, ["planet", "feature"]), "template")
    eq(t["csv_items"][0], {"planet": "Mercury", "feature": "scorched, cratered"}, "RFC 4180 quoting kept")
    eq(list(csv.reader(io.StringIO(D.get("%s/%d/items.csv" % (T, tid)).text))),
       list(csv.reader(io.StringIO(PLANETS))), "the CSV round-trips")
    p = ok(["import", csv_file(), "--name", "Words", "--prompt", "{planet}", "--description", "d"])
    check(p.out.startswith("created template ") and "3 items, 512x512" in p.out, p.out)
    # usage errors: 2, nothing sent
    before = expect_json(D.get(T), 200)["total"]
    fails(["import", csv_file(), "--prompt", "{planet}"], 2, "--name")
    fails(["import", csv_file(), "--name", "x"], 2, "--prompt")
    fails(["import", csv_file(), "--name", "x", "--prompt", "{planet}", "--size", "512"], 2, "WIDTHxHEIGHT")
    fails(["import", "--name", "x", "--prompt", "y"], 2, "import takes 1 argument")
    fails(["import", csv_file(), "--name", "x", "--prompt", "y", "--sise", "1x1"], 2, 'unknown option "--sise"')
    eq(expect_json(D.get(T), 200)["total"], before, "no template made by a usage error")
    # the daemon's refusals: 1 with its sentence
    fails(["import", csv_file(), "--name", "x", "--prompt", "{nope}"], 1, "unknown placeholder {nope}")
    fails(["import", csv_file(), "--name", "x", "--prompt", "{planet}", "--size", "500x64"], 1, "width")
    fails(["import", os.path.join(TMP, "missing.csv"), "--name", "x", "--prompt", "y"], 1, "cannot read")
    fails(["import", csv_file(), "--name", "x", "--prompt", "{planet}"], 1, "needs an admin token", token=None)


# ---------------------------------------------------------------- generate


@test
def generate_queues_and_prints_the_run():
    tid = import_planets()
    j = js(["generate", str(tid), "--theme", "noir", "--album", "Noir", "--seed", "7", "--priority", "-3"])
    eq((j["run"]["seed"], j["run"]["priority"], j["run"]["album_name"], j["run"]["user_theme"]),
       (7, -3, "Noir", "noir"), "the run generate queued")
    wait_run(D, j["run"]["id"])
    p = ok(["generate", str(tid), "--theme", "noir", "--album", "Noir 2"])
    check(p.out.startswith("run ") and "queued: 3 items" in p.out, p.out)
    wait_run(D, int(p.out.split()[1]))
    fails(["generate", str(tid), "--album", "a"], 2, "--theme")
    fails(["generate", str(tid), "--theme", "a"], 2, "--album")
    fails(["generate", "x", "--theme", "a", "--album", "b"], 2, "positive integer")
    fails(["generate", str(tid), "--theme", "a", "--album", "b", "--seed", "1.5"], 2, "--seed must be an integer")
    fails(["generate", "999999", "--theme", "a", "--album", "b"], 1, "batch template 999999 not found")
    fails(["generate", str(tid), "--theme", "a", "--album", "b", "--priority", "10"], 1, "admin", token="user")


@test
def wait_exit_0_when_completed_with_plain_lines_through_a_pipe():
    tid = import_planets()
    p = ok(["generate", str(tid), "--theme", "ink", "--album", "Waited", "--wait"])
    lines = p.out.splitlines()
    check("\r" not in p.out and "\033" not in p.out, "no bar on a pipe: %r" % p.out[:300])
    check(any(line.startswith("item ") and "succeeded" in line for line in lines), "item lines: %s" % lines)
    rid = int(lines[-1].split()[1])
    run_ = expect_json(D.get("/api/runs/%d" % rid), 200)
    eq(run_["status"], "completed", "the run")
    eq(lines[-1], "run %d completed: 3 done, 0 failed, 0 canceled; album %d" % (rid, run_["album_id"]), "last line")
    # --json: the final run, as GET /api/runs/<id> answers it
    j = js(["generate", str(tid), "--theme", "ink", "--album", "Waited 2", "--wait"])
    eq(j, expect_json(D.get("/api/runs/%d" % j["id"]), 200), "--wait --json")
    eq(j["status"], "completed", "status")


@test
def wait_exit_1_when_the_run_fails():
    tid = import_planets(d=FAIL)
    p = sf(["generate", str(tid), "--theme", "ink", "--album", "Doomed", "--wait"], d=FAIL)
    eq(p.returncode, 1, "exit of a failed run (stderr %s)" % snippet(p.err))
    lines = p.out.splitlines()
    check(lines[-2].startswith("run ") and " failed: 0 done, 3 failed" in lines[-2], "summary %r" % p.out[-300:])
    check(lines[-1].startswith("  3 of 3 items failed; last error: cannot store the image"),
          "the run's error_message: %r" % lines[-1])
    j = sf(["generate", str(tid), "--theme", "ink", "--album", "Doomed", "--wait", "--json"], d=FAIL)
    eq((j.returncode, json.loads(j.out)["status"]), (1, "failed"), "--json of a failed run")


@test
def wait_exit_3_when_the_run_is_canceled():
    tid = import_planets()
    expect_json(D.post("/api/queue/pause"), 200)
    try:
        before = set(run_ids())
        proc = subprocess.Popen([BIN, "generate", str(tid), "--theme", "ink", "--album", "Stopped", "--wait"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client_env(D), cwd=TMP)
        rid = wait_for(lambda: (set(run_ids()) - before or {None}).pop(), 10, "the run the client queued")
        # the waiting client is following the stream: cancel with another client
        p = ok(["cancel", str(rid)])
        check(p.out.startswith("run %d is canceled: " % rid), "cancel's line: %r" % p.out)
        out, err = proc.communicate(timeout=bound(20))
        eq(proc.returncode, 3, "exit of a canceled run (stderr %s)" % snippet(err))
        eq(out.decode().splitlines()[-2:], ["run %d canceled: 0 done, 0 failed, 3 canceled" % rid,
                                            "  canceled by an operator"], "the last lines")
    finally:
        expect_json(D.post("/api/queue/resume"), 200)


@test
def progress_bar_on_a_terminal():
    tid = import_planets()
    master, slave = pty.openpty()
    proc = subprocess.Popen([BIN, "generate", str(tid), "--theme", "ink", "--album", "Tty", "--wait"],
                            stdin=slave, stdout=slave, stderr=slave, env=client_env(D), cwd=TMP)
    os.close(slave)
    out = b""
    deadline = time.time() + bound(30)
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    eq(proc.wait(bound(10)), 0, "exit (output %r)" % out[-400:])
    text = out.decode()
    check("\r[" in text and "\033[K" in text, "the bar is redrawn in place: %r" % text[:300])
    check("[##############################] 3/3 done  0 failed" in text, "a full bar: %r" % text[-400:])
    check("ETA" in text, "an ETA from a status event's eta_s: %r" % text[-400:])
    check(text.rstrip().splitlines()[-1].endswith("; album %d" %
                                                   expect_json(D.get("/api/albums?per_page=1"), 200)["albums"][0]["id"]),
          "the album id at the end: %r" % text[-200:])
    check("item 0" not in text, "no plain lines on a terminal")


# ---------------------------------------------------------------- run controls


@test
def cancel_retry_pause_resume():
    tid = import_planets()
    expect_json(D.post("/api/queue/pause"), 200)
    try:
        rid = js(["generate", str(tid), "--theme", "ink", "--album", "Controls"])["run"]["id"]
        j = js(["pause", str(rid)])
        eq((j["run"]["id"], j["run"]["status"]), (rid, "paused"), "pause --json")
        eq(ok(["resume", str(rid)]).out, "run %d is queued: run resumed\n" % rid, "resume for people")
        eq(js(["cancel", str(rid)])["run"]["status"], "canceled", "cancel --json")
        fails(["pause", str(rid)], 1, "only a queued or running run can be paused")
        p = ok(["retry", str(rid)])
        check(p.out.startswith("run %d is running: " % rid) or p.out.startswith("run %d is queued: " % rid), p.out)
        fails(["cancel", str(rid)], 1, "needs an admin token", token=None)
        fails(["cancel", str(rid)], 1, "yours is not one", token="user")
        fails(["cancel", "999999"], 1, "run 999999 not found")
        fails(["cancel"], 2, "cancel takes 1 argument")
        fails(["cancel", "abc"], 2, "positive integer")
    finally:
        expect_json(D.post("/api/queue/resume"), 200)
    eq(wait_run(D, rid)["status"], "completed", "the retried run")


# ---------------------------------------------------------------- download


@test
def download_streams_a_zip_to_the_file():
    tid = import_planets()
    run_ = js(["generate", str(tid), "--theme", "ink", "--album", "Zipped", "--wait"])
    out = os.path.join(TMP, "deck.zip")
    p = ok(["download", str(run_["album_id"]), "-o", out])
    eq(p.out, "wrote %s (%d bytes)\n" % (out, os.path.getsize(out)), "download's line")
    with zipfile.ZipFile(out) as z:
        eq(z.testzip(), None, "zipfile's CRC check")
        pngs = [n for n in z.namelist() if n.endswith(".png")]
        eq(len(pngs), 3, "images in the zip: %s" % z.namelist())
    if shutil.which("unzip"):
        u = subprocess.run(["unzip", "-t", out], capture_output=True)
        eq(u.returncode, 0, "unzip -t: %s" % u.stdout.decode()[-300:])
    eq(os.listdir(TMP).count("deck.zip.part"), 0, "no .part left")
    # the same files as the API's answer (not the same bytes: each zip is written when
    # it is asked for, and its entries' times are that moment's, to the second)
    def entries(z):
        return [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(out) as mine:
        api = zipfile.ZipFile(io.BytesIO(D.get("/api/albums/%d/download.zip" % run_["album_id"]).body))
        eq(entries(mine), entries(api), "the entries, names and bytes")
    j = js(["download", str(run_["album_id"]), "--output", os.path.join(TMP, "b.zip")])
    eq(j["bytes"], os.path.getsize(os.path.join(TMP, "b.zip")), "--json")
    # default name; refusals leave no file behind
    ok(["download", str(run_["album_id"])])
    check(os.path.exists(os.path.join(TMP, "album-%d.zip" % run_["album_id"])), "album-<id>.zip")
    fails(["download", "999999", "-o", os.path.join(TMP, "none.zip")], 1, "album 999999 not found")
    check(not any(n.startswith("none.zip") for n in os.listdir(TMP)), "nothing written: %s" % os.listdir(TMP))
    fails(["download", str(run_["album_id"]), "-o", os.path.join(TMP, "no", "dir.zip")], 1, "cannot write")


# ---------------------------------------------------------------- connection, usage, help


@test
def url_flag_env_and_an_unreachable_daemon():
    # --url wins over SETFORGE_URL
    dead = "http://127.0.0.1:%d" % free_port()
    e = client_env(D)
    e["SETFORGE_URL"] = dead
    p = subprocess.run([BIN, "templates", "--json", "--url", "http://127.0.0.1:%d/" % D.port], capture_output=True,
                       env=e, timeout=bound(20))
    eq(p.returncode, 0, "--url over the environment: %s" % p.stderr)
    p = subprocess.run([BIN, "templates"], capture_output=True, env=e, timeout=bound(20))
    eq(p.returncode, 1, "nobody at SETFORGE_URL")
    check(b"cannot connect" in p.stderr and dead.encode() in p.stderr, p.stderr)
    # the default URL is the default serve's; it is either not there or not ours,
    # so only the message's shape is checked
    e.pop("SETFORGE_URL")
    p = subprocess.run([BIN, "runs", "--json"], capture_output=True, env=e, timeout=bound(20))
    check(p.returncode == 0 or b"127.0.0.1:8080" in p.stderr, p.stderr)
    # a token that is not valid is refused even on public routes (docs/api.md)
    e = client_env(D)
    e["SETFORGE_TOKEN"] = "sf_" + "0" * 64
    p = subprocess.run([BIN, "templates"], capture_output=True, env=e, timeout=bound(20))
    eq(p.returncode, 1, "a bad token")
    check(p.stderr.startswith(b"setforge: "), p.stderr)


@test
def help_lists_the_commands_and_usage_is_exit_2():
    for args in (["help"], ["--help"]):
        p = subprocess.run([BIN] + args, capture_output=True)
        eq(p.returncode, 0, "setforge %s" % args)
        text = p.stdout.decode()
        for c in ("templates", "template ID", "import FILE.csv", "generate TEMPLATE", "--wait", "runs",
                  "cancel RUN", "retry RUN", "pause RUN", "resume RUN", "download ALBUM", "SETFORGE_TOKEN",
                  "SETFORGE_URL", "serve", "migrate", "token create", "routes"):
            check(c in text, "help does not mention %r" % c)
    p = subprocess.run([BIN, "generate", "--help"], capture_output=True)
    eq((p.returncode, p.stdout.decode().split("\n")[0][:26]), (0, "usage: setforge generate T"), "generate --help")
    fails(["runs", "--bogus"], 2, 'unknown option "--bogus"')
    fails(["templates", "extra"], 2, "templates takes 0 arguments")
    fails(["templates", "--page", "0"], 2, "--page")


@test
def client_time_per_command():
    """Not a limit: the figures docs/client.md quotes (a command is one process,
    one connection, one request)."""
    times = {}
    for name, args in (("templates", ["templates"]), ("template", ["template", "1"]), ("runs", ["runs"]),
                       ("templates --json", ["templates", "--json"])):
        best = min(ok(args).seconds for _ in range(5))
        times[name] = best
    print("# client time per command (best of 5): %s" % ", ".join("%s %.1f ms" % (k, v * 1000)
                                                                   for k, v in times.items()))
    check(all(v < bound(5) for v in times.values()), "a command took over 5 s: %s" % times)


def setup():
    global D, FAIL, TMP
    TMP = tempfile.mkdtemp(prefix="sf-client-")
    D = Daemon(examples=True, extra_args=["--access-log", "false"])
    FAIL = Daemon(examples=False, extra_args=["--access-log", "false", "--max-attempts", "1"])
    # the failing daemon's image store is a file where its folder should be
    imgdir = os.path.join(FAIL.data_dir, "images")
    if os.path.isdir(imgdir):
        shutil.rmtree(imgdir)
    open(imgdir, "w").close()


def teardown(_):
    for d in (D, FAIL):
        if d:
            d.cleanup()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
