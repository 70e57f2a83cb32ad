//! What screening keeps in the store: plans, graded results, and the
//! compact forms a re-import reads. The SQL is the store's, on either
//! engine (`store/sql/screening.rs`, reached through `Store::screening_*`).

use chrono::{DateTime, NaiveDate, Utc};

use super::rules::Flag;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub scale: String,
    pub schools: Vec<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub threshold: Flag,
    pub created_at: DateTime<Utc>,
}

/// One graded result as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub plan_id: String,
    pub student_id: String,
    pub school: String,
    pub grade: Option<String>,
    pub class: Option<String>,
    pub answered_at: String,
    pub row_hash: String,
    pub revision: i64,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub scale_level: Option<String>,
    pub level: Option<String>,
    pub imminent: bool,
    pub route: Option<String>,
    pub category: Option<String>,
    pub class_zh: Option<String>,
    pub class_en: Option<String>,
    pub scale_rule: String,
    pub scale_rule_version: i64,
    pub risk_rule: Option<String>,
    pub risk_rule_version: Option<i64>,
    pub points: Option<i64>,
    pub scores: String,
    pub contributions: Option<String>,
    pub alert_id: Option<String>,
    pub case_id: Option<String>,
    pub graded_at: String,
}

/// Per school (and the plan total under ""): screened, valid, invalid,
/// flagged per level, alerts confirmed by the relay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub screened: i64,
    pub valid: i64,
    pub invalid: i64,
    pub general: i64,
    pub key: i64,
    pub high: i64,
    pub imminent: i64,
    pub alerts_sent: i64,
}

/// The result columns, in the order [`StoredResult`] binds them.
pub(crate) const RESULT_COLUMNS: &str = "plan_id, student_id, school, grade, class, answered_at, row_hash, revision, valid, \
     invalid_reason, scale_level, level, imminent, route, category, class_zh, class_en, scale_rule, \
     scale_rule_version, risk_rule, risk_rule_version, points, scores, contributions, alert_id, case_id, graded_at";

/// What a re-import needs of a stored result: enough to tell an unchanged
/// row and to count it, without its scores, texts and contributions. A
/// district plan holds 200,000 results; loading them whole cost a gigabyte.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub row_hash: String,
    pub revision: i64,
    pub tally: Tally,
}

/// What a result adds to an import's summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    pub valid: bool,
    pub level: Option<Flag>,
    pub imminent: bool,
    pub crisis: bool,
    /// At or above the plan's threshold: it has an alert id.
    pub alerting: bool,
    /// The relay confirmed that alert (the case it joined is recorded).
    pub confirmed: bool,
}

/// Whether RFC 3339 time `a` is before `b` (false when either does not parse).
pub(crate) fn earlier_than(a: &str, b: &str) -> bool {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}
