-- What the indexer learns from each manifest.
--
-- Objects (every YAML document of every package: CRDs, XRDs, Compositions, examples, metas)
-- are stored once, keyed by the sha256 of their canonical JSON, however many versions share
-- them. A version records the ordered list of its object digests (its "contents document",
-- which has a digest of its own), so two versions that share 95% of their CRDs share 95% of
-- their storage.

create table objects (
    digest       text primary key,
    api_version  text not null,
    kind         text not null,
    name         text,
    class        text not null,
    body         jsonb not null,
    size_bytes   integer not null,
    created_at   timestamptz not null default now()
);

-- The ordered list of a version's object digests, stored once per distinct list.
create table contents (
    digest      text primary key,
    objects     text[] not null,
    created_at  timestamptz not null default now()
);

create table packages (
    id            bigserial primary key,
    backend       text not null,
    repository    text not null unique,
    package_type  text,
    name          text,
    visibility    text not null default 'public' check (visibility in ('public', 'private')),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

-- One row per manifest digest of a repository. `kind` says what it is: a Crossplane package,
-- something else (recorded with its media and artifact types, never downloaded), or a package
-- that was rejected (with the reason).
create table versions (
    id                bigserial primary key,
    package_id        bigint not null references packages (id) on delete cascade,
    manifest_digest   text not null,
    index_digest      text,
    media_type        text,
    artifact_type     text,
    kind              text not null check (kind in ('package', 'image', 'helm', 'artifact', 'index', 'rejected')),
    package_type      text,
    meta              jsonb,
    contents_digest   text references contents (digest),
    crossplane_version text,
    lint              jsonb not null default '[]',
    rejection         text,
    bytes_downloaded  bigint not null default 0,
    image_bytes       bigint not null default 0,
    indexed_at        timestamptz not null default now(),
    unique (package_id, manifest_digest)
);

create table tags (
    package_id  bigint not null references packages (id) on delete cascade,
    tag         text not null,
    version_id  bigint not null references versions (id) on delete cascade,
    updated_at  timestamptz not null default now(),
    primary key (package_id, tag)
);

-- Every digest a tag has pointed at, so a moved tag keeps its history.
create table tag_history (
    package_id       bigint not null references packages (id) on delete cascade,
    tag              text not null,
    manifest_digest  text not null,
    seen_at          timestamptz not null default now(),
    primary key (package_id, tag, manifest_digest)
);

-- One row per API type a version defines (CRD, XRD, or a Function's input), for search.
create table api_types (
    id                bigserial primary key,
    version_id        bigint not null references versions (id) on delete cascade,
    object_digest     text not null references objects (digest),
    definition        text not null,
    api_group         text not null,
    kind              text not null,
    plural            text,
    singular          text,
    short_names       text[] not null default '{}',
    categories        text[] not null default '{}',
    scope             text,
    served_versions   text[] not null default '{}',
    storage_version   text,
    versions          jsonb not null default '[]',
    deprecated        boolean not null default false
);
create index api_types_version on api_types (version_id);
create index api_types_group_kind on api_types (api_group, kind);

-- Example objects of a version, linked to the API they instantiate (or supporting).
create table examples (
    version_id     bigint not null references versions (id) on delete cascade,
    position       integer not null,
    object_digest  text not null references objects (digest),
    api_group      text,
    kind           text,
    api_version    text,
    example_id     text,
    supporting     boolean not null,
    primary key (version_id, position)
);
