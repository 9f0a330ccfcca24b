-- Audit completeness is durable state. Each item records which of its revisions was
-- last judged, by which rule set, and when: an audit pass judges every item whose
-- latest revision, rule set or daily re-check is not yet done, so a crash between
-- storing a revision and auditing it can no longer lose that audit.
ALTER TABLE items ADD COLUMN audited_version BIGINT;
ALTER TABLE items ADD COLUMN audited_rules TEXT;
ALTER TABLE items ADD COLUMN audited_at TIMESTAMP;

-- Who runs a sweep, and when it last wrote: a sweep left `running` by a process that
-- is gone is marked `interrupted` by the next one.
ALTER TABLE sweeps ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE sweeps ADD COLUMN heartbeat_at TIMESTAMP;

-- Each rule's health as of the last audit pass that ran it: loaded and judging, not
-- loaded, erroring or suspended. What the dashboard, /metrics, status and the sweep
-- summary show.
CREATE TABLE rule_health (
    rule_id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    evaluations BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    exhausted BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    checked_at TIMESTAMP NOT NULL
);

-- `guardrail outbox requeue` gives given-up notifications a new life; their give-up
-- clock restarts at the requeue, while created_at keeps when they were first queued.
ALTER TABLE outbox ADD COLUMN requeued_at TIMESTAMP;
