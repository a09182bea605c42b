-- How many times a job's lease ran out while it was running (its worker died or hung). An
-- expiry counts as an attempt: the job waits out a backoff before it runs again and, after
-- `max_attempts`, stays `failed` saying how often its lease expired.
alter table index_jobs add column lease_expiries integer not null default 0;
