-- 004_item_started_ms: when the running attempt of an item began, in unix
-- milliseconds (started_at is text to the second). A run's ETA counts the
-- time its running items have already taken (docs/runs.md, "Run fields
-- we add"), so an item stuck on a hung server shows instead of an ETA of
-- 0.1 s. NULL for items claimed before this migration.
ALTER TABLE run_items ADD COLUMN started_ms INTEGER;
