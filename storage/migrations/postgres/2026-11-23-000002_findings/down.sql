DROP TABLE rule_errors;
DROP TABLE finding_events;
DROP TABLE findings;
