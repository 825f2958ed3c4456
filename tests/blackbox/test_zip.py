"""Black-box tests of GET /api/albums/<id>/download.zip and /api/runs/<id>/download.zip
(docs/download.md).

The big album (2,000 images of ~48 KiB, ~94 MiB) is written straight into the
database and the image tree (rows, files and album links the way the engine
leaves them), which takes a few seconds where drawing them would take minutes;
one real procedural run checks the names a template gives. The daemon's peak
RSS (VmHWM) is printed before and after the big download: a daemon that built
the zip in memory would grow by the zip's size.
"""

import csv
import hashlib
import http.client
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOWDOWN, Daemon, bound, check, eq, expect_error, expect_json, now_ts, run, test, wait_for, wait_run

D = None
SLOW = None  # a procedural endpoint that takes its time: runs stay running
BIG = 2000
BIG_ALBUM = None  # id
BIG_IMAGES = None  # image ids in album order
SAFE = re.compile(r"^[a-z0-9_-]+\.png$")
RNG = random.Random(12)


def png(seed, side=128):
    """A valid side x side RGB PNG of noise (incompressible: ~48 KiB at 128)."""
    r = random.Random(seed)
    raw = b"".join(b"\0" + r.randbytes(side * 3) for _ in range(side))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def store_file(data):
    sha = hashlib.sha256(data).hexdigest()
    d = os.path.join(D.data_dir, "images", sha[:2])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, sha + ".png"), "wb") as f:
        f.write(data)
    return sha


def file_path(sha):
    return os.path.join(D.data_dir, "images", sha[:2], sha + ".png")


def make_album(n, template_id=None, keys=None, public=True, side=128, name="big album"):
    """An album of n images filed the way a run files them: a run of the
    template (when given), image rows with item indexes, positions = item
    indexes. Returns (album id, image ids in album order)."""
    c = D.db_connect()
    try:
        run_id = None
        if template_id:
            run_id = c.execute("INSERT INTO runs (template_id, album_name, user_theme, status, total_items, steps, "
                               "seed, width, height, guidance_scale, created_at) VALUES (?, ?, 't', 'completed', ?, "
                               "20, 1, ?, ?, 7.5, ?)", (template_id, name, n, side, side, now_ts())).lastrowid
        aid = c.execute("INSERT INTO albums (name, source_type, source_id, is_public, created_at, updated_at) "
                        "VALUES (?, 'batch_generation', ?, ?, ?, ?)",
                        (name, run_id, 1 if public else 0, now_ts(), now_ts())).lastrowid
        if run_id:
            c.execute("UPDATE runs SET album_id = ? WHERE id = ?", (aid, run_id))
        ids = []
        for i in range(n):
            data = png(RNG.random(), side)
            sha = store_file(data)
            iid = c.execute("INSERT INTO images (prompt, negative_prompt, seed, steps, guidance_scale, width, "
                            "height, loras, run_id, item_index, sha256, bytes, backend, created_at) VALUES "
                            "(?, 'blurry, \"bad\"', ?, 20, 7.5, ?, ?, '[{\"name\":\"ink\",\"weight\":0.6}]', ?, ?, "
                            "?, ?, 'procedural', ?)",
                            ("card %d, with \"quotes\", commas\nand a newline" % i, 1000 + i, side, side, run_id,
                             i if run_id else None, sha, len(data), now_ts())).lastrowid
            c.execute("INSERT INTO album_images (album_id, image_id, position, added_at) VALUES (?, ?, ?, ?)",
                      (aid, iid, i, now_ts()))
            ids.append(iid)
        c.commit()
        return aid, ids
    finally:
        c.close()


def peak_rss_kib():
    with open("/proc/%d/status" % D.proc.pid) as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))


def download(aid, token=None, after_first=None):
    return download_path("/api/albums/%d/download.zip" % aid, token=token, after_first=after_first)


def download_path(url, token=None, after_first=None, daemon=None):
    """Streams the zip at url into a new file: (status, headers, path,
    bytes). after_first(): called once 1 MiB has arrived."""
    d = daemon or D
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=bound(60))
    headers = {"Authorization": "Bearer " + d.tok(token)} if token else {}
    t0 = time.time()
    conn.request("GET", url, headers=headers)
    r = conn.getresponse()
    download_path.ttfb = time.time() - t0
    path = os.path.join(d.dir, "dl-%d.zip" % RNG.randrange(1 << 30))
    total = 0
    called = False
    with open(path, "wb") as f:
        while True:
            chunk = r.read(65536)
            if not chunk:
                break
            f.write(chunk)
            total += len(chunk)
            if after_first and not called and total >= 1 << 20:
                called = True
                after_first()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    return r.status, hdrs, path, total


