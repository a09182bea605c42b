-- The platforms an index offers (`linux/amd64`, `linux/arm64`), in its order: what a
-- multi-platform package runs on, shown on its version page. Indexes stored before this column
-- have none until re-indexed (`shimmer index`).
alter table versions add column platforms text[] not null default '{}';
