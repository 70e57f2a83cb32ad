//! Wire types shared by the relay and the console: the alert JSON producers
//! post, the events the stream carries, the commands consoles send and the
//! error body every refusal uses. `docs/protocol.md` is the prose reference
//! for everything here; keep the two in step.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::playbook::{Change, OverdueReason, Playbook, Progress, StepAction};
use crate::reporting::{IncidentReport, ReportChange, Stage};

/// Largest accepted `POST /v1/alerts` body.
pub const MAX_ALERT_BODY_BYTES: usize = 64 * 1024;
/// Most alerts in one `POST /v1/alerts/batch`.
pub const MAX_BATCH_ALERTS: usize = 1000;
/// Largest batch body: a full batch of alerts of a typical screening size
/// fits many times over; a runaway producer is refused before buffering.
pub const MAX_BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Longest producer alert id (the dedup key).
pub const MAX_ALERT_ID_CHARS: usize = 128;
/// Longest free-text summary.
pub const MAX_SUMMARY_CHARS: usize = 2000;
/// Longest short identifier-like strings (student id, school, class, ...).
pub const MAX_SHORT_TEXT_CHARS: usize = 128;
/// Most signals one alert may carry.
pub const MAX_SIGNALS: usize = 64;

/// `as_str` and `parse` for enums whose strum names are their wire names:
/// `IntoStaticStr` and `EnumString` derived with `serialize_all =
/// "snake_case"`, the same as serde's `rename_all` (the test
/// `strum_names_are_the_wire_names` holds the two together).
macro_rules! wire_names {
    ($ty:ident) => {
        impl $ty {
            /// The name on the wire and in the store.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The variant a wire name stands for.
            pub fn parse(s: &str) -> Option<$ty> {
                s.parse().ok()
            }
        }
    };
}
pub(crate) use wire_names;

/// Risk level as the seeds grade it: 一般关注 / 重点关注 / 高危关注.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Level {
    General,
    Key,
    High,
}

wire_names!(Level);

/// Whether an alert is real, part of a drill or a technical test (CAP 1.2's
/// Actual / Exercise / Test). Drill and test alerts never join real cases.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    #[default]
    Actual,
    Exercise,
    Test,
}

wire_names!(AlertStatus);

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Screening,
    Behavior,
    Treehole,
    TeacherReport,
    ParentReport,
    SelfReferral,
    PeerTip,
    Hotline,
    Manual,
}

wire_names!(Source);

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Category {
    SuicideRisk,
    SelfHarm,
    ViolenceThreat,
    Bullying,
    TraumaBereavement,
    AcuteDistress,
    Other,
}

wire_names!(Category);

/// A credential's role. Producers post alerts; responders stream and act;
/// reviewers only read; admins manage credentials.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Producer,
    Counselor,
    HeadTeacher,
    Leader,
    Nurse,
    Security,
    Reviewer,
    Admin,
    /// The education bureau or district mental-health centre (教育局 /
    /// 区心理中心): receives incident reports and aggregates across
    /// schools, never a student's identity.
    District,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: &[Role] = <Role as strum::VariantArray>::VARIANTS;

    /// The wire name: strum's snake_case, the same as serde's (the test
    /// `strum_names_are_the_wire_names` holds them together).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Roles that take part in a response and so may watch the stream.
    pub fn can_stream(self) -> bool {
        matches!(
            self,
            Role::Counselor
                | Role::HeadTeacher
                | Role::Leader
                | Role::Nurse
                | Role::Security
                | Role::Reviewer
                | Role::Admin
                | Role::District
        )
    }

    /// Roles that may post alerts into the relay. Staff may raise a manual
    /// alert too; reviewers and admins may not.
    pub fn can_ingest(self) -> bool {
        matches!(
            self,
            Role::Producer
                | Role::Counselor
                | Role::HeadTeacher
                | Role::Leader
                | Role::Nurse
                | Role::Security
        )
    }

    /// Roles that act on cases (acknowledge, work steps). Reviewers only read.
    pub fn can_act(self) -> bool {
        matches!(
            self,
            Role::Counselor | Role::HeadTeacher | Role::Leader | Role::Nurse | Role::Security
        )
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| {
            let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role `{s}`; expected one of {}", all.join(", "))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Student {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_14: Option<bool>,
}

/// An alert as a producer posts it. Unknown top-level fields are refused so
/// a misspelt `imminet` is an error, not silently a non-imminent alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub id: String,
    #[serde(default)]
    pub status: AlertStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise_id: Option<String>,
    pub source: Source,
    pub category: Category,
    pub level: Level,
    #[serde(default)]
    pub imminent: bool,
    pub student: Student,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Value>,
    pub observed_at: DateTime<FixedOffset>,
    /// Where the alert belongs on a duty console: the crisis queue (the
    /// default: banners, bells and notifications for high or imminent) or
    /// a school's screening follow-up list (listed at its level, never
    /// rung). A screening import sends its non-urgent flags as `followup`
    /// so a district's screening day is not thousands of alarms.
    #[serde(default, skip_serializing_if = "Route::is_crisis")]
    pub route: Route,
}