def open_data_files(d=None):
    """The daemon's descriptors on files of its data directory (images being
    sent, the unlinked manifest spools)."""
    d = d or D
    out = []
    for fd in os.listdir("/proc/%d/fd" % d.proc.pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (d.proc.pid, fd))
        except OSError:
            continue
        if target.startswith(os.path.realpath(d.data_dir)) or target.startswith(d.data_dir):
            out.append(target)
    return out


def no_open_data_files():
    wait_for(lambda: not open_data_files(), 10, lambda: "data files still open: %r" % open_data_files())


def unzip_t(path):
    p = subprocess.run(["unzip", "-t", "-q", path], capture_output=True, text=True)
    check(p.returncode == 0, "unzip -t %s: %s %s" % (path, p.stdout[-500:], p.stderr[-500:]))


def api_rows(aid, token="admin"):
    rows, page = [], 1
    while True:
        j = expect_json(D.get("/api/albums/%d?per_page=100&page=%d" % (aid, page), token=token), 200)
        rows += j["images"]
        if page >= j["pages"]:
            return rows
        page += 1


def check_against_api(path, aid, token="admin"):
    """The zip's manifests against the API's rows, and each file against its
    sha256. Returns the zip's image names."""
    rows = api_rows(aid, token)
    z = zipfile.ZipFile(path)
    names = z.namelist()
    eq(names[:2], ["manifest.json", "manifest.csv"], "manifests first")
    m = json.loads(z.read("manifest.json"))
    eq(m["album"]["id"], aid, "manifest album")
    imgs = m["images"]
    eq([i["id"] for i in imgs], [r["id"] for r in rows], "manifest images in album order")
    for i, r in zip(imgs, rows):
        for k, v in r.items():
            eq(i.get(k), v, "manifest %s of image %d" % (k, r["id"]))
    files = names[2:]
    eq(files, [i["file"] for i in imgs], "zip entries = manifest files")
    eq(len(set(files)), len(files), "names unique")
    for f in files:
        check(SAFE.match(f), "unsafe name %r" % f)
    for i in imgs:
        eq(hashlib.sha256(z.read(i["file"])).hexdigest(), i["sha256"], "sha256 of %s" % i["file"])
        eq(z.getinfo(i["file"]).compress_type, zipfile.ZIP_STORED, "PNG stored")
    csvrows = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode("utf-8"), newline="")))
    eq(len(csvrows), len(imgs), "CSV rows")
    for c, i in zip(csvrows, imgs):
        eq((c["file"], int(c["image_id"]), c["prompt"], c["negative_prompt"], c["sha256"], c["size"]),
           (i["file"], i["id"], i["prompt"], i["negative_prompt"], i["sha256"], "%dx%d" % (i["width"], i["height"])),
           "CSV row of %s" % i["file"])
        eq(json.loads(c["loras"]), i["loras"], "CSV loras")
    return files


# ---------------------------------------------------------------- the big album


@test
def big_album_streams_with_flat_memory():
    before = peak_rss_kib()
    t = time.time()
    status, hdrs, path, total = download(BIG_ALBUM)
    took = time.time() - t
    after = peak_rss_kib()
    eq(status, 200, "status")
    eq(hdrs.get("content-type"), "application/zip", "content type")
    check("content-length" not in hdrs and hdrs.get("transfer-encoding") == "chunked", "streamed: %r" % hdrs)
    print("# zip of %d images: %.1f MiB, headers after %.0f ms, all in %.2fs; daemon peak RSS %d KiB before, "
          "%d KiB after (+%d KiB)" % (BIG, total / 1048576.0, download_path.ttfb * 1000, took, before, after,
                                      after - before), flush=True)
    check(total > BIG * 45000, "the zip holds the files (%d bytes)" % total)
    # Under ASan (SF_SLOW) freed memory sits in a quarantine of up to 256 MiB,
    # so every small allocation of the snapshot (~25 KiB per image there, +50
    # MiB in all) shows in the peak; the release build grows by ~2 MiB.
    check(after - before < 64 * 1024 * SLOWDOWN, "peak RSS grew by %d KiB" % (after - before))
    unzip_t(path)
    no_open_data_files()
    files = check_against_api(path, BIG_ALBUM)
    eq(len(files), BIG, "every image")
    width = len(str(BIG))
    eq(files[0], "%0*d_card_0.png" % (width, 1), "name of the first")
    eq(files[6], "%0*d_card_6.png" % (width, 7), "name of the 7th")
    os.unlink(path)


