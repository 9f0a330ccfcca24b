-- How many times CloudTrail was asked who made a sweep-found change (LookupEvents): a change is asked about a few times, as CloudTrail delivers events minutes late, then left without an actor.
ALTER TABLE revisions ADD COLUMN actor_lookups INTEGER NOT NULL DEFAULT 0;
