//! Frames from the relay, typed on the console's side.
//!
//! `protocol::ServerFrame` is `#[serde(untagged)]`: serde tries each
//! variant in turn, so an event may be decoded three times and a bad one
//! reports only "did not match any variant". Here the frame is read once
//! as JSON, its `type` picks the one shape to decode, and an error names
//! that shape. Two things the wire types do not carry yet are read here
//! too: an alert's `route` (SHARED_CONTRACTS.md, screening follow-up) and
//! the refusal codes as an enum. Both belong in `protocol.rs` once the
//! relay's side is reshaped; this module then shrinks to `decode`.

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::{CommandResult, Event, ServerFrame, Session};

/// Where an alert should go. A screening alert the duty team follows up in
/// working hours (`"route": "followup"`) is listed at its level but never
/// rings, notifies or raises the alarm banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    #[default]
    Crisis,
    Followup,
}

/// A frame the console acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Session(Box<Session>),
    /// One of the playbooks that follow the session frame; the connection
    /// folds them into the session before the app sees it.
    Playbook(Box<crate::playbook::Playbook>),
    /// An event; for an `alert` event, the alert's route.
    Event(Box<Event>, Route),
    Result(CommandResult),
}

impl From<ServerFrame> for Frame {
    fn from(frame: ServerFrame) -> Frame {
        match frame {
            ServerFrame::Session(s) => Frame::Session(s),
            ServerFrame::Event(e) => Frame::Event(e, Route::Crisis),
            ServerFrame::Result(r) => Frame::Result(r),
        }
    }
}

/// Why a frame could not be read. Says which shape and where, never the
/// frame's content (it may carry student data).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    #[error("{kind} frame does not match its shape: {error}")]
    Shape { kind: &'static str, error: String },
}

/// Reads one text frame from the relay.
pub fn decode(text: &str) -> Result<Frame, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FrameError::NotJson(crate::logging::json_error(&e)))?;
    decode_value(value)
}

/// As [`decode`], from JSON already parsed.
pub fn decode_value(mut value: Value) -> Result<Frame, FrameError> {
    let shape = |kind: &'static str| {
        move |e: serde_json::Error| FrameError::Shape {
            kind,
            error: crate::logging::json_error(&e),
        }
    };
    match value.get("type").and_then(Value::as_str) {
        Some("session") => serde_json::from_value(value)
            .map(|s| Frame::Session(Box::new(s)))
            .map_err(shape("session")),
        Some("playbook") => serde_json::from_value::<crate::protocol::PlaybookFrame>(value)
            .map(|p| Frame::Playbook(Box::new(p.playbook)))
            .map_err(shape("playbook")),
        Some("result") => serde_json::from_value(value)
            .map(Frame::Result)
            .map_err(shape("result")),
        _ => {
            let route = take_route(&mut value);
            serde_json::from_value(value)
                .map(|e| Frame::Event(Box::new(e), route))
                .map_err(shape("event"))
        }
    }
}

/// Takes an alert event's `alert.route` out of the JSON (the wire `Alert`
/// refuses fields it does not know). An unknown route is a crisis: when in
/// doubt, the duty console alarms.
fn take_route(event: &mut Value) -> Route {
    event
        .get_mut("alert")
        .and_then(Value::as_object_mut)
        .and_then(|alert| alert.remove("route"))
        .and_then(|route| serde_json::from_value(route).ok())
        .unwrap_or_default()
}

/// The relay's refusal codes (`ErrorDetail.code`). The catalogue in
/// `i18n.rs` matches this enum exhaustively, so a new code cannot arrive
/// without words; a code this console does not know is `Other`, shown with
/// the relay's own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    AlreadyAcknowledged,
    CaseClosed,
    UnknownCase,
    Forbidden,
    WrongRole,
    AlreadyDone,
    AlreadySkipped,
    InactiveBranch,
    Blocked,
    RequiredStepsOpen,
    AlreadyAttached,
    ReasonRequired,
    TextTooLong,
    StoreUnavailable,
    Other,
    NameNotAllowed,
    SubmitForbidden,
    ApprovalForbidden,
    StageOutOfOrder,
    AlreadySubmitted,
    AlreadyAccepted,
    NotSubmitted,
    NoReport,
}

impl RefusalCode {
    pub fn parse(code: &str) -> RefusalCode {
        match code {
            "already_acknowledged" => RefusalCode::AlreadyAcknowledged,
            "case_closed" => RefusalCode::CaseClosed,
            "unknown_case" => RefusalCode::UnknownCase,
            "forbidden" => RefusalCode::Forbidden,
            "wrong_role" => RefusalCode::WrongRole,
            "already_done" => RefusalCode::AlreadyDone,
            "already_skipped" => RefusalCode::AlreadySkipped,
            "inactive_branch" => RefusalCode::InactiveBranch,
            "blocked" => RefusalCode::Blocked,
            "required_steps_open" => RefusalCode::RequiredStepsOpen,
            "already_attached" => RefusalCode::AlreadyAttached,
            "reason_required" => RefusalCode::ReasonRequired,
            "text_too_long" => RefusalCode::TextTooLong,
            "store_unavailable" => RefusalCode::StoreUnavailable,
            "name_not_allowed" => RefusalCode::NameNotAllowed,
            "submit_forbidden" => RefusalCode::SubmitForbidden,
            "approval_forbidden" => RefusalCode::ApprovalForbidden,
            "stage_out_of_order" => RefusalCode::StageOutOfOrder,
            "already_submitted" => RefusalCode::AlreadySubmitted,
            "already_accepted" => RefusalCode::AlreadyAccepted,
            "not_submitted" => RefusalCode::NotSubmitted,
            "no_report" => RefusalCode::NoReport,
            _ => RefusalCode::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_followup_route_is_read_and_an_unknown_one_alarms() {
        let mut v = serde_json::json!({"type": "alert", "alert": {"route": "followup"}});
        assert_eq!(take_route(&mut v), Route::Followup);
        assert!(v["alert"].get("route").is_none());
        let mut v = serde_json::json!({"type": "alert", "alert": {"route": "later"}});
        assert_eq!(take_route(&mut v), Route::Crisis);
        let mut v = serde_json::json!({"type": "alert", "alert": {}});
        assert_eq!(take_route(&mut v), Route::Crisis);
    }

    #[test]
    fn a_bad_frame_names_its_shape() {
        let err = decode(r#"{"type": "session", "credential": 1}"#).unwrap_err();
        assert!(err.to_string().starts_with("session frame"), "{err}");
        let err = decode("not json").unwrap_err();
        assert!(matches!(err, FrameError::NotJson(_)), "{err}");
    }

    #[test]
    fn refusal_codes_round_the_known_ones() {
        assert_eq!(RefusalCode::parse("wrong_role"), RefusalCode::WrongRole);
        assert_eq!(RefusalCode::parse("something_new"), RefusalCode::Other);
    }
}
