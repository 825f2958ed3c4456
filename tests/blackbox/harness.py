"""Black-box test harness for setforge (Python 3 stdlib only).

Starts the real daemon binary (env SETFORGE_BIN, default ./setforge relative to
the repository root) on a free port with a fresh database in a temp dir, talks
HTTP to it, and offers a tiny test registry:

    from harness import test, run, Daemon, expect_error, check, eq

    @test
    def health_ok():
        ...

    if __name__ == "__main__":
        run(__file__, setup=..., teardown=...)

Test files run side by side (tests/run.sh), so nothing here may be shared
between processes: every Daemon has its own mkdtemp directory and database,
and free_port() reserves its port across processes.

Waits: a test never sleeps a fixed time in place of a condition; it polls the
condition (wait_for) up to a bound. Every bound, and every socket timeout,
goes through bound(), which multiplies it by SLOWDOWN (the harness's functions
take unscaled seconds and scale them themselves): sanitizer builds run the
same tests several times slower (make asan / make tsan set SF_SLOW=1), and a
bound must never be what fails a test on a busy machine. Tests that need a run
to last long enough for checks made while it runs scale the simulated GPU time
by SLOWDOWN too.
"""

import fcntl
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKEN_RE = re.compile(r"^sf_[0-9a-f]{64}$")
TOKEN_SEARCH_RE = re.compile(r"sf_[0-9a-f]{64}")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SLOWDOWN = 4 if os.environ.get("SF_SLOW") else 1


def bound(seconds):
    """A wait bound or timeout, scaled for sanitizer builds (SF_SLOW)."""
    return seconds * SLOWDOWN


START_TIMEOUT = 10.0


def bin_path():
    b = os.environ.get("SETFORGE_BIN", "./setforge")
    if os.path.isabs(b):
        return b
    if os.path.exists(b):
        return os.path.abspath(b)
    return os.path.normpath(os.path.join(REPO, b))


BIN = bin_path()


# --------------------------------------------------------------------------
# assertions


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eq(actual, expected, msg=""):
    if actual != expected:
        raise TestFailure("%sexpected %r, got %r" % (msg + ": " if msg else "", expected, actual))


def snippet(b, n=400):
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return b if len(b) <= n else b[:n] + "...(%d chars)" % len(b)


# --------------------------------------------------------------------------
# HTTP


class Headers:
    """Case-insensitive header map; repeated headers are joined with ', '."""

    def __init__(self, pairs=()):
        self._d = {}
        for k, v in pairs:
            lk = k.lower()
            if lk in self._d:
                self._d[lk] = (self._d[lk][0], self._d[lk][1] + ", " + v)
            else:
                self._d[lk] = (k, v)

    def get(self, k, default=None):
        v = self._d.get(k.lower())
        return v[1] if v else default

    def __getitem__(self, k):
        return self._d[k.lower()][1]

    def __contains__(self, k):
        return k.lower() in self._d

    def items(self):
        return [v for v in self._d.values()]

    def __repr__(self):
        return repr(dict(self.items()))


class Response:
    def __init__(self, status, headers, body, method="", path=""):
        self.status = status
        self.headers = headers
        self.body = body
        self.method = method
        self.path = path

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:
            raise TestFailure("%s: body is not JSON (%s): %s" % (self.describe(), e, snippet(self.body)))

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def describe(self):
        return "%s %s -> %s %s" % (self.method, self.path, self.status, snippet(self.body, 300))

    def __repr__(self):
        return "<Response %s>" % self.describe()


def expect_status(resp, status):
    if resp.status != status:
        raise TestFailure("expected %s: %s" % (status, resp.describe()))
    return resp


def expect_json(resp, status):
    expect_status(resp, status)
    ct = resp.headers.get("Content-Type", "")
    check(ct.lower().startswith("application/json"), "%s: Content-Type %r is not application/json" % (resp.describe(), ct))
    return resp.json()


