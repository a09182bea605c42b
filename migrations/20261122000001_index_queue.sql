-- The durable queue between the shim and the indexer.
--
-- The shim inserts a job for every manifest pushed, and for every manifest pulled whose
-- (backend, repository, digest) it has not seen before. Workers claim jobs with
-- `for update skip locked` and hold them under a lease (`lease_until`); a job whose worker died
-- returns to the queue when its lease runs out.

create table index_jobs (
    id            bigserial primary key,
    backend       text        not null,
    repository    text        not null,
    reference     text        not null,
    digest        text        not null,
    media_type    text,
    source        text        not null check (source in ('push', 'pull', 'reconcile', 'manual')),
    state         text        not null default 'queued'
                              check (state in ('queued', 'running', 'done', 'failed')),
    attempts      integer     not null default 0,
    run_after     timestamptz not null default now(),
    lease_until   timestamptz,
    last_error    text,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

create index index_jobs_ready on index_jobs (run_after, id) where state = 'queued';
create index index_jobs_digest on index_jobs (digest);

-- Every (backend, repository, manifest digest) the shim has queued, so a digest is queued once
-- however often it is pulled.
create table seen_manifests (
    backend     text        not null,
    repository  text        not null,
    digest      text        not null,
    first_seen  timestamptz not null default now(),
    primary key (backend, repository, digest)
);

-- Wakes idle workers as soon as a job is queued (they also poll, in case a notification is lost).
create function index_jobs_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('index_jobs', new.id::text);
    return null;
end $$;

create trigger index_jobs_notify after insert on index_jobs
    for each row execute function index_jobs_notify();
