//! The contract's JSON error body, as an axum response.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::{ErrorBody, ErrorDetail};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: ErrorDetail,
    /// Seconds for a `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError::with(status, ErrorDetail::new(code, message))
    }

    /// 429 with how long to wait (also sent as `Retry-After`).
    pub fn too_many(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            detail: ErrorDetail::new(
                "rate_limited",
                format!("too many requests from this credential; retry in {secs} s"),
            ),
            retry_after: Some(secs),
        }
    }

    pub fn with(status: StatusCode, detail: ErrorDetail) -> Self {
        ApiError {
            status,
            detail,
            retry_after: None,
        }
    }

    pub fn invalid(detail: ErrorDetail) -> Self {
        ApiError::with(StatusCode::BAD_REQUEST, detail)
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
        let body = serde_json::to_string(&ErrorBody {
            error: self.detail.clone(),
        })
        .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"error"}}"#.into());
        let mut response = json_response(self.status, body);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}
