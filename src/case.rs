//! The case rules, pure: what an alert does to a student's case, how cases
//! are numbered, and what acknowledging and closing require. No clock (the
//! caller passes `now`), no I/O. Every storage backend applies these same
//! decisions; the backend only loads the facts and saves the result, the
//! way [`crate::playbook::Progress`] decides checklist changes.

use chrono::{DateTime, Utc};

use crate::protocol::{Actor, Alert, AlertStatus, CaseSnapshot, CaseStatus, Role, Student};

/// Which open case an alert may join. Drills and tests never join a real
/// case of the same student, nor each other: each drill is its own world.
pub fn mode(alert: &Alert) -> String {
    match alert.status {
        AlertStatus::Actual => "actual".to_string(),
        AlertStatus::Test => "test".to_string(),
        AlertStatus::Exercise => format!(
            "exercise:{}",
            alert.exercise_id.as_deref().unwrap_or_default()
        ),
    }
}

/// The case id shown to people: `C` and six digits of the case number.
pub fn case_id(num: i64) -> String {
    format!("C{num:06}")
}

/// What a stored alert with the same `id` means for a new post of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repost {
    /// Same body: a harmless retry, answered with the first answer.
    Duplicate { seq: i64, case_id: String },
    /// Different body under a taken id: refused, so nothing is silently
    /// dropped under a colliding id.
    Conflict,
}

/// A post of an id already stored, judged by the hash of its body.
pub fn repost(stored_hash: &str, body_hash: &str, seq: i64, case_id: &str) -> Repost {
    if stored_hash == body_hash {
        Repost::Duplicate {
            seq,
            case_id: case_id.to_string(),
        }
    } else {
        Repost::Conflict
    }
}

/// A new case for a student with none open in the alert's mode.
pub fn open(num: i64, alert: &Alert, now: DateTime<Utc>) -> CaseSnapshot {
    CaseSnapshot {
        id: case_id(num),
        status: CaseStatus::Open,
        level: alert.level,
        imminent: alert.imminent,
        category: alert.category,
        alert_status: alert.status,
        exercise_id: alert.exercise_id.clone(),
        student_id: alert.student.id.clone(),
        opened_at: now,
        updated_at: now,
        alert_count: 1,
        acknowledged_by: None,
        acknowledged_at: None,
    }
}

/// An alert joining the student's open case. The case keeps the worst level
/// seen (a later, lower alert never lowers it) and its category follows the
/// alert that raised it; imminence, once reported, stays. A case in
/// monitoring that an alert raises is acute again.
pub fn join(case: &mut CaseSnapshot, alert: &Alert, now: DateTime<Utc>) {
    let raised = alert.level > case.level || (alert.imminent && !case.imminent);
    if alert.level > case.level {
        case.level = alert.level;
        case.category = alert.category;
    }
    case.imminent |= alert.imminent;
    if raised && case.status == CaseStatus::Monitoring {
        case.status = CaseStatus::Acknowledged;
    }
    case.alert_count += 1;
    case.updated_at = now;
}

/// Why a responder may not acknowledge a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckRefusal {
    AlreadyAcknowledged { by: Option<Actor> },
}

/// Takes ownership of an open case for `by`.
pub fn acknowledge(
    case: &mut CaseSnapshot,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AckRefusal> {
    // Acknowledged or in monitoring: someone already has it.
    if case.status != CaseStatus::Open {
        return Err(AckRefusal::AlreadyAcknowledged {
            by: case.acknowledged_by.clone(),
        });
    }
    case.status = CaseStatus::Acknowledged;
    case.acknowledged_by = Some(by.clone());
    case.acknowledged_at = Some(now);
    case.updated_at = now;
    Ok(())
}

/// Why a case may not be closed as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseRefusal {
    /// Only a counselor or a leader closes a case.
    Forbidden(Role),
    /// Required steps are open; `leader_may_override` says whether the
    /// asker could close anyway by giving a reason.
    RequiredStepsOpen {
        steps: Vec<String>,
        leader_may_override: bool,
    },
}

/// Whether `role` may close a case whose required steps `open_required` are
/// still open, with an optional override reason. Returns the steps the close
/// overrides (empty when none were open).
pub fn close_permit(
    role: Role,
    open_required: Vec<String>,
    override_reason: Option<&str>,
) -> Result<Vec<String>, CloseRefusal> {
    if !matches!(role, Role::Counselor | Role::Leader) {
        return Err(CloseRefusal::Forbidden(role));
    }
    let reason = override_reason.map(str::trim).filter(|r| !r.is_empty());
    match (open_required.is_empty(), role, reason) {
        (true, _, _) => Ok(Vec::new()),
        (false, Role::Leader, Some(_)) => Ok(open_required),
        (false, role, _) => Err(CloseRefusal::RequiredStepsOpen {
            steps: open_required,
            leader_may_override: role == Role::Leader,
        }),
    }
}

