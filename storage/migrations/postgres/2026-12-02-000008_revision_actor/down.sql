DROP INDEX revisions_actor_arn;
ALTER TABLE revisions DROP COLUMN actor_arn;
ALTER TABLE revisions DROP COLUMN actor;
