ALTER TABLE items RESET (fillfactor);
CREATE INDEX items_type ON items (resource_type, account, region);
DROP INDEX IF EXISTS items_type_id;
CREATE INDEX findings_state_score ON findings (state, score);