/// See [`Alert::route`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    #[default]
    Crisis,
    Followup,
}

impl Route {
    pub fn is_crisis(&self) -> bool {
        *self == Route::Crisis
    }
}

/// A refusal that names what was wrong, as the contract's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorDetail {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorDetail {
            code: code.to_string(),
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// Parses and validates an alert body. Errors name the offending field
/// (`student.id`, `signals[2]`, ...) so a producer can fix the request.
pub fn parse_alert(body: &[u8]) -> Result<Alert, ErrorDetail> {
    // Most alerts are well formed: parse them directly, and only when that
    // fails parse again with the path tracker, which names the field but
    // costs a path segment per value on every alert.
    let alert: Alert = match serde_json::from_slice(body) {
        Ok(alert) => alert,
        Err(_) => return Err(explain_bad_alert(body)),
    };
    validate_alert(&alert)?;
    Ok(alert)
}

/// Why `body` is not an alert, with the field's path where there is one.
fn explain_bad_alert(body: &[u8]) -> ErrorDetail {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Result<Alert, _> = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let code = if inner.is_syntax() || inner.is_eof() {
            "malformed_json"
        } else {
            "invalid_field"
        };
        let detail = ErrorDetail::new(code, inner.to_string());
        if path.is_empty() || path == "." {
            detail
        } else {
            detail.with_field(path)
        }
    });
    match parsed {
        Err(detail) => detail,
        // The only other way the direct parse fails: trailing characters.
        Ok(_) => match de.end() {
            Err(e) => ErrorDetail::new("malformed_json", e.to_string()),
            Ok(()) => ErrorDetail::new("malformed_json", "the body is not one JSON alert"),
        },
    }
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ErrorDetail> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ErrorDetail::new(
            "invalid_field",
            format!("`{field}` must be {min} to {max} characters long, got {n}"),
        )
        .with_field(field));
    }
    Ok(())
}

fn check_opt_len(field: &str, value: &Option<String>, max: usize) -> Result<(), ErrorDetail> {
    match value {
        Some(v) => check_len(field, v, 0, max),
        None => Ok(()),
    }
}

