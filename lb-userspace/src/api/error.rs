//! Every error answer: a status and `{"error": "..."}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{config::ValidationError, controller::ControllerError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<ControllerError> for ApiError {
    fn from(e: ControllerError) -> Self {
        let status = match &e {
            ControllerError::NotFound(_) | ControllerError::TunnelNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ControllerError::Exists(_) | ControllerError::TunnelConflict { .. } => {
                StatusCode::CONFLICT
            }
            ControllerError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            ControllerError::TunnelSource(_) | ControllerError::SnatSource(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ControllerError::Datapath(_)
            | ControllerError::State(_)
            | ControllerError::Restore(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}
