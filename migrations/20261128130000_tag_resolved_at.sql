-- When the registry was asked what each tag names: a job that read a tag earlier but commits
-- later (a slow download) must not move the tag back to the digest it saw.
alter table tags add column resolved_at timestamptz;
