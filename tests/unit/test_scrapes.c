/*
 * test_scrapes.c: scrape jobs on a real SQLite file (store/scrapes.c) and
 * downloads written as they stream (imagefile_writer, store/imagefiles.c):
 * a page claimed once, its URLs stored in page order, downloads leased and
 * settled once, a later outcome of a canceled job changing nothing, the
 * same bytes making one image and the first in page order keeping it, a
 * dead owner's leases put back (and given up after 3 attempts), the end of
 * a job with its album, and the state names.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/imagefiles.h"
#include "store/scrapes.h"
#include "store/states.h"
#include "unit_runs.h"
#include "util/fsutil.h"
#include "util/hash.h"
#include "util/xalloc.h"

static struct scraped_image image(const char *sha)
{
    struct scraped_image img = {.sha256 = sha, .bytes = 10, .width = 3, .height = 2,
                                .mime_type = "image/gif", .source_url = "http://s.test/a.gif"};
    return img;
}

static long long job(const char *url, int max)
{
    struct scrape_spec spec = {.url = url, .album_name = "scraped", .max_images = max, .creator = "adm"};
    long long id = 0;
    CHECK(scrapes_create(&spec, &id) == SF_OK && id > 0);
    return id;
}

static const char *status(long long id)
{
    static char buf[32];
    json_t *j = NULL;
    snprintf(buf, sizeof buf, "?");
    if (scrapes_get(id, &j) == SF_OK)
        snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(j, "status")));
    json_decref(j);
    return buf;
}

static void a_job_end_to_end(void)
{
    long long id = job("http://s.test/page.html", 10);
    CHECK(strcmp(status(id), "pending") == 0);
    struct scrape_page_claim pc;
    CHECK(scrapes_claim_page("w1", 60000, &pc) == 1 && pc.job_id == id && pc.max_images == 10);
    CHECK(scrapes_claim_page("w2", 60000, &(struct scrape_page_claim){0}) == 0); /* leased */
    CHECK(strcmp(status(id), "running") == 0);
    const char *urls[] = {"http://s.test/0.png", "http://s.test/1.png", "http://s.test/2.png",
                          "http://s.test/3.png"};
    CHECK(scrapes_page_done(id, "w1", "http://s.test/page.html", urls, 4, NULL) == SF_OK);
    CHECK(scrapes_page_done(id, "w1", "http://s.test/page.html", urls, 4, NULL) == SF_OK); /* no-op */
    CHECK(unit_scalar("SELECT count(*) FROM scrape_items WHERE job_id = ?1", id) == 4);
    scrape_page_claim_free(&pc);

    struct scrape_item_claim a, b, c, d;
    CHECK(scrapes_claim_item("w1", 60000, &a) == 1 && a.position == 0);
    CHECK(scrapes_claim_item("w1", 60000, &b) == 1 && b.position == 1);
    CHECK(scrapes_claim_item("w1", 60000, &c) == 1 && c.position == 2);
    CHECK(scrapes_claim_item("w1", 60000, &d) == 1 && d.position == 3);
    CHECK(scrapes_claim_item("w1", 60000, &(struct scrape_item_claim){0}) == 0);
    long long img_b = 0, img_a = 0, img_d = 0;
    struct scraped_image same = image("1111111111111111111111111111111111111111111111111111111111111111");
    /* position 1 finishes first; position 0 has the same bytes: 0 keeps the image */
    CHECK(scrapes_item_done(&b, "w1", &same, &img_b) == SF_OK && img_b > 0);
    CHECK(scrapes_item_done(&a, "w1", &same, &img_a) == SF_OK && img_a == img_b);
    CHECK(unit_scalar("SELECT status = 'skipped' AND reason = 'duplicate' FROM scrape_items "
                      "WHERE job_id = ?1 AND position = 1", id) == 1);
    CHECK(scrapes_item_skipped(&c, "w1", "http_404", "scrape: HTTP 404") == SF_OK);
    CHECK(scrapes_item_skipped(&c, "w1", "http_404", "again") == SF_OK); /* settled once */
    struct scraped_image other = image("2222222222222222222222222222222222222222222222222222222222222222");
    CHECK(scrapes_item_done(&d, "w1", &other, &img_d) == SF_OK && img_d > 0 && img_d != img_a);
    json_t *j = NULL;
    CHECK(scrapes_get(id, &j) == SF_OK);
    CHECK(strcmp(json_string_value(json_object_get(j, "status")), "completed") == 0);
    CHECK(json_integer_value(json_object_get(j, "images_scraped")) == 2);
    CHECK(json_integer_value(json_object_get(j, "images_skipped")) == 2);
    CHECK(json_real_value(json_object_get(j, "progress")) == 1.0);
    json_t *sk = json_object_get(j, "skipped");
    CHECK(json_integer_value(json_object_get(sk, "duplicate")) == 1 &&
          json_integer_value(json_object_get(sk, "http_404")) == 1);
    long long album = json_integer_value(json_object_get(j, "album_id"));
    json_decref(j);
    CHECK(album > 0);
    CHECK(unit_scalar("SELECT count(*) FROM album_images WHERE album_id = ?1", album) == 2);
    CHECK(unit_scalar("SELECT image_id FROM album_images WHERE album_id = ?1 ORDER BY position LIMIT 1",
                      album) == img_a);
    CHECK(unit_scalar("SELECT source_type = 'scrape' AND is_public FROM albums WHERE id = ?1", album) == 1);
    CHECK(unit_scalar("SELECT mime_type = 'image/gif' AND prompt = '' FROM images WHERE id = ?1", img_d) == 1);
    CHECK(scrapes_cancel(id) == SF_ECONFLICT);
    scrape_item_claim_free(&a);
    scrape_item_claim_free(&b);
    scrape_item_claim_free(&c);
    scrape_item_claim_free(&d);
}

