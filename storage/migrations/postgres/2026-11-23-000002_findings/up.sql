-- Findings and their lifecycle, rule errors (PostgreSQL).
CREATE TABLE findings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    item_id BIGINT NOT NULL REFERENCES items (id),
    rule_id TEXT NOT NULL,
    finding_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    score BIGINT NOT NULL,
    rule_score BIGINT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    remediation TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    fixed_at TIMESTAMP,
    first_revision_id BIGINT,
    last_revision_id BIGINT,
    reopen_count BIGINT NOT NULL DEFAULT 0,
    justified_by TEXT,
    justification TEXT,
    justified_at TIMESTAMP,
    justified_until TIMESTAMP,
    suppressed_by TEXT
);
CREATE INDEX findings_state_score ON findings (state, score);
CREATE INDEX findings_item ON findings (item_id);
CREATE INDEX findings_rule ON findings (rule_id);

CREATE TABLE finding_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    finding_id BIGINT NOT NULL REFERENCES findings (id),
    at TIMESTAMP NOT NULL,
    event TEXT NOT NULL,
    actor TEXT,
    detail TEXT NOT NULL,
    revision_id BIGINT
);
CREATE INDEX finding_events_finding ON finding_events (finding_id);
CREATE INDEX finding_events_at ON finding_events (at);

CREATE TABLE rule_errors (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id TEXT NOT NULL,
    item_id BIGINT REFERENCES items (id),
    revision_id BIGINT,
    message TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX rule_errors_at ON rule_errors (at);
CREATE INDEX rule_errors_rule ON rule_errors (rule_id, at);
