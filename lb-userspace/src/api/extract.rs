//! Request extractors whose rejections are `ApiError`s naming what is wrong.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{header::CONTENT_TYPE, request::Parts},
};

use super::ApiError;
use crate::config::{
    ServiceInput, ServiceKey, TunnelInput, check_tunnel_name, parse_json, parse_value,
};

/// The bytes of a JSON body: `Content-Type` must be JSON.
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
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
    Bytes::from_request(req, state)
        .await
        .map_err(|r| ApiError::new(r.status(), format!("body: {}", r.body_text())))
}

/// A service in a JSON body: `Content-Type` must be JSON, and parse errors
/// name the field.
pub struct JsonBody(pub ServiceInput);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// A tunnel route in a JSON body, like `JsonBody`.
pub struct TunnelBody(pub TunnelInput);

impl<S: Send + Sync> FromRequest<S> for TunnelBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        parse_value(&bytes)
            .and_then(TunnelInput::from_value)
            .map(TunnelBody)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// `/v1/tunnels/{name}`: the name, checked (400 naming `name`).
pub struct TunnelName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TunnelName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|r| ApiError::new(r.status(), r.body_text()))?;
        check_tunnel_name(&name)
            .map(|()| TunnelName(name))
            .map_err(|e| ApiError::bad_request(format!("name: {e}")))
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
