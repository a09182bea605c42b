-- Done jobs are deleted after `indexer.keep_done_jobs`; what the queries read is the open part
-- of the queue. Reconcile looks up the open and failed jobs of one repository, the status page
-- lists the jobs that are not done: both stay small index scans however many done jobs are
-- kept. Deleting old done jobs finds them by age without scanning the open ones.
create index index_jobs_open on index_jobs (backend, repository, id) where state <> 'done';
create index index_jobs_done on index_jobs (updated_at) where state = 'done';
-- No query looks jobs up by digest.
drop index if exists index_jobs_digest;
