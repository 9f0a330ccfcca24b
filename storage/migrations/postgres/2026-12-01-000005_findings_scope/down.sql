DROP INDEX findings_state_type_score_id;
DROP INDEX findings_state_account_score_id;
ALTER TABLE findings DROP COLUMN resource_type;
ALTER TABLE findings DROP COLUMN account;
