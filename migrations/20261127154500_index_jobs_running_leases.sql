-- Workers look for running jobs whose lease ran out before every claim; keep that a small index
-- scan however many finished jobs the table holds.
create index index_jobs_running_leases on index_jobs (lease_until) where state = 'running';