# ---------------------------------------------------------------- names from a real run


@test
def run_album_named_by_first_column():
    zodiac = [t for t in expect_json(D.get("/api/batch-templates"), 200)["templates"] if t["name"] == "Zodiac Signs"]
    r = D.post("/api/batch-templates/%d/generate" % zodiac[0]["id"],
               {"album_name": "Zodiac ♈ \"set\"", "user_theme": "ink", "width": 64, "height": 64})
    rid = expect_json(r, 202)["run"]["id"]
    aid = wait_run(D, rid)["album_id"]
    check(aid, "the run filed an album")
    status, hdrs, path, _ = download(aid)
    eq(status, 200, "status")
    eq(hdrs.get("content-disposition"),
       "attachment; filename=\"zodiac_set.zip\"; filename*=UTF-8''Zodiac%20%E2%99%88%20%22set%22.zip",
       "Content-Disposition")
    unzip_t(path)
    files = check_against_api(path, aid)
    eq(files[:3], ["01_aries.png", "02_taurus.png", "03_gemini.png"], "names by position and sign")
    eq(len(files), 12, "12 signs")
    m = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    eq((m["images"][0]["position"], m["images"][0]["key"], m["images"][0]["backend"]), (1, "Aries", "procedural"),
       "manifest position, key and backend")
    eq(m["images"][0]["item_index"], 0, "item index")
    # the run's own zip: the same images, under the same names
    status, _, rpath, _ = download_path("/api/runs/%d/download.zip" % rid)
    eq(status, 200, "run zip")
    unzip_t(rpath)
    rz = zipfile.ZipFile(rpath)
    eq(rz.namelist(), zipfile.ZipFile(path).namelist(), "run zip = album zip")
    rm = json.loads(rz.read("manifest.json"))
    eq((rm["run"]["id"], rm["run"]["status"]), (rid, "completed"), "run manifest")
    check("error_message" not in rm["run"], "no operator texts in the manifest")
    # a private album hides its run's zip too (docs/visibility.md)
    expect_json(D.put("/api/albums/%d" % aid, {"name": "Zodiac", "is_public": False}), 200)
    expect_error(D.get("/api/runs/%d/download.zip" % rid), 404, "not_found")
    expect_error(D.get("/api/albums/%d/download.zip" % aid), 404, "not_found")
    status, _, _, _ = download_path("/api/runs/%d/download.zip" % rid, token="admin")
    eq(status, 200, "admin")
    expect_json(D.put("/api/albums/%d" % aid, {"name": "Zodiac", "is_public": True}), 200)
    expect_error(D.get("/api/runs/999999/download.zip"), 404, "not_found")


@test
def running_run_holds_what_is_done():
    """A run still drawing has no album yet; its zip holds the images done
    when the download began, and says how far the run was."""
    zodiac = [t for t in expect_json(SLOW.get("/api/batch-templates"), 200)["templates"]
              if t["name"] == "Zodiac Signs"][0]
    r = SLOW.post("/api/batch-templates/%d/generate" % zodiac["id"],
                  {"album_name": "slow", "user_theme": "ink", "width": 64, "height": 64})
    rid = expect_json(r, 202)["run"]["id"]
    wait_run(SLOW, rid, timeout=60, cond=lambda run: run["completed_items"] >= 2)
    status, _, path, _ = download_path("/api/runs/%d/download.zip" % rid, daemon=SLOW)
    expect_json(SLOW.post("/api/runs/%d/cancel" % rid), 200)
    eq(status, 200, "status")
    unzip_t(path)
    z = zipfile.ZipFile(path)
    m = json.loads(z.read("manifest.json"))
    n = len(m["images"])
    eq(n, m["run"]["completed_items"], "the images done at the snapshot (one read for both)")
    check(2 <= n < 12 and m["run"]["status"] == "running", "a part of a running run: %d, %s"
          % (n, m["run"]["status"]))
    eq(m["run"]["album_id"], None, "no album yet")
    for i in m["images"]:
        eq(hashlib.sha256(z.read(i["file"])).hexdigest(),
           expect_json(SLOW.get("/api/images/%d" % i["id"]), 200)["sha256"], "image %d" % i["id"])
    eq([i["file"] for i in m["images"]][:2], ["01_aries.png", "02_taurus.png"], "names")


