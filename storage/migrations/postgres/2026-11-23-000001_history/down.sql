DROP TABLE sweep_errors;
DROP TABLE revisions;
DROP TABLE items;
DROP TABLE sweeps;
