-- The pull-through cache's metadata. Bytes live in the cache directory, by upstream and digest;
-- here is what a tag resolved to and when that was last checked upstream.
create table cache_tags (
    upstream    text        not null,
    repository  text        not null,
    tag         text        not null,
    digest      text        not null,
    media_type  text,
    checked_at  timestamptz not null default now(),
    primary key (upstream, repository, tag)
);

-- Every cached blob and manifest, for listing, sizes and eviction.
create table cache_entries (
    upstream     text        not null,
    digest       text        not null,
    repository   text        not null,
    media_type   text,
    size_bytes   bigint      not null,
    last_access  timestamptz not null default now(),
    primary key (upstream, digest)
);