/// Rules serde's shape check cannot express.
pub fn validate_alert(alert: &Alert) -> Result<(), ErrorDetail> {
    check_len("id", &alert.id, 1, MAX_ALERT_ID_CHARS)?;
    check_len("student.id", &alert.student.id, 1, MAX_SHORT_TEXT_CHARS)?;
    check_opt_len("student.name", &alert.student.name, MAX_SHORT_TEXT_CHARS)?;
    check_opt_len(
        "student.school",
        &alert.student.school,
        MAX_SHORT_TEXT_CHARS,
    )?;
    check_opt_len("student.grade", &alert.student.grade, MAX_SHORT_TEXT_CHARS)?;
    check_opt_len("student.class", &alert.student.class, MAX_SHORT_TEXT_CHARS)?;
    check_opt_len("summary", &alert.summary, MAX_SUMMARY_CHARS)?;
    check_opt_len("exercise_id", &alert.exercise_id, MAX_SHORT_TEXT_CHARS)?;
    match (alert.status, &alert.exercise_id) {
        (AlertStatus::Exercise, None) => {
            return Err(ErrorDetail::new(
                "invalid_field",
                "`exercise_id` is required when `status` is `exercise`",
            )
            .with_field("exercise_id"));
        }
        (AlertStatus::Exercise, Some(id)) if id.trim().is_empty() => {
            return Err(
                ErrorDetail::new("invalid_field", "`exercise_id` must not be empty")
                    .with_field("exercise_id"),
            );
        }
        (AlertStatus::Actual | AlertStatus::Test, Some(_)) => {
            return Err(ErrorDetail::new(
                "invalid_field",
                "`exercise_id` is only allowed when `status` is `exercise`",
            )
            .with_field("exercise_id"));
        }
        _ => {}
    }
    if alert.signals.len() > MAX_SIGNALS {
        return Err(ErrorDetail::new(
            "invalid_field",
            format!("at most {MAX_SIGNALS} signals are accepted"),
        )
        .with_field("signals"));
    }
    for (i, signal) in alert.signals.iter().enumerate() {
        let field = format!("signals[{i}]");
        let Some(obj) = signal.as_object() else {
            return Err(
                ErrorDetail::new("invalid_field", "each signal must be a JSON object")
                    .with_field(field),
            );
        };
        match obj.get("kind") {
            Some(Value::String(k)) if !k.is_empty() && k.chars().count() <= 64 => {}
            _ => {
                return Err(ErrorDetail::new(
                    "invalid_field",
                    "each signal needs a `kind` string of 1 to 64 characters",
                )
                .with_field(format!("{field}.kind")));
            }
        }
    }
    Ok(())
}

/// Case status as the closed loop moves it: open (crisis under way) →
/// acknowledged (someone has it: the acute phase) → monitoring (scheduled
/// check-ins, see [`crate::lifecycle`]) → closed with an outcome; a closed
/// case re-opens with a reason.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Acknowledged,
    Closed,
    Monitoring,
}

wire_names!(CaseStatus);

/// The state of a case after an event, carried with every case event so a
/// console never has to recompute it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSnapshot {
    pub id: String,
    pub status: CaseStatus,
    pub level: Level,
    pub imminent: bool,
    pub category: Category,
    pub alert_status: AlertStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise_id: Option<String>,
    pub student_id: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub alert_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// Who did something: a credential's name and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

/// One event on the stream. `seq` is strictly increasing across the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: EventBody,
    /// What the relay removed from this event for the receiving role (see
    /// `crate::privacy`); absent on events that carry no student data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

/// Fields withheld from an alert event, and the initials that stand in for
/// the student's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
}

