-- 007_webhooks: run webhooks (docs/webhooks.md). A run may name a
-- callback_url at generate; when it ends (completed, failed, canceled), the
-- transaction that records the end also queues one delivery here, so a
-- crash can never lose it. The delivery thread (src/queue/webhook_sender.c)
-- POSTs each due row, signed as Standard Webhooks 1.0 says, and records
-- every attempt in the row: webhook_id (the webhook-id header) stays the
-- same across retries, next_attempt_ms is when the next one is due, and
-- attempts_log keeps each attempt's time, HTTP status and error. A run that
-- is retried and ends again gets a new delivery (a new webhook_id).
ALTER TABLE runs ADD COLUMN callback_url TEXT;

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL UNIQUE,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL CHECK (json_valid(payload)),
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER,
    last_attempt_at  TEXT,
    last_error       TEXT,
    attempts_log     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(attempts_log)),
    created_at       TEXT NOT NULL,
    delivered_at     TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_run ON webhook_deliveries (run_id, id);
