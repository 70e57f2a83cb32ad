//! The case lifecycle after the first response, pure: open → acute
//! (acknowledged) → monitoring → closed with an outcome, re-opening with a
//! reason, and level changes by explicit command only. No clock (the
//! caller passes `now`), no I/O, like [`crate::case`]; the store loads the
//! facts, asks these rules and saves what they decide.
//!
//! Levels only go down with two people of two roles: one proposes (with a
//! reason), another confirms. Raising needs no second person: more care is
//! never the risky direction. An alert at a lower level never lowers a
//! case ([`crate::case::join`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::protocol::{Actor, CaseSnapshot, CaseStatus, CloseOutcome, Level, Role};

/// A case's level with its imminence flag: what a level change moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grade {
    pub level: Level,
    #[serde(default)]
    pub imminent: bool,
}

impl Grade {
    pub fn of(case: &CaseSnapshot) -> Grade {
        Grade {
            level: case.level,
            imminent: case.imminent,
        }
    }

    /// Whether `self` is at least `other` in both level and imminence.
    pub fn covers(self, other: Grade) -> bool {
        self.level >= other.level && self.imminent >= other.imminent
    }

    pub fn label(self) -> String {
        if self.imminent {
            format!("{}+imminent", self.level.as_str())
        } else {
            self.level.as_str().to_string()
        }
    }
}

/// Longest reason for a level change or a re-open.
pub const MAX_REASON_CHARS: usize = 500;

/// A lowering waiting for its second sign-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelProposal {
    pub from: Grade,
    pub to: Grade,
    pub reason: String,
    pub proposed_by: Actor,
    pub at: DateTime<Utc>,
    /// Screening results answered since the case opened, as evidence the
    /// confirmer sees (plan, level, when): a re-test that supports the
    /// downgrade, or one that does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Reassessment>,
}

/// One screening result on a case: which plan, the graded level, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassessment {
    pub plan_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    pub imminent: bool,
    pub valid: bool,
    pub answered_at: String,
}

/// A level change as applied: who proposed, who confirmed (a lowering
/// always has both), when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelChange {
    pub from: Grade,
    pub to: Grade,
    pub reason: String,
    pub proposed_by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<Actor>,
    pub at: DateTime<Utc>,
}

/// What a level proposal did.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposed {
    /// A raise: applied at once to the case.
    Raised(LevelChange),
    /// A lowering: waits for another role's confirmation; replaces any
    /// proposal that was pending.
    Pending(LevelProposal),
}

/// Why a lifecycle command is refused. [`Refusal::code`] is the wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a {0} may not do this; it is for a counselor or a leader")]
    Forbidden(Role),
    #[error("give a reason (1 to {MAX_REASON_CHARS} characters)")]
    ReasonRequired,
    #[error("the case is already at {0}")]
    NoChange(String),
    #[error("there is no pending level proposal on this case")]
    NoProposal,
    #[error("you proposed this lowering; another person of another role must confirm it")]
    OwnProposal,
    #[error(
        "the lowering was proposed by a {0}; it needs the sign-off of another role (a counselor's proposal is confirmed by a leader, a leader's by a counselor)"
    )]
    SameRole(Role),
    #[error("the case changed to {now} since the proposal from {proposed}; propose again")]
    Stale { proposed: String, now: String },
    #[error("acknowledge the case before moving it to monitoring")]
    NotAcknowledged,
    #[error("the case is already in monitoring")]
    AlreadyMonitoring,
    #[error("only a closed case can be re-opened")]
    NotClosed,
    #[error(
        "a {0} case is closed as stabilized or no-risk only after a last review: a counselor check-in with an outcome within {LAST_REVIEW_DAYS} days; record one, or a leader closes with an override reason"
    )]
    LastReviewMissing(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Forbidden(_) => "forbidden",
            Refusal::ReasonRequired => "reason_required",
            Refusal::NoChange(_) => "no_change",
            Refusal::NoProposal => "no_proposal",
            Refusal::OwnProposal => "own_proposal",
            Refusal::SameRole(_) => "signoff_required",
            Refusal::Stale { .. } => "proposal_stale",
            Refusal::NotAcknowledged => "not_acknowledged",
            Refusal::AlreadyMonitoring => "already_monitoring",
            Refusal::NotClosed => "not_closed",
            Refusal::LastReviewMissing(_) => "last_review_required",
        }
    }
}

