#!/usr/bin/env python3
"""Crash test: kill -9 the daemon again and again in the middle of a run.

A 200-item run with simulated GPU time is generated; the daemon is killed with
SIGKILL at random moments (SF_CHAOS_KILLS times, default 10) and restarted each
time. At the end every item has exactly one image, no image is lost or linked
twice, the run's album holds the 200 images in item order, every file exists
with the right hash, and SQLite's integrity check passes.
"""
import hashlib
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOWDOWN, Daemon, check, eq, expect_json, run, test, wait_run  # noqa: E402

KILLS = int(os.environ.get("SF_CHAOS_KILLS", "10"))
ITEMS = 200
SEED = int(os.environ.get("SF_CHAOS_SEED", str(int(time.time()))))


def make_template(d):
    rows = "\n".join("item %d,%d" % (i, i % 7) for i in range(ITEMS))
    r = d.post("/api/batch-templates", {
        "name": "crash", "prompt_template": "thing {name} kind {kind}",
        "csv": "name,kind\n" + rows + "\n", "width": 64, "height": 64})
    return expect_json(r, 201)["id"]


@test
def kill9_at_random_moments_loses_nothing():
    rng = random.Random(SEED)
    print("chaos seed %d, %d kills" % (SEED, KILLS))
    # The run must outlast the kills: the daemon is up at most 0.25 s (the longest
    # wait) plus a restart between two kills, so 200 items on 2 workers need more
    # than KILLS x (0.25 s + a restart) of drawing: 4 ms x KILLS per item is 1.6 times
    # the longest waits (doubled for the slower restarts of sanitizer builds). At
    # 2 ms x KILLS a run of 10 kills could end after 9.
    delay_ms = max(50, 4 * KILLS) * (2 if SLOWDOWN > 1 else 1)
    d = Daemon(extra_args=["--procedural-delay-ms", str(delay_ms), "--workers", "2", "--max-attempts", "100",
                           "--access-log", "false"])
    try:
        tid = make_template(d)
        r = d.post("/api/batch-templates/%d/generate" % tid, {"album_name": "crash album", "user_theme": "chaos",
                                                              "seed": 7})
        run_id = expect_json(r, 202)["run"]["id"]
        kills = 0
        while kills < KILLS:
            time.sleep(rng.uniform(0.02, 0.25))  # a random moment to kill at: the subject of the test
            status = d.db_query("SELECT status FROM runs WHERE id = ?", (run_id,))[0][0]
            if status in ("completed", "failed"):
                break
            d.kill9()
            kills += 1
            d.start()
        print("killed %d times" % kills)
        run_doc = wait_run(d, run_id, timeout=120)
        # The figures (make chaos prints them for the closing note), then the same asserted.
        lost = d.db_query("SELECT count(*) FROM run_items WHERE run_id = ? AND (status != 'succeeded' "
                          "OR image_id IS NULL)", (run_id,))[0][0]
        twice = d.db_query("SELECT count(*) - count(DISTINCT image_id) FROM album_images WHERE album_id = "
                           "(SELECT album_id FROM runs WHERE id = ?)", (run_id,))[0][0]
        extra = d.db_query("SELECT count(*) - count(DISTINCT item_index) FROM images WHERE run_id = ?",
                           (run_id,))[0][0]
        print("%d kills, %d items: lost %d, linked twice %d, extra image rows %d, integrity_check %s" % (
            kills, ITEMS, lost, twice, extra, d.db_query("PRAGMA integrity_check")[0][0]))
        check(kills >= KILLS, "the run finished before enough kills happened (%d)" % kills)
        eq(run_doc["status"], "completed", "run status")
        eq(run_doc["completed_items"], ITEMS, "completed_items")
        eq(run_doc["failed_items"], 0, "failed_items")

        items = d.db_query("SELECT item_index, status, image_id FROM run_items WHERE run_id = ? "
                           "ORDER BY item_index", (run_id,))
        eq(len(items), ITEMS, "item rows")
        check(all(s == "succeeded" for _, s, _ in items), "every item succeeded")
        image_ids = [i for _, _, i in items]
        check(None not in image_ids, "every item has an image")
        eq(len(set(image_ids)), ITEMS, "distinct images per item")

        images = d.db_query("SELECT id, item_index, sha256, bytes FROM images WHERE run_id = ? "
                            "ORDER BY item_index", (run_id,))
        eq(len(images), ITEMS, "exactly one image row per item")
        eq([r[1] for r in images], list(range(ITEMS)), "image item indexes")
        for image_id, index, sha, nbytes in images:
            path = os.path.join(d.data_dir, "images", sha[:2], sha + ".png")
            check(os.path.exists(path), "file of image %d exists" % image_id)
            with open(path, "rb") as f:
                data = f.read()
            eq(hashlib.sha256(data).hexdigest(), sha, "file hash of image %d" % image_id)
            eq(len(data), nbytes, "file size of image %d" % image_id)
        leftovers = [n for root, _, files in os.walk(d.data_dir) for n in files if n.startswith(".tmp-")]
        # a kill between write and rename leaves a temp file; the next start removes it
        eq(leftovers, [], "temporary files left in the image tree")

        album_id = run_doc["album_id"]
        check(album_id, "the run has an album")
        links = d.db_query("SELECT ai.image_id, ai.position, i.item_index FROM album_images ai "
                           "JOIN images i ON i.id = ai.image_id WHERE ai.album_id = ? ORDER BY ai.position",
                           (album_id,))
        eq(len(links), ITEMS, "album links")
        eq([l[2] for l in links], list(range(ITEMS)), "album in item order")
        eq(len({l[0] for l in links}), ITEMS, "no image linked twice")
        album = expect_json(d.get("/api/albums/%d" % album_id), 200)
        eq(album["image_count"], ITEMS, "album image_count")
        eq(album["source_type"], "batch_generation", "album source_type")

        eq(d.db_query("PRAGMA integrity_check")[0][0], "ok", "integrity_check")
        eq(d.db_query("PRAGMA foreign_key_check"), [], "foreign_key_check")
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(__file__)
