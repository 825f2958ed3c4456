"""Run webhooks: does the sender keep up with the engine? (docs/webhooks.md; printed,
never asserted.)

RUNS one-item runs on the procedural backend, first without a callback_url, then with
one pointing at the tests' receiver (tests/webhooks/receiver.mjs, which verifies every
delivery with the Standard Webhooks reference library): the time from the last generate
to the last run's end, and to the last delivery. Both on 127.0.0.1.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
import test_webhooks as tw  # noqa: E402
from harness import Daemon, expect_json, wait_for  # noqa: E402

RUNS = int(os.environ.get("WEBHOOK_RUNS", "300"))


def main():
    rec = tw.Receiver().start()
    d = Daemon(extra_args=["--outbound-addresses", "all", "--generate-rate", "0", "--generate-items-per-minute",
                           "0", "--access-log", "false"], env={"SETFORGE_WEBHOOK_SECRET": tw.SECRET})
    try:
        tid = tw.make_template(d, 1)
        for label, cb in (("without callback", None), ("with callback", rec.url)):
            t0 = time.time()
            for _ in range(RUNS):
                tw.gen_ok(d, tid, **({"callback_url": cb} if cb else {}))
            t1 = time.time()
            if cb:
                wait_for(lambda: len(rec.log()) >= RUNS, 300, "deliveries", interval=0.01)
            else:
                wait_for(lambda: expect_json(d.get("/api/runs?status=completed&per_page=1"), 200)["total"] >= RUNS,
                         300, "runs", interval=0.01)
            t2 = time.time()
            print("webhooks %-17s %d runs: generated in %.2f s, %s %.2f s after the last generate"
                  % (label + ":", RUNS, t1 - t0, "all delivered" if cb else "all ended", t2 - t1))
        got = rec.log()
        print("webhooks: %d of %d deliveries verified by the reference library, %d distinct webhook-ids"
              % (sum(g["verified"] for g in got), len(got), len({g["id"] for g in got})))
    finally:
        d.cleanup()
        rec.stop()


if __name__ == "__main__":
    main()
