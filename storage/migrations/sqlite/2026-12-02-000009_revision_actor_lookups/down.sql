ALTER TABLE revisions DROP COLUMN actor_lookups;