def expect_error(resp, status, code=None, field=None, mentions=None):
    """Non-2xx response with {"error": str, "code": str[, "fields": {field: ...}]}."""
    if resp.status != status:
        raise TestFailure("expected %s: %s" % (status, resp.describe()))
    ct = resp.headers.get("Content-Type", "")
    check(ct.lower().startswith("application/json"), "%s: error Content-Type %r" % (resp.describe(), ct))
    j = resp.json()
    check(isinstance(j, dict), "%s: error body is not an object" % resp.describe())
    check(isinstance(j.get("error"), str) and j["error"], "%s: missing string 'error'" % resp.describe())
    check(isinstance(j.get("code"), str) and j["code"], "%s: missing string 'code'" % resp.describe())
    if code is not None:
        check(j["code"] == code, "%s: code %r, expected %r" % (resp.describe(), j["code"], code))
    if field is not None:
        f = j.get("fields")
        check(isinstance(f, dict), "%s: no 'fields' object (expected field %r)" % (resp.describe(), field))
        check(field in f, "%s: fields does not name %r" % (resp.describe(), field))
    if mentions is not None:
        for m in ([mentions] if isinstance(mentions, str) else mentions):
            check(m in resp.text, "%s: error body does not mention %r" % (resp.describe(), m))
    return j


_held_ports = {}  # port -> open lock file, held until this process exits


def _port_range():
    """Ports outside the kernel's ephemeral range: bind(0) and outgoing
    connections (ours, the fakes', other test processes') draw from that range,
    so a port picked there could be taken before the daemon binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    if lo - 1 - 10000 >= 2000:
        return 10000, lo - 1
    return hi + 1, 65535


def free_port():
    """A TCP port for a daemon that no other test process will hand out: a
    free port outside the ephemeral range, reserved by an flock on
    $TMPDIR/sf-bb-ports/<port> that this process holds until it exits (the
    kernel drops it even on a crash). The daemon binds with SO_REUSEPORT, so
    two daemons on one port would both start and split the connections: the
    lock is what keeps concurrently running test files apart."""
    lockdir = os.path.join(tempfile.gettempdir(), "sf-bb-ports")
    os.makedirs(lockdir, exist_ok=True)
    lo, hi = _port_range()
    rng = random.Random()
    for _ in range(500):
        p = rng.randint(lo, hi)
        if p in _held_ports:
            continue
        fd = os.open(os.path.join(lockdir, str(p)), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            os.close(fd)  # in use by something that does not take our locks
            continue
        finally:
            s.close()
        _held_ports[p] = fd
        return p
    raise TestFailure("no free port in %d..%d" % (lo, hi))


def http_request(port, method, path, body=None, raw=None, headers=None, token=None, timeout=15.0):
    hdrs = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        hdrs["Content-Type"] = "application/json"
    if raw is not None:
        data = raw
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if headers:
        for k, v in headers.items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=bound(timeout))
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if data is not None and not any(k.lower() == "content-length" for k in hdrs):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        b = r.read()
        return Response(r.status, Headers(r.getheaders()), b, method, path)
    finally:
        conn.close()


def raw_exchange(port, head, body_chunks=(), timeout=30.0):
    """Sends `head` (bytes) then each body chunk over a raw socket, stopping as
    soon as the server answers or closes; returns a Response, or raises
    TestFailure when no response could be read at all."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=bound(timeout))
    sent = 0
    try:
        sock.sendall(head)
        for chunk in body_chunks:
            r, _, _ = select.select([sock], [], [], 0)
            if r:
                break  # server answered (or closed) early
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        resp = http.client.HTTPResponse(sock, method="POST")
        try:
            resp.begin()
            body = resp.read()
        except (ConnectionResetError, http.client.RemoteDisconnected, http.client.IncompleteRead) as e:
            raise TestFailure("no HTTP response (after sending %d body bytes): %r" % (sent, e))
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        out = Response(resp.status, Headers(resp.getheaders()), body, parts[0], parts[1] if len(parts) > 1 else "")
        out.sent = sent
        return out
    finally:
        sock.close()


