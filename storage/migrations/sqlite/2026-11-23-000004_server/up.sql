-- Server: API tokens, browser sessions, and the indexes the UI's pages page on (SQLite).
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    principal TEXT NOT NULL,
    role TEXT NOT NULL,
    token_id BIGINT REFERENCES api_tokens (id),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_token ON sessions (token_id);

-- Keyset pagination of findings: (state, sort key, id) scanned in either direction.
CREATE INDEX findings_state_score_id ON findings (state, score, id);
CREATE INDEX findings_state_last_seen_id ON findings (state, last_seen_at, id);
CREATE INDEX findings_state_first_seen_id ON findings (state, first_seen_at, id);
CREATE INDEX findings_score_id ON findings (score, id);
CREATE INDEX findings_first_seen ON findings (first_seen_at);
-- The summary: counts by severity, and per-item counts joined to items once per item.
CREATE INDEX findings_state_severity ON findings (state, severity);
CREATE INDEX findings_state_item ON findings (state, item_id);
CREATE INDEX items_account ON items (account, resource_type);
CREATE INDEX sweeps_source ON sweeps (source, id);
