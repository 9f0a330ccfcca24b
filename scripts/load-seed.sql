-- Synthetic history for the server load test (scripts/load-server): :items items with
-- :revs revisions each, one finding per item (most open), one event per finding.
-- Runs against a freshly migrated guardrail database on PostgreSQL.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO sweeps (source, started_at, finished_at, status, items_seen, created)
VALUES ('load-test seed', now() - interval '1 hour', now(), 'succeeded', :items, :items);

INSERT INTO items (account, region, resource_type, resource_id, arn, name, tags, active,
                   version, config_hash, observed_at, ephemeral, ephemeral_hash, first_seen_at)
SELECT lpad((100000000000 + i % 20)::text, 12, '0'),
       (ARRAY['us-east-1', 'eu-west-1', 'ap-south-1'])[1 + i % 3],
       t.ty,
       t.prefix || lpad(i::text, 8, '0'),
       'arn:aws:' || t.svc || ':::' || t.prefix || lpad(i::text, 8, '0'),
       t.prefix || 'name-' || i,
       '{"owner":"team-' || (i % 12) || '"}',
       true, :revs, md5(i::text), now() - interval '10 minutes', '{}', md5('e'), now() - interval '30 days'
FROM generate_series(1, :items) AS i
CROSS JOIN LATERAL (SELECT
    (ARRAY['AWS::EC2::SecurityGroup', 'AWS::IAM::Role', 'AWS::S3::Bucket'])[1 + i % 3] AS ty,
    (ARRAY['sg-', 'role-', 'bucket-'])[1 + i % 3] AS prefix,
    (ARRAY['ec2', 'iam', 's3'])[1 + i % 3] AS svc) t;

INSERT INTO revisions (item_id, version, change, cause, hash, document, ephemeral,
                       observed_at, recorded_at, sweep_id, origin)
SELECT it.id, v,
       CASE WHEN v = 1 THEN 'created' ELSE 'modified' END,
       'sweep', md5(it.id || ':' || v),
       '{"arn":"' || it.arn || '","config":{"configuration":{"description":"revision ' || v
         || '","ipPermissions":[{"fromPort":' || (v * 10) || ',"ipProtocol":"tcp","ipRanges":["10.'
         || (v % 250) || '.0.0/16"],"toPort":' || (v * 10) || '}],"name":"' || it.name
         || '"},"supplementaryConfiguration":{}},"name":"' || it.name || '","tags":' || it.tags || '}',
       '{}', now() - (11 - v) * interval '1 day', now() - (11 - v) * interval '1 day',
       (SELECT max(id) FROM sweeps), 'load-test seed'
FROM items it CROSS JOIN generate_series(1, :revs) AS v;

INSERT INTO findings (fingerprint, item_id, rule_id, finding_key, kind, state, score, rule_score,
                      severity, title, detail, remediation, first_seen_at, last_seen_at,
                      opened_at, first_revision_id, last_revision_id, account, resource_type)
SELECT md5('f' || it.id), it.id,
       (ARRAY['ec2/sg_internet_ingress', 'iam/role_trust_anyone', 's3/bucket_policy_public',
              's3/bucket_logging'])[1 + it.id % 4],
       'k', 'state',
       CASE WHEN it.id % 10 = 0 THEN 'fixed' ELSE 'open' END,
       s.score, s.score,
       CASE WHEN s.score >= 9 THEN 'critical' WHEN s.score >= 7 THEN 'high'
            WHEN s.score >= 4 THEN 'medium' ELSE 'low' END,
       'Finding on ' || it.name, 'Synthetic finding for the load test.', 'Nothing to do.',
       now() - interval '20 days', now() - interval '10 minutes',
       now() - (it.id % 30) * interval '1 day',
       (SELECT min(r.id) FROM revisions r WHERE r.item_id = it.id AND r.version = 1),
       (SELECT min(r.id) FROM revisions r WHERE r.item_id = it.id AND r.version = :revs),
       it.account, it.resource_type
FROM items it CROSS JOIN LATERAL (SELECT (it.id * 7919 % 10) + 1 AS score) s;

INSERT INTO finding_events (finding_id, at, event, actor, detail, revision_id)
SELECT id, opened_at, 'opened', NULL, '', first_revision_id FROM findings;
COMMIT;
-- A live database is vacuumed and analysed by autovacuum; a bulk load is not yet.
VACUUM ANALYZE;