/// Who may propose or confirm a lowering, move a case to monitoring or
/// re-open it: the clinical lead and the responsible leader.
pub fn may_decide(role: Role) -> bool {
    matches!(role, Role::Counselor | Role::Leader)
}

fn checked_reason(reason: &str) -> Result<String, Refusal> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Refusal::ReasonRequired);
    }
    Ok(reason.to_string())
}

/// A responder asks for the case to be at `to`. A raise applies to `case`
/// at once (any acting role: a head teacher who sees more risk raises it);
/// a lowering only becomes a proposal, from a counselor or a leader.
pub fn propose(
    case: &mut CaseSnapshot,
    by: &Actor,
    to: Grade,
    reason: &str,
    evidence: Vec<Reassessment>,
    now: DateTime<Utc>,
) -> Result<Proposed, Refusal> {
    if !by.role.can_act() {
        return Err(Refusal::Forbidden(by.role));
    }
    let reason = checked_reason(reason)?;
    let from = Grade::of(case);
    if from == to {
        return Err(Refusal::NoChange(from.label()));
    }
    if to.covers(from) {
        let change = LevelChange {
            from,
            to,
            reason,
            proposed_by: by.clone(),
            confirmed_by: None,
            at: now,
        };
        set_grade(case, to, now);
        return Ok(Proposed::Raised(change));
    }
    if !may_decide(by.role) {
        return Err(Refusal::Forbidden(by.role));
    }
    Ok(Proposed::Pending(LevelProposal {
        from,
        to,
        reason,
        proposed_by: by.clone(),
        at: now,
        evidence,
    }))
}

