//! `GET /healthz`.

use axum::Json;
use serde_json::{Value, json};

/// The daemon answers: its datapath is loaded and its API serves.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
