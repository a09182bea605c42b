-- What the marketplace reads: each package's latest version and the text search looks at,
-- kept by the store whenever a version is written, and the indexes search uses.
--
-- Search runs in PostgreSQL alone: full-text search (tsvector) on package text, trigram
-- similarity (pg_trgm, a trusted extension any database owner may create) on names, API groups
-- and kinds, and plain btree indexes for exact kind and group matches, which rank first.

create extension if not exists pg_trgm;

alter table packages
    add column latest_version_id bigint references versions (id) on delete set null,
    add column latest_tag        text,
    add column description       text,
    add column maintainer        text,
    add column keywords          text,
    add column search            tsvector generated always as (
        setweight(to_tsvector('simple', coalesce(name, '') || ' ' || translate(repository, '/-_.', '    ')), 'A') ||
        setweight(to_tsvector('simple', coalesce(keywords, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'C') ||
        setweight(to_tsvector('simple', coalesce(maintainer, '')), 'D')
    ) stored;

create index packages_search on packages using gin (search);
create index packages_repository_trgm on packages using gin (repository gin_trgm_ops);
create index packages_latest on packages (latest_version_id);

create index api_types_kind_lower on api_types (lower(kind));
create index api_types_group_lower on api_types (lower(api_group));
create index api_types_kind_trgm on api_types using gin (lower(kind) gin_trgm_ops);
create index api_types_group_trgm on api_types using gin (lower(api_group) gin_trgm_ops);
create index api_types_object on api_types (object_digest);
create index examples_object on examples (object_digest);
create index versions_contents on versions (contents_digest);
create index versions_indexed on versions (indexed_at desc);
create index api_types_plural_lower on api_types (lower(plural));
create index api_types_short_names on api_types using gin (short_names);
-- "Which versions contain this object?" for docs pages and visibility checks.
create index contents_objects on contents using gin (objects);
