//! Request extractors whose rejections are `ApiError`s naming what is wrong.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{header::CONTENT_TYPE, request::Parts},
};

use super::ApiError;
use crate::config::{ServiceInput, ServiceKey, parse_json};

/// A service in a JSON body: `Content-Type` must be JSON, and parse errors
/// name the field.
pub struct JsonBody(pub ServiceInput);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            let got = if content_type.is_empty() {
                "none".to_string()
            } else {
                format!("{content_type:?}")
            };
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("Content-Type: expected application/json, got {got}"),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::new(r.status(), format!("body: {}", r.body_text())))?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// `/{protocol}/{vip}/{port}` of a service path.
pub struct ServicePath(pub ServiceKey);

impl<S: Send + Sync> FromRequestParts<S> for ServicePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((protocol, vip, port)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|r| ApiError::new(r.status(), r.body_text()))?;
        ServiceKey::parse_parts(&protocol, &vip, &port)
            .map(ServicePath)
            .map_err(ApiError::from)
    }
}
