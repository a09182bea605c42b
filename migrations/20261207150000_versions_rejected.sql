-- Rejected versions, found without walking every version: a package's latest rejection (search
-- hits and package pages say why a push did not pass) and the latest rejections of all (the
-- status page). Rejections are rare, so the partial index is small.
create index versions_rejected on versions (package_id, indexed_at desc) where kind = 'rejected';
