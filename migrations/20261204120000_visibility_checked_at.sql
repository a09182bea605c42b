-- When the visibility a package has was found out (the anonymous read, or the configuration's
-- word): a job that checked earlier but commits later (a slow download) must not put back what
-- it saw, say `public` after the repository turned private.
alter table packages add column visibility_checked_at timestamptz;