/// Who sent a command, from where and when by their own clock: kept with
/// every change a command makes, for the audit trail and the review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub by: Actor,
    pub command_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_at: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// An ingested alert and the case it opened or joined.
    Alert {
        case_id: String,
        /// True when this alert opened the case.
        opened: bool,
        alert: Box<Alert>,
        case: CaseSnapshot,
    },
    /// A responder took ownership of a case.
    CaseAcknowledged {
        case_id: String,
        by: Actor,
        case: CaseSnapshot,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// A playbook's checklist was attached to a case: by the relay when the
    /// case's category/level/imminence calls for it (no origin), or by a
    /// responder.
    ChecklistAdded {
        case_id: String,
        playbook: String,
        progress: Progress,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// A step was worked: the change and the checklist after it.
    StepUpdated {
        case_id: String,
        change: Change,
        progress: Progress,
        origin: Origin,
    },
    /// A step went overdue; addressed to the role that must now act.
    Escalation {
        case_id: String,
        playbook: String,
        step: String,
        to: Role,
        owner: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<DateTime<Utc>>,
        reason: OverdueReason,
    },
    /// The case was closed with an outcome.
    CaseClosed {
        case_id: String,
        outcome: CloseOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Required steps still open, closed over by a leader's override.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        overridden: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        override_reason: Option<String>,
        case: CaseSnapshot,
        origin: Origin,
    },
    /// An incident report (事件信息报告) was opened on a case: by the relay
    /// when a reporting rule's sign was recorded (no origin), or by a
    /// leader's `open_report`.
    ReportOpened {
        case_id: String,
        report: Box<IncidentReport>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// A report changed: rules added, a stage submitted, accepted or
    /// returned. Carries the report after the change.
    ReportUpdated {
        case_id: String,
        change: ReportChange,
        report: Box<IncidentReport>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// A report stage passed its deadline without a submission; addressed
    /// to the school leader, like an overdue step.
    ReportOverdue {
        case_id: String,
        report_id: String,
        stage: Stage,
        due: DateTime<Utc>,
        to: Role,
    },
    /// A follow-up change: a level proposed or changed, monitoring begun,
    /// a re-open, a check-in recorded or missed (see
    /// [`crate::followup::CaseChange`]). `origin` is absent when the relay
    /// raised it (a missed check-in).
    CaseUpdated {
        case_id: String,
        change: crate::followup::CaseChange,
        case: CaseSnapshot,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
}

impl EventBody {
    pub fn case_id(&self) -> &str {
        match self {
            EventBody::Alert { case_id, .. }
            | EventBody::CaseAcknowledged { case_id, .. }
            | EventBody::ChecklistAdded { case_id, .. }
            | EventBody::StepUpdated { case_id, .. }
            | EventBody::Escalation { case_id, .. }
            | EventBody::CaseClosed { case_id, .. }
            | EventBody::ReportOpened { case_id, .. }
            | EventBody::ReportUpdated { case_id, .. }
            | EventBody::ReportOverdue { case_id, .. }
            | EventBody::CaseUpdated { case_id, .. } => case_id,
        }
    }

    /// The `type` tag as stored beside the event.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Alert { .. } => "alert",
            EventBody::CaseAcknowledged { .. } => "case_acknowledged",
            EventBody::ChecklistAdded { .. } => "checklist_added",
            EventBody::StepUpdated { .. } => "step_updated",
            EventBody::Escalation { .. } => "escalation",
            EventBody::CaseClosed { .. } => "case_closed",
            EventBody::ReportOpened { .. } => "report_opened",
            EventBody::ReportUpdated { .. } => "report_updated",
            EventBody::ReportOverdue { .. } => "report_overdue",
            EventBody::CaseUpdated { .. } => "case_updated",
        }
    }
}

/// How a case ended.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CloseOutcome {
    /// Crisis over; follow-up done or handed to routine care.
    Stabilized,
    /// Handed to a hospital or outside service.
    ReferredOut,
    /// The student left the school; the file went with them.
    Transferred,
    /// On assessment there was no risk.
    NoRisk,
    /// Opened in error (wrong student, duplicate).
    Error,
    /// The student finished school while followed up.
    Graduated,
}

impl CloseOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: &[CloseOutcome] = <CloseOutcome as strum::VariantArray>::VARIANTS;
}
wire_names!(CloseOutcome);

