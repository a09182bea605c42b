-- What changed in a package's APIs from each version's predecessor in semver order (its
-- highest semver tag's), as `shimmer diff` computes it with the default rules: the marketplace
-- says "N breaking changes since vX" and marks the versions that break their predecessor. The
-- indexer writes a row when it indexes a version and again for the next version when an
-- earlier one arrives later; `from_version_id` says which predecessor a row was computed from.
create table version_diffs (
    version_id       bigint primary key references versions (id) on delete cascade,
    from_version_id  bigint not null references versions (id) on delete cascade,
    breaking         integer not null,
    warnings         integer not null,
    total            integer not null,
    changes          jsonb not null,
    computed_at      timestamptz not null default now()
);
create index version_diffs_from on version_diffs (from_version_id);
