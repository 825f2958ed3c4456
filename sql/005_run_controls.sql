-- 005_run_controls: a run can be paused, and has a priority
-- (docs/run-controls.md).
--
-- Status 'paused' joins the runs.status CHECK. SQLite cannot alter a CHECK,
-- and the usual rebuild of the table (create, copy, drop, rename) is not
-- possible here: migrations run in one transaction with foreign keys on,
-- where dropping runs would cascade to its items, events and images. So the
-- table's text is edited in place, the procedure SQLite documents for
-- loosening a CHECK (https://sqlite.org/lang_altertable.html, "otheralter"):
-- every existing row passes the wider list, so nothing needs checking. The
-- ALTER TABLE after it bumps the schema cookie, so other connections reload.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''queued'', ''running'', ''completed'', ''failed'', ''canceled''))',
    'CHECK (status IN (''queued'', ''running'', ''paused'', ''completed'', ''failed'', ''canceled''))')
WHERE type = 'table' AND name = 'runs';
PRAGMA writable_schema = RESET;
-- Fails the migration (malformed JSON) if the text above did not match.
SELECT json(CASE WHEN (SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'runs')
                      LIKE '%''running'', ''paused'', ''completed''%'
            THEN '1' ELSE 'runs.status CHECK not widened' END);

-- Higher runs are claimed first; within a level, round robin across runs.
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0
    CHECK (priority BETWEEN -100 AND 100);

-- The claim walks the drawable runs in its order, highest priority first,
-- and stops at the first with a due item (queue/queue.c, SQL_CLAIM).
CREATE INDEX runs_claim ON runs (priority DESC, id) WHERE status IN ('queued', 'running');

-- The queue-wide pause (POST /api/queue/pause) is the meta row
-- 'queue_paused'; no schema needed.
