//! Lock order and tag versions, without a database.

use super::inserts::{apis_in_lock_order, objects_in_lock_order};
use super::*;

fn object(digest: &str) -> ObjectRecord {
    ObjectRecord {
        digest: digest.into(),
        api_version: "v1".into(),
        kind: "K".into(),
        name: None,
        class: "other".into(),
        body: "{}".into(),
        size_bytes: 2,
    }
}

fn api(kind: &str) -> ApiRecord {
    ApiRecord::new("sha256:0", "crd", "g", kind)
}

#[test]
fn rows_go_to_the_database_in_one_lock_order_whatever_the_package_order() {
    // More than a chunk, in descending order: the sort spans chunks.
    let objects: Vec<ObjectRecord> = (0..CHUNK * 2 + 7)
        .rev()
        .map(|n| object(&format!("sha256:{n:064x}")))
        .collect();
    let sent: Vec<&str> = objects_in_lock_order(&objects)
        .iter()
        .map(|o| o.digest.as_str())
        .collect();
    let mut expected: Vec<&str> = objects.iter().map(|o| o.digest.as_str()).collect();
    expected.sort();
    assert_eq!(sent, expected);

    let apis = [api("Zebra"), api("bucket"), api("Apple"), api("apple")];
    let kinds: Vec<String> = apis_in_lock_order(&apis)
        .iter()
        .map(|a| a.kind.to_ascii_lowercase())
        .collect();
    assert_eq!(kinds, ["apple", "apple", "bucket", "zebra"]);
}
