//! Questions a console asks on its stream (`district_view`,
//! `period_charts`; [`CommandOp::is_query`]): answered in the command's
//! result from the same builders as `GET /v1/district` and `crisisdesk
//! report`, never stored and never applied. A period report can take a
//! while over a large relay, so the stream answers in a task of its own
//! and keeps delivering events meanwhile.

use std::sync::Arc;

use chrono::FixedOffset;

use super::Relay;
use crate::protocol::{Command, CommandOp, CommandResult, ErrorDetail, ResultTag};
use crate::reporting::district;
use crate::review::figures::ChartFigures;

/// The longest period one `period_charts` may cover (a school year and a
/// little): each case in it is rebuilt from its record.
const MAX_PERIOD_DAYS: i64 = 400;

pub(super) async fn answer(relay: Arc<Relay>, command: Command) -> CommandResult {
    let data = match &command.op {
        CommandOp::DistrictView {} => {
            district::build(relay.store(), relay.library(), chrono::Utc::now())
                .await
                .map_err(store_error)
                .and_then(|view| to_json(&view))
        }
        CommandOp::PeriodCharts {
            from,
            to,
            utc_offset,
            drills,
        } => period_charts(&relay, *from, *to, utc_offset.as_deref(), *drills).await,
        _ => Err(ErrorDetail::new("invalid_command", "not a question")),
    };
    match data {
        Ok(data) => CommandResult {
            kind: ResultTag::Result,
            id: command.id,
            ok: true,
            error: None,
            duplicate: false,
            data: Some(data),
        },
        Err(error) => CommandResult {
            kind: ResultTag::Result,
            id: command.id,
            ok: false,
            error: Some(error),
            duplicate: false,
            data: None,
        },
    }
}

async fn period_charts(
    relay: &Relay,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    utc_offset: Option<&str>,
    drills: bool,
) -> Result<serde_json::Value, ErrorDetail> {
    if from >= to {
        return Err(
            ErrorDetail::new("invalid_field", "`from` must be before `to`").with_field("from"),
        );
    }
    if (to - from).num_days() > MAX_PERIOD_DAYS {
        return Err(ErrorDetail::new(
            "invalid_field",
            format!("a period of at most {MAX_PERIOD_DAYS} days, please"),
        )
        .with_field("to"));
    }
    let offset = match utc_offset {
        None => FixedOffset::east_opt(0).expect("UTC"),
        Some(text) => text.parse::<FixedOffset>().map_err(|_| {
            ErrorDetail::new(
                "invalid_field",
                "`utc_offset` is written like `+08:00`".to_string(),
            )
            .with_field("utc_offset")
        })?,
    };
    let report =
        crate::review::report::build(relay.store(), relay.library(), from, to, drills, None)
            .await
            .map_err(|err| match err {
                crate::review::ReviewError::Store(e) => store_error(e),
                other => {
                    tracing::error!(error = %other, "period charts could not be built");
                    ErrorDetail::new(
                        "store_unavailable",
                        "the relay could not read its record; ask again",
                    )
                }
            })?;
    to_json(&ChartFigures::of(&report, offset))
}

fn store_error(err: crate::store::StoreError) -> ErrorDetail {
    tracing::error!(error = %err, "a question could not be answered");
    ErrorDetail::new(
        "store_unavailable",
        "the relay could not read its record; ask again",
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, ErrorDetail> {
    serde_json::to_value(value)
        .map_err(|_| ErrorDetail::new("store_unavailable", "the answer could not be written"))
}
