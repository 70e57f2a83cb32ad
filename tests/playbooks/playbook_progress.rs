//! Property test of the progress model: random command sequences, from the
//! right role and the wrong one, valid and not, against the test fixture and
//! every shipped playbook. After each command the model's invariants hold.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use crisisdesk::playbook::{
    ContactOutcome, Library, OverdueReason, Playbook, Progress, StepAction, StepKind, StepState,
    load_dir, parse,
};
use crisisdesk::protocol::Role;
use proptest::prelude::*;

const FIXTURE: &str = include_str!("../../src/playbook/testdata/fixture.toml");

fn playbooks() -> Vec<Playbook> {
    let fixture = parse(Path::new("fixture.toml"), FIXTURE).expect("fixture checks");
    let shipped: Library = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks"))
        .expect("shipped playbooks check");
    std::iter::once(fixture)
        .chain(shipped.playbooks().iter().cloned())
        .collect()
}

fn start() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

/// One raw command; `build` turns it into a step, role and action, biased
/// towards commands that could be accepted so sequences get deep into the
/// playbook, while still sending plenty that must be refused.
#[derive(Debug, Clone)]
struct Raw {
    step: usize,
    role: u8,
    action: u8,
    option: usize,
    blank_text: bool,
    minutes: i64,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        0usize..64,
        0u8..12,
        0u8..12,
        0usize..5,
        prop::bool::weighted(0.1),
        0i64..90,
    )
        .prop_map(|(step, role, action, option, blank_text, minutes)| Raw {
            step,
            role,
            action,
            option,
            blank_text,
            minutes,
        })
}

fn build(pb: &Playbook, p: &Progress, r: &Raw, now: DateTime<Utc>) -> (String, Role, StepAction) {
    // Two times in three aim at a step that is ready, so sequences get deep;
    // otherwise any step, or (one index past the end) one that does not exist.
    let ready: Vec<usize> = p
        .view(pb, now)
        .iter()
        .enumerate()
        .filter(|(_, v)| v.state == StepState::Pending)
        .map(|(i, _)| i)
        .collect();
    let idx = if !r.step.is_multiple_of(3) && !ready.is_empty() {
        ready[r.step % ready.len()]
    } else {
        r.step % (pb.steps.len() + 1)
    };
    let Some(step) = pb.steps.get(idx) else {
        return ("no_such_step".into(), Role::Counselor, StepAction::Complete);
    };
    let role = match r.role {
        0..=8 => step.role,
        9 => Role::Leader,
        n => Role::ALL[usize::from(n) % Role::ALL.len()],
    };
    let text = if r.blank_text { "  " } else { "recorded" }.to_string();
    let fitting = match &step.kind {
        StepKind::Check => StepAction::Complete,
        StepKind::Note => StepAction::Note { text: text.clone() },
        StepKind::Choice { options } => StepAction::Choose {
            option: options
                .get(r.option)
                .map_or_else(|| "not_an_option".into(), |o| o.id.clone()),
        },
        StepKind::Contact { .. } => StepAction::Contact {
            outcome: [
                ContactOutcome::Reached,
                ContactOutcome::NoAnswer,
                ContactOutcome::Refused,
            ][r.option % 3],
            remark: None,
        },
        StepKind::Referral => StepAction::Referral {
            institution: text.clone(),
            appointment: now + TimeDelta::days(2),
        },
    };
    let action = match r.action {
        0..=7 => fitting,
        8 => StepAction::Skip { reason: text },
        9 => StepAction::Complete,
        10 => StepAction::Note { text },
        _ => StepAction::Choose {
            option: "high".into(),
        },
    };
    (step.id.clone(), role, action)
}

