"""Black-box tests of generate's limits (docs/runs.md "Limits on generate"): the item
bucket of each caller, the anonymous callers' share of the queue, the queue's capacity
(503 queue_full), generate_access, and admins' exemptions. Runs are held in the queue by
one worker drawing for 10 minutes a picture, so what is queued stays queued while a test
looks. Every test client is 127.0.0.1: tokens tell callers apart."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, bound, check, cli, create_token, eq, expect_error, expect_json, http_request, run, test,
                     wait_for)

T = "/api/batch-templates"
# One worker, busy for 10 minutes with its first item: nothing else is drawn.
HOLD = ["--workers", "1", "--procedural-delay-ms", "600000", "--generate-rate", "0"]
BURST, PER_MINUTE = 10, 30  # BUCKET's items: 10 at once, one more every 2 s

BUCKET = None  # item buckets of BURST items
ANON = None  # anonymous callers may have 10 items waiting
RACE = None  # anonymous share 10, queue capacity 30, for concurrent generates
FULL = None  # the queue holds 10 items
TOKEN_ONLY = None  # --generate-access token
ADMIN_ONLY = None  # --generate-access admin


def template(d, n):
    body = {"name": "%d items" % n, "prompt_template": "{c}", "csv_items": [{"c": str(i)} for i in range(n)]}
    return expect_json(d.post(T, body), 201)["id"]


def gen(d, tid, token=None, headers=None):
    body = {"album_name": "limits", "user_theme": "t", "width": 64, "height": 64}
    return d.post("%s/%d/generate" % (T, tid), body, token=token, headers=headers)


def gen_ok(d, tid, token=None, headers=None):
    return expect_json(gen(d, tid, token, headers), 202)["run"]


def retry_after(r, lo, hi):
    ra = r.headers.get("Retry-After")
    check(ra is not None and ra.isdigit() and lo <= int(ra) <= hi,
          "%s: Retry-After %r is not in %d..%d" % (r.describe(), ra, lo, hi))
    return int(ra)


def waiting(d, anonymous=False):
    """Items queued or running, counted in the database (of anonymous runs only)."""
    sql = ("SELECT count(*) FROM run_items i JOIN runs r ON r.id = i.run_id "
           "WHERE i.status IN ('queued', 'running')" + (" AND r.creator IS NULL" if anonymous else ""))
    return d.db_query(sql)[0][0]


def cancel(d, rid):
    expect_json(d.post("/api/runs/%d/cancel" % rid, token="admin"), 200)


def at_once(d, tid, token, n):
    """n generates of tid started together (threads released by one barrier);
    their statuses."""
    out = [None] * n
    barrier = threading.Barrier(n)
    body = {"album_name": "race", "user_theme": "t", "width": 64, "height": 64}

    def one(k):
        barrier.wait()
        try:
            out[k] = http_request(d.port, "POST", "%s/%d/generate" % (T, tid), body=body, token=d.tok(token))
        except Exception as e:  # reported below
            out[k] = e

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound(30))
    for k, r in enumerate(out):
        check(r is not None and not isinstance(r, Exception), "concurrent generate %d: %r" % (k, r))
    return out


# ---------------------------------------------------------------- the item bucket


@test
def bucket_holds_a_burst_per_caller():
    t10, t4 = template(BUCKET, BURST), template(BUCKET, 4)
    a = create_token(BUCKET.db, name="caller-a")
    b = create_token(BUCKET.db, name="caller-b")
    gen_ok(BUCKET, t10, a)  # the whole burst at once
    r = gen(BUCKET, t4, a)
    refused_at = time.time()
    j = expect_error(r, 429, "rate_limited", mentions=["%d items a minute" % PER_MINUTE, "at most %d" % BURST])
    # 4 items at one per 2 s: at most 8 s (some may have refilled already)
    ra = retry_after(r, 1, 4 * 60 // PER_MINUTE)
    check("%d s" % ra in j["error"], "the sentence names the wait: %r" % j["error"])
    gen_ok(BUCKET, t10, b)  # another token has its own bucket
    gen_ok(BUCKET, t10)  # and so has the address of anonymous callers
    expect_error(gen(BUCKET, t4), 429, "rate_limited")
    for _ in range(3):  # admins are exempt
        gen_ok(BUCKET, t10, "admin")

    # Retry-After is honest: the run fits once that time has refilled it
    def accepted():
        r2 = gen(BUCKET, t4, a)
        if r2.status != 202:
            expect_error(r2, 429, "rate_limited")
        return r2.status == 202

    wait_for(accepted, ra + 3, "caller a's bucket refilled after Retry-After %d s" % ra, interval=0.25)
    check(time.time() - refused_at >= ra - 2, "accepted %.1f s after a Retry-After of %d s"
          % (time.time() - refused_at, ra))


@test
def run_larger_than_the_burst_is_a_400():
    t11 = template(BUCKET, BURST + 1)
    c = create_token(BUCKET.db, name="caller-c")
    for token in (None, c):
        expect_error(gen(BUCKET, t11, token), 400, "invalid_request", field="template",
                     mentions=["has %d items" % (BURST + 1), "generate_items_burst"])
    gen_ok(BUCKET, t11, "admin")
    gen_ok(BUCKET, template(BUCKET, BURST), c)  # the refusal took nothing from c's bucket


@test
def idempotent_replay_takes_no_items():
    t4 = template(BUCKET, 4)
    d = create_token(BUCKET.db, name="caller-d")
    key = {"Idempotency-Key": "limits-replay"}
    first = gen_ok(BUCKET, t4, d, key)["id"]
    for _ in range(3):  # each finds the run and gives its items back
        eq(gen_ok(BUCKET, t4, d, key)["id"], first, "replayed run")
    gen_ok(BUCKET, t4, d)  # 10 - 4 - 4: two left
    expect_error(gen(BUCKET, t4, d), 429, "rate_limited")


# ---------------------------------------------------------------- the anonymous share


@test
def anonymous_callers_share_a_cap():
    t4, t2 = template(ANON, 4), template(ANON, 2)
    first = gen_ok(ANON, t4)["id"]
    gen_ok(ANON, t4)  # 8 anonymous items waiting
    r = gen(ANON, t4)
    expect_error(r, 429, "rate_limited", mentions=["anonymous_queued_items_max", "token"])
    retry_after(r, 1, 3600)
    gen_ok(ANON, t4, "user")  # a token's runs are not anonymous
    gen_ok(ANON, t4, "admin")
    gen_ok(ANON, t2)  # exactly 10
    expect_error(gen(ANON, t2), 429, "rate_limited")
    eq(waiting(ANON, anonymous=True), 10, "anonymous items waiting")
    cancel(ANON, first)  # four places free again (its drawn item too)
    gen_ok(ANON, t4)
    expect_error(gen(ANON, template(ANON, 11)), 400, "invalid_request", field="template",
                 mentions="anonymous_queued_items_max")


@test
def concurrent_generates_never_pass_a_cap_together():
    t4 = template(RACE, 4)
    rs = at_once(RACE, t4, None, 8)
    eq(sorted(r.status for r in rs), [202] * 2 + [429] * 6, "8 anonymous runs of 4 against a share of 10")
    for r in rs:
        if r.status == 429:
            expect_error(r, 429, "rate_limited")
    eq(waiting(RACE, anonymous=True), 8, "anonymous items waiting")
    rs = at_once(RACE, t4, "admin", 8)  # 22 places left in the queue of 30
    eq(sorted(r.status for r in rs), [202] * 5 + [503] * 3, "8 admin runs of 4 against 22 places")
    for r in rs:
        if r.status == 503:
            expect_error(r, 503, "queue_full")
    eq(waiting(RACE), 28, "items waiting")


# ---------------------------------------------------------------- the queue's capacity


@test
def full_queue_is_503_queue_full():
    t4 = template(FULL, 4)
    first = gen_ok(FULL, t4, "admin")["id"]
    gen_ok(FULL, t4)
    before = waiting(FULL)
    eq(before, 8, "items waiting")
    for token in ("admin", "user", None):  # everyone, admins too
        r = gen(FULL, t4, token)
        expect_error(r, 503, "queue_full", mentions="queue_capacity_items")
        retry_after(r, 1, 3600)
    eq(waiting(FULL), before, "refused runs queued nothing")
    expect_error(gen(FULL, template(FULL, 11), "admin"), 400, "invalid_request", field="template",
                 mentions="queue_capacity_items")
    cancel(FULL, first)
    gen_ok(FULL, t4, "admin")


# ---------------------------------------------------------------- generate_access


@test
def generate_access_token():
    t = template(TOKEN_ONLY, 2)
    r = gen(TOKEN_ONLY, t)
    expect_error(r, 401, "unauthorized", mentions="token")
    check("WWW-Authenticate" in r.headers, "401 without WWW-Authenticate: %r" % r.headers)
    expect_error(gen(TOKEN_ONLY, 999999), 401, "unauthorized")  # before the template is looked up
    expect_error(gen(TOKEN_ONLY, t, "sf_" + "0" * 64), 401, "unauthorized")
    gen_ok(TOKEN_ONLY, t, "user")
    gen_ok(TOKEN_ONLY, t, "admin")
    expect_json(TOKEN_ONLY.get(T), 200)  # reading stays public


@test
def generate_access_admin():
    t = template(ADMIN_ONLY, 2)
    expect_error(gen(ADMIN_ONLY, t), 401, "unauthorized")
    expect_error(gen(ADMIN_ONLY, t, "user"), 403, "forbidden", mentions="admin")
    gen_ok(ADMIN_ONLY, t, "admin")


@test
def generate_access_bad_value():
    p = cli(["serve", "--generate-access", "everyone"], db=os.path.join(FULL.dir, "unused.db"))
    eq(p.returncode, 2, "exit status")
    err = p.stderr.decode("utf-8", "replace")
    check("generate_access" in err and "public, token, admin" in err, "stderr: %r" % err)


# ---------------------------------------------------------------- setup


def setup():
    global BUCKET, ANON, RACE, FULL, TOKEN_ONLY, ADMIN_ONLY
    BUCKET = Daemon(extra_args=HOLD + ["--generate-items-burst", str(BURST),
                                       "--generate-items-per-minute", str(PER_MINUTE)])
    ANON = Daemon(extra_args=HOLD + ["--anonymous-queued-items-max", "10"])
    RACE = Daemon(extra_args=HOLD + ["--anonymous-queued-items-max", "10", "--queue-capacity-items", "30",
                                     "--threads", "8"])
    FULL = Daemon(extra_args=HOLD + ["--queue-capacity-items", "10"])
    TOKEN_ONLY = Daemon(extra_args=["--generate-access", "token", "--generate-rate", "0"])
    ADMIN_ONLY = Daemon(extra_args=["--generate-access", "admin", "--generate-rate", "0"])


def teardown(_):
    for d in (BUCKET, ANON, RACE, FULL, TOKEN_ONLY, ADMIN_ONLY):
        if d is not None:
            d.cleanup()


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
