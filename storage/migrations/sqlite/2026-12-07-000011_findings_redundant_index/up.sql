-- (state, score) is a prefix of findings_state_score_id (state, score, id): every query
-- it served, that index serves (on SQLite the two were the same index, the rowid being
-- the last column of both). One index fewer to update on every finding written.
DROP INDEX IF EXISTS findings_state_score;
