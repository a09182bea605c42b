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
create index api_types_kind_prefix on api_types (lower(kind) text_pattern_ops);
create index api_types_group_prefix on api_types (lower(api_group) text_pattern_ops);

-- Every distinct kind (lowercase), for fuzzy matching: search first finds the kinds similar to
-- the query here (a few thousand rows, not one per API type of every version), then the API types
-- of those kinds by the btree above. Groups are matched exactly or by prefix only: they share
-- long suffixes (`.upbound.io`), so trigram similarity on them matches nearly everything.
create table api_kinds (kind text primary key);
create index api_kinds_trgm on api_kinds using gin (kind gin_trgm_ops);
insert into api_kinds select distinct lower(kind) from api_types;
create function api_kinds_add() returns trigger language plpgsql as $$
begin
    insert into api_kinds values (lower(new.kind)) on conflict do nothing;
    return new;
end $$;
create trigger api_types_kinds after insert on api_types
    for each row execute function api_kinds_add();
create index api_types_object on api_types (object_digest);
create index examples_object on examples (object_digest);
create index versions_contents on versions (contents_digest);
create index versions_indexed on versions (indexed_at desc);
create index api_types_plural_lower on api_types (lower(plural));
create index api_types_short_names on api_types using gin (short_names);
-- "Which versions contain this object?" for docs pages and visibility checks.
create index contents_objects on contents using gin (objects);