# --------------------------------------------------------------------------
# CLI


def cli(args, db=None, env=None, timeout=15.0, cwd=None):
    cmd = [BIN] + list(args)
    if db is not None:
        cmd += ["--db", db]
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("SETFORGE_") and k != "SETFORGE_BIN":
            del e[k]
    if env:
        e.update(env)
    try:
        return subprocess.run(cmd, capture_output=True, timeout=bound(timeout), env=e,
                              cwd=cwd or tempfile.gettempdir())
    except subprocess.TimeoutExpired as ex:
        raise TestFailure("%s timed out after %ss" % (" ".join(cmd), bound(timeout))) from ex


def cli_ok(args, db=None, env=None):
    p = cli(args, db=db, env=env)
    if p.returncode != 0:
        raise TestFailure("%s exited %s; stderr: %s" % (" ".join([os.path.basename(BIN)] + list(args)), p.returncode,
                                                         snippet(p.stderr)))
    return p


def create_token(db, admin=False, name=None):
    args = ["token", "create"]
    if admin:
        args.append("--admin")
    if name:
        args += ["--name", name]
    p = cli_ok(args, db=db)
    lines = [l.strip() for l in p.stdout.decode("utf-8", "replace").splitlines() if l.strip()]
    check(lines, "token create printed nothing")
    tok = lines[-1]
    check(TOKEN_RE.match(tok), "token create: last line %r is not sf_ + 64 hex" % tok)
    return tok


# --------------------------------------------------------------------------
# daemon


