//! The bulk inserts of one version's rows, in chunks of [`CHUNK`](super::CHUNK) and in lock order:
//! objects by digest, API types by lower-case kind, so two transactions writing packages that
//! share CRDs take their row locks in one order and never deadlock.

use serde_json::Value;
use sqlx::{Postgres, Transaction};

use super::{ApiRecord, CHUNK, ExampleRecord, ObjectRecord};

/// `objects` in the order their rows are locked: by digest. Two transactions that insert
/// overlapping objects in different orders (two packages sharing CRDs, listed in each package's
/// own order) would each hold a row the other waits for: a deadlock. Sorted across the whole
/// list, not per chunk, so chunk boundaries cannot reorder them either (the statement sorts its
/// chunk again, byte-wise as here, so the order does not rest on how PostgreSQL scans `unnest`).
pub(super) fn objects_in_lock_order(objects: &[ObjectRecord]) -> Vec<&ObjectRecord> {
    let mut sorted: Vec<&ObjectRecord> = objects.iter().collect();
    sorted.sort_by(|a, b| a.digest.cmp(&b.digest));
    sorted
}

/// `apis` in the order their kinds are locked: the `api_kinds` trigger inserts each row's
/// lowercase kind (a unique key shared by every package defining it) as the row goes in, so
/// rows sorted by it take those locks in one order in every transaction.
pub(super) fn apis_in_lock_order(apis: &[ApiRecord]) -> Vec<&ApiRecord> {
    let mut sorted: Vec<&ApiRecord> = apis.iter().collect();
    sorted.sort_by_cached_key(|a| a.kind.to_ascii_lowercase());
    sorted
}

pub(super) async fn insert_objects(
    tx: &mut Transaction<'_, Postgres>,
    objects: &[ObjectRecord],
) -> Result<u64, sqlx::Error> {
    let mut new = 0;
    for chunk in objects_in_lock_order(objects).chunks(CHUNK) {
        let r = sqlx::query(
            "insert into objects (digest, api_version, kind, name, class, body, size_bytes)
             select o.d, o.av, o.k, o.n, o.c, o.b::jsonb, o.s
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::int[]) as o(d, av, k, n, c, b, s)
             order by o.d collate \"C\"
             on conflict (digest) do nothing",
        )
        .bind(chunk.iter().map(|o| o.digest.as_str()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|o| o.api_version.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|o| o.name.as_deref()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|o| o.class.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|o| o.body.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|o| o.size_bytes).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        new += r.rows_affected();
    }
    Ok(new)
}

/// Kept whole: one batched statement and the arrays it binds.
pub(super) async fn insert_apis(
    tx: &mut Transaction<'_, Postgres>,
    version_id: i64,
    apis: &[ApiRecord],
) -> Result<(), sqlx::Error> {
    // Arrays of arrays cannot be unnested with ragged lengths: text[] columns go as JSON.
    for chunk in apis_in_lock_order(apis).chunks(CHUNK) {
        sqlx::query(
            "insert into api_types (version_id, object_digest, definition, api_group, kind, plural,
                 singular, short_names, categories, scope, served_versions, storage_version,
                 versions, deprecated, description)
             select $1, a.d, a.def, a.g, a.k, a.p, a.s,
                    array(select jsonb_array_elements_text(a.sn)),
                    array(select jsonb_array_elements_text(a.cat)),
                    a.sc,
                    array(select jsonb_array_elements_text(a.sv)),
                    a.st, a.vs, a.dep, a.des
             from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::jsonb[], $9::jsonb[], $10::text[], $11::jsonb[], $12::text[],
                         $13::jsonb[], $14::bool[], $15::text[])
                  as a(d, def, g, k, p, s, sn, cat, sc, sv, st, vs, dep, des)
             order by lower(a.k) collate \"C\"",
        )
        .bind(version_id)
        .bind(
            chunk
                .iter()
                .map(|a| a.object_digest.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|a| a.definition.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|a| a.api_group.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|a| a.plural.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|a| a.singular.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|a| Value::from(a.short_names.clone()))
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|a| Value::from(a.categories.clone()))
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|a| a.scope.as_deref()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|a| Value::from(a.served_versions.clone()))
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|a| a.storage_version.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|a| &a.versions).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| a.deprecated).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|a| a.description.as_deref())
                .collect::<Vec<_>>(),
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn insert_examples(
    tx: &mut Transaction<'_, Postgres>,
    version_id: i64,
    examples: &[ExampleRecord],
) -> Result<(), sqlx::Error> {
    for (n, chunk) in examples.chunks(CHUNK).enumerate() {
        let offset = (n * CHUNK) as i32;
        sqlx::query(
            "insert into examples (version_id, position, object_digest, api_group, kind,
                 api_version, example_id, supporting)
             select $1, $2 + e.ord::int - 1, e.d, e.g, e.k, e.v, e.id, e.sup
             from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[])
                  with ordinality as e(d, g, k, v, id, sup, ord)",
        )
        .bind(version_id)
        .bind(offset)
        .bind(
            chunk
                .iter()
                .map(|e| e.object_digest.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|e| e.api_group.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|e| e.kind.as_deref()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|e| e.api_version.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|e| e.example_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|e| e.supporting).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