/// A frame a console sends. Today only commands; the enum leaves room for
/// more (ping is handled by the websocket layer itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Client-unique id: re-sending the same id never applies it twice.
    pub id: String,
    /// The console's own clock when the responder acted, kept beside the
    /// relay's time in the record (offline terminals send late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_at: Option<DateTime<FixedOffset>>,
    /// Which duty terminal sent it (free-form, e.g. hostname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
    #[serde(flatten)]
    pub op: CommandOp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CommandOp {
    /// Acknowledge (claim) a case: "I have it".
    Acknowledge { case_id: String },
    /// Work one step of a case's checklist (complete, skip, note, choose,
    /// contact, referral; see [`StepAction`]).
    Step {
        case_id: String,
        playbook: String,
        step: String,
        #[serde(flatten)]
        action: StepAction,
    },
    /// Attach another playbook to a case.
    AddPlaybook { case_id: String, playbook: String },
    /// "I am looking at this case": audited, changes nothing. Every access
    /// to a case leaves an audit entry (PIPL; DOMAIN.md privacy).
    View { case_id: String },
    /// Show me who the student is: a deliberate act with a reason, audited;
    /// the identity comes back in this command's result only.
    Reveal { case_id: String, reason: String },
    /// Close a case. Open required steps block this unless a leader gives
    /// an `override_reason`.
    Close {
        case_id: String,
        outcome: CloseOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        override_reason: Option<String>,
    },
    /// A leader opens an incident report on a case under a reporting rule
    /// the relay cannot see from the record (a death, a missing student,
    /// several students involved).
    OpenReport { case_id: String, rule: String },
    /// The school leader submits a stage of the case's report.
    SubmitReport {
        case_id: String,
        stage: Stage,
        /// The leader's own account; refused if it carries the student's
        /// name when no rule on the report requires it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        narrative: Option<String>,
    },
    /// The district accepts a submitted stage.
    AcceptReport { case_id: String, stage: Stage },
    /// The district returns (退回) a submitted stage, with a reason.
    ReturnReport {
        case_id: String,
        stage: Stage,
        reason: String,
    },
    /// Ask for a new level, with a reason. A raise applies at once; a
    /// lowering (or clearing `imminent`) waits for `confirm_level` by a
    /// second role ([`crate::lifecycle`]).
    ProposeLevel {
        case_id: String,
        level: Level,
        #[serde(default)]
        imminent: bool,
        reason: String,
    },
    /// The second sign-off of the pending lowering.
    ConfirmLevel { case_id: String },
    /// Acute → monitoring: plans the follow-up check-ins for the case's
    /// level on the student's school calendar.
    Monitor { case_id: String },
    /// Re-open a closed case, with a reason.
    Reopen { case_id: String, reason: String },
    /// Record scheduled check-in number `checkin`. A `concern` or
    /// `escalate` outcome may carry a `raise` (new level, and a playbook to
    /// attach) applied in the same command.
    Checkin {
        case_id: String,
        checkin: u32,
        outcome: crate::followup::CheckinOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raise: Option<crate::followup::Raise>,
    },
    /// A question, not an action (see [`CommandOp::is_query`]): the district
    /// view (`GET /v1/district`'s figures) in this command's result.
    DistrictView {},
    /// A question: the period report's chart figures (cases by level per
    /// school, cases opened per month at `utc_offset`, the time to
    /// acknowledge histogram) for cases opened in `[from, to)`.
    PeriodCharts {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        /// `+08:00`; months are counted at this offset (UTC when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        utc_offset: Option<String>,
        /// Count drill cases too (a drill-only relay, the demo).
        #[serde(default)]
        drills: bool,
    },
    /// Read the record (一生一档) of the student of this case, as my role
    /// sees it: the result's `data.record` is what `crisisdesk student
    /// show --format json` prints, built by the same function. A read,
    /// audited as `case_viewed` on every case it shows; nothing changes.
    Student { case_id: String },
}

impl CommandOp {
    /// The `op` on the wire (strum's snake_case, as serde's tag).
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// Which roles may send this command. The relay checks it; the console
    /// only hides keys.
    pub fn allowed_for(&self, role: Role) -> bool {
        match self {
            CommandOp::View { .. } => role.can_stream(),
            CommandOp::Student { .. } => crate::followup::student::may_read_record(role),
            CommandOp::Reveal { .. } => crate::privacy::may_reveal(role),
            // Let the store answer a school/district mix-up with its own
            // code (`submit_forbidden`, `approval_forbidden`).
            CommandOp::OpenReport { .. }
            | CommandOp::SubmitReport { .. }
            | CommandOp::AcceptReport { .. }
            | CommandOp::ReturnReport { .. } => matches!(role, Role::Leader | Role::District),
            CommandOp::DistrictView {} => crate::reporting::district::may_see(role),
            CommandOp::PeriodCharts { .. } => crate::reporting::district::may_see_charts(role),
            _ => role.can_act(),
        }
    }

