-- 003_failed_endpoints: the endpoints each item has failed on, so a retry
-- goes to one it has not failed on yet while such an endpoint is up
-- (docs/runs.md, "The durable queue"). A JSON array of endpoint names in
-- the order they failed it; NULL while it has failed nowhere, which keeps
-- the claim's check free for the common case. Kept across an operator's
-- retry, like attempts and error.
ALTER TABLE run_items ADD COLUMN failed_endpoints TEXT
    CHECK (failed_endpoints IS NULL OR json_valid(failed_endpoints));
