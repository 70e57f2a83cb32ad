//! The `student` command: a console asks for the record (一生一档) of the
//! student of a case it holds. The relay answers it itself, outside the
//! one writer: it is a read, and the record is put together by
//! [`crate::followup::student::build_via`], the function behind
//! `crisisdesk student show`, so the console and the command line can
//! never disagree on what a role sees. Every case shown is audited as
//! `case_viewed` (`"via": "console"`, with the command id).
//!
//! Nothing is stored for the command id: asking again reads again (the
//! record may have grown), which is what a re-sent read should do.

use crate::followup::student::{StudentError, build_via};
use crate::protocol::{AlertStatus, CommandResult, ErrorDetail, ResultTag};
use crate::store::Credential;

use super::Relay;

/// The answer to `student { case_id }` from `credential`.
pub(super) async fn answer(
    relay: &Relay,
    credential: &Credential,
    command_id: &str,
    case_id: &str,
) -> CommandResult {
    let refused = |error: ErrorDetail| CommandResult {
        kind: ResultTag::Result,
        id: command_id.to_string(),
        ok: false,
        error: Some(error),
        duplicate: false,
        data: None,
    };
    let store = relay.store();
    let case = match store.case(case_id).await {
        Ok(Some(case)) => case,
        Ok(None) => {
            return refused(
                ErrorDetail::new("unknown_case", format!("there is no case `{case_id}`"))
                    .with_field("case_id"),
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "student record: case lookup failed");
            return refused(unavailable());
        }
    };
    // A drill's record shows the drills too, each marked; a real case's
    // record shows real cases only, as `student show` does by default.
    let drills = case.alert_status != AlertStatus::Actual;
    let via = serde_json::json!({"via": "console", "command_id": command_id});
    match build_via(
        store,
        &case.student_id,
        credential.role,
        &credential.name,
        None,
        drills,
        &via,
    )
    .await
    {
        Ok(Some(record)) => match serde_json::to_value(&record) {
            Ok(record) => CommandResult {
                kind: ResultTag::Result,
                id: command_id.to_string(),
                ok: true,
                error: None,
                duplicate: false,
                data: Some(serde_json::json!({"case_id": case.id, "record": record})),
            },
            Err(_) => refused(unavailable()),
        },
        // The case exists, so the student does; a drill-only history read
        // from a real case is the one way to get here.
        Ok(None) => refused(ErrorDetail::new(
            "unknown_student",
            "no record for the student of this case",
        )),
        Err(StudentError::Forbidden(role) | StudentError::RevealForbidden(role)) => {
            refused(ErrorDetail::new(
                "forbidden",
                format!("role `{role}` may not read student records"),
            ))
        }
        Err(StudentError::Store(err)) => {
            tracing::error!(error = %err, "student record could not be read");
            refused(unavailable())
        }
    }
}

fn unavailable() -> ErrorDetail {
    ErrorDetail::new(
        "store_unavailable",
        "the relay could not read the record; nothing changed, ask again",
    )
}
