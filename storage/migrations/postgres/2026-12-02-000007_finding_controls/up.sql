-- The compliance controls (framework:control, space-separated) of the rule that made the finding, as of its last audit.
ALTER TABLE findings ADD COLUMN controls TEXT NOT NULL DEFAULT '';