fn check_invariants(pb: &Playbook, p: &Progress, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    let views = p.view(pb, now);
    for v in &views {
        let outcome = p.outcome(&v.step.id);
        // State agrees with the record: resolved iff done or skipped.
        match v.state {
            StepState::Done => prop_assert!(outcome.is_some_and(|o| !o.is_skip())),
            StepState::Skipped => prop_assert!(outcome.is_some_and(|o| o.is_skip())),
            _ => prop_assert!(outcome.is_none(), "{} open with an outcome", v.step.id),
        }
        if let Some(o) = outcome {
            // Every dependency was resolved no later than this step.
            for need in &v.step.needs {
                let dep = p.outcome(need);
                prop_assert!(
                    dep.is_some_and(|d| d.at <= o.at),
                    "{} resolved before its need {need}",
                    v.step.id
                );
            }
            // A branch step was resolved only after one of its gates was chosen.
            let gates: Vec<_> = pb.gates(&v.step.id).collect();
            if !gates.is_empty() {
                let opened = gates.iter().any(|(choice, option)| {
                    p.outcome(&choice.id).is_some_and(|c| {
                        c.at <= o.at
                            && matches!(&c.how, crisisdesk::playbook::Resolution::Chose { option: chosen } if *chosen == option.id)
                    })
                });
                prop_assert!(opened, "{} resolved outside its branch", v.step.id);
            }
        }
        if let Some(reason) = v.overdue {
            prop_assert!(v.state.is_open(), "{} overdue but {:?}", v.step.id, v.state);
            if reason == OverdueReason::PastDue {
                prop_assert!(v.due.is_some_and(|d| now > d));
            } else {
                let max = match v.step.kind {
                    StepKind::Contact { max_attempts, .. } => max_attempts,
                    _ => None,
                };
                prop_assert!(max.is_some_and(|m| v.failed_attempts >= m));
            }
        }
        if v.state == StepState::Inactive {
            prop_assert!(v.due.is_none());
        }
    }
    let overdue: Vec<&str> = p
        .overdue(pb, now)
        .iter()
        .map(|o| o.step.id.as_str())
        .collect();
    let flagged: Vec<&str> = views
        .iter()
        .filter(|v| v.overdue.is_some())
        .map(|v| v.step.id.as_str())
        .collect();
    prop_assert_eq!(overdue.len(), flagged.len());

    let open_required = p.open_required(pb);
    prop_assert_eq!(p.can_close(pb), open_required.is_empty());
    for s in open_required {
        prop_assert!(s.required);
        prop_assert!(p.state(pb, &s.id).is_some_and(StepState::is_open));
    }
    for &role in Role::ALL {
        let mine = p.steps_for(pb, role, now);
        prop_assert!(
            mine.iter()
                // Its own steps, and steps it may do beside their owner
                // (`also`: security staying with a student at night).
                .all(|v| v.step.may_act(role) && v.state.is_open())
        );
        let keys: Vec<_> = mine
            .iter()
            .map(|v| v.act_by().unwrap_or(DateTime::<Utc>::MAX_UTC))
            .collect();
        prop_assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "my steps out of order"
        );
    }
    let json = serde_json::to_string(p).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Progress =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, p);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_commands_keep_the_invariants(
        which in 0usize..16,
        commands in prop::collection::vec(raw(), 1..80),
    ) {
        let books = playbooks();
        let pb = &books[which % books.len()];
        let mut now = start();
        let mut p = Progress::new(pb, now);
        for r in &commands {
            now += TimeDelta::minutes(r.minutes);
            let (step, role, action) = build(pb, &p, r, now);
            let before = p.clone();
            match p.apply(pb, &step, role, now, &action) {
                Err(refusal) => {
                    prop_assert_eq!(&p, &before, "refused ({}) but changed", refusal);
                    prop_assert!(!refusal.to_string().is_empty());
                }
                Ok(change) => {
                    prop_assert_eq!(&change.step, &step);
                    prop_assert_eq!(change.at, now);
                    // Only the named step's record changed.
                    for (id, rec) in &p.steps {
                        if *id != step {
                            prop_assert_eq!(Some(rec), before.steps.get(id));
                        }
                    }
                    prop_assert_ne!(p.steps.get(&step), before.steps.get(&step));
                    // Resolutions are final.
                    for (id, rec) in &before.steps {
                        if let Some(o) = &rec.outcome {
                            prop_assert_eq!(p.outcome(id), Some(o));
                        }
                    }
                }
            }
            check_invariants(pb, &p, now)?;
        }
    }
}