static void cancel_and_empty_pages(void)
{
    long long id = job("http://s.test/empty.html", 5);
    struct scrape_page_claim pc;
    CHECK(scrapes_claim_page("w1", 60000, &pc) == 1 && pc.job_id == id);
    CHECK(scrapes_page_done(id, "w1", "http://s.test/empty.html", NULL, 0, NULL) == SF_OK);
    CHECK(strcmp(status(id), "failed") == 0);
    scrape_page_claim_free(&pc);

    id = job("http://s.test/c.html", 5);
    CHECK(scrapes_claim_page("w1", 60000, &pc) == 1);
    const char *urls[] = {"http://s.test/x.png", "http://s.test/y.png"};
    CHECK(scrapes_page_done(id, "w1", "http://s.test/c.html", urls, 2, NULL) == SF_OK);
    struct scrape_item_claim a;
    CHECK(scrapes_claim_item("w1", 60000, &a) == 1);
    CHECK(scrapes_cancel(id) == SF_OK);
    CHECK(strcmp(status(id), "canceled") == 0);
    CHECK(scrapes_cancel(id) == SF_ECONFLICT);
    CHECK(scrapes_cancel(99999) == SF_ENOTFOUND);
    long long img = -1;
    struct scraped_image late = image("3333333333333333333333333333333333333333333333333333333333333333");
    CHECK(scrapes_item_done(&a, "w1", &late, &img) == SF_OK && img == 0); /* changes nothing */
    CHECK(unit_scalar("SELECT count(*) FROM images WHERE sha256 = '3333333333333333333333333333333333333333333333333333333333333333' AND ?1", 1) == 0);
    CHECK(unit_scalar("SELECT count(*) FROM scrape_items WHERE job_id = ?1 AND status = 'canceled'", id) == 2);
    CHECK(scrapes_claim_item("w1", 60000, &(struct scrape_item_claim){0}) == 0);
    scrape_item_claim_free(&a);
    scrape_page_claim_free(&pc);
}