    /// What the audit keeps of this command: its shape, never free text
    /// (notes and reasons stay in the event; the audit counts characters).
    pub fn audit_detail(&self) -> Value {
        let chars = |t: &str| t.chars().count();
        match self {
            CommandOp::Acknowledge { .. } | CommandOp::View { .. } => serde_json::json!({}),
            CommandOp::Step {
                playbook,
                step,
                action,
                ..
            } => {
                let mut d = serde_json::json!({"playbook": playbook, "step": step});
                match action {
                    StepAction::Complete => d["action"] = "complete".into(),
                    StepAction::Skip { reason } => {
                        d["action"] = "skip".into();
                        d["text_chars"] = chars(reason).into();
                    }
                    StepAction::Note { text } => {
                        d["action"] = "note".into();
                        d["text_chars"] = chars(text).into();
                    }
                    StepAction::Choose { option } => {
                        d["action"] = "choose".into();
                        d["option"] = option.as_str().into();
                    }
                    StepAction::Contact { outcome, remark } => {
                        d["action"] = "contact".into();
                        d["outcome"] = outcome.as_str().into();
                        d["text_chars"] = remark.as_deref().map_or(0, chars).into();
                    }
                    StepAction::Referral { appointment, .. } => {
                        d["action"] = "referral".into();
                        d["appointment"] = appointment.to_rfc3339().into();
                    }
                }
                d
            }
            CommandOp::AddPlaybook { playbook, .. } => serde_json::json!({"playbook": playbook}),
            // Why someone looked is the point of this entry: keep the reason.
            CommandOp::Reveal { reason, .. } => serde_json::json!({"reason": reason}),
            CommandOp::Close {
                outcome,
                note,
                override_reason,
                ..
            } => serde_json::json!({
                "outcome": outcome.as_str(),
                "override": override_reason.is_some(),
                "text_chars": note.as_deref().map_or(0, chars)
                    + override_reason.as_deref().map_or(0, chars),
            }),
            CommandOp::OpenReport { rule, .. } => serde_json::json!({"rule": rule}),
            CommandOp::SubmitReport {
                stage, narrative, ..
            } => serde_json::json!({
                "stage": stage.as_str(),
                "text_chars": narrative.as_deref().map_or(0, chars),
            }),
            CommandOp::AcceptReport { stage, .. } => serde_json::json!({"stage": stage.as_str()}),
            // The reason is the district's word on a school's report, not
            // student data: keep it, like a reveal's reason.
            CommandOp::ReturnReport { stage, reason, .. } => {
                serde_json::json!({"stage": stage.as_str(), "reason": reason})
            }
            // Reasons and notes stay in the event; the audit counts them.
            CommandOp::ProposeLevel {
                level,
                imminent,
                reason,
                ..
            } => serde_json::json!({
                "level": level.as_str(), "imminent": imminent, "text_chars": chars(reason),
            }),
            CommandOp::ConfirmLevel { .. } | CommandOp::Monitor { .. } => serde_json::json!({}),
            CommandOp::Reopen { reason, .. } => serde_json::json!({"text_chars": chars(reason)}),
            CommandOp::Checkin {
                checkin,
                outcome,
                note,
                raise,
                ..
            } => serde_json::json!({
                "checkin": checkin,
                "outcome": outcome.as_str(),
                "text_chars": note.as_deref().map_or(0, chars),
                "raise": raise.as_ref().map(|r| r.level.as_str()),
                "playbook": raise.as_ref().and_then(|r| r.playbook.clone()),
            }),
            CommandOp::DistrictView {} => serde_json::json!({}),
            CommandOp::PeriodCharts {
                from, to, drills, ..
            } => serde_json::json!({
                "from": from.to_rfc3339(), "to": to.to_rfc3339(), "drills": drills,
            }),
            CommandOp::Student { .. } => serde_json::json!({}),
        }
    }

    pub fn case_id(&self) -> &str {
        match self {
            CommandOp::Acknowledge { case_id }
            | CommandOp::Step { case_id, .. }
            | CommandOp::AddPlaybook { case_id, .. }
            | CommandOp::View { case_id }
            | CommandOp::Reveal { case_id, .. }
            | CommandOp::Close { case_id, .. }
            | CommandOp::OpenReport { case_id, .. }
            | CommandOp::SubmitReport { case_id, .. }
            | CommandOp::AcceptReport { case_id, .. }
            | CommandOp::ReturnReport { case_id, .. }
            | CommandOp::ProposeLevel { case_id, .. }
            | CommandOp::ConfirmLevel { case_id }
            | CommandOp::Monitor { case_id }
            | CommandOp::Reopen { case_id, .. }
            | CommandOp::Checkin { case_id, .. }
            | CommandOp::Student { case_id } => case_id,
            // Questions are about no one case.
            CommandOp::DistrictView {} | CommandOp::PeriodCharts { .. } => "",
        }
    }
}

