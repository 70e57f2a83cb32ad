//! The shipped `playbooks/` library: it checks clean, and every playbook
//! meets the bar issue 3 sets (bilingual, ≥4 roles, cited sources, real time
//! limits, a deterministic selection for every case).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use crisisdesk::playbook::{
    ContactOutcome, Library, Playbook, Progress, StepState, check_dir, load_dir,
};
use crisisdesk::protocol::{Category, Level, Role};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks")
}

fn library() -> Library {
    match load_dir(&dir()) {
        Ok(lib) => lib,
        Err(diags) => {
            let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!("playbooks/ does not check clean:\n{}", text.join("\n"));
        }
    }
}

fn book<'a>(lib: &'a Library, id: &str) -> &'a Playbook {
    lib.get(id).unwrap_or_else(|| panic!("no playbook `{id}`"))
}

fn due_of(pb: &Playbook, step: &str) -> String {
    let s = pb
        .step(step)
        .unwrap_or_else(|| panic!("{}: no step `{step}`", pb.id));
    s.due
        .as_ref()
        .map(|d| d.within.to_string())
        .unwrap_or_default()
}

const ALL_CATEGORIES: [Category; 7] = [
    Category::SuicideRisk,
    Category::SelfHarm,
    Category::ViolenceThreat,
    Category::Bullying,
    Category::TraumaBereavement,
    Category::AcuteDistress,
    Category::Other,
];
const ALL_LEVELS: [Level; 3] = [Level::General, Level::Key, Level::High];

#[test]
fn shipped_library_checks_clean() {
    let diags: Vec<String> = check_dir(&dir()).iter().map(ToString::to_string).collect();
    assert!(diags.is_empty(), "{}", diags.join("\n"));
}

#[test]
fn the_scenarios_are_all_there() {
    let lib = library();
    let shipped = [
        "imminent_suicide_risk",
        "self_harm_discovered",
        "suicidal_ideation_screening",
        "bullying_violence_threat",
        "school_bullying",
        "sudden_death_trauma",
        "return_to_school",
        "acute_distress_concern",
        "other_triage",
        "missing_student",
        "abuse_disclosure",
        "acute_psychosis_agitation",
        "guardian_refuses_care",
        "dorm_night_university",
        "eating_disorder_medical_risk",
        "overdose_ingestion",
        "contagion_cluster",
        "anonymous_treehole_post",
    ];
    for id in shipped {
        book(&lib, id);
    }
    assert_eq!(lib.len(), shipped.len());
}

#[test]
fn every_playbook_uses_four_roles_and_cites_domain_sources() {
    // Names from DOMAIN.md's protocol list and the Chinese regulations.
    let known = [
        "C-SSRS",
        "ASQ",
        "SAFE-T",
        "Stanley-Brown",
        "PREPaRE",
        "CSTAG",
        "AFSP",
        "After a Suicide",
        "教育部",
        "专项行动计划",
        "精神卫生法",
        "未成年人保护法",
        "反家庭暴力法",
        // Further sources carry their number in the clinical/legal review
        // (shared/review/PLAYBOOKS_REVIEW.md §10), where each is checked.
        "PLAYBOOKS_REVIEW [R",
    ];
    for pb in library().playbooks() {
        let roles: BTreeSet<Role> = pb.steps.iter().map(|s| s.role).collect();
        // The `other` triage only routes; the playbook it adds brings the
        // whole team.
        let least = if pb.id == "other_triage" { 3 } else { 4 };
        assert!(roles.len() >= least, "{} uses only {roles:?}", pb.id);
        assert!(!pb.sources.is_empty(), "{} cites nothing", pb.id);
        for c in &pb.sources {
            assert!(
                known.iter().any(|k| c.name.contains(k)),
                "{}: source `{}` is not one DOMAIN.md names",
                pb.id,
                c.name
            );
        }
        for s in &pb.steps {
            assert!(!s.sources.is_empty(), "{}.{} cites no source", pb.id, s.id);
        }
        assert!(
            pb.steps
                .iter()
                .any(|s| s.required && s.due.is_some() && s.escalate_to.is_some()),
            "{} has no required, timed, escalating step",
            pb.id
        );
    }
}

