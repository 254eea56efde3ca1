//! The API's routes.

use std::sync::Arc;

use axum::{
    Router,
    http::{Method, StatusCode, Uri},
    routing::get,
};

use super::{ApiError, health::healthz, metrics::metrics, services, tunnels};
use crate::controller::Controller;

/// The whole API over `controller`.
pub fn router(controller: Arc<Controller>) -> Router {
    Router::new()
        .route("/v1/services", get(services::list).post(services::create))
        .route(
            "/v1/services/{protocol}/{vip}/{port}",
            get(services::get_one)
                .put(services::put)
                .delete(services::delete),
        )
        .route("/v1/tunnels", get(tunnels::list))
        // A wildcard: tunnel names may hold '/' (`namespace/name`).
        .route(
            "/v1/tunnels/{*name}",
            get(tunnels::get_one)
                .put(tunnels::put)
                .delete(tunnels::delete),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(controller)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}
