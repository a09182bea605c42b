-- Fixes of stored data that need the application's own logic (semver, say), run once each by
-- `shimmer_store::migrate` after the SQL migrations; a row here means done.
create table data_fixes (
    name    text primary key,
    done_at timestamptz not null default now()
);
