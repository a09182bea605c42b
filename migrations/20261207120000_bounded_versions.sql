-- Bounded cost for every version, for rows stored before the indexer's version budgets.
--
-- Lists read only what a card shows: whether the version has an icon is a column of its own,
-- kept by PostgreSQL from `meta`, so a list of packages never detoasts a version's whole
-- metadata (a 251 MB `meta` made every home page and `/packages` view cost 329 ms).
alter table versions add column has_icon boolean not null generated always as (
    coalesce(meta->>'icon_uri' like 'data:image/%', false) or meta->>'icon_data' is not null
) stored;

-- A rejection is kept to a screenful (the indexer now cuts it, with a marker, at 4 KiB): a
-- 150 MiB tar path made a 157 MB rejection that every view of the version returned.
update versions
   set rejection = left(rejection, 4096) || '… [' || (length(rejection) - 4096)
                   || ' more characters not shown]'
 where length(rejection) > 4096;

-- Metadata past the version budget (8 MiB) loses its extension files, which are what made it
-- large; re-indexing the version (`shimmer index`) reads them again within the budget.
update versions
   set meta = (meta - 'extensions') || jsonb_build_object('note',
       'extension files left out: this version''s metadata was over the 8 MiB budget; '
       || 're-index it to read them within the budget')
 where octet_length(meta::text) > 8 * 1024 * 1024;
