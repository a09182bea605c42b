//! Request ids: every answer of the marketplace carries an `x-request-id` (the one the client
//! sent, else a new one), as the shim's do: errors, fallbacks and 405s included.

use crate::harness::{bare_web, client};
use testkit::http::Sent;

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_clients_own_is_kept() {
    let db = testkit::pg::fresh_database().await;
    let web = bare_web(&db, "").await;
    let mut seen = Vec::new();
    // A page, an error page, the API's error and a static answer.
    for path in ["/", "/no/such/page", "/api/v1/nothing", "/healthz"] {
        let r = client().get(format!("http://{web}{path}")).sent().await;
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(!id.is_empty(), "{path}");
        assert!(!seen.contains(&id), "{path}: {id} was given before");
        seen.push(id);
    }
    for path in ["/", "/api/v1/packages", "/no/such/page"] {
        let r = client()
            .get(format!("http://{web}{path}"))
            .header("x-request-id", "client-chose-this-7")
            .sent()
            .await;
        assert_eq!(r.headers()["x-request-id"], "client-chose-this-7", "{path}");
    }
    // A method no route answers: its 405 has an id too.
    let r = client().post(format!("http://{web}/search")).sent().await;
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("x-request-id"));
}
