//! `/v1/tunnels` handlers: tunnel routes (pod network → node).

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
};

use super::{
    ApiError,
    blocking::blocking,
    extract::{TunnelBody, TunnelName},
};
use crate::{
    config::{TunnelSpec, validate_tunnel},
    controller::{Controller, PutOutcome},
};

type Ctl = State<Arc<Controller>>;

/// `GET /v1/tunnels`.
pub async fn list(State(c): Ctl) -> Result<Json<Vec<TunnelSpec>>, ApiError> {
    Ok(Json(blocking(&c, |c| c.list_tunnels()).await?))
}

/// `GET /v1/tunnels/{name}`.
pub async fn get_one(
    State(c): Ctl,
    TunnelName(name): TunnelName,
) -> Result<Json<TunnelSpec>, ApiError> {
    Ok(Json(blocking(&c, move |c| c.get_tunnel(&name)).await??))
}

/// `PUT /v1/tunnels/{name}`: create (201) or replace (200).
pub async fn put(
    State(c): Ctl,
    TunnelName(name): TunnelName,
    TunnelBody(input): TunnelBody,
) -> Result<Response, ApiError> {
    let spec = validate_tunnel(&input, Some(&name))?;
    let stored = spec.clone();
    let outcome = blocking(&c, move |c| c.put_tunnel(spec)).await??;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced | PutOutcome::Unchanged => StatusCode::OK,
    };
    let location = format!("/v1/tunnels/{}", stored.name);
    Ok((status, [(LOCATION, location)], Json(stored)).into_response())
}

/// `DELETE /v1/tunnels/{name}`.
pub async fn delete(State(c): Ctl, TunnelName(name): TunnelName) -> Result<StatusCode, ApiError> {
    blocking(&c, move |c| c.delete_tunnel(&name)).await??;
    Ok(StatusCode::NO_CONTENT)
}
