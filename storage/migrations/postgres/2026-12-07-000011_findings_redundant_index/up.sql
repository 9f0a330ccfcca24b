-- (state, score) is a prefix of findings_state_score_id (state, score, id): every query
-- it served, that index serves (on SQLite the two were the same index, the rowid being
-- the last column of both). One index fewer to update on every finding written.
DROP INDEX IF EXISTS findings_state_score;

-- A scope's items in id order (the audit reads a scope's network a page at a time,
-- `WHERE resource_type = ? AND account = ? AND region = ? AND id > ? ORDER BY id`):
-- without id in the index PostgreSQL sorted every remaining item of the scope for each
-- page. SQLite's index already ends with the rowid, which is the id.
CREATE INDEX items_type_id ON items (resource_type, account, region, id);
DROP INDEX IF EXISTS items_type;

-- Room in each page of items for the new version of a row: the audit marks every
-- judged item (audited_version, audited_rules, audited_at) and sweeps update ephemeral
-- facts in place, and neither touches an indexed column. With full pages each such
-- update wrote a new entry into every index of items; with room it is a heap-only
-- (HOT) update. Applies to pages written from now on.
ALTER TABLE items SET (fillfactor = 50);
