-- Versioned history of cloud configuration (SQLite). Timestamps are UTC.
CREATE TABLE sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status TEXT NOT NULL,
    items_seen BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL DEFAULT 0,
    modified BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    ephemeral_updates BIGINT NOT NULL DEFAULT 0,
    stale BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sweeps_started ON sweeps (started_at);

CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    arn TEXT,
    name TEXT,
    tags TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    version BIGINT NOT NULL,
    config_hash TEXT NOT NULL,
    observed_at TIMESTAMP NOT NULL,
    ephemeral TEXT NOT NULL,
    ephemeral_hash TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    UNIQUE (account, region, resource_type, resource_id)
);
CREATE INDEX items_type ON items (resource_type, account, region);
CREATE INDEX items_name ON items (name);
CREATE INDEX items_arn ON items (arn);
CREATE INDEX items_resource_id ON items (resource_id);

CREATE TABLE revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id BIGINT NOT NULL REFERENCES items (id),
    version BIGINT NOT NULL,
    change TEXT NOT NULL,
    cause TEXT NOT NULL,
    hash TEXT NOT NULL,
    document TEXT NOT NULL,
    ephemeral TEXT NOT NULL,
    observed_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    sweep_id BIGINT REFERENCES sweeps (id),
    origin TEXT NOT NULL
);
CREATE UNIQUE INDEX revisions_item_version ON revisions (item_id, version);
CREATE INDEX revisions_observed ON revisions (observed_at);
CREATE INDEX revisions_sweep ON revisions (sweep_id);

CREATE TABLE sweep_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep_id BIGINT NOT NULL REFERENCES sweeps (id),
    account TEXT,
    region TEXT,
    resource_type TEXT,
    origin TEXT NOT NULL,
    item TEXT,
    message TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX sweep_errors_sweep ON sweep_errors (sweep_id);
CREATE INDEX sweep_errors_scope ON sweep_errors (account, region, resource_type, at);
