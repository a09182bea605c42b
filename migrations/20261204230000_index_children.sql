-- The manifests an index lists (its platform images, an xpkg-extensions manifest), by digest.
-- A client pushing an index pushes these by digest first, and each is indexed on its own; the
-- marketplace lists them as part of their index's version, never as untagged versions of their
-- own. Indexes stored before this column have none until re-indexed (`shimmer index`).
alter table versions add column children text[] not null default '{}';
