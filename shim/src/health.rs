//! `/healthz` (the process is alive) and `/readyz` (the database answers and every backend
//! answers `GET /v2/` below 500).

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db = tokio::time::timeout(CHECK_TIMEOUT, shimmer_store::ping(&state.pool)).await;
    let db_ok = matches!(db, Ok(Ok(())));
    let mut ready = db_ok;
    let mut backends = serde_json::Map::new();
    for b in state.routes.backends() {
        let status = match tokio::time::timeout(CHECK_TIMEOUT, b.probe()).await {
            Ok(Ok(s)) if s.as_u16() < 500 => json!({"ok": true, "status": s.as_u16()}),
            Ok(Ok(s)) => json!({"ok": false, "status": s.as_u16()}),
            Ok(Err(_)) => json!({"ok": false, "error": "unreachable"}),
            Err(_) => json!({"ok": false, "error": "timeout"}),
        };
        ready &= status["ok"] == true;
        backends.insert(b.name.clone(), status);
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"ready": ready, "database": {"ok": db_ok}, "backends": backends})),
    )
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
