-- What search shows of an API type: its schema's description (the storage version's, else the
-- first version's that has one), first paragraph, at most 300 characters. The indexer writes it
-- for new versions; this fills in the versions indexed before, from the stored objects.
alter table api_types add column description text;

update api_types a
set description = d.description
from (
  select a2.id,
         left(regexp_replace(split_part(coalesce(
           (select v->'schema'->'openAPIV3Schema'->>'description'
            from jsonb_array_elements(case jsonb_typeof(o.body->'spec'->'versions')
                                        when 'array' then o.body->'spec'->'versions'
                                        else '[]'::jsonb end) v
            where nullif(trim(v->'schema'->'openAPIV3Schema'->>'description'), '') is not null
            order by (v->>'storage' = 'true' or v->>'referenceable' = 'true') desc nulls last
            limit 1),
           o.body->'spec'->'validation'->'openAPIV3Schema'->>'description'), E'\n\n', 1),
           '\s+', ' ', 'g'), 300) as description
  from api_types a2 join objects o on o.digest = a2.object_digest
) d
where d.id = a.id and d.description is not null and d.description <> '';
