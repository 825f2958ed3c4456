"""Black-box tests of run webhooks (docs/webhooks.md): a run that ends (completed, failed,
canceled) POSTs one signed summary to its callback_url, which a receiver started here
(tests/webhooks/receiver.mjs) verifies with the Standard Webhooks reference library, not
with setforge's code. Also: retries while the receiver is down (same webhook-id), five
failed attempts end as failed with the errors on the run, a restart between attempts
loses nothing, redirects are failed attempts, the SSRF guard refuses loopback under the
default policy, callback_url validation, and the secret never shows in logs or help.

Every receiver listens on 127.0.0.1; the daemons that must reach it run with
outbound_addresses=all. No test reaches an address off this machine."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, bound, cli, free_port, wait_for, wait_run, Daemon, TestFailure, check, eq,
                     expect_error, expect_json, http_request, run, snippet, test)

T = "/api/batch-templates"
RECEIVER = os.path.join(REPO, "tests", "webhooks", "receiver.mjs")
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()

FAST = None      # secret, outbound all, retries 100 ms apart at most (doubling)
# secret, outbound all, retries 3 s apart at most (doubling): the receiver that is down must
# come up before the fifth attempt; with waits drawn under 6, 12 and 24 s after the second,
# all three pass within the ~1 s it takes to start it about once in 10,000 runs
SLOWRETRY = None
NOSECRET = None  # no webhook_secret
GUARDED = None   # secret, the default outbound_addresses (public), fast retries
receivers = []
temp_files = []


class Receiver:
    """node receiver.mjs PORT SECRET MODE, on 127.0.0.1."""

    def __init__(self, port=None, mode="ok", secret=SECRET):
        self.port = port or free_port()
        self.mode = mode
        self.secret = secret
        self.proc = None
        self.url = "http://127.0.0.1:%d/hook" % self.port

    def start(self):
        check(shutil.which("node"), "node is not installed (make deps: tools/deps.sh)")
        check(os.path.isdir(os.path.join(REPO, "tests", "webhooks", "node_modules", "standardwebhooks")),
              "tests/webhooks/node_modules is missing (make deps: tools/deps.sh installs it)")
        self.proc = subprocess.Popen(["node", RECEIVER, str(self.port), self.secret, self.mode],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        receivers.append(self)
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        if not line.startswith("listening"):
            err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() is not None else ""
            raise TestFailure("receiver did not start: %r %s" % (line, snippet(err)))
        return self

    def log(self):
        r = http_request(self.port, "GET", "/_log", timeout=5)
        eq(r.status, 200, "receiver log")
        return r.json()["deliveries"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(bound(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_template(d, n=2):
    return expect_json(d.post(T, {"name": "hooked", "prompt_template": "{card} of {theme}",
                                  "csv_items": [{"card": "c%d" % i} for i in range(n)],
                                  "width": 64, "height": 64}), 201)["id"]


def generate(d, tid, **body):
    body.setdefault("album_name", "hook album")
    body.setdefault("user_theme", "noir")
    return d.post("%s/%d/generate" % (T, tid), body)


def gen_ok(d, tid, **body):
    return expect_json(generate(d, tid, **body), 202)["run"]


def webhook_of(d, rid, token="admin"):
    return expect_json(d.get("/api/runs/%d" % rid, token=token), 200)["webhook"]


def wait_webhook(d, rid, cond, what, timeout=30):
    last = [None]

    def reached():
        last[0] = webhook_of(d, rid)
        return last[0] if last[0] and cond(last[0]) else None

    return wait_for(reached, timeout, lambda: "%s (run %d webhook: %s)" % (what, rid, json.dumps(last[0])))


def metric(d, result):
    text = expect_json_text(d.get("/metrics", token="admin"))
    key = ('setforge_webhook_deliveries_total{result="%s"} ' % result) if result != "pending" \
        else "setforge_webhook_pending "
    for line in text.splitlines():
        if line.startswith(key):
            return int(line[len(key):])
    raise TestFailure("no %s in /metrics" % key.strip())


def expect_json_text(r):
    eq(r.status, 200, "metrics")
    return r.text


def check_verified(delivery, what):
    check(delivery["verified"], "%s: the reference library refused it: %s" % (what, delivery["verify_error"]))
    check((delivery["content_type"] or "").startswith("application/json"), "%s: Content-Type %r"
          % (what, delivery["content_type"]))
    check(delivery["id"] and delivery["id"].startswith("msg_"), "%s: webhook-id %r" % (what, delivery["id"]))
    check(delivery["timestamp"] and delivery["timestamp"].isdigit(), "%s: webhook-timestamp %r"
          % (what, delivery["timestamp"]))


def check_secret_hidden(d):
    for text in (d.stderr_text(), d.stdout_text()):
        check(SECRET not in text and SECRET[6:] not in text, "the webhook secret was logged")


# ---------------------------------------------------------------- the happy paths


@test
def completed_run_delivers_one_signed_run_completed():
    rec = Receiver().start()
    tid = make_template(FAST, 3)
    run_ = gen_ok(FAST, tid, callback_url=rec.url)
    eq(run_["webhook"]["status"], "waiting", "the webhook of a run that has not ended")
    fin = wait_run(FAST, run_["id"])
    eq(fin["status"], "completed", "run status")
    hook = wait_webhook(FAST, run_["id"], lambda h: h["status"] == "delivered", "delivered")
    got = rec.log()
    eq(len(got), 1, "deliveries received")
    check_verified(got[0], "run.completed")
    eq(got[0]["id"], hook["webhook_id"], "webhook-id is the run's webhook_id")
    p = got[0]["payload"]
    eq(p["type"], "run.completed", "type")
    check(isinstance(p["timestamp"], str) and p["timestamp"].endswith("Z"), "timestamp %r" % p["timestamp"])
    data = p["data"]
    eq((data["run_id"], data["template_id"], data["status"], data["album_id"]),
       (fin["id"], tid, "completed", fin["album_id"]), "data")
    check(fin["album_id"] is not None, "the completed run has an album")
    eq(data["counts"], {"total": 3, "succeeded": 3, "failed": 0, "canceled": 0}, "counts")
    eq((data["created_at"], data["finished_at"]), (fin["created_at"], fin["completed_at"]), "timestamps")
    eq((hook["url"], hook["attempts"], hook["last_error"], hook["next_attempt_at"]), (rec.url, 1, None, None),
       "the run's webhook")
    check(hook["last_attempt_at"], "last_attempt_at is set")
    eq([(a["attempt"], a["http_status"], a["error"]) for a in hook["attempts_log"]], [(1, 204, None)], "attempts_log")
    check(metric(FAST, "delivered") >= 1, "delivered counted in /metrics")
    check_secret_hidden(FAST)


@test
def public_callers_see_the_webhook_without_its_url():
    rec = Receiver().start()
    tid = make_template(FAST, 1)
    rid = gen_ok(FAST, tid, callback_url=rec.url + "?token=receiver-secret")["id"]
    wait_webhook(FAST, rid, lambda h: h["status"] == "delivered", "delivered")
    for token in (None, "user"):
        pub = webhook_of(FAST, rid, token=token)
        check("url" not in pub, "a non-admin sees the callback_url: %s" % pub)
        eq((pub["status"], pub["attempts"]), ("delivered", 1), "what a non-admin sees")
        check("receiver-secret" not in json.dumps(expect_json(FAST.get("/api/runs/%d" % rid, token=token), 200)),
              "the URL leaks somewhere in the run")
    eq(webhook_of(FAST, rid)["url"], rec.url + "?token=receiver-secret", "admins see the URL")


@test
def run_without_callback_has_no_webhook():
    tid = make_template(FAST, 1)
    rid = gen_ok(FAST, tid)["id"]
    eq(wait_run(FAST, rid)["webhook"], None, "webhook of a run without callback_url")


@test
def failed_run_delivers_run_failed():
    rec = Receiver().start()
    cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"endpoints": [{"name": "broken", "type": "command", "argv": ["/bin/false"]}]}, cfg)
    cfg.close()
    temp_files.append(cfg.name)
    d = Daemon(extra_args=["--config", cfg.name, "--outbound-addresses", "all", "--generate-rate", "0",
                           "--access-log", "false"], env={"SETFORGE_WEBHOOK_SECRET": SECRET})
    try:
        tid = make_template(d, 2)
        rid = gen_ok(d, tid, callback_url=rec.url)["id"]
        fin = wait_run(d, rid)
        eq(fin["status"], "failed", "run status")
        wait_webhook(d, rid, lambda h: h["status"] == "delivered", "delivered")
        got = rec.log()
        eq(len(got), 1, "deliveries")
        check_verified(got[0], "run.failed")
        eq(got[0]["payload"]["type"], "run.failed", "type")
        eq(got[0]["payload"]["data"]["counts"], {"total": 2, "succeeded": 0, "failed": 2, "canceled": 0}, "counts")
        eq(got[0]["payload"]["data"]["album_id"], None, "no album")
    finally:
        d.cleanup()


@test
def canceled_run_delivers_run_canceled():
    rec = Receiver().start()
    d = Daemon(extra_args=["--outbound-addresses", "all", "--generate-rate", "0", "--workers", "1",
                           "--procedural-delay-ms", str(int(bound(200))), "--access-log", "false"],
               env={"SETFORGE_WEBHOOK_SECRET": SECRET})
    try:
        tid = make_template(d, 20)
        rid = gen_ok(d, tid, callback_url=rec.url)["id"]
        expect_json(d.post("/api/runs/%d/cancel" % rid), 200)
        wait_webhook(d, rid, lambda h: h["status"] == "delivered", "delivered")
        fin = wait_run(d, rid)
        got = rec.log()
        eq(len(got), 1, "deliveries")
        check_verified(got[0], "run.canceled")
        data = got[0]["payload"]["data"]
        eq((got[0]["payload"]["type"], data["status"]), ("run.canceled", "canceled"), "type and status")
        eq(data["counts"]["total"], 20, "total")
        check(data["counts"]["canceled"] >= 1, "canceled items counted: %s" % data["counts"])
        eq(data["finished_at"], fin["completed_at"], "finished_at")
    finally:
        d.cleanup()


# ---------------------------------------------------------------- retries


@test
def five_failed_attempts_end_failed_with_the_errors_on_the_run():
    rec = Receiver(mode="fail500").start()
    gave_up_before = metric(FAST, "gave_up")
    tid = make_template(FAST, 1)
    rid = gen_ok(FAST, tid, callback_url=rec.url)["id"]
    hook = wait_webhook(FAST, rid, lambda h: h["status"] == "failed", "failed after 5 attempts")
    eq(hook["attempts"], 5, "attempts")
    check("HTTP 500" in hook["last_error"] and "failing on purpose" in hook["last_error"],
          "last_error %r" % hook["last_error"])
    eq(hook["next_attempt_at"], None, "no next attempt")
    eq([(a["attempt"], a["http_status"]) for a in hook["attempts_log"]], [(i, 500) for i in range(1, 6)],
       "attempts_log")
    check(all("HTTP 500" in a["error"] for a in hook["attempts_log"]), "each attempt's error")
    got = rec.log()
    eq(len(got), 5, "the receiver got every attempt")
    for g in got:
        check_verified(g, "attempt")
    eq({g["id"] for g in got}, {hook["webhook_id"]}, "one webhook-id across retries")
    check(metric(FAST, "gave_up") >= gave_up_before + 1, "gave_up counted")
    check(metric(FAST, "failed_attempt") >= 5, "failed attempts counted")


@test
def a_redirect_is_a_failed_attempt():
    rec = Receiver(mode="redirect").start()
    tid = make_template(FAST, 1)
    rid = gen_ok(FAST, tid, callback_url=rec.url)["id"]
    hook = wait_webhook(FAST, rid, lambda h: h["status"] == "failed", "failed")
    check("307" in hook["last_error"] and "redirect" in hook["last_error"], "last_error %r" % hook["last_error"])
    got = rec.log()
    eq(len(got), 5, "5 attempts, each answered with a redirect")
    check(all(g["path"] == "/hook" for g in got), "the redirect was never followed: %s" % [g["path"] for g in got])


@test
def no_answer_within_webhook_timeout_ms_is_a_failed_attempt():
    rec = Receiver(mode="hang").start()
    d = Daemon(extra_args=["--outbound-addresses", "all", "--generate-rate", "0", "--webhook-retry-base-ms", "50",
                           "--webhook-timeout-ms", "300", "--access-log", "false"],
               env={"SETFORGE_WEBHOOK_SECRET": SECRET})
    try:
        rid = gen_ok(d, make_template(d, 1), callback_url=rec.url)["id"]
        hook = wait_webhook(d, rid, lambda h: h["status"] == "failed", "failed after 5 timeouts")
        check("timed out" in hook["last_error"] or "timeout" in hook["last_error"], "last_error %r" % hook["last_error"])
        eq(len(rec.log()), 5, "the receiver saw each attempt")
    finally:
        d.cleanup()


@test
def a_receiver_that_is_down_gets_the_retries_then_the_delivery():
    port = free_port()  # nothing listens there yet
    url = "http://127.0.0.1:%d/hook" % port
    tid = make_template(SLOWRETRY, 1)
    rid = gen_ok(SLOWRETRY, tid, callback_url=url)["id"]
    hook = wait_webhook(SLOWRETRY, rid, lambda h: h["attempts"] >= 2, "two failed attempts")
    eq(hook["status"], "pending", "still pending after two attempts: %s" % hook)
    check(hook["last_error"] and "connect" in hook["last_error"], "last_error %r" % hook["last_error"])
    check(hook["next_attempt_at"], "next_attempt_at is set")
    rec = Receiver(port=port).start()
    hook = wait_webhook(SLOWRETRY, rid, lambda h: h["status"] == "delivered", "delivered once the receiver is up",
                        timeout=90)
    got = rec.log()
    eq(len(got), 1, "deliveries")
    check_verified(got[0], "late delivery")
    eq(got[0]["id"], hook["webhook_id"], "the same webhook-id as the failed attempts")
    check(hook["attempts"] >= 3, "attempts %d" % hook["attempts"])
    eq(hook["attempts_log"][-1]["error"], None, "the last attempt succeeded")
    check(all(a["error"] for a in hook["attempts_log"][:-1]), "the earlier attempts show their errors")


@test
def a_restart_between_attempts_does_not_lose_the_delivery():
    d = Daemon(extra_args=["--outbound-addresses", "all", "--generate-rate", "0", "--webhook-retry-base-ms", "2000",
                           "--access-log", "false"], env={"SETFORGE_WEBHOOK_SECRET": SECRET})
    try:
        port = free_port()
        url = "http://127.0.0.1:%d/hook" % port
        tid = make_template(d, 1)
        rid = gen_ok(d, tid, callback_url=url)["id"]
        first = wait_webhook(d, rid, lambda h: h["attempts"] >= 1, "a failed attempt")
        eq(first["status"], "pending", "pending when the daemon stops")
        eq(metric(d, "pending"), 1, "setforge_webhook_pending")
        d.stop()
        rec = Receiver(port=port).start()
        d.start()
        hook = wait_webhook(d, rid, lambda h: h["status"] == "delivered", "delivered after the restart", timeout=60)
        got = rec.log()
        eq(len(got), 1, "deliveries")
        check_verified(got[0], "delivery after a restart")
        eq(metric(d, "pending"), 0, "setforge_webhook_pending once delivered")
        eq((got[0]["id"], hook["webhook_id"]), (first["webhook_id"], first["webhook_id"]),
           "the webhook-id survives the restart")
        check_secret_hidden(d)
    finally:
        d.cleanup()


@test
def an_attempt_cut_by_a_stop_or_a_crash_is_sent_again_with_the_same_id():
    """A receiver that never answers: SIGTERM interrupts the attempt (the daemon does
    not wait out webhook_timeout_ms), kill -9 loses it; both times the delivery stays
    pending and the next start sends it again, with the same webhook-id (at least once)."""
    rec = Receiver(mode="hang").start()
    d = Daemon(extra_args=["--outbound-addresses", "all", "--generate-rate", "0", "--webhook-timeout-ms", "600000",
                           "--access-log", "false"], env={"SETFORGE_WEBHOOK_SECRET": SECRET})
    try:
        tid = make_template(d, 1)
        rid = gen_ok(d, tid, callback_url=rec.url)["id"]
        wait_for(lambda: len(rec.log()) >= 1, 30, "the first attempt reaching the receiver")
        eq(d.stop(), 0, "exit status of a stop during an attempt")
        d.start()
        wait_for(lambda: len(rec.log()) >= 2, 30, "the attempt sent again after the restart")
        d.kill9()
        expect_status_204(http_request(rec.port, "POST", "/_mode/ok", timeout=5))
        d.start()
        hook = wait_webhook(d, rid, lambda h: h["status"] == "delivered", "delivered after the crash")
        got = rec.log()
        eq(len(got), 3, "attempts received: hung, hung, answered")
        for g in got:
            check_verified(g, "attempt")
        eq({g["id"] for g in got}, {hook["webhook_id"]}, "one webhook-id")
        eq(hook["attempts"], 1, "only the answered attempt was recorded")
    finally:
        d.cleanup()


def expect_status_204(r):
    eq(r.status, 204, "receiver mode change")


# ---------------------------------------------------------------- the guard


@test
def the_ssrf_guard_refuses_loopback_under_the_default_policy():
    rec = Receiver().start()
    tid = make_template(GUARDED, 1)
    for url in (rec.url, "http://localhost:%d/hook" % rec.port, "http://2130706433:%d/hook" % rec.port):
        rid = gen_ok(GUARDED, tid, callback_url=url)["id"]
        hook = wait_webhook(GUARDED, rid, lambda h: h["status"] == "failed", "refused 5 times")
        eq(hook["attempts"], 5, "attempts")
        check("refused" in hook["last_error"] and " is loopback (" in hook["last_error"]
              and "outbound_addresses" in hook["last_error"], "last_error names the rule: %r" % hook["last_error"])
        eq([a["http_status"] for a in hook["attempts_log"]], [None] * 5, "no answer, ever")
    eq(rec.log(), [], "the receiver got nothing")


# ---------------------------------------------------------------- validation and the secret


@test
def callback_url_without_a_secret_is_400():
    tid = make_template(NOSECRET, 1)
    before = expect_json(NOSECRET.get("/api/runs"), 200)["total"]
    j = expect_error(generate(NOSECRET, tid, callback_url="http://127.0.0.1:9/hook"), 400, "invalid_request",
                     field="callback_url")
    check("webhook_secret" in j["fields"]["callback_url"], "says why: %r" % j["fields"]["callback_url"])
    eq(expect_json(NOSECRET.get("/api/runs"), 200)["total"], before, "no run created")
    gen_ok(NOSECRET, tid)  # without callback_url, generate works
    gen_ok(NOSECRET, tid, callback_url=None)  # null is no callback


@test
def bad_callback_urls_are_400_with_fields():
    tid = make_template(FAST, 1)
    before = expect_json(FAST.get("/api/runs"), 200)["total"]
    bad = [123, True, [], {}, "", "ftp://example.invalid/x", "file:///etc/passwd", "gopher://127.0.0.1/",
           "javascript:alert(1)", "http://", "https:///path", "http://:80/x", "http://user:pw@127.0.0.1/hook",
           "http://127.0.0.1/a b", "http://127.0.0.1/\n", "http://127.0.0.1/\u00e9",
           "http://127.0.0.1/" + "a" * 2100, "127.0.0.1/hook"]
    for u in bad:
        j = expect_error(generate(FAST, tid, callback_url=u), 400, "invalid_request", field="callback_url")
        check(isinstance(j["fields"]["callback_url"], str) and j["fields"]["callback_url"],
              "a sentence for %r" % (u,))
    eq(expect_json(FAST.get("/api/runs"), 200)["total"], before, "no run created")
    # accepted: an upper-case scheme, a port, a query (nothing listens on port 9: their
    # deliveries fail, which is not what this test looks at)
    for u in ("HTTP://127.0.0.1:9/hook", "https://127.0.0.1:9/x?y=1#z"):
        eq(gen_ok(FAST, tid, callback_url=u)["webhook"]["url"], u, "stored as given")


@test
def a_bad_secret_is_a_config_error_that_does_not_quote_it():
    for secret in ("not-a-secret-at-all", "whsec_***notbase64***", "whsec_c2hvcnQ="):
        p = cli(["serve", "--port", str(free_port()), "--db", os.path.join(tempfile.gettempdir(), "never.db")],
                env={"SETFORGE_WEBHOOK_SECRET": secret})
        eq(p.returncode, 2, "exit status for %r" % secret)
        err = p.stderr.decode("utf-8", "replace")
        check("webhook_secret" in err, "the error names the setting: %s" % err)
        check(secret not in err and secret[6:] not in err, "the error quotes the secret: %s" % err)


@test
def the_secret_is_not_in_help_nor_logs():
    p = cli(["serve", "--help"], env={"SETFORGE_WEBHOOK_SECRET": SECRET})
    eq(p.returncode, 0, "serve --help")
    out = p.stdout.decode() + p.stderr.decode()
    check("webhook_secret" in out.replace("-", "_"), "the setting is listed")
    check(SECRET not in out and SECRET[6:] not in out, "help prints the secret")
    check_secret_hidden(FAST)
    check_secret_hidden(SLOWRETRY)


def setup():
    global FAST, SLOWRETRY, NOSECRET, GUARDED
    env = {"SETFORGE_WEBHOOK_SECRET": SECRET}
    common = ["--generate-rate", "0", "--access-log", "false"]
    FAST = Daemon(extra_args=common + ["--outbound-addresses", "all", "--webhook-retry-base-ms", "100"], env=env)
    SLOWRETRY = Daemon(extra_args=common + ["--outbound-addresses", "all", "--webhook-retry-base-ms", "3000"], env=env)
    NOSECRET = Daemon(extra_args=common)
    GUARDED = Daemon(extra_args=common + ["--webhook-retry-base-ms", "50"], env=env)


def teardown(_):
    for r in receivers:
        r.stop()
    for d in (FAST, SLOWRETRY, NOSECRET, GUARDED):
        if d is not None:
            d.cleanup()
    for f in temp_files:
        os.unlink(f)


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