impl CommandOp {
    /// A question answered in the command's result, changing nothing: the
    /// stream answers it beside the store (never stored, never applied
    /// twice or once; re-asking is always safe) and the console does not
    /// count it as an action waiting in its outbox.
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            CommandOp::DistrictView {} | CommandOp::PeriodCharts { .. }
        )
    }
}

/// The relay's answer to one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    #[serde(rename = "type")]
    pub kind: ResultTag,
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// True when this id was seen before and the stored answer is repeated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// What a command returns to its sender alone (a revealed identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultTag {
    Result,
}

/// The first frame on every stream connection (it has no `seq`): who the
/// relay thinks you are, and the playbooks it runs, so a console can draw
/// checklists without a copy of its own.
///
/// The relay sends `playbooks` empty and `playbook_frames` = N, then N
/// [`PlaybookFrame`]s, before anything else: one frame of every playbook
/// (a quarter of a megabyte with the shipped library) would leave a
/// buffer that size behind in every connection, for as long as it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "type")]
    pub kind: SessionTag,
    pub credential: Actor,
    pub latest_seq: i64,
    #[serde(default)]
    pub playbooks: Vec<Playbook>,
    /// How many `playbook` frames follow this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub playbook_frames: usize,
    /// The 三个一 cadence as of this connection (follow-up roles only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup_cadence: Option<crate::followup::cadence::Cadence>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One playbook the relay runs, sent right after the session frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookFrame {
    #[serde(rename = "type")]
    pub kind: PlaybookTag,
    pub playbook: Playbook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookTag {
    Playbook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionTag {
    Session,
}

/// A frame the relay sends: the session greeting, an event or a command
/// result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame {
    Session(Box<Session>),
    Result(CommandResult),
    Event(Box<Event>),
}

/// The body of `POST /v1/alerts/batch`: alerts kept as raw JSON so each is
/// parsed and judged on its own (one bad alert is refused by itself).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest<'a> {
    #[serde(borrow)]
    pub alerts: Vec<&'a serde_json::value::RawValue>,
}

/// One alert's answer in a batch, in the order posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchResult {
    Created { seq: i64, case_id: String },
    Duplicate { seq: i64, case_id: String },
    Refused { error: ErrorDetail },
}

/// The `200` body of `POST /v1/alerts/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub results: Vec<BatchResult>,
}

