//! `/v1/services` handlers.

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
    extract::{JsonBody, ServicePath},
    views::ServiceView,
};
use crate::{
    config::{ServiceSpec, validate},
    controller::{Controller, PutOutcome},
};

type Ctl = State<Arc<Controller>>;

fn location(spec: &ServiceSpec) -> String {
    format!("/v1/services/{}", spec.key())
}

/// `GET /v1/services`.
pub async fn list(State(c): Ctl) -> Result<Json<Vec<ServiceSpec>>, ApiError> {
    Ok(Json(blocking(&c, |c| c.list()).await?))
}

/// `GET /v1/services/{protocol}/{vip}/{port}`: the service with counters.
pub async fn get_one(
    State(c): Ctl,
    ServicePath(key): ServicePath,
) -> Result<Json<ServiceView>, ApiError> {
    let status = blocking(&c, move |c| c.status(&key)).await??;
    Ok(Json(ServiceView::from(&status)))
}

/// `PUT /v1/services/{protocol}/{vip}/{port}`: create or replace.
pub async fn put(
    State(c): Ctl,
    ServicePath(key): ServicePath,
    JsonBody(input): JsonBody,
) -> Result<Response, ApiError> {
    let spec = validate(&input, Some(&key))?;
    let stored = spec.clone();
    let outcome = blocking(&c, move |c| c.put(spec)).await??;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced | PutOutcome::Unchanged => StatusCode::OK,
    };
    Ok((status, [(LOCATION, location(&stored))], Json(stored)).into_response())
}

/// `POST /v1/services`: create; 409 if the key is taken.
pub async fn create(State(c): Ctl, JsonBody(input): JsonBody) -> Result<Response, ApiError> {
    let spec = validate(&input, None)?;
    let stored = spec.clone();
    blocking(&c, move |c| c.create(spec)).await??;
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location(&stored))],
        Json(stored),
    )
        .into_response())
}

/// `DELETE /v1/services/{protocol}/{vip}/{port}`.
pub async fn delete(State(c): Ctl, ServicePath(key): ServicePath) -> Result<StatusCode, ApiError> {
    blocking(&c, move |c| c.delete(&key)).await??;
    Ok(StatusCode::NO_CONTENT)
}
