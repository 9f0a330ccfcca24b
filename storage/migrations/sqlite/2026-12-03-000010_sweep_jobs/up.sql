-- Sweep jobs are leased, not owned by one process: each (source, account) sweep is a
-- row, and any worker on this database takes a due one whose lease is free or expired
-- (FOR UPDATE SKIP LOCKED on PostgreSQL), keeps the lease alive with a heartbeat and
-- gives it back with the next due time. A job whose worker died is taken over once
-- its lease expires; an unexpired lease is never taken.
CREATE TABLE sweep_jobs (
    job TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    -- '' for a source swept as one job (a delivery directory or bucket, one account).
    account TEXT NOT NULL DEFAULT '',
    -- The role to enter the account through (organisation accounts; NULL otherwise).
    role_arn TEXT,
    -- Digest of the source's definition the job was scheduled with: an edited source
    -- is due at once, and workers reading different definitions are reported.
    definition TEXT NOT NULL,
    interval_ms BIGINT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    leased_by TEXT,
    lease_until TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    runs BIGINT NOT NULL DEFAULT 0,
    takeovers BIGINT NOT NULL DEFAULT 0,
    last_status TEXT,
    last_message TEXT
);
CREATE INDEX sweep_jobs_due ON sweep_jobs (due_at);

-- Named leases shared by every worker: `audit` makes one audit-and-route pass run at a
-- time across processes, so two workers never open the same finding twice or route a
-- baseline's events one by one.
CREATE TABLE worker_leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT,
    lease_until TIMESTAMP
);
INSERT INTO worker_leases (name) VALUES ('audit');
