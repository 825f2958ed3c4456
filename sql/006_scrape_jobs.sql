-- 006_scrape_jobs: scrape jobs made durable like run items (docs/scrape.md).
-- A job is leased while a worker fetches its page; the page's image URLs
-- become scrape_items rows, in page order, each leased while it downloads
-- and settled once (done with its image, or skipped with a reason), so a
-- restart resumes where the last process stopped and never fetches a
-- settled download again. Images keep their real MIME type.

ALTER TABLE scrape_jobs ADD COLUMN page_url TEXT;           -- the URL that answered (after redirects)
ALTER TABLE scrape_jobs ADD COLUMN page_fetched INTEGER NOT NULL DEFAULT 0 CHECK (page_fetched IN (0, 1));
ALTER TABLE scrape_jobs ADD COLUMN images_found INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scrape_jobs ADD COLUMN images_skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scrape_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scrape_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE scrape_jobs ADD COLUMN lease_expires_ms INTEGER;
CREATE INDEX scrape_jobs_status ON scrape_jobs (status, id);

CREATE TABLE scrape_items (
    id               INTEGER PRIMARY KEY,
    job_id           INTEGER NOT NULL REFERENCES scrape_jobs (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,          -- page order, 0-based
    url              TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'done', 'skipped', 'canceled')),
    reason           TEXT,                      -- skipped: not_an_image, too_large, refused, http_404, ...
    error            TEXT,                      -- the sentence behind the reason
    image_id         INTEGER REFERENCES images (id) ON DELETE SET NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    finished_at      TEXT,
    UNIQUE (job_id, position)
);
CREATE INDEX scrape_items_queue ON scrape_items (status, job_id, position);

ALTER TABLE images ADD COLUMN mime_type TEXT NOT NULL DEFAULT 'image/png';
