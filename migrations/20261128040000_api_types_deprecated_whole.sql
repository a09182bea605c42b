-- `api_types.deprecated` now means the kind as a whole is deprecated: every served version is.
-- It used to be set when any one version was, which marked current APIs (provider-kubernetes'
-- Object, whose v1alpha2 is current) deprecated. Recompute the rows indexed before.
update api_types a set deprecated = coalesce(
    (select bool_and(coalesce((v->>'deprecated')::boolean, false))
       from jsonb_array_elements(a.versions) v
      where coalesce((v->>'served')::boolean, false)),
    false);