/// A step whose title promises "within N school day(s)" is timed in
/// school days, N of them: counted on the school's calendar, never due in
/// a holiday.
#[test]
fn titles_in_school_days_have_school_day_limits() {
    let lib = library();
    let mut seen = 0;
    for pb in lib.playbooks() {
        for step in &pb.steps {
            let title = step.title.en.to_lowercase();
            let Some(at) = title.find(" school day") else {
                continue;
            };
            let Some(n) = title[..at]
                .rsplit(' ')
                .next()
                .and_then(|w| w.parse::<u32>().ok())
            else {
                continue;
            };
            seen += 1;
            let limit = step.due.as_ref().map(|d| d.within);
            assert_eq!(
                limit.and_then(|l| l.school_days()),
                Some(n),
                "{}/{}: \"{}\" is timed {:?}",
                pb.id,
                step.id,
                step.title.en,
                limit.map(|l| l.to_string())
            );
        }
    }
    assert!(
        seen >= 2,
        "the titles promising school days were found: {seen}"
    );
}

#[test]
fn time_limits_follow_the_domain_brief() {
    let lib = library();
    let imminent = book(&lib, "imminent_suicide_risk");
    assert_eq!(due_of(imminent, "counselor_arrives"), "10m");
    assert_eq!(due_of(imminent, "activate_team"), "15m");
    assert_eq!(due_of(imminent, "guardian_call"), "30m");
    assert_eq!(due_of(imminent, "upward_report"), "2h");
    let screening = book(&lib, "suicidal_ideation_screening");
    assert_eq!(due_of(screening, "interview"), "1 school_day");
    let threat = book(&lib, "bullying_violence_threat");
    assert_eq!(due_of(threat, "admin_interview"), "1 school_day");
    let distress = book(&lib, "acute_distress_concern");
    assert_eq!(due_of(distress, "counselor_meeting"), "1 school_day");
    let postvention = book(&lib, "sudden_death_trauma");
    assert_eq!(due_of(postvention, "family_contact"), "1d");
    let self_harm = book(&lib, "self_harm_discovered");
    assert_eq!(due_of(self_harm, "week_review"), "7d");
    let reentry = book(&lib, "return_to_school");
    assert_eq!(due_of(reentry, "review_two_weeks"), "14d");
    assert_eq!(due_of(reentry, "day_1"), "1d");
    assert_eq!(due_of(reentry, "week_4"), "28d");
}