/// The second sign-off of a pending lowering: another person, of another
/// role, both allowed to decide; and the case must still be where the
/// proposal found it (a raise since then makes it stale).
pub fn confirm(
    case: &mut CaseSnapshot,
    pending: Option<&LevelProposal>,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<LevelChange, Refusal> {
    if !may_decide(by.role) {
        return Err(Refusal::Forbidden(by.role));
    }
    let Some(proposal) = pending else {
        return Err(Refusal::NoProposal);
    };
    if proposal.proposed_by == *by {
        return Err(Refusal::OwnProposal);
    }
    if proposal.proposed_by.role == by.role {
        return Err(Refusal::SameRole(by.role));
    }
    let current = Grade::of(case);
    if current != proposal.from {
        return Err(Refusal::Stale {
            proposed: proposal.from.label(),
            now: current.label(),
        });
    }
    set_grade(case, proposal.to, now);
    Ok(LevelChange {
        from: proposal.from,
        to: proposal.to,
        reason: proposal.reason.clone(),
        proposed_by: proposal.proposed_by.clone(),
        confirmed_by: Some(by.clone()),
        at: now,
    })
}

fn set_grade(case: &mut CaseSnapshot, to: Grade, now: DateTime<Utc>) {
    case.level = to.level;
    case.imminent = to.imminent;
    case.updated_at = now;
}

/// Acute → monitoring: the crisis has passed and the scheduled check-ins
/// take over. Someone must have taken the case first.
pub fn monitor(case: &mut CaseSnapshot, role: Role, now: DateTime<Utc>) -> Result<(), Refusal> {
    if !may_decide(role) {
        return Err(Refusal::Forbidden(role));
    }
    match case.status {
        CaseStatus::Open => Err(Refusal::NotAcknowledged),
        CaseStatus::Monitoring => Err(Refusal::AlreadyMonitoring),
        CaseStatus::Closed => Err(Refusal::NotClosed),
        CaseStatus::Acknowledged => {
            case.status = CaseStatus::Monitoring;
            case.updated_at = now;
            Ok(())
        }
    }
}

/// Closed → acute again, with the reason kept. The owner stays.
pub fn reopen(
    case: &mut CaseSnapshot,
    role: Role,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<String, Refusal> {
    if !may_decide(role) {
        return Err(Refusal::Forbidden(role));
    }
    if case.status != CaseStatus::Closed {
        return Err(Refusal::NotClosed);
    }
    let reason = checked_reason(reason)?;
    case.status = if case.acknowledged_by.is_some() {
        CaseStatus::Acknowledged
    } else {
        CaseStatus::Open
    };
    case.updated_at = now;
    Ok(reason)
}

/// How recent the last review before closing a high case must be.
pub const LAST_REVIEW_DAYS: i64 = 14;

/// Whether closing `case` as `outcome` needs a last review it does not
/// have. Only "it is over" outcomes (stabilized, no risk) of a high or
/// imminent case need one: a referral, a transfer or an error close hands
/// the student on or undoes a mistake. `last_review` is the latest
/// counselor check-in with an outcome; a leader's override reason closes
/// anyway (the same override as for open required steps).
pub fn last_review_permit(
    case: &CaseSnapshot,
    outcome: CloseOutcome,
    last_review: Option<DateTime<Utc>>,
    leader_override: bool,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let high = case.level == Level::High || case.imminent;
    let over = matches!(outcome, CloseOutcome::Stabilized | CloseOutcome::NoRisk);
    let recent = last_review.is_some_and(|at| {
        now.signed_duration_since(at) <= chrono::Duration::days(LAST_REVIEW_DAYS)
    });
    if !high || !over || recent || leader_override {
        return Ok(());
    }
    Err(Refusal::LastReviewMissing(Grade::of(case).label()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AlertStatus, Category};
    use proptest::prelude::*;

    fn at(m: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(m)
    }

    fn actor(name: &str, role: Role) -> Actor {
        Actor {
            name: name.into(),
            role,
        }
    }

    fn case(level: Level, imminent: bool) -> CaseSnapshot {
        CaseSnapshot {
            id: "C000001".into(),
            status: CaseStatus::Acknowledged,
            level,
            imminent,
            category: Category::SuicideRisk,
            alert_status: AlertStatus::Actual,
            exercise_id: None,
            student_id: "S1".into(),
            opened_at: at(0),
            updated_at: at(0),
            alert_count: 1,
            acknowledged_by: Some(actor("王", Role::Counselor)),
            acknowledged_at: Some(at(1)),
        }
    }

    fn grade(level: Level, imminent: bool) -> Grade {
        Grade { level, imminent }
    }

    #[test]
    fn a_raise_applies_at_once_a_lowering_waits_for_another_role() {
        let mut c = case(Level::Key, false);
        let head = actor("李", Role::HeadTeacher);
        let raised = propose(
            &mut c,
            &head,
            grade(Level::High, false),
            "夜间再次表达轻生",
            vec![],
            at(5),
        )
        .unwrap();
        assert!(matches!(raised, Proposed::Raised(ref ch) if ch.confirmed_by.is_none()));
        assert_eq!(c.level, Level::High);

        assert_eq!(
            propose(
                &mut c,
                &head,
                grade(Level::Key, false),
                "好转",
                vec![],
                at(6)
            ),
            Err(Refusal::Forbidden(Role::HeadTeacher)),
            "a head teacher cannot propose a lowering"
        );
        let wang = actor("王", Role::Counselor);
        let Proposed::Pending(p) = propose(
            &mut c,
            &wang,
            grade(Level::Key, false),
            "复评 PHQ-9 6 分",
            vec![],
            at(7),
        )
        .unwrap() else {
            panic!("a lowering is only proposed")
        };
        assert_eq!(c.level, Level::High, "nothing lowered yet");
        assert_eq!(
            confirm(&mut c, Some(&p), &wang, at(8)),
            Err(Refusal::OwnProposal)
        );
        let other_counselor = actor("赵", Role::Counselor);
        assert_eq!(
            confirm(&mut c, Some(&p), &other_counselor, at(8)),
            Err(Refusal::SameRole(Role::Counselor))
        );
        let boss = actor("张", Role::Leader);
        let change = confirm(&mut c, Some(&p), &boss, at(9)).unwrap();
        assert_eq!(change.confirmed_by, Some(boss));
        assert_eq!(
            (change.from.level, change.to.level),
            (Level::High, Level::Key)
        );
        assert_eq!(c.level, Level::Key);
    }

    #[test]
    fn a_proposal_made_stale_by_a_raise_is_refused() {
        let mut c = case(Level::High, false);
        let wang = actor("王", Role::Counselor);
        let Ok(Proposed::Pending(p)) = propose(
            &mut c,
            &wang,
            grade(Level::Key, false),
            "稳定",
            vec![],
            at(1),
        ) else {
            panic!()
        };
        c.imminent = true;
        assert!(matches!(
            confirm(&mut c, Some(&p), &actor("张", Role::Leader), at(2)),
            Err(Refusal::Stale { .. })
        ));
        assert!(c.imminent && c.level == Level::High);
    }

    #[test]
    fn clearing_imminence_is_a_lowering_and_blank_reasons_are_refused() {
        let mut c = case(Level::High, true);
        let wang = actor("王", Role::Counselor);
        assert_eq!(
            propose(
                &mut c,
                &wang,
                grade(Level::High, false),
                "  ",
                vec![],
                at(1)
            ),
            Err(Refusal::ReasonRequired)
        );
        assert!(matches!(
            propose(
                &mut c,
                &wang,
                grade(Level::High, false),
                "已送医",
                vec![],
                at(1)
            ),
            Ok(Proposed::Pending(_))
        ));
        assert!(matches!(
            propose(
                &mut c,
                &wang,
                grade(Level::High, true),
                "同级",
                vec![],
                at(1)
            ),
            Err(Refusal::NoChange(_))
        ));
    }

    #[test]
    fn monitoring_needs_an_owner_and_reopening_a_reason() {
        let mut c = case(Level::High, false);
        c.status = CaseStatus::Open;
        assert_eq!(
            monitor(&mut c, Role::Counselor, at(1)),
            Err(Refusal::NotAcknowledged)
        );
        c.status = CaseStatus::Acknowledged;
        assert_eq!(
            monitor(&mut c, Role::HeadTeacher, at(1)),
            Err(Refusal::Forbidden(Role::HeadTeacher))
        );
        monitor(&mut c, Role::Counselor, at(1)).unwrap();
        assert_eq!(c.status, CaseStatus::Monitoring);
        assert_eq!(
            monitor(&mut c, Role::Leader, at(2)),
            Err(Refusal::AlreadyMonitoring)
        );
        assert_eq!(
            reopen(&mut c, Role::Leader, "复发", at(3)),
            Err(Refusal::NotClosed)
        );
        c.status = CaseStatus::Closed;
        assert_eq!(
            reopen(&mut c, Role::Leader, "", at(3)),
            Err(Refusal::ReasonRequired)
        );
        assert_eq!(
            reopen(&mut c, Role::Leader, " 复学后再次自伤 ", at(3)).as_deref(),
            Ok("复学后再次自伤")
        );
        assert_eq!(c.status, CaseStatus::Acknowledged);
    }

    #[test]
    fn closing_a_high_case_as_over_needs_a_recent_last_review() {
        let c = case(Level::High, false);
        let now = at(60 * 24 * 30);
        assert_eq!(
            last_review_permit(&c, CloseOutcome::Stabilized, None, false, now)
                .map_err(|e| e.code()),
            Err("last_review_required")
        );
        let old = now - chrono::Duration::days(LAST_REVIEW_DAYS + 1);
        assert!(last_review_permit(&c, CloseOutcome::Stabilized, Some(old), false, now).is_err());
        let recent = now - chrono::Duration::days(2);
        assert!(last_review_permit(&c, CloseOutcome::Stabilized, Some(recent), false, now).is_ok());
        assert!(last_review_permit(&c, CloseOutcome::ReferredOut, None, false, now).is_ok());
        assert!(last_review_permit(&c, CloseOutcome::Stabilized, None, true, now).is_ok());
        assert!(
            last_review_permit(
                &case(Level::Key, false),
                CloseOutcome::NoRisk,
                None,
                false,
                now
            )
            .is_ok()
        );
    }

    /// One thing that can happen to a case in the property below.
    #[derive(Debug, Clone)]
    enum Op {
        Propose {
            who: usize,
            level: Level,
            imminent: bool,
        },
        Confirm {
            who: usize,
        },
        Alert {
            level: Level,
            imminent: bool,
        },
    }

    const PEOPLE: [(&str, Role); 5] = [
        ("王", Role::Counselor),
        ("赵", Role::Counselor),
        ("张", Role::Leader),
        ("李", Role::HeadTeacher),
        ("周", Role::Nurse),
    ];

    fn level() -> impl Strategy<Value = Level> {
        prop_oneof![Just(Level::General), Just(Level::Key), Just(Level::High)]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..PEOPLE.len(), level(), any::<bool>()).prop_map(|(who, level, imminent)| {
                Op::Propose {
                    who,
                    level,
                    imminent,
                }
            }),
            (0..PEOPLE.len()).prop_map(|who| Op::Confirm { who }),
            (level(), any::<bool>()).prop_map(|(level, imminent)| Op::Alert { level, imminent }),
        ]
    }

    proptest! {
        /// No sequence of proposals, confirmations and alerts lowers a
        /// case's grade except a confirmation by a second person of a
        /// second role, both allowed to decide.
        #[test]
        fn no_path_lowers_a_level_without_sign_off(ops in prop::collection::vec(op(), 1..40)) {
            let mut c = case(Level::High, true);
            let mut pending: Option<LevelProposal> = None;
            for (i, op) in ops.into_iter().enumerate() {
                let now = at(i as i64 + 1);
                let before = Grade::of(&c);
                let mut signed = None;
                match op {
                    Op::Propose { who, level, imminent } => {
                        let (name, role) = PEOPLE[who];
                        match propose(&mut c, &actor(name, role), grade(level, imminent), "理由", vec![], now) {
                            Ok(Proposed::Pending(p)) => pending = Some(p),
                            Ok(Proposed::Raised(_)) => pending = None,
                            Err(_) => {}
                        }
                    }
                    Op::Confirm { who } => {
                        let (name, role) = PEOPLE[who];
                        if let Ok(change) = confirm(&mut c, pending.as_ref(), &actor(name, role), now) {
                            signed = Some(change);
                            pending = None;
                        }
                    }
                    Op::Alert { level, imminent } => {
                        let mut alert: crate::protocol::Alert = serde_json::from_value(serde_json::json!({
                            "id": format!("a{i}"), "source": "teacher_report", "category": "suicide_risk",
                            "level": level.as_str(), "imminent": imminent, "student": {"id": "S1"},
                            "observed_at": "2026-11-20T21:04:00+08:00"
                        })).unwrap();
                        alert.level = level;
                        crate::case::join(&mut c, &alert, now);
                    }
                }
                let after = Grade::of(&c);
                if !after.covers(before) {
                    let change = signed.expect("lowered without a confirmation");
                    let confirmer = change.confirmed_by.expect("a lowering names its confirmer");
                    prop_assert!(may_decide(confirmer.role) && may_decide(change.proposed_by.role));
                    prop_assert_ne!(confirmer.role, change.proposed_by.role);
                    prop_assert_ne!(confirmer, change.proposed_by);
                    prop_assert_eq!(change.from, before);
                }
            }
        }
    }
}
