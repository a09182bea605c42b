-- Pull counts, recorded by the shim: successful manifest GETs per (backend, repository) and UTC
-- day (see the README for what counts as a pull). The shim counts in memory and adds its
-- counts here in batches, so the request path never touches the database for this.
create table package_pulls (
    backend     text   not null,
    repository  text   not null,
    day         date   not null,
    count       bigint not null check (count >= 0),
    primary key (backend, repository, day)
);