class Daemon:
    ADMIN_NAME = "bb-admin"
    USER_NAME = "bb-user"

    def __init__(self, examples=False, extra_args=(), env=None, create_tokens=True, migrate=True, start=True,
                 nofile=None):
        """nofile: start the daemon with RLIMIT_NOFILE soft = hard = nofile."""
        check(os.path.exists(BIN), "daemon binary %s does not exist (set SETFORGE_BIN or run make)" % BIN)
        self.dir = tempfile.mkdtemp(prefix="sf-bb-")
        self.db = os.path.join(self.dir, "setforge.db")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.examples = examples
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.nofile = nofile
        self.proc = None
        self.port = None
        self.admin_token = None
        self.user_token = None
        self.starts = 0
        self._out = None
        self._err = None
        if migrate:
            cli_ok(["migrate"], db=self.db)
        if create_tokens:
            self.admin_token = create_token(self.db, admin=True, name=self.ADMIN_NAME)
            self.user_token = create_token(self.db, admin=False, name=self.USER_NAME)
        if start:
            self.start()

    # -- process control
    def start(self):
        self.port = free_port()
        self.starts += 1
        self.out_path = os.path.join(self.dir, "stdout.%d" % self.starts)
        self.err_path = os.path.join(self.dir, "stderr.%d" % self.starts)
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        cmd = [BIN, "serve", "--port", str(self.port), "--bind", "127.0.0.1", "--db", self.db,
               "--data-dir", self.data_dir, "--examples", "true" if self.examples else "false"] + self.extra_args
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("SETFORGE_") and k != "SETFORGE_BIN":
                del e[k]
        e.update(self.env)
        limit = None
        if self.nofile:
            import resource

            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, env=e,
                                     cwd=self.dir, preexec_fn=limit)
        self.wait_ready()

    def wait_ready(self, timeout=START_TIMEOUT):
        timeout = bound(timeout)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("daemon exited with %s during startup; stderr:\n%s" % (self.proc.returncode,
                                                                                        self.stderr_text()))
            try:
                r = http_request(self.port, "GET", "/api/health", timeout=2.0)
                if r.status == 200:
                    return
                last = r.describe()
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        self._terminate_hard()
        raise TestFailure("daemon not ready within %ss (last: %s); stderr:\n%s" % (timeout, last, self.stderr_text()))

    def stdout_text(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def stderr_text(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except (OSError, AttributeError):
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_logs(self):
        for f in (self._out, self._err):
            if f:
                f.close()
        self._out = self._err = None

    def stop(self, timeout=10.0):
        """SIGTERM and wait (bound(timeout)); returns the exit status."""
        timeout = bound(timeout)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._terminate_hard()
                raise TestFailure("daemon did not exit within %ss of SIGTERM" % timeout)
        rc = self.proc.returncode
        self._close_logs()
        return rc

    def _terminate_hard(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_logs()

    def kill9(self):
        self._terminate_hard()

    def restart(self):
        rc = self.stop()
        check(rc == 0, "daemon exited with %s on SIGTERM; stderr:\n%s" % (rc, self.stderr_text()))
        self.start()

    def cleanup(self):
        try:
            if self.alive():
                self.stop()
        except Exception:
            self._terminate_hard()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- HTTP
    def tok(self, token):
        if token == "admin":
            return self.admin_token
        if token == "user":
            return self.user_token
        return token

    def request(self, method, path, body=None, raw=None, headers=None, token="admin", timeout=15.0):
        try:
            return http_request(self.port, method, path, body=body, raw=raw, headers=headers, token=self.tok(token),
                                timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            # say whether the daemon died, and how
            if self.proc is not None:
                try:
                    self.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc is not None and self.proc.poll() is not None:
                rc = self.proc.returncode
                how = "killed by signal %d" % -rc if rc < 0 else "exit status %d" % rc
                raise TestFailure("%s %s: %r; the daemon died (%s); stderr tail:\n%s"
                                  % (method, path, e, how, self.stderr_text()[-1500:])) from e
            raise TestFailure("%s %s: %r (daemon still running)" % (method, path, e)) from e

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token=token, **kw)

    def post(self, path, body=None, token="admin", **kw):
        return self.request("POST", path, body=body, token=token, **kw)

    def put(self, path, body=None, token="admin", **kw):
        return self.request("PUT", path, body=body, token=token, **kw)

    def delete(self, path, token="admin", **kw):
        return self.request("DELETE", path, token=token, **kw)

    def raw(self, head, body_chunks=(), timeout=30.0):
        return raw_exchange(self.port, head, body_chunks, timeout)

    def healthy(self):
        try:
            return http_request(self.port, "GET", "/api/health", timeout=5).status == 200
        except (OSError, http.client.HTTPException):
            return False

    # -- direct database access (WAL; the daemon may be running)
    def db_connect(self):
        c = sqlite3.connect(self.db, timeout=bound(10))
        c.execute("PRAGMA busy_timeout = %d" % (bound(10) * 1000))
        return c

    def db_exec(self, sql, params=()):
        c = self.db_connect()
        try:
            cur = c.execute(sql, params)
            c.commit()
            return cur.lastrowid
        finally:
            c.close()

    def db_query(self, sql, params=()):
        c = self.db_connect()
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def insert_image(self, prompt="a test image", width=512, height=512, sha256=None, nbytes=1234, **extra):
        cols = {"prompt": prompt, "width": width, "height": height,
                "sha256": sha256 or ("%064x" % (int(time.time() * 1e6) ^ id(extra) ^ os.getpid())),
                "bytes": nbytes, "created_at": now_ts()}
        cols.update(extra)
        names = ",".join(cols)
        marks = ",".join("?" for _ in cols)
        return self.db_exec("INSERT INTO images (%s) VALUES (%s)" % (names, marks), list(cols.values()))

    def insert_run(self, template_id, status="queued", **extra):
        cols = {"template_id": template_id, "album_name": "bb run", "user_theme": "bb theme", "status": status,
                "total_items": 1, "steps": 25, "seed": 42, "width": 512, "height": 512, "guidance_scale": 7.5,
                "created_at": now_ts()}
        cols.update(extra)
        names = ",".join(cols)
        marks = ",".join("?" for _ in cols)
        return self.db_exec("INSERT INTO runs (%s) VALUES (%s)" % (names, marks), list(cols.values()))

    def insert_album(self, name="db album", source_type="manual", is_public=1, **extra):
        cols = {"name": name, "source_type": source_type, "is_public": is_public, "created_at": now_ts(),
                "updated_at": now_ts()}
        cols.update(extra)
        names = ",".join(cols)
        marks = ",".join("?" for _ in cols)
        return self.db_exec("INSERT INTO albums (%s) VALUES (%s)" % (names, marks), list(cols.values()))


def wait_for(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns something true, and returns that. Fails
    after bound(timeout) seconds with "<what> not within N s" (what may be a
    function called then, to describe the last state seen)."""
    deadline = time.time() + bound(timeout)
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise TestFailure("%s not within %gs" % (what() if callable(what) else what, bound(timeout)))
        time.sleep(interval)


FINAL = ("completed", "failed", "canceled")


def wait_run(d, rid, timeout=30.0, cond=None):
    """GET /api/runs/<rid> until cond(run) holds (default: the run is final)."""
    last = [None]

    def reached():
        last[0] = expect_json(d.get("/api/runs/%d" % rid), 200)
        return last[0] if (cond(last[0]) if cond else last[0]["status"] in FINAL) else None

    return wait_for(reached, timeout, lambda: "run %d reaching %s (last: %s)"
                    % (rid, "the condition" if cond else "a final status", snippet(json.dumps(last[0]))))


def wait_settled(d, rid, timeout=15.0):
    """The run's items once none is queued or running (a canceled item's
    interrupt lands a moment after the cancel answers); sleeping a fixed time
    instead is what makes a test flaky on a loaded machine."""
    deadline = time.time() + bound(timeout)
    while True:
        out, page = [], 1
        while True:
            r = d.get("/api/runs/%d/items?per_page=100&page=%d" % (rid, page))
            j = expect_json(r, 200)
            out += j["items"]
            if page >= j["pages"]:
                break
            page += 1
        if not any(i["status"] in ("queued", "running") for i in out) or time.time() > deadline:
            return out
        time.sleep(0.05)


def now_ts():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------
# test registry

_TESTS = []


def test(fn):
    _TESTS.append(fn)
    return fn


def run(file, setup=None, teardown=None):
    name = os.path.basename(file)
    passed = failed = 0
    t0 = time.time()
    ctx = None
    setup_error = None
    if setup is not None:
        try:
            ctx = setup()
        except Exception as e:
            setup_error = "setup failed: %s" % (e if isinstance(e, TestFailure) else traceback.format_exc())
            last = str(e).strip().splitlines() if isinstance(e, TestFailure) else [repr(e)]
            setup_short = "setup failed: %s" % (last[0] if last else type(e).__name__)
    # Only the tests of the file being run: another test file imported for
    # its helpers registers its own tests too.
    for fn in [f for f in _TESTS if f.__module__ == "__main__"]:
        if setup_error:
            print("FAIL %s: %s" % (fn.__name__, setup_short), flush=True)
            failed += 1
            continue
        t = time.time()
        try:
            fn()
            print("ok %s" % fn.__name__, flush=True)
            if time.time() - t > 2:
                print("# %s took %.1fs" % (fn.__name__, time.time() - t), flush=True)
            passed += 1
        except TestFailure as e:
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)
            failed += 1
        except Exception:
            print("FAIL %s: %s" % (fn.__name__, traceback.format_exc().strip().replace("\n", "\n    ")), flush=True)
            failed += 1
    if setup_error:
        print(setup_error, flush=True)
    if teardown is not None:
        try:
            teardown(ctx)
        except Exception as e:
            print("teardown error: %r" % e, flush=True)
            failed += 1
    print("# %s took %.1fs" % (name, time.time() - t0), flush=True)
    print("RESULT %s passed=%d failed=%d" % (name, passed, failed), flush=True)
    sys.exit(1 if failed else 0)
