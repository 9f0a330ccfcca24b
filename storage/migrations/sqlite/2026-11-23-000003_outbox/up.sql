-- Durable outbox of notifications and the routing cursor (SQLite).
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    channel TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    finding_id BIGINT REFERENCES findings (id),
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    leased_until TIMESTAMP,
    last_error TEXT,
    delivered_at TIMESTAMP,
    gave_up_at TIMESTAMP,
    digest_window TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (delivered_at, gave_up_at, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created_at);

CREATE TABLE notify_cursors (
    name TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL
);
