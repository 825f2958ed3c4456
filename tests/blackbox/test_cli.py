"""Black-box tests of the setforge command line: migrate, token, serve flags,
env and config file, example seeding, the first-run admin token."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIN, TOKEN_RE, TOKEN_SEARCH_RE, Daemon, TestFailure, bound, check, cli, cli_ok, create_token, eq,
                     expect_error, expect_json, free_port, http_request, run, snippet, test, wait_for)

TMP = None


def fresh_db():
    d = tempfile.mkdtemp(prefix="sf-cli-", dir=TMP)
    return os.path.join(d, "setforge.db"), d


def serve_expect_exit2(args, env=None, what=""):
    """Runs `setforge serve ARGS`; it must exit 2 quickly with a message on stderr."""
    db, d = fresh_db()
    cli_ok(["migrate"], db=db)
    create_token(db, admin=True, name="x")
    full = ["serve", "--bind", "127.0.0.1", "--db", db, "--data-dir", os.path.join(d, "data"),
            "--examples", "false"] + list(args)
    p = cli(full, env=env, timeout=8)
    check(p.returncode == 2, "serve %s%s: exit %s (expected 2); stderr: %s" % (" ".join(args), what, p.returncode,
                                                                                 snippet(p.stderr)))
    check(p.stderr.strip(), "serve %s%s: exit 2 but nothing on stderr" % (" ".join(args), what))
    return p


def serve_bg(args, env=None):
    """Starts serve in the background; returns (proc, out_path, err_path)."""
    d = tempfile.mkdtemp(prefix="sf-serve-", dir=TMP)
    out, err = os.path.join(d, "out"), os.path.join(d, "err")
    e = {k: v for k, v in os.environ.items() if not k.startswith("SETFORGE_") or k == "SETFORGE_BIN"}
    e.update(env or {})
    p = subprocess.Popen([BIN, "serve"] + list(args), stdout=open(out, "wb"), stderr=open(err, "wb"),
                         stdin=subprocess.DEVNULL, env=e, cwd=d)
    return p, out, err


def wait_health(proc, port, err_path, timeout=10):
    def answering():
        if proc.poll() is not None:
            raise TestFailure("serve exited %s; stderr: %s" % (proc.returncode, snippet(open(err_path, "rb").read())))
        try:
            return http_request(port, "GET", "/api/health", timeout=2).status == 200
        except OSError:
            return False

    wait_for(answering, timeout, lambda: "serve answering on port %d (stderr: %s)"
             % (port, snippet(open(err_path, "rb").read())))


def stop_bg(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(bound(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise TestFailure("serve did not stop within %gs of SIGTERM" % bound(10))
    return proc.returncode


# ---------------------------------------------------------------- migrate


@test
def migrate_creates_schema_and_is_idempotent():
    db, _ = fresh_db()
    cli_ok(["migrate"], db=db)
    import sqlite3
    c = sqlite3.connect(db)
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for t in ("tokens", "batch_templates", "albums", "runs", "images", "album_images", "run_items"):
        check(t in tables, "table %s missing after migrate (have %s)" % (t, sorted(tables)))
    c.execute("INSERT INTO albums (name, created_at, updated_at) VALUES ('keep me', '2025-01-01T00:00:00Z', "
              "'2025-01-01T00:00:00Z')")
    c.commit()
    c.close()
    p = cli(["migrate"], db=db)
    eq(p.returncode, 0, "second migrate exit status (stderr %s)" % snippet(p.stderr))
    p = cli(["migrate"], db=db)
    eq(p.returncode, 0, "third migrate exit status")
    c = sqlite3.connect(db)
    rows = c.execute("SELECT name FROM albums").fetchall()
    c.close()
    eq(rows, [("keep me",)], "data after re-running migrate")


@test
def a_new_database_and_data_dir_are_private():
    d = tempfile.mkdtemp(prefix="sf-cli-", dir=TMP)
    db = os.path.join(d, "deep", "setforge.db")
    cli_ok(["migrate"], db=db)
    eq(oct(os.stat(db).st_mode & 0o777), oct(0o600), "mode of a new database")
    data = os.path.join(d, "data", "images-root")
    port = free_port()
    p, _, err = serve_bg(["--port", str(port), "--bind", "127.0.0.1", "--db", db, "--data-dir", data,
                          "--examples", "false"])
    try:
        wait_health(p, port, err)
        eq(oct(os.stat(data).st_mode & 0o777), oct(0o700), "mode of a new data directory")
        for side in ("-wal", "-shm"):
            if os.path.exists(db + side):
                eq(oct(os.stat(db + side).st_mode & 0o777), oct(0o600), "mode of the database's %s file" % side)
    finally:
        stop_bg(p)


# ---------------------------------------------------------------- tokens


@test
def token_create_prints_token_on_last_line_and_stores_only_hash():
    db, _ = fresh_db()
    cli_ok(["migrate"], db=db)
    t1 = create_token(db, admin=True, name="alice")
    t2 = create_token(db, name="bob")
    check(t1 != t2, "two token creates printed the same token")
    import sqlite3
    c = sqlite3.connect(db)
    rows = c.execute("SELECT name, hash, is_admin, revoked_at FROM tokens ORDER BY id").fetchall()
    c.close()
    eq([(r[0], r[2], r[3]) for r in rows], [("alice", 1, None), ("bob", 0, None)], "token rows")
    for tok, (_, h, _, _) in zip((t1, t2), rows):
        digest = hashlib.sha256(tok.encode()).digest()
        hb = bytes(h) if not isinstance(h, str) else h.encode()
        check(hb in (digest, digest.hex().encode()), "stored hash is not SHA-256 of the token: %r" % (h,))
    raw = open(db, "rb").read()
    wal = db + "-wal"
    if os.path.exists(wal):
        raw += open(wal, "rb").read()
    for tok in (t1, t2):
        check(tok.encode() not in raw and tok[3:].encode() not in raw, "the token secret is stored in the database")


@test
def token_list_shows_tokens_without_secret():
    db, _ = fresh_db()
    cli_ok(["migrate"], db=db)
    t1 = create_token(db, admin=True, name="listed-admin")
    t2 = create_token(db, name="listed-user")
    p = cli_ok(["token", "list"], db=db)
    out = p.stdout.decode("utf-8", "replace")
    check("listed-admin" in out and "listed-user" in out, "token list does not show names: %s" % snippet(out))
    for t in (t1, t2):
        check(t not in out and t[3:] not in out and t[3:19] not in out, "token list shows the secret: %s" % snippet(out))
    check(not TOKEN_SEARCH_RE.search(out + p.stderr.decode("utf-8", "replace")), "token list prints something token-shaped")


@test
def token_revoke_makes_token_401_while_serving():
    d = Daemon()
    try:
        r = d.post("/api/albums", {"name": "before revoke"}, token="admin")
        expect_json(r, 201)
        rows = d.db_query("SELECT id FROM tokens WHERE name = ?", (Daemon.ADMIN_NAME,))
        eq(len(rows), 1, "admin token rows")
        p = cli(["token", "revoke", str(rows[0][0])], db=d.db)
        eq(p.returncode, 0, "token revoke exit status (stderr %s)" % snippet(p.stderr))
        check(d.db_query("SELECT revoked_at FROM tokens WHERE id = ?", (rows[0][0],))[0][0],
              "revoked_at not set after revoke")
        r = d.post("/api/albums", {"name": "after revoke"}, token="admin")
        expect_error(r, 401, "unauthorized")
        check(r.headers.get("WWW-Authenticate", "").startswith("Bearer"), "401 without WWW-Authenticate: Bearer")
        # public route with a present but revoked token: 401 too
        expect_error(d.get("/api/albums", token="admin"), 401, "unauthorized")
        # the other token is unaffected
        expect_json(d.get("/api/albums", token="user"), 200)
        # revoking an unknown id fails
        p = cli(["token", "revoke", "999999"], db=d.db)
        check(p.returncode != 0, "revoking an unknown token id exited 0")
    finally:
        d.cleanup()


# ---------------------------------------------------------------- serve flags


@test
def serve_port_99999_exits_2():
    serve_expect_exit2(["--port", "99999"])


@test
def serve_port_abc_exits_2():
    serve_expect_exit2(["--port", "abc"])


@test
def serve_unknown_flag_exits_2():
    serve_expect_exit2(["--port", str(free_port()), "--nope"])


@test
def serve_bad_env_value_exits_2():
    serve_expect_exit2([], env={"SETFORGE_PORT": "abc"}, what=" (SETFORGE_PORT=abc)")


@test
def serve_other_bad_values_exit_2():
    port = str(free_port())
    for args in (["--body-limit", "100"], ["--body-limit", "-1"], ["--examples", "maybe"], ["--threads", "0"],
                 ["--port", ""], ["--port", "80x"], ["--port"]):
        serve_expect_exit2((["--port", port] if args[0] != "--port" else []) + args)


@test
def serve_bad_bind_exits_2():
    serve_expect_exit2(["--port", str(free_port()), "--bind", "abc"])
    serve_expect_exit2(["--port", str(free_port()), "--bind", "999.1.1.1"])


@test
def serve_help_lists_settings():
    p = cli(["serve", "--help"], timeout=5)
    eq(p.returncode, 0, "serve --help exit status (stderr %s)" % snippet(p.stderr))
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    for w in ("--port", "--bind", "--db", "--data-dir", "--body-limit", "SETFORGE_PORT", "SETFORGE_DATA_DIR"):
        check(w in out, "serve --help does not mention %r: %s" % (w, snippet(out, 600)))


@test
def serve_port_from_env():
    db, d = fresh_db()
    cli_ok(["migrate"], db=db)
    create_token(db, admin=True, name="x")
    port = free_port()
    p, out, err = serve_bg(["--bind", "127.0.0.1", "--db", db, "--data-dir", os.path.join(d, "data"),
                            "--examples", "false"], env={"SETFORGE_PORT": str(port)})
    try:
        wait_health(p, port, err)
    finally:
        rc = stop_bg(p)
    eq(rc, 0, "exit status after SIGTERM")


@test
def serve_port_from_config_file():
    db, d = fresh_db()
    cli_ok(["migrate"], db=db)
    create_token(db, admin=True, name="x")
    port = free_port()
    cfg = os.path.join(d, "config.json")
    with open(cfg, "w") as f:
        json.dump({"port": port}, f)
    p, out, err = serve_bg(["--config", cfg, "--bind", "127.0.0.1", "--db", db, "--data-dir",
                            os.path.join(d, "data"), "--examples", "false"])
    try:
        wait_health(p, port, err)
    finally:
        rc = stop_bg(p)
    eq(rc, 0, "exit status after SIGTERM")


@test
def settings_precedence_flag_env_file():
    db, d = fresh_db()
    cli_ok(["migrate"], db=db)
    create_token(db, admin=True, name="x")
    p_file, p_env, p_flag = free_port(), free_port(), free_port()
    cfg = os.path.join(d, "config.json")
    with open(cfg, "w") as f:
        json.dump({"port": p_file}, f)
    common = ["--config", cfg, "--bind", "127.0.0.1", "--db", db, "--data-dir", os.path.join(d, "data"),
              "--examples", "false"]
    # env beats file
    p, out, err = serve_bg(common, env={"SETFORGE_PORT": str(p_env)})
    try:
        wait_health(p, p_env, err)
    finally:
        eq(stop_bg(p), 0, "exit status")
    # flag beats env and file
    p, out, err = serve_bg(common + ["--port", str(p_flag)], env={"SETFORGE_PORT": str(p_env)})
    try:
        wait_health(p, p_flag, err)
    finally:
        eq(stop_bg(p), 0, "exit status")


def _bad_config(obj_text, label):
    db, d = fresh_db()
    cfg = os.path.join(d, "config.json")
    with open(cfg, "w") as f:
        f.write(obj_text)
    serve_expect_exit2(["--config", cfg], what=" (config %s)" % label)


@test
def config_file_unknown_key_exits_2():
    _bad_config(json.dumps({"port": free_port(), "nope": 1}), "unknown key")


@test
def config_file_bad_port_exits_2():
    _bad_config(json.dumps({"port": 99999}), "port 99999")


@test
def config_file_port_string_exits_2():
    _bad_config(json.dumps({"port": "abc"}), "port \"abc\"")


@test
def config_file_not_json_exits_2():
    _bad_config("{port: 8080", "malformed JSON")


@test
def sigterm_exits_0():
    d = Daemon()
    try:
        expect_json(d.get("/api/health"), 200)
        rc = d.stop()
        eq(rc, 0, "exit status after SIGTERM")
    finally:
        d.cleanup()


@test
def sigterm_with_stalled_connections_exits_promptly():
    import socket
    d = Daemon()
    socks = []
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=bound(5))
            s.sendall(b"POST /api/albums HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\nAuthorization: Bearer " + d.admin_token.encode() + b"\r\n\r\n{\"na")
            socks.append(s)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=bound(5))
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(4096)  # an idle keep-alive connection
        socks.append(s)
        # were the daemon waiting for the stalled connections, it would take
        # their timeout (60 s)
        t0 = time.time()
        eq(d.stop(timeout=10), 0, "exit status after SIGTERM")
        check(time.time() - t0 < bound(5), "SIGTERM took %.1fs with stalled connections" % (time.time() - t0))
        eq(d.db_query("SELECT count(*) FROM albums")[0][0], 0, "half-sent requests stored nothing")
    finally:
        for s in socks:
            s.close()
        d.cleanup()


# ---------------------------------------------------------------- examples


EXAMPLES = {
    "Playing Card Deck": (54, 512, 720, 1),
    "Tarot Major Arcana": (22, 512, 896, None),
    "Zodiac Signs": (12, 512, 768, None),
}


def placeholders(tmpl):
    """Placeholder names of a str.format-like template ({{ and }} are literal)."""
    out, i = [], 0
    while i < len(tmpl):
        if tmpl.startswith("{{", i) or tmpl.startswith("}}", i):
            i += 2
            continue
        if tmpl[i] == "{":
            j = tmpl.find("}", i)
            if j < 0:
                break
            out.append(tmpl[i + 1:j].strip())
            i = j + 1
            continue
        i += 1
    return out


def _check_examples(d):
    r = d.get("/api/batch-templates")
    j = expect_json(r, 200)
    eq(j.get("total"), 3, "template total with examples")
    names = sorted(t["name"] for t in j["templates"])
    eq(names, sorted(EXAMPLES), "example template names")
    for t in j["templates"]:
        count, w, h, loras = EXAMPLES[t["name"]]
        eq(t.get("template_item_count"), count, "%s template_item_count" % t["name"])
        eq((t.get("width"), t.get("height")), (w, h), "%s size" % t["name"])
        if loras is not None:
            eq(t.get("lora_count"), loras, "%s lora_count" % t["name"])
        dj = expect_json(d.get("/api/batch-templates/%d" % t["id"]), 200)
        eq(len(dj.get("csv_items") or []), count, "%s csv_items length" % t["name"])
        if loras is not None:
            eq(len(dj.get("loras") or []), loras, "%s loras length" % t["name"])
        eq(len(dj.get("csv_columns") or []) >= 1, True, "%s has csv_columns" % t["name"])
        for item in dj["csv_items"]:
            check(set(item) == set(dj["csv_columns"]), "%s: item keys %s != columns %s" % (t["name"], sorted(item),
                                                                                         dj["csv_columns"]))
        # the seeded templates obey the same rules as client-made ones
        names = placeholders(dj["prompt_template"])
        check(names, "%s: prompt_template has no placeholders: %r" % (t["name"], dj["prompt_template"]))
        unknown = [n for n in names if n not in dj["csv_columns"] and n != "theme"]
        check(not unknown, "%s: prompt_template names unknown columns %s" % (t["name"], unknown))
        for l in dj["loras"]:
            check(-5 <= l.get("weight", 1) <= 5 and (l.get("name") or l.get("path")), "%s: bad lora %r" % (t["name"], l))
        exp = d.get("/api/batch-templates/%d/items.csv" % t["id"])
        eq(exp.status, 200, "%s items.csv" % t["name"])
        back = expect_json(d.post("/api/batch-templates", {"name": "copy", "prompt_template": dj["prompt_template"],
                                                           "csv": exp.body.decode("utf-8")}), 201)
        eq(back["csv_items"], dj["csv_items"], "%s items round trip" % t["name"])
        expect_json(d.delete("/api/batch-templates/%d" % back["id"]), 200)
    return j


@test
def examples_seeded_once():
    d = Daemon(examples=True)
    try:
        first = _check_examples(d)
        d.restart()
        second = _check_examples(d)
        eq(sorted(t["id"] for t in second["templates"]), sorted(t["id"] for t in first["templates"]),
           "example ids after restart")
        # seeding happens on the first start only: a deleted example stays deleted
        zodiac = [t["id"] for t in second["templates"] if t["name"] == "Zodiac Signs"][0]
        expect_json(d.delete("/api/batch-templates/%d" % zodiac, token="admin"), 200)
        d.restart()
        j = expect_json(d.get("/api/batch-templates"), 200)
        eq(sorted(t["name"] for t in j["templates"]), ["Playing Card Deck", "Tarot Major Arcana"],
           "templates after deleting an example and restarting")
    finally:
        d.cleanup()


@test
def examples_false_seeds_nothing():
    d = Daemon(examples=False)
    try:
        j = expect_json(d.get("/api/batch-templates"), 200)
        eq(j.get("total"), 0, "templates with --examples false")
    finally:
        d.cleanup()


# ---------------------------------------------------------------- first run token


@test
def first_serve_prints_admin_token():
    d = Daemon(create_tokens=False)
    try:
        m = None
        deadline = time.time() + bound(3)
        while not m and time.time() < deadline:
            m = TOKEN_SEARCH_RE.findall(d.stdout_text() + "\n" + d.stderr_text())
            time.sleep(0.1)
        if not m:
            d.stop()
            late = TOKEN_SEARCH_RE.findall(d.stdout_text() + "\n" + d.stderr_text())
            check(not late, "the first-run token appears only after the daemon exits (output not flushed)")
            check(False, "first serve on a token-less db printed no sf_ token; stdout: %s stderr: %s"
                  % (snippet(d.stdout_text()), snippet(d.stderr_text())))
        tok = m[-1]
        rows = d.db_query("SELECT name, is_admin FROM tokens")
        eq(rows, [("admin", 1)], "tokens after first serve")
        r = d.post("/api/albums", {"name": "by first token"}, token=tok)
        j = expect_json(r, 201)
        eq(j.get("created_by"), "admin", "created_by for the first-run token")
        d.restart()
        eq(len(d.db_query("SELECT id FROM tokens")), 1, "token count after second serve")
        check(not TOKEN_SEARCH_RE.search(d.stdout_text() + d.stderr_text()),
              "second serve printed a token again")
        expect_json(d.post("/api/albums", {"name": "after restart"}, token=tok), 201)
    finally:
        d.cleanup()


@test
def serve_with_tokens_prints_no_token():
    d = Daemon()
    try:
        out = d.stdout_text() + d.stderr_text()
        check(not TOKEN_SEARCH_RE.search(out), "serve printed a token although tokens exist")
        check(d.admin_token not in out, "serve logged the admin token")
        # a request with the token must not end up in the logs either
        d.get("/api/albums", token="admin")
        d.post("/api/albums", {"name": "x"}, token="admin")
        d.stop()
        out = d.stdout_text() + d.stderr_text()
        check(d.admin_token not in out and d.admin_token[3:] not in out, "the token appears in the daemon's output")
    finally:
        d.cleanup()


def setup():
    global TMP
    check(os.path.exists(BIN), "daemon binary %s does not exist" % BIN)
    TMP = tempfile.mkdtemp(prefix="sf-cli-tests-")


def teardown(_):
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
