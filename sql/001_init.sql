-- 001_init: every table the contract names, created up front so later work
-- adds code, not schema churn. Timestamps are RFC 3339 UTC text; JSON columns
-- are checked with json_valid. Lease times are unix milliseconds (integers)
-- because the queue compares them on every claim.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,      -- SHA-256 of the token
    is_admin     INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE batch_templates (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    prompt_template TEXT NOT NULL,
    base_prompt     TEXT NOT NULL DEFAULT '',
    style_suffix    TEXT NOT NULL DEFAULT '',
    example_theme   TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    width           INTEGER NOT NULL DEFAULT 512,
    height          INTEGER NOT NULL DEFAULT 512,
    loras           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(loras)),
    csv_columns     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(csv_columns)),
    csv_items       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(csv_items)),
    item_count      INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE albums (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    source_type TEXT NOT NULL DEFAULT 'manual'
                CHECK (source_type IN ('manual', 'batch_generation', 'scrape')),
    source_id   INTEGER,
    is_public   INTEGER NOT NULL DEFAULT 1 CHECK (is_public IN (0, 1)),
    created_by  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX albums_source ON albums (source_type, id);

CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    template_id      INTEGER NOT NULL REFERENCES batch_templates (id) ON DELETE RESTRICT,
    album_id         INTEGER REFERENCES albums (id) ON DELETE SET NULL,
    album_name       TEXT NOT NULL,
    user_theme       TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'completed', 'failed', 'canceled')),
    total_items      INTEGER NOT NULL,
    completed_items  INTEGER NOT NULL DEFAULT 0,
    failed_items     INTEGER NOT NULL DEFAULT 0,
    canceled_items   INTEGER NOT NULL DEFAULT 0,
    creator          TEXT,
    steps            INTEGER NOT NULL,
    seed             INTEGER NOT NULL,
    width            INTEGER NOT NULL,
    height           INTEGER NOT NULL,
    guidance_scale   REAL NOT NULL,
    negative_prompt  TEXT NOT NULL DEFAULT '',
    loras            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(loras)),
    idempotency_key  TEXT,
    request_hash     TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    error_message    TEXT
);
CREATE INDEX runs_template ON runs (template_id, id);
CREATE INDEX runs_status ON runs (status, id);
CREATE UNIQUE INDEX runs_idempotency ON runs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE images (
    id              INTEGER PRIMARY KEY,
    prompt          TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    seed            INTEGER,
    steps           INTEGER,
    guidance_scale  REAL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    loras           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(loras)),
    run_id          INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    item_index      INTEGER,
    sha256          TEXT NOT NULL,
    bytes           INTEGER NOT NULL,
    backend         TEXT,
    source_url      TEXT,
    created_at      TEXT NOT NULL
);
-- One image per (run, item): a rescued item that finishes twice links once.
CREATE UNIQUE INDEX images_run_item ON images (run_id, item_index)
    WHERE run_id IS NOT NULL;
CREATE INDEX images_sha256 ON images (sha256);

CREATE TABLE run_items (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_index       INTEGER NOT NULL,
    prompt           TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    image_id         INTEGER REFERENCES images (id) ON DELETE SET NULL,
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    not_before_ms    INTEGER NOT NULL DEFAULT 0,
    started_at       TEXT,
    finished_at      TEXT,
    duration_ms      INTEGER,
    endpoint         TEXT,
    UNIQUE (run_id, item_index)
);
CREATE INDEX run_items_queue ON run_items (status, run_id, item_index);

CREATE TABLE run_events (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL CHECK (json_valid(data)),
    created_at TEXT NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);

CREATE TABLE album_images (
    album_id  INTEGER NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    image_id  INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (album_id, image_id)
);
CREATE INDEX album_images_order ON album_images (album_id, position);
CREATE INDEX album_images_image ON album_images (image_id);

CREATE TABLE scrape_jobs (
    id             INTEGER PRIMARY KEY,
    url            TEXT NOT NULL,
    album_name     TEXT NOT NULL,
    max_images     INTEGER NOT NULL CHECK (max_images BETWEEN 1 AND 1000),
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'completed', 'failed', 'canceled')),
    progress       REAL NOT NULL DEFAULT 0,
    images_scraped INTEGER NOT NULL DEFAULT 0,
    album_id       INTEGER REFERENCES albums (id) ON DELETE SET NULL,
    error_message  TEXT,
    created_by     TEXT,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    completed_at   TEXT
);