static void a_dead_owner_is_rescued(void)
{
    long long id = job("http://s.test/r.html", 5);
    struct scrape_page_claim pc;
    CHECK(scrapes_claim_page("dead", 60000, &pc) == 1);
    scrape_page_claim_free(&pc);
    /* the page of a dead owner comes back */
    CHECK(scrapes_rescue("alive", 3) == 1);
    CHECK(scrapes_claim_page("alive", 60000, &pc) == 1 && pc.job_id == id);
    const char *urls[] = {"http://s.test/k.png"};
    CHECK(scrapes_page_done(id, "alive", "http://s.test/r.html", urls, 1, NULL) == SF_OK);
    scrape_page_claim_free(&pc);
    /* a download interrupted three times is given up */
    struct scrape_item_claim a;
    for (int i = 0; i < 3; i++) {
        CHECK(scrapes_claim_item("dead", 60000, &a) == 1);
        scrape_item_claim_free(&a);
        CHECK(scrapes_rescue("alive", 3) == 1);
    }
    CHECK(unit_scalar("SELECT reason = 'interrupted' FROM scrape_items WHERE job_id = ?1", id) == 1);
    CHECK(strcmp(status(id), "failed") == 0);

    /* a page given back at a stop is not an attempt */
    id = job("http://s.test/stopped.html", 5);
    for (int i = 0; i < 4; i++) {
        CHECK(scrapes_claim_page("alive", 60000, &pc) == 1 && pc.job_id == id);
        CHECK(scrapes_page_release(id, "alive") == SF_OK);
        scrape_page_claim_free(&pc);
    }
    CHECK(unit_scalar("SELECT attempts FROM scrape_jobs WHERE id = ?1", id) == 0);
    CHECK(scrapes_claim_page("alive", 60000, &pc) == 1 && pc.job_id == id);
    CHECK(scrapes_page_failed(id, "alive", "scrape: the page answered HTTP 500") == SF_OK);
    CHECK(strcmp(status(id), "failed") == 0);
    scrape_page_claim_free(&pc);

    /* a page interrupted three times fails its job */
    id = job("http://s.test/crashy.html", 5);
    for (int i = 0; i < 3; i++) {
        CHECK(scrapes_claim_page("dead", 60000, &pc) == 1 && pc.job_id == id);
        scrape_page_claim_free(&pc);
        CHECK(scrapes_rescue("alive", 3) == 1);
    }
    CHECK(strcmp(status(id), "failed") == 0);
    CHECK(scrapes_claim_page("alive", 60000, &pc) == 0);
}

static void the_writer(const char *dir)
{
    char err[256] = "";
    struct imagefile_writer *w = imagefile_writer_open(dir, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK(imagefile_writer_write(w, "hello ", 6) == 0 && imagefile_writer_write(w, "world", 5) == 0);
    char buf[16] = "";
    CHECK(imagefile_writer_read(w, 6, buf, sizeof buf) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK(imagefile_writer_size(w) == 11);
    char sha[65], want[65];
    CHECK(imagefile_writer_commit_held(w, sha, err, sizeof err) == SF_OK);
    sha256_hex("hello world", 11, want);
    CHECK_STR(sha, want);
    imagefile_release(sha);
    unsigned char *data = NULL;
    size_t len = 0;
    CHECK(imagefile_read(dir, sha, &data, &len) == 0 && len == 11 && memcmp(data, "hello world", 11) == 0);
    free(data);
    /* the same bytes again: one file; an aborted writer leaves nothing */
    w = imagefile_writer_open(dir, err, sizeof err);
    imagefile_writer_write(w, "hello world", 11);
    CHECK(imagefile_writer_commit_held(w, sha, err, sizeof err) == SF_OK && strcmp(sha, want) == 0);
    imagefile_release(sha);
    w = imagefile_writer_open(dir, err, sizeof err);
    imagefile_writer_write(w, "never kept", 10);
    imagefile_writer_abort(w);
    imagefile_writer_abort(NULL);
    CHECK(imagefile_sweep_temps(dir) == 0);
    imagefile_remove(dir, sha);
}

int main(void)
{
    char path[] = "/tmp/sf-scrapes-XXXXXX";
    unit_open_db(path);
    a_job_end_to_end();
    cancel_and_empty_pages();
    a_dead_owner_is_rescued();

    char dir[] = "/tmp/sf-scrapes-dir-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    the_writer(dir);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(cmd);

    enum scrape_state s;
    for (int i = 0; i < SCRAPE_NSTATES; i++)
        CHECK(scrape_state_parse(scrape_state_name((enum scrape_state)i), &s) == 0 && (int)s == i);
    CHECK(scrape_state_parse("done", &s) == -1);
    CHECK(strcmp(scrape_item_state_name(SITEM_SKIPPED), "skipped") == 0);
    CHECK(scrape_state_is_final(SCRAPE_CANCELED) && !scrape_state_is_final(SCRAPE_RUNNING));

    db_close_thread();
    unit_remove_db(path);
    UNIT_END("scrapes");
}