@test
def collisions_and_images_without_items():
    """Two images at one position with one key get _2; an image with no run
    item is named by its id; names stay safe and unique."""
    tid = expect_json(D.post("/api/batch-templates", {"name": "clash", "prompt_template": "{k}",
                                                       "csv": "k\n../Étoile: A\nB\n"}), 201)["id"]
    a1, i1 = make_album(2, template_id=tid, side=16, name="one")
    a2, i2 = make_album(1, template_id=tid, side=16, name="two")
    _, loose = make_album(1, side=16, name="loose")
    aid = expect_json(D.post("/api/albums", {"name": "mixed"}), 201)["id"]
    c = D.db_connect()
    for pos, iid in ((0, i1[0]), (0, i2[0]), (1, i1[1]), (2, loose[0])):
        c.execute("INSERT INTO album_images (album_id, image_id, position, added_at) VALUES (?, ?, ?, ?)",
                  (aid, iid, pos, now_ts()))
    c.commit()
    c.close()
    status, _, path, _ = download(aid)
    eq(status, 200, "status")
    unzip_t(path)
    files = check_against_api(path, aid)
    eq(files, ["1_toile_a.png", "1_toile_a_2.png", "2_b.png", "3_image_%d.png" % loose[0]], "names")


@test
def file_missing_on_disk():
    """A row whose file is gone (removed by hand) is left out of the zip and
    its manifests; the rest is whole."""
    aid, ids = make_album(3, side=16, name="holey")
    sha = expect_json(D.get("/api/images/%d" % ids[1]), 200)["sha256"]
    os.unlink(file_path(sha))
    status, _, path, _ = download(aid)
    eq(status, 200, "status")
    unzip_t(path)
    z = zipfile.ZipFile(path)
    m = json.loads(z.read("manifest.json"))
    eq([i["id"] for i in m["images"]], [ids[0], ids[2]], "the image without a file left out")
    eq(z.namelist(), ["manifest.json", "manifest.csv", "1_image_%d.png" % ids[0], "3_image_%d.png" % ids[2]],
       "entries")
    rows = list(csv.reader(io.StringIO(z.read("manifest.csv").decode(), newline="")))
    eq([r[2] for r in rows], ["image_id", str(ids[0]), str(ids[2])], "CSV rows")


# ---------------------------------------------------------------- who may download


@test
def private_album_needs_admin():
    aid, _ = make_album(3, side=16, public=False, name="secret")
    expect_error(D.get("/api/albums/%d/download.zip" % aid), 404, "not_found")
    expect_error(D.get("/api/albums/%d/download.zip" % aid, token="user"), 404, "not_found")
    status, _, path, _ = download(aid, token="admin")
    eq(status, 200, "admin")
    unzip_t(path)
    eq(len(check_against_api(path, aid)), 3, "images")
    # made public: anyone
    expect_json(D.put("/api/albums/%d" % aid, {"name": "secret", "is_public": True}), 200)
    status, _, path, _ = download(aid)
    eq(status, 200, "public now")


@test
def unknown_album_404():
    expect_error(D.get("/api/albums/999999/download.zip"), 404, "not_found")
    expect_error(D.get("/api/albums/999999/download.zip", token="admin"), 404, "not_found")
    expect_error(D.get("/api/albums/0/download.zip"), 404)
    expect_error(D.post("/api/albums/1/download.zip", {}), 405)


@test
def empty_album_valid_zip():
    aid = expect_json(D.post("/api/albums", {"name": "nothing yet"}), 201)["id"]
    status, hdrs, path, _ = download(aid)
    eq(status, 200, "status")
    unzip_t(path)
    z = zipfile.ZipFile(path)
    eq(z.namelist(), ["manifest.json", "manifest.csv"], "only the manifests")
    eq(json.loads(z.read("manifest.json"))["images"], [], "no images")
    eq(z.read("manifest.csv").decode().splitlines()[0].split(",")[:3], ["position", "file", "image_id"], "header")
    eq(len(z.read("manifest.csv").decode().splitlines()), 1, "header only")


