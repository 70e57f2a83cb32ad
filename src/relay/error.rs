//! The contract's JSON error body, as an axum response.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::{ErrorBody, ErrorDetail};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: ErrorDetail,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: ErrorDetail::new(code, message),
        }
    }

    pub fn invalid(detail: ErrorDetail) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            detail,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The cause goes to the operator's log; the client learns only that
        // nothing was stored, so it knows to retry.
        tracing::error!(error = %err, "store failure");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the relay could not store this request; nothing was saved, retry later",
        )
    }
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&ErrorBody { error: self.detail })
            .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"error"}}"#.into());
        json_response(self.status, body)
    }
}