/// A student's identity across the alerts of a case: each later alert adds
/// what it says and keeps what an earlier one said but it left out.
pub fn merge_identity(into: &mut Student, later: &Student) {
    fn keep(field: &mut Option<String>, later: &Option<String>) {
        if later.is_some() {
            field.clone_from(later);
        }
    }
    into.id.clone_from(&later.id);
    keep(&mut into.name, &later.name);
    keep(&mut into.school, &later.school);
    keep(&mut into.grade, &later.grade);
    keep(&mut into.class, &later.class);
    if later.under_14.is_some() {
        into.under_14 = later.under_14;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Category, Level, Source};

    fn now(m: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(m)
    }

    fn alert(level: Level, category: Category, imminent: bool) -> Alert {
        Alert {
            id: "a".into(),
            status: AlertStatus::Actual,
            exercise_id: None,
            source: Source::TeacherReport,
            category,
            level,
            imminent,
            student: Student {
                id: "S1".into(),
                name: None,
                school: None,
                grade: None,
                class: None,
                under_14: None,
            },
            summary: None,
            signals: Vec::new(),
            observed_at: now(0).fixed_offset(),
            route: Default::default(),
        }
    }

    #[test]
    fn a_case_keeps_the_worst_level_and_imminence() {
        let first = alert(Level::Key, Category::AcuteDistress, true);
        let mut case = open(7, &first, now(0));
        assert_eq!(case.id, "C000007");
        join(
            &mut case,
            &alert(Level::General, Category::Bullying, false),
            now(1),
        );
        assert_eq!(
            (case.level, case.category, case.imminent),
            (Level::Key, Category::AcuteDistress, true),
            "a lower alert never lowers the case nor takes its category"
        );
        join(
            &mut case,
            &alert(Level::High, Category::SuicideRisk, false),
            now(2),
        );
        assert_eq!(
            (case.level, case.category),
            (Level::High, Category::SuicideRisk)
        );
        assert_eq!(case.alert_count, 3);
        assert_eq!(case.updated_at, now(2));
        assert_eq!(case.opened_at, now(0));
    }

    #[test]
    fn drills_and_tests_are_separate_worlds() {
        let mut a = alert(Level::High, Category::SuicideRisk, false);
        assert_eq!(mode(&a), "actual");
        a.status = AlertStatus::Test;
        assert_eq!(mode(&a), "test");
        a.status = AlertStatus::Exercise;
        a.exercise_id = Some("night-1".into());
        assert_eq!(mode(&a), "exercise:night-1");
    }

    #[test]
    fn a_repost_is_a_duplicate_only_with_the_same_body() {
        assert_eq!(
            repost("h1", "h1", 4, "C000001"),
            Repost::Duplicate {
                seq: 4,
                case_id: "C000001".into()
            }
        );
        assert_eq!(repost("h1", "h2", 4, "C000001"), Repost::Conflict);
    }

    #[test]
    fn acknowledging_twice_names_who_has_it() {
        let mut case = open(1, &alert(Level::High, Category::SuicideRisk, false), now(0));
        let me = Actor {
            name: "王老师".into(),
            role: Role::Counselor,
        };
        acknowledge(&mut case, &me, now(3)).unwrap();
        assert_eq!(case.acknowledged_at, Some(now(3)));
        assert_eq!(
            acknowledge(&mut case, &me, now(4)),
            Err(AckRefusal::AlreadyAcknowledged { by: Some(me) })
        );
    }

    #[test]
    fn closing_needs_the_right_role_and_an_override_for_open_steps() {
        let open = || vec!["imminent/stay".to_string()];
        assert_eq!(close_permit(Role::Counselor, vec![], None), Ok(vec![]));
        assert_eq!(
            close_permit(Role::HeadTeacher, vec![], None),
            Err(CloseRefusal::Forbidden(Role::HeadTeacher))
        );
        assert_eq!(
            close_permit(Role::Counselor, open(), Some("reason")),
            Err(CloseRefusal::RequiredStepsOpen {
                steps: open(),
                leader_may_override: false
            }),
            "only a leader overrides"
        );
        assert_eq!(
            close_permit(Role::Leader, open(), Some("  ")),
            Err(CloseRefusal::RequiredStepsOpen {
                steps: open(),
                leader_may_override: true
            }),
            "a blank reason is no reason"
        );
        assert_eq!(
            close_permit(Role::Leader, open(), Some("转介医院")),
            Ok(open())
        );
    }

    #[test]
    fn identity_merge_keeps_what_earlier_alerts_said() {
        let mut who = Student {
            id: "S1".into(),
            name: Some("张三".into()),
            school: Some("一中".into()),
            grade: None,
            class: None,
            under_14: Some(true),
        };
        let later = Student {
            id: "S1".into(),
            name: None,
            school: Some("二中".into()),
            grade: Some("初二".into()),
            class: None,
            under_14: None,
        };
        merge_identity(&mut who, &later);
        assert_eq!(who.name.as_deref(), Some("张三"));
        assert_eq!(who.school.as_deref(), Some("二中"));
        assert_eq!(who.grade.as_deref(), Some("初二"));
        assert_eq!(who.under_14, Some(true));
    }
}
