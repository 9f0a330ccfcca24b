-- Who made the change a revision records, when known: the actor as JSON (principal, session, source IP, user agent, event name/time/id) and the principal ARN alone, for filtering.
ALTER TABLE revisions ADD COLUMN actor TEXT;
ALTER TABLE revisions ADD COLUMN actor_arn TEXT;
CREATE INDEX revisions_actor_arn ON revisions (actor_arn, recorded_at);