@test
def delete_mid_stream():
    """An image deleted while the zip is being sent: the stream goes on, the
    zip holds the snapshot (the file was held), and the file is removed once
    the stream is done with it."""
    last = BIG_IMAGES[-1]
    img = expect_json(D.get("/api/images/%d" % last, token="admin"), 200)
    sha = img["sha256"]

    def delete():
        expect_json(D.delete("/api/images/%d" % last), 200)
        expect_error(D.get("/api/images/%d" % last, token="admin"), 404, "not_found")
        check(os.path.exists(file_path(sha)), "the file stays while the download needs it")

    status, _, path, total = download(BIG_ALBUM, after_first=delete)
    eq(status, 200, "status")
    unzip_t(path)
    z = zipfile.ZipFile(path)
    names = z.namelist()
    eq(len(names), BIG + 2, "the snapshot's images")
    eq(hashlib.sha256(z.read(names[-1])).hexdigest(), sha, "the deleted image, whole")
    wait_for(lambda: not os.path.exists(file_path(sha)), 10, "the deleted image's file removed after the stream")
    # the next download no longer has it
    status, _, path2, _ = download(BIG_ALBUM)
    eq(len(zipfile.ZipFile(path2).namelist()), BIG + 1, "gone from the next zip")
    os.unlink(path)
    os.unlink(path2)


@test
def client_leaves_mid_stream():
    """A client that goes away half-way ends the download: its holds end, so
    an image deleted meanwhile loses its file, and the daemon serves on."""
    victim = BIG_IMAGES[-2]
    sha = expect_json(D.get("/api/images/%d" % victim, token="admin"), 200)["sha256"]
    conn = http.client.HTTPConnection("127.0.0.1", D.port, timeout=bound(60))
    conn.request("GET", "/api/albums/%d/download.zip" % BIG_ALBUM)
    r = conn.getresponse()
    eq(r.status, 200, "status")
    got = 0
    while got < 1 << 20:
        got += len(r.read(65536))
    expect_json(D.delete("/api/images/%d" % victim), 200)
    check(os.path.exists(file_path(sha)), "held while the download is open")
    # past the manifests: their spools are closed, one image file is open
    files = open_data_files()
    check(len(files) <= 1 and not any("deleted" in f for f in files), "open while sending: %r" % files)
    conn.sock.shutdown(2)
    conn.close()
    wait_for(lambda: not os.path.exists(file_path(sha)), 30, "the file removed once the client left")
    no_open_data_files()
    status, _, path, _ = download(BIG_ALBUM)
    eq(status, 200, "the next download")
    unzip_t(path)
    os.unlink(path)


def setup():
    global D, SLOW, BIG_ALBUM, BIG_IMAGES
    D = Daemon(examples=True, extra_args=["--generate-rate", "0", "--workers", "2"])
    SLOW = Daemon(examples=True, extra_args=["--generate-rate", "0", "--workers", "1",
                                             "--procedural-delay-ms", str(300 * SLOWDOWN)])
    t = time.time()
    csv = "card\n" + "".join("Card %d\n" % i for i in range(BIG))
    tid = expect_json(D.post("/api/batch-templates", {"name": "big", "prompt_template": "{card}", "csv": csv}),
                      201)["id"]
    BIG_ALBUM, BIG_IMAGES = make_album(BIG, template_id=tid)
    print("# fixture: %d images (%.1f MiB) written in %.2fs" % (
        BIG, sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(D.data_dir) for f in fs) / 1048576.0,
        time.time() - t), flush=True)


def teardown(_):
    """A clean exit: under ASan a leak (a download's job, a hold) makes it
    non-zero."""
    bad = []
    for d in (D, SLOW):
        if d:
            rc = d.stop()
            if rc != 0:
                bad.append("daemon exited %s: %s" % (rc, d.stderr_text()[-3000:]))
            d.cleanup()
    check(not bad, "\n".join(bad))


if __name__ == "__main__":
    run(__file__, setup=setup, teardown=teardown)
