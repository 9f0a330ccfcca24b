DROP TABLE worker_leases;
DROP TABLE sweep_jobs;
