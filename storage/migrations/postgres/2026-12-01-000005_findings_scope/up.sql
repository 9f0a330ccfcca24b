-- Findings carry their item's account and resource type, so the findings list filtered
-- by account or type walks one (state, account|type, score, id) index range in order.
-- Filtering items.account through the join made PostgreSQL walk the score index and
-- join ~20,000 rows to return 50 (43 ms a page at 100k findings). An item's account
-- and type are part of its identity and never change, so the copies cannot drift.
ALTER TABLE findings ADD COLUMN account TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN resource_type TEXT NOT NULL DEFAULT '';
UPDATE findings SET
    account = (SELECT items.account FROM items WHERE items.id = findings.item_id),
    resource_type = (SELECT items.resource_type FROM items WHERE items.id = findings.item_id);
CREATE INDEX findings_state_account_score_id ON findings (state, account, score, id);
CREATE INDEX findings_state_type_score_id ON findings (state, resource_type, score, id);
