//! `POST /v1/alerts` and `POST /v1/alerts/batch`: where alerts enter the
//! system.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error::json_response;
use super::{ApiError, Relay, auth};
use crate::protocol::{
    BatchReply, BatchRequest, BatchResult, ErrorDetail, IngestReply, MAX_ALERT_BODY_BYTES,
    MAX_BATCH_ALERTS, MAX_BATCH_BODY_BYTES, Role, parse_alert,
};
use crate::store::IngestOutcome;

pub async fn post_alert(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let credential = auth::require(&relay, &headers, Role::can_ingest, "post alerts").await?;
    if let Err(wait) = relay.rate_check(&credential) {
        return Err(ApiError::too_many(wait));
    }
    let bytes = json_body(&headers, body, MAX_ALERT_BODY_BYTES, "alert bodies").await?;
    let read_at = std::time::Instant::now();
    let alert = parse_alert(&bytes).map_err(ApiError::invalid)?;

    let outcome = relay.ingest(&alert, &credential).await?;
    relay.metrics().alert_answered(read_at.elapsed());
    match outcome {
        IngestOutcome::Created { seq, case_id, .. } => {
            tracing::info!(seq, %case_id, credential = %credential.name, "alert stored");
            reply(StatusCode::CREATED, seq, case_id, false)
        }
        IngestOutcome::Duplicate { seq, case_id } => {
            tracing::info!(seq, %case_id, "duplicate alert ignored");
            reply(StatusCode::OK, seq, case_id, true)
        }
        IngestOutcome::Conflict => Err(ApiError::with(StatusCode::CONFLICT, id_conflict())),
    }
}

/// `POST /v1/alerts/batch`: up to [`MAX_BATCH_ALERTS`] alerts committed
/// together, one answer per alert in order. A bad alert is refused by
/// itself with the same error object a single post would get; the others
/// are stored. Counts as one request against the rate limit: a screening
/// system posting a thousand rows at a time is one caller, not a flood.
pub async fn post_batch(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let credential = auth::require(&relay, &headers, Role::can_ingest, "post alerts").await?;
    if let Err(wait) = relay.rate_check(&credential) {
        return Err(ApiError::too_many(wait));
    }
    let bytes = json_body(&headers, body, MAX_BATCH_BODY_BYTES, "batch bodies").await?;
    let read_at = std::time::Instant::now();
    let request: BatchRequest<'_> = serde_json::from_slice(&bytes).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_json"
        } else {
            "invalid_field"
        };
        ApiError::invalid(
            ErrorDetail::new(
                code,
                format!("a batch is {{\"alerts\": [alert, ...]}}: {e}"),
            )
            .with_field("alerts"),
        )
    })?;
    let n = request.alerts.len();
    if n == 0 || n > MAX_BATCH_ALERTS {
        return Err(ApiError::invalid(
            ErrorDetail::new(
                "invalid_field",
                format!("a batch holds 1 to {MAX_BATCH_ALERTS} alerts, got {n}"),
            )
            .with_field("alerts"),
        ));
    }

    // Judge each alert alone; only the valid ones go to the store.
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(n);
    let mut valid = Vec::with_capacity(n);
    for (i, raw) in request.alerts.iter().enumerate() {
        let text = raw.get();
        let parsed = if text.len() > MAX_ALERT_BODY_BYTES {
            Err(ErrorDetail::new(
                "too_large",
                format!("alerts are limited to {MAX_ALERT_BODY_BYTES} bytes each"),
            ))
        } else {
            parse_alert(text.as_bytes())
        };
        match parsed {
            Ok(alert) => {
                valid.push(alert);
                results.push(None);
            }
            Err(mut error) => {
                error.field = Some(match error.field.take() {
                    Some(field) => format!("alerts[{i}].{field}"),
                    None => format!("alerts[{i}]"),
                });
                results.push(Some(BatchResult::Refused { error }));
            }
        }
    }
    let stored = if valid.is_empty() {
        Vec::new()
    } else {
        relay.ingest_batch(valid, &credential).await?
    };
    relay.metrics().alert_answered(read_at.elapsed());
    let mut stored = stored.into_iter();
    let (mut created, mut duplicates, mut refused) = (0usize, 0usize, 0usize);
    let results: Vec<BatchResult> = results
        .into_iter()
        .map(|slot| {
            let result = slot.unwrap_or_else(|| match stored.next() {
                Some(IngestOutcome::Created { seq, case_id, .. }) => {
                    BatchResult::Created { seq, case_id }
                }
                Some(IngestOutcome::Duplicate { seq, case_id }) => {
                    BatchResult::Duplicate { seq, case_id }
                }
                Some(IngestOutcome::Conflict) => BatchResult::Refused {
                    error: id_conflict(),
                },
                None => BatchResult::Refused {
                    error: ErrorDetail::new("internal", "the store gave no answer for this alert"),
                },
            });
            match &result {
                BatchResult::Created { .. } => created += 1,
                BatchResult::Duplicate { .. } => duplicates += 1,
                BatchResult::Refused { .. } => refused += 1,
            }
            result
        })
        .collect();
    tracing::info!(
        alerts = n,
        created,
        duplicates,
        refused,
        credential = %credential.name,
        "alert batch stored"
    );
    let body = serde_json::to_string(&BatchReply { results })
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

/// Checks the content type and reads at most `limit` bytes; a longer body
/// is refused without buffering it.
async fn json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<axum::body::Bytes, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send alerts as `Content-Type: application/json`",
        ));
    }
    to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{what} are limited to {limit} bytes"),
        )
    })
}

fn id_conflict() -> ErrorDetail {
    ErrorDetail::new(
        "id_conflict",
        "this alert `id` was already used for a different alert; use a new id",
    )
    .with_field("id")
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
