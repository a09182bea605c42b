//! Search by package and by API type: ranking, filters, pagination.

use crate::harness::Env;

fn hits(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["type"].as_str().unwrap().to_owned(),
                h["repository"].as_str().unwrap().to_owned(),
                h["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_ranks_exact_kinds_first_and_filters_and_pages() {
    let env = Env::with_catalogue().await;

    // "Which packages have a ProviderConfig kind?" exact kind matches come first.
    let s = env.json("/api/v1/search?q=ProviderConfig").await;
    let h = hits(&s);
    assert_eq!(h[0].0, "api");
    assert_eq!(h[0].2, "ProviderConfig", "{h:?}");
    let exact: i64 = env
        .scalar(
            "select count(*) from api_types a join packages p on p.latest_version_id = a.version_id
             where a.kind = 'ProviderConfig'",
        )
        .await;
    assert!(
        exact >= 2,
        "two ProviderConfig kinds in provider-kubernetes v1.2.1"
    );
    assert!(
        h.iter()
            .take(exact as usize)
            .all(|x| x.2 == "ProviderConfig"),
        "{h:?}"
    );

    // Fuzzy: a typo still finds the kind.
    let s = env.json("/api/v1/search?q=ProviderConfg").await;
    assert!(hits(&s).iter().any(|x| x.2 == "ProviderConfig"), "{s}");

    // Groups: every kind of the group.
    let s = env
        .json("/api/v1/search?q=kubernetes.m.crossplane.io")
        .await;
    assert!(hits(&s).iter().all(|x| x.0 == "api"));
    assert_eq!(s["hits"][0]["group"], "kubernetes.m.crossplane.io");

    // Packages by name and by words of their description.
    let s = env.json("/api/v1/search?q=provider-nop").await;
    assert_eq!(
        hits(&s)[0],
        (
            "package".into(),
            "crossplane-contrib/provider-nop".into(),
            String::new()
        )
    );
    let description: String = testkit::pg::scalar(&env.pool, "select description from packages where repository = 'crossplane-contrib/function-patch-and-transform'").await;
    let word = description
        .split(|c: char| !c.is_alphanumeric())
        .rfind(|w| w.len() > 6)
        .expect("a long word in the description")
        .to_lowercase();
    let s = env.json(&format!("/api/v1/search?q={word}")).await;
    assert!(
        hits(&s)
            .iter()
            .any(|x| x.0 == "package" && x.1 == "crossplane-contrib/function-patch-and-transform"),
        "{word}: {s}"
    );

    // Filters.
    let s = env.json("/api/v1/search?q=kubernetes&type=Function").await;
    assert!(
        hits(&s)
            .iter()
            .all(|x| x.1 == "crossplane-contrib/function-patch-and-transform"),
        "{s}"
    );
    let s = env
        .json("/api/v1/search?q=Object&group=kubernetes.m.crossplane.io")
        .await;
    assert!(!hits(&s).is_empty());
    assert!(
        s["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["group"] == "kubernetes.m.crossplane.io" || h["type"] == "package")
    );

    // Pages of five, without overlap, adding up to the total.
    let first = env.json("/api/v1/search?q=kubernetes").await;
    let total = first["total"].as_i64().unwrap();
    assert!(total > 5, "{first}");
    let mut seen = std::collections::BTreeSet::new();
    let pages = (total + 4) / 5;
    for page in 1..=pages {
        let s = env
            .json(&format!("/api/v1/search?q=kubernetes&page={page}"))
            .await;
        for h in s["hits"].as_array().unwrap() {
            assert!(
                seen.insert(format!("{}|{}|{}", h["repository"], h["group"], h["kind"])),
                "duplicate {h}"
            );
        }
    }
    assert_eq!(seen.len() as i64, total);
    // page_size pages the same hits otherwise: pages of 2 from the third hit on.
    let all = env
        .json(&format!(
            "/api/v1/search?q=kubernetes&page_size={}",
            total.min(100)
        ))
        .await;
    let keys = |s: &serde_json::Value| -> Vec<String> {
        s["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| format!("{}|{}|{}", h["repository"], h["group"], h["kind"]))
            .collect()
    };
    let second = env
        .json("/api/v1/search?q=kubernetes&page=2&page_size=2")
        .await;
    assert_eq!(second["page_size"], 2, "{second}");
    assert_eq!(second["total"].as_i64(), Some(total), "{second}");
    assert_eq!(keys(&second), keys(&all)[2..4], "{second}");
    for bad in ["0", "101", "x"] {
        let r = env
            .get(&format!("/api/v1/search?q=kubernetes&page_size={bad}"))
            .await;
        assert_eq!(r.status(), 400, "page_size={bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("page_size must be"),
            "{body}"
        );
    }
    // The API group field alone searches for that group.
    let by_group = env
        .json("/api/v1/search?group=kubernetes.crossplane.io")
        .await;
    assert!(by_group["total"].as_i64().unwrap() > 0, "{by_group}");
    let html = env.text("/search?group=kubernetes.crossplane.io").await;
    assert!(html.contains("class=\"hit hit-api\""), "{html}");
    // Past the last page: no hits, and still the whole total (it was read from the first hit).
    let past = env
        .json(&format!("/api/v1/search?q=kubernetes&page={}", pages + 1))
        .await;
    assert_eq!(past["hits"].as_array().unwrap().len(), 0, "{past}");
    assert_eq!(past["total"].as_i64(), Some(total), "{past}");
    let html = env
        .text(&format!("/search?q=kubernetes&page={}", pages + 1))
        .await;
    assert!(
        html.contains(&format!("<span id=\"total\">{total}</span>")),
        "{html}"
    );

    // The page shows the same, readable without JavaScript.
    let html = env.text("/search?q=kubernetes").await;
    assert!(
        html.contains(&format!("<span id=\"total\">{total}</span>")),
        "{html}"
    );
    assert_eq!(html.matches("<li class=\"hit ").count(), 5);
    assert!(html.contains("rel=\"next\""));
    assert!(!html.contains("rel=\"prev\""));
}