#[test]
fn risk_and_threat_branches_carry_the_protocol_levels() {
    let lib = library();
    let options = |pb: &str, step: &str| -> Vec<String> {
        book(&lib, pb)
            .step(step)
            .map(|s| s.kind.options().iter().map(|o| o.id.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        options("suicidal_ideation_screening", "cssrs_level"),
        ["no_current_ideation", "low", "moderate", "high"]
    );
    assert_eq!(
        options("bullying_violence_threat", "threat_class"),
        [
            "transient",
            "serious_substantive",
            "very_serious_substantive"
        ]
    );
}

#[test]
fn selection_covers_every_case_deterministically() {
    let lib = library();
    let pick = |c, l, i| lib.select(c, l, i).map(|pb| pb.id.as_str());
    for level in ALL_LEVELS {
        for c in [
            Category::SuicideRisk,
            Category::SelfHarm,
            Category::AcuteDistress,
            Category::Other,
        ] {
            assert_eq!(pick(c, level, true), Some("imminent_suicide_risk"), "{c:?}");
        }
        assert_eq!(
            pick(Category::SuicideRisk, level, false),
            Some("suicidal_ideation_screening")
        );
        assert_eq!(
            pick(Category::SelfHarm, level, false),
            Some("self_harm_discovered")
        );
        for imminent in [false, true] {
            assert_eq!(
                pick(Category::ViolenceThreat, level, imminent),
                Some("bullying_violence_threat")
            );
            // Bullying is a pattern, not a threat: its own playbook (review §4.3).
            assert_eq!(
                pick(Category::Bullying, level, imminent),
                Some("school_bullying")
            );
            assert_eq!(
                pick(Category::TraumaBereavement, level, imminent),
                Some("sudden_death_trauma")
            );
        }
        assert_eq!(
            pick(Category::AcuteDistress, level, false),
            Some("acute_distress_concern")
        );
        // `other` is triaged within minutes, never given the one-school-day
        // distress playbook (review §7.2, §9.1 item 10).
        assert_eq!(pick(Category::Other, level, false), Some("other_triage"));
        assert_eq!(
            pick(Category::Other, level, true),
            Some("imminent_suicide_risk")
        );
    }
    // Return to school is only ever added by hand.
    for c in ALL_CATEGORIES {
        for level in ALL_LEVELS {
            for imminent in [false, true] {
                // Added by hand only: return to school, and the scenarios
                // the `other` triage (or a responder) chooses.
                for by_hand in [
                    "return_to_school",
                    "missing_student",
                    "abuse_disclosure",
                    "acute_psychosis_agitation",
                    "guardian_refuses_care",
                    "dorm_night_university",
                    "eating_disorder_medical_risk",
                    "overdose_ingestion",
                    "contagion_cluster",
                    "anonymous_treehole_post",
                ] {
                    assert_ne!(pick(c, level, imminent), Some(by_hand));
                }
                assert!(
                    pick(c, level, imminent).is_some(),
                    "{c:?} {level:?} {imminent}"
                );
            }
        }
    }
}

#[test]
fn playbooks_survive_the_wire() {
    // The relay sends the library to consoles in its session frame.
    for pb in library().playbooks() {
        let json = serde_json::to_string(pb).expect("serializes");
        let back: Playbook = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(&back, pb);
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default()
        + TimeDelta::minutes(minutes)
}

#[test]
fn imminent_walkthrough_reaches_a_closable_checklist() {
    let lib = library();
    let pb = book(&lib, "imminent_suicide_risk");
    let mut p = Progress::new(pb, at(0));
    let ok = |r: Result<_, _>| r.unwrap_or_else(|e| panic!("refused: {e}"));
    ok(p.complete(pb, "stay_with_student", Role::Security, at(2)));
    ok(p.complete(pb, "remove_means", Role::Security, at(6)));
    ok(p.skip(pb, "first_aid", Role::Nurse, at(7), "no injury found"));
    // The roof at night: security stays with the student, the counselor
    // coaches by phone, then arrives.
    ok(p.complete(pb, "counselor_arrives", Role::Counselor, at(8)));
    ok(p.complete(pb, "counselor_on_scene", Role::Counselor, at(12)));
    ok(p.complete(pb, "activate_team", Role::Leader, at(9)));
    // Emergency calls can be recorded at any moment, by whoever is there,
    // and never go overdue: nobody called at first, the roof came later.
    for call in ["call_120", "call_110", "call_119", "meet_responders"] {
        assert_eq!(p.state(pb, call), Some(StepState::Pending), "{call}");
        assert_eq!(p.due_at(pb, call), None, "{call}");
    }
    ok(p.complete(pb, "call_110", Role::Security, at(10)));
    ok(p.complete(pb, "call_119", Role::Security, at(10)));
    ok(p.complete(pb, "meet_responders", Role::Security, at(14)));
    ok(p.note(
        pb,
        "brief_assessment",
        Role::Counselor,
        at(18),
        "plan and intent",
    ));
    ok(p.choose(pb, "disposition", Role::Counselor, at(20), "emergency"));
    assert_eq!(p.state(pb, "safety_plan"), Some(StepState::Inactive));
    // Nobody calls the guardians before someone asked whether it is safe.
    assert_eq!(p.state(pb, "guardian_call"), Some(StepState::Inactive));
    ok(p.choose(pb, "guardian_safety", Role::HeadTeacher, at(20), "safe"));
    assert_eq!(p.state(pb, "mandatory_report"), Some(StepState::Inactive));
    ok(p.contact(
        pb,
        "guardian_call",
        Role::HeadTeacher,
        at(21),
        ContactOutcome::NoAnswer,
    ));
    ok(p.contact(
        pb,
        "guardian_call",
        Role::HeadTeacher,
        at(26),
        ContactOutcome::Reached,
    ));
    ok(p.complete(pb, "emergency_transfer", Role::Leader, at(35)));
    ok(p.complete(pb, "handover", Role::Counselor, at(60)));
    ok(p.referral(
        pb,
        "psychiatric_referral",
        Role::Counselor,
        at(70),
        "市精神卫生中心急诊",
        at(65),
    ));
    // Follow-up can no longer be skipped by omission.
    assert!(p.open_required(pb).iter().any(|s| s.id == "plan_follow_up"));
    ok(p.complete(pb, "plan_follow_up", Role::Counselor, at(80)));
    ok(p.note(
        pb,
        "upward_report",
        Role::Leader,
        at(300),
        "reported to district bureau",
    ));
    assert!(!p.can_close(pb));
    let open: Vec<&str> = p.open_required(pb).iter().map(|s| s.id.as_str()).collect();
    assert_eq!(open, ["safe_t_record"]);
    ok(p.note(
        pb,
        "safe_t_record",
        Role::Counselor,
        at(400),
        "SAFE-T: high risk",
    ));
    assert!(p.can_close(pb), "{:?}", p.open_required(pb));
    // Optional steps still go overdue, but with no one to escalate to.
    let late: Vec<(&str, Option<Role>)> = p
        .overdue(pb, at(400))
        .iter()
        .map(|o| (o.step.id.as_str(), o.escalate_to))
        .collect();
    assert_eq!(late, [("cover_class", None)]);
}

/// The `other` triage: each answer switches on exactly the playbook it
/// names, within minutes, and the rest never apply.
#[test]
fn other_triage_adds_the_fitting_playbook_within_minutes() {
    let lib = library();
    let pb = book(&lib, "other_triage");
    let adders = [
        ("imminent_danger", "add_imminent", 5),
        ("missing", "add_missing", 5),
        ("abuse_disclosure", "add_abuse", 10),
        ("psychosis", "add_psychosis", 5),
        ("distress", "add_distress", 60),
    ];
    assert_eq!(due_of(pb, "what_is_it"), "15m");
    for (answer, step, minutes) in adders {
        let mut p = Progress::new(pb, at(0));
        p.choose(pb, "what_is_it", Role::Counselor, at(4), answer)
            .unwrap_or_else(|e| panic!("{answer}: {e}"));
        assert_eq!(p.state(pb, step), Some(StepState::Pending), "{answer}");
        assert_eq!(p.due_at(pb, step), Some(at(4 + minutes)), "{answer}");
        for (_, other, _) in adders.iter().filter(|(a, _, _)| *a != answer) {
            assert_eq!(p.state(pb, other), Some(StepState::Inactive), "{answer}");
        }
    }
}

/// A disclosure of abuse never reaches a guardian before a gate, and the
/// police hear of it whichever way the gate goes.
#[test]
fn abuse_disclosure_reports_to_police_on_every_path_and_gates_the_guardian() {
    let lib = library();
    let pb = book(&lib, "abuse_disclosure");
    let ok = |r: Result<_, _>| r.unwrap_or_else(|e| panic!("refused: {e}"));

    // The guardian may be the source: no call, a mandatory report instead.
    let mut p = Progress::new(pb, at(0));
    assert_eq!(p.state(pb, "guardian_call"), Some(StepState::Inactive));
    ok(p.choose(
        pb,
        "guardian_safety",
        Role::Counselor,
        at(10),
        "guardian_source_of_harm",
    ));
    assert_eq!(p.state(pb, "guardian_call"), Some(StepState::Inactive));
    assert_eq!(p.state(pb, "mandatory_report"), Some(StepState::Pending));
    assert!(
        p.open_required(pb)
            .iter()
            .any(|s| s.id == "mandatory_report")
    );

    // Harm from outside the family: the police report comes first, then
    // the call (which cannot be worked before it).
    let mut p = Progress::new(pb, at(0));
    ok(p.choose(pb, "guardian_safety", Role::Counselor, at(10), "safe"));
    assert_eq!(p.state(pb, "mandatory_report"), Some(StepState::Inactive));
    assert!(
        p.contact(
            pb,
            "guardian_call",
            Role::HeadTeacher,
            at(11),
            ContactOutcome::Reached
        )
        .is_err(),
        "the guardian call waits for the police report"
    );
    ok(p.note(
        pb,
        "police_report_outside_family",
        Role::Leader,
        at(20),
        "110 receipt 0421",
    ));
    ok(p.contact(
        pb,
        "guardian_call",
        Role::HeadTeacher,
        at(25),
        ContactOutcome::Reached,
    ));

    // A staff member accused is kept away from students within the hour.
    ok(p.choose(pb, "staff_accused", Role::Leader, at(30), "staff"));
    assert_eq!(p.due_at(pb, "separate_staff"), Some(at(90)));
}

/// Leaving the imminent or the screening path needs a second person: the
/// counselor proposes, only the leader can confirm.
#[test]
fn a_false_positive_exit_needs_the_leaders_sign_off() {
    let lib = library();
    let ok = |r: Result<_, _>| r.unwrap_or_else(|e| panic!("refused: {e}"));
    for (playbook, choice, exit, confirm) in [
        (
            "imminent_suicide_risk",
            "disposition",
            "not_imminent",
            "confirm_not_imminent",
        ),
        (
            "suicidal_ideation_screening",
            "cssrs_level",
            "no_current_ideation",
            "confirm_no_ideation",
        ),
    ] {
        let pb = book(&lib, playbook);
        let mut p = Progress::new(pb, at(0));
        satisfy_needs(pb, &mut p, choice);
        ok(p.choose(pb, choice, Role::Counselor, at(10), exit));
        assert_eq!(p.state(pb, confirm), Some(StepState::Pending), "{playbook}");
        assert!(
            p.note(pb, confirm, Role::Counselor, at(11), "I agree with myself")
                .is_err(),
            "{playbook}: the proposer's role cannot sign its own exit off"
        );
        assert!(p.open_required(pb).iter().any(|s| s.id == confirm));
        ok(p.note(pb, confirm, Role::Leader, at(20), "basis checked"));
    }
}

/// Skips (as the leader may) everything `step` waits for, transitively.
fn satisfy_needs(pb: &Playbook, p: &mut Progress, step: &str) {
    for need in &pb.step(step).unwrap().needs {
        satisfy_needs(pb, p, need);
        if p.state(pb, need) == Some(StepState::Pending) {
            p.skip(pb, need, Role::Leader, at(5), "done elsewhere")
                .unwrap_or_else(|e| panic!("{need}: {e}"));
        }
    }
}

/// A return can be deferred; then no check-ins start and the family is told
/// what is missing.
#[test]
fn a_deferred_return_starts_no_check_ins() {
    let lib = library();
    let pb = book(&lib, "return_to_school");
    let mut p = Progress::new(pb, at(0));
    p.choose(pb, "guardian_safety", Role::Counselor, at(4), "safe")
        .unwrap();
    satisfy_needs(pb, &mut p, "leader_signoff");
    p.choose(pb, "leader_signoff", Role::Leader, at(10), "deferred")
        .unwrap();
    for step in ["day_1", "week_4", "point_person", "level_review"] {
        assert_eq!(p.state(pb, step), Some(StepState::Inactive), "{step}");
    }
    assert_eq!(p.state(pb, "deferral_notice"), Some(StepState::Pending));
}

/// A missing student: the police can be called at minute 0 by whoever is
/// there, and the search is timed in minutes, not days.
#[test]
fn a_missing_student_is_searched_for_in_minutes() {
    let lib = library();
    let pb = book(&lib, "missing_student");
    assert_eq!(due_of(pb, "last_seen"), "10m");
    assert_eq!(due_of(pb, "search_campus"), "15m");
    assert_eq!(due_of(pb, "report_110"), "30m");
    let mut p = Progress::new(pb, at(0));
    p.complete(pb, "call_110", Role::Security, at(0)).unwrap();
    assert_eq!(p.state(pb, "guardian_call"), Some(StepState::Inactive));
    assert!(
        pb.steps
            .iter()
            .filter(|s| s.anytime)
            .filter_map(|s| s.calls.as_deref())
            .collect::<BTreeSet<_>>()
            .is_superset(&BTreeSet::from(["110", "119", "120"]))
    );
}

/// When the guardian may be the source of harm, the return is still
/// decided: the re-entry meeting waits for the gate, not for the call.
#[test]
fn a_return_is_decidable_when_the_guardian_is_not_told() {
    let lib = library();
    let pb = book(&lib, "return_to_school");
    let mut p = Progress::new(pb, at(0));
    p.choose(
        pb,
        "guardian_safety",
        Role::Counselor,
        at(5),
        "guardian_source_of_harm",
    )
    .unwrap();
    assert_eq!(p.state(pb, "invite_guardian"), Some(StepState::Inactive));
    assert_eq!(p.state(pb, "mandatory_report"), Some(StepState::Pending));
    satisfy_needs(pb, &mut p, "leader_signoff");
    assert_eq!(p.state(pb, "leader_signoff"), Some(StepState::Pending));
    p.choose(pb, "leader_signoff", Role::Leader, at(10), "cleared")
        .unwrap();
    assert_eq!(p.state(pb, "day_1"), Some(StepState::Pending));
}
