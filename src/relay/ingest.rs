//! `POST /v1/alerts`: where an alert enters the system.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error::json_response;
use super::{ApiError, Relay, auth};
use crate::protocol::{IngestReply, MAX_ALERT_BODY_BYTES, Role, parse_alert};
use crate::store::IngestOutcome;

pub async fn post_alert(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let credential = auth::require(&relay, &headers, Role::can_ingest, "post alerts").await?;
    if let Err(wait) = relay.rate_check(credential.id) {
        return Err(ApiError::too_many(wait));
    }

    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the alert as `Content-Type: application/json`",
        ));
    }

    // Read at most the limit; a longer body is refused without buffering it.
    let bytes = to_bytes(body, MAX_ALERT_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("alert bodies are limited to {MAX_ALERT_BODY_BYTES} bytes"),
        )
    })?;
    let alert = parse_alert(&bytes).map_err(ApiError::invalid)?;

    match relay.ingest(&alert, &credential).await? {
        IngestOutcome::Created { seq, case_id, .. } => {
            tracing::info!(seq, %case_id, credential = %credential.name, "alert stored");
            reply(StatusCode::CREATED, seq, case_id, false)
        }
        IngestOutcome::Duplicate { seq, case_id } => {
            tracing::info!(seq, %case_id, "duplicate alert ignored");
            reply(StatusCode::OK, seq, case_id, true)
        }
        IngestOutcome::Conflict => Err(ApiError::with(
            StatusCode::CONFLICT,
            crate::protocol::ErrorDetail::new(
                "id_conflict",
                "this alert `id` was already used for a different alert; use a new id",
            )
            .with_field("id"),
        )),
    }
}

fn reply(
    status: StatusCode,
    seq: i64,
    case_id: String,
    duplicate: bool,
) -> Result<Response, ApiError> {
    let body = serde_json::to_string(&IngestReply {
        seq,
        case_id,
        duplicate,
    })
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(json_response(status, body))
}
