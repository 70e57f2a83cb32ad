//! `GET /v1/district` (the district view, aggregated across schools) and
//! `GET /v1/reports/{id}` (one incident report, as filed).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, Relay, auth};
use crate::audit::{AuditKind, NewEntry};
use crate::protocol::Role;
use crate::reporting::district;

fn may_see_district(role: Role) -> bool {
    district::may_see(role)
}

fn may_read_reports(role: Role) -> bool {
    matches!(role, Role::District | Role::Leader | Role::Reviewer)
}

pub async fn district_view(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::require(&relay, &headers, may_see_district, "read the district view").await?;
    let view = district::build(relay.store(), relay.library(), chrono::Utc::now()).await?;
    Ok(json(&view))
}

pub async fn report(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let credential =
        auth::require(&relay, &headers, may_read_reports, "read incident reports").await?;
    let Some(report) = relay.store().incident_report_by_id(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_report",
            format!("there is no incident report `{}`", crate::text::inert(&id)),
        ));
    };
    // Reading a report is an access to its case: audited like a view.
    relay
        .audit(
            NewEntry::new(
                AuditKind::CaseViewed,
                serde_json::json!({"report": report.id, "via": "GET /v1/reports"}),
            )
            .by(&credential.name, credential.role.as_str())
            .on_case(&report.case_id, report.drill),
        )
        .await?;
    Ok(json(&report))
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
