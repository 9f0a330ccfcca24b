CREATE INDEX findings_state_score ON findings (state, score);
