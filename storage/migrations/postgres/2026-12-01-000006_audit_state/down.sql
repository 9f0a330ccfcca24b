ALTER TABLE outbox DROP COLUMN requeued_at;
DROP TABLE rule_health;
ALTER TABLE sweeps DROP COLUMN heartbeat_at;
ALTER TABLE sweeps DROP COLUMN owner;
ALTER TABLE items DROP COLUMN audited_at;
ALTER TABLE items DROP COLUMN audited_rules;
ALTER TABLE items DROP COLUMN audited_version;