/// `201`/`200` body of `POST /v1/alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReply {
    pub seq: i64,
    pub case_id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each named enum's `as_str` (strum) is its serde name, and `parse`
    /// reads it back: the two derives must never drift apart.
    #[test]
    fn strum_names_are_the_wire_names() {
        fn check<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
        where
            T: Copy + PartialEq + std::fmt::Debug + Serialize,
        {
            for &v in all {
                let wire = serde_json::to_value(v).unwrap();
                assert_eq!(wire.as_str(), Some(as_str(v)), "{v:?}");
                assert_eq!(parse(as_str(v)), Some(v), "{v:?}");
            }
            assert_eq!(parse("no_such_name"), None);
        }
        use strum::VariantArray;
        check(Level::VARIANTS, Level::as_str, Level::parse);
        check(
            AlertStatus::VARIANTS,
            AlertStatus::as_str,
            AlertStatus::parse,
        );
        check(Source::VARIANTS, Source::as_str, |s| s.parse().ok());
        check(Category::VARIANTS, Category::as_str, |s| s.parse().ok());
        check(Role::ALL, Role::as_str, Role::parse);
        check(CaseStatus::VARIANTS, CaseStatus::as_str, CaseStatus::parse);
        check(CloseOutcome::ALL, CloseOutcome::as_str, CloseOutcome::parse);
        check(
            crate::audit::AuditKind::VARIANTS,
            |k| k.as_str(),
            |s| s.parse().ok(),
        );
        check(
            crate::followup::CheckinOutcome::ALL,
            crate::followup::CheckinOutcome::as_str,
            crate::followup::CheckinOutcome::parse,
        );
        check(
            crate::screening::rules::Flag::VARIANTS,
            crate::screening::rules::Flag::as_str,
            crate::screening::rules::Flag::parse,
        );
        check(
            crate::reporting::Stage::ALL,
            |s| s.as_str(),
            |s| s.parse().ok(),
        );
        check(
            crate::reporting::StageStatus::VARIANTS,
            |s| s.as_str(),
            |s| s.parse().ok(),
        );
        let op = CommandOp::DistrictView {};
        assert_eq!(serde_json::to_value(&op).unwrap()["op"], op.name());
    }

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "id": "a-1",
            "source": "screening",
            "category": "suicide_risk",
            "level": "high",
            "student": {"id": "S1"},
            "observed_at": "2026-11-20T21:04:00+08:00"
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Alert, ErrorDetail> {
        parse_alert(serde_json::to_vec(v).unwrap().as_slice())
    }

    #[test]
    fn minimal_alert_parses_with_defaults() {
        let a = parse(&minimal()).unwrap();
        assert_eq!(a.status, AlertStatus::Actual);
        assert!(!a.imminent);
        assert_eq!(a.level, Level::High);
    }

    #[test]
    fn unknown_level_names_the_field() {
        let mut v = minimal();
        v["level"] = "urgent".into();
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("level"));
        assert!(e.message.contains("urgent"), "{}", e.message);
    }

    #[test]
    fn missing_nested_field_names_the_path() {
        let mut v = minimal();
        v["student"] = serde_json::json!({"name": "张三"});
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("student"));
        assert!(e.message.contains("`id`"), "{}", e.message);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut v = minimal();
        v["imminent"] = "yes".into();
        assert_eq!(parse(&v).unwrap_err().field.as_deref(), Some("imminent"));
    }

    #[test]
    fn overlong_id_is_refused() {
        let mut v = minimal();
        v["id"] = "x".repeat(129).into();
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id"));
        v["id"] = "x".repeat(128).into();
        assert!(parse(&v).is_ok());
    }

    #[test]
    fn exercise_needs_exercise_id() {
        let mut v = minimal();
        v["status"] = "exercise".into();
        assert_eq!(parse(&v).unwrap_err().field.as_deref(), Some("exercise_id"));
        v["exercise_id"] = "drill-1".into();
        assert!(parse(&v).is_ok());
    }

    #[test]
    fn timestamp_without_offset_is_refused() {
        let mut v = minimal();
        v["observed_at"] = "2026-11-20T21:04:00".into();
        assert_eq!(parse(&v).unwrap_err().field.as_deref(), Some("observed_at"));
    }

    #[test]
    fn signal_without_kind_is_refused() {
        let mut v = minimal();
        v["signals"] = serde_json::json!([{"kind": "scale"}, {"score": 3}]);
        assert_eq!(
            parse(&v).unwrap_err().field.as_deref(),
            Some("signals[1].kind")
        );
    }

    #[test]
    fn malformed_json_is_its_own_code() {
        let e = parse_alert(b"{\"id\": ").unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn events_round_trip_with_type_tag() {
        let alert = parse(&minimal()).unwrap();
        let at = Utc::now();
        let case = CaseSnapshot {
            id: "C000001".into(),
            status: CaseStatus::Open,
            level: Level::High,
            imminent: false,
            category: Category::SuicideRisk,
            alert_status: AlertStatus::Actual,
            exercise_id: None,
            student_id: "S1".into(),
            opened_at: at,
            updated_at: at,
            alert_count: 1,
            acknowledged_by: None,
            acknowledged_at: None,
        };
        let ev = Event {
            seq: 7,
            at,
            body: EventBody::Alert {
                case_id: "C000001".into(),
                opened: true,
                alert: Box::new(alert),
                case,
            },
            withheld: None,
        };
        let text = serde_json::to_string(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "alert");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["alert"]["id"], "a-1");
        let back: ServerFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ServerFrame::Event(Box::new(ev)));
    }
}
