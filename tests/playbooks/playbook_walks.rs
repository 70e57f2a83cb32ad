//! Each playbook added for issue 11 walked end to end on a real relay, over
//! real websockets, one console per role: the safeguarding gate's unsafe
//! answer opens the mandatory report and shuts the guardian call; a refusal
//! switches on the refusal path (精神卫生法 §28 where the playbook has one)
//! while "not reached" stays a different path; and the whole checklist can be
//! worked through by the roles that own it until the case closes without an
//! override. Every assertion is on what the relay answers and streams: step
//! states are computed from the streamed progress and the playbook the relay
//! sent in its session frame (the computation every console uses).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use crisisdesk::playbook::{Playbook, Progress, StepKind, StepState};
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

const ROLES: [Role; 5] = [
    Role::Counselor,
    Role::HeadTeacher,
    Role::Leader,
    Role::Nurse,
    Role::Security,
];

/// One relay, one case, a console per acting role, and the checklists as the
/// stream last showed them.
struct Walk {
    relay: TestRelay,
    case_id: String,
    consoles: Vec<(Role, Ws)>,
    playbooks: BTreeMap<String, Playbook>,
    /// playbook id → (seq of the event that carried it, the checklist).
    checklists: BTreeMap<String, (i64, Progress)>,
    commands: usize,
}

impl Walk {
    /// A relay with one `other` case (which the relay gives `other_triage`)
    /// and, unless it is that one, `playbook` added by hand as a leader would.
    async fn start(playbook: &str) -> Walk {
        let relay = TestRelay::start().await;
        let mut consoles = Vec::new();
        let mut playbooks = BTreeMap::new();
        for role in ROLES {
            let token = relay.token(&format!("walker-{role:?}"), role).await;
            let mut ws = connect(relay.addr, Some(&token), 0).await.unwrap();
            let hello = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
            assert_eq!(hello["type"], "session");
            for _ in 0..hello["playbook_frames"].as_u64().unwrap() {
                let frame = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
                let pb: Playbook = serde_json::from_value(frame["playbook"].clone()).unwrap();
                playbooks.insert(pb.id.clone(), pb);
            }
            consoles.push((role, ws));
        }
        let producer = relay.token("feed", Role::Producer).await;
        let mut a = alert("walk-1", "S-WALK-1", "key");
        a["category"] = json!("other");
        a["source"] = json!("teacher_report");
        a["summary"] = json!("班主任报告：学生情况异常");
        a["signals"] = json!([]);
        let reply = post_alert(&relay, &producer, &a).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let case_id = reply.body["case_id"].as_str().unwrap().to_string();
        let mut walk = Walk {
            relay,
            case_id,
            consoles,
            playbooks,
            checklists: BTreeMap::new(),
            commands: 0,
        };
        walk.read_until(Role::Leader, |e| e["type"] == "checklist_added")
            .await;
        assert!(
            walk.checklists.contains_key("other_triage"),
            "the relay gives an `other` case its triage"
        );
        if playbook != "other_triage" {
            walk.add(playbook).await;
        }
        walk
    }

    fn console(&mut self, role: Role) -> &mut Ws {
        &mut self
            .consoles
            .iter_mut()
            .find(|(r, _)| *r == role)
            .expect("a console for every role")
            .1
    }

    fn book(&self, id: &str) -> &Playbook {
        self.playbooks
            .get(id)
            .unwrap_or_else(|| panic!("the relay does not run `{id}`"))
    }

    /// Keeps the newest checklist each event carries.
    fn absorb(&mut self, event: &Value) {
        let Some(seq) = event["seq"].as_i64() else {
            return;
        };
        if event["case_id"] != self.case_id.as_str() {
            return;
        }
        if let Some(p) = event.get("progress") {
            let progress: Progress = serde_json::from_value(p.clone()).unwrap();
            let newer = self
                .checklists
                .get(&progress.playbook)
                .is_none_or(|(s, _)| *s < seq);
            if newer {
                self.checklists
                    .insert(progress.playbook.clone(), (seq, progress));
            }
        }
    }

    /// Reads one console until an event matching `what` arrives.
    async fn read_until(&mut self, role: Role, what: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = next_json(self.console(role), Duration::from_secs(10))
                .await
                .expect("the awaited event within 10 s");
            self.absorb(&frame);
            if what(&frame) {
                return frame;
            }
        }
    }

    /// Sends a command on `role`'s console; returns the result and, when it
    /// succeeded, the event it caused.
    async fn command(&mut self, role: Role, mut cmd: Value) -> (Value, Option<Value>) {
        self.commands += 1;
        let id = format!("walk-{}", self.commands);
        cmd["type"] = json!("command");
        cmd["id"] = json!(id);
        cmd["case_id"] = json!(self.case_id);
        cmd["client_at"] = json!("2026-11-20T21:05:00+08:00");
        send_command(self.console(role), cmd).await;
        let (result, seen) = result_for(self.console(role), &id).await;
        for e in &seen {
            self.absorb(e);
        }
        if result["ok"] != true {
            return (result, None);
        }
        let caused = |e: &Value| e["origin"]["command_id"] == id.as_str();
        let event = match seen.iter().find(|e| caused(e)) {
            Some(e) => e.clone(),
            None => self.read_until(role, caused).await,
        };
        (result, Some(event))
    }

    async fn add(&mut self, playbook: &str) {
        let (result, event) = self
            .command(
                Role::Leader,
                json!({"op": "add_playbook", "playbook": playbook}),
            )
            .await;
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(event.unwrap()["type"], "checklist_added");
        assert!(self.checklists.contains_key(playbook));
    }

    /// Works `step` of `playbook` as its owner; returns the streamed
    /// `step_updated`, or the refusal's code.
    async fn step(&mut self, playbook: &str, step: &str, action: Value) -> Result<Value, String> {
        let role = self
            .book(playbook)
            .step(step)
            .unwrap_or_else(|| panic!("{playbook} has no step `{step}`"))
            .role;
        let mut cmd = json!({"op": "step", "playbook": playbook, "step": step});
        for (k, v) in action.as_object().unwrap() {
            cmd[k] = v.clone();
        }
        match self.command(role, cmd).await {
            (_, Some(event)) => {
                assert_eq!(event["type"], "step_updated");
                assert_eq!(event["change"]["step"], step);
                Ok(event)
            }
            (result, None) => Err(result["error"]["code"].as_str().unwrap().to_string()),
        }
    }

    async fn ok(&mut self, playbook: &str, step: &str, action: Value) -> Value {
        self.step(playbook, step, action)
            .await
            .unwrap_or_else(|code| panic!("{playbook}/{step} refused: {code}"))
    }

    /// The state of a step in the checklist the stream last carried.
    fn state(&self, playbook: &str, step: &str) -> StepState {
        let (_, progress) = &self.checklists[playbook];
        progress
            .state(self.book(playbook), step)
            .unwrap_or_else(|| panic!("{playbook} has no step `{step}`"))
    }

    /// Resolves every pending step that applies, in checklist order,
    /// as its owner would (first option of a choice, a contact reached),
    /// until nothing is pending; then closes the case with no
    /// override. This is the checklist worked to its end.
    async fn finish_and_close(&mut self) {
        for _round in 0..100 {
            let mut next = None;
            'find: for (pb_id, (_, progress)) in &self.checklists {
                let pb = self.book(pb_id);
                for s in &pb.steps {
                    // Optional steps too: a required one may wait on them.
                    if !s.anytime && progress.state(pb, &s.id) == Some(StepState::Pending) {
                        next = Some((pb_id.clone(), s.id.clone(), action_for(&s.kind)));
                        break 'find;
                    }
                }
            }
            let Some((pb, step, action)) = next else {
                let (result, event) = self
                    .command(
                        Role::Leader,
                        json!({"op": "close", "outcome": "stabilized"}),
                    )
                    .await;
                assert_eq!(result["ok"], true, "closing: {result}");
                let closed = event.unwrap();
                assert_eq!(closed["type"], "case_closed");
                assert!(
                    closed["overridden"].as_array().is_none_or(|o| o.is_empty()),
                    "closed with nothing overridden: {closed}"
                );
                return;
            };
            self.ok(&pb, &step, action).await;
        }
        panic!("the checklist did not end within 100 steps");
    }

    async fn stop(self) {
        self.relay.stop().await;
    }
}

/// The action that resolves a step of this kind.
fn action_for(kind: &StepKind) -> Value {
    match kind {
        StepKind::Check => json!({"action": "complete"}),
        StepKind::Note => json!({"action": "note", "text": "演练记录：已完成"}),
        StepKind::Choice { options } => json!({"action": "choose", "option": options[0].id}),
        StepKind::Contact { .. } => json!({"action": "contact", "outcome": "reached"}),
        StepKind::Referral => json!({
            "action": "referral", "institution": "市精神卫生中心",
            "appointment": "2026-11-21T09:00:00+08:00"
        }),
    }
}

/// What a playbook's safeguarding gate must do.
struct Gate {
    step: &'static str,
    safe: &'static str,
    unsafe_answer: &'static str,
    report: &'static str,
    /// Calls the unsafe answer must keep shut.
    shut: &'static [&'static str],
}

/// What a contact's refusal and silence must do.
struct Refusal {
    contact: &'static str,
    /// Steps the contact `needs`, resolved first as their owners would.
    before: &'static [&'static str],
    if_refused: &'static [&'static str],
    if_unreached: &'static [&'static str],
    attempts: usize,
}

/// Gate unsafe: the report opens (the relay refused it before), the guardian
/// call is shut (the relay refuses it after), the report is accepted.
async fn walk_gate(playbook: &str, gate: &Gate) {
    let mut w = Walk::start(playbook).await;
    assert_eq!(w.state(playbook, gate.report), StepState::Inactive);
    let early = w
        .step(
            playbook,
            gate.report,
            json!({"action": "note", "text": "过早"}),
        )
        .await;
    assert_eq!(early.err().as_deref(), Some("inactive_branch"));

    let event = w
        .ok(
            playbook,
            gate.step,
            json!({"action": "choose", "option": gate.unsafe_answer}),
        )
        .await;
    let activated: Vec<&str> = event["change"]["activated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(activated.contains(&gate.report), "{playbook}: {event}");
    assert_eq!(w.state(playbook, gate.report), StepState::Pending);
    assert!(w.book(playbook).step(gate.report).unwrap().mandatory_report);
    for call in gate.shut {
        assert_eq!(w.state(playbook, call), StepState::Inactive, "{call}");
        let refused = w
            .step(
                playbook,
                call,
                json!({"action": "contact", "outcome": "reached"}),
            )
            .await;
        assert_eq!(refused.err().as_deref(), Some("inactive_branch"), "{call}");
    }
    w.ok(
        playbook,
        gate.report,
        json!({"action": "note", "text": "21:20 向属地派出所报告，回执编号 演练-001"}),
    )
    .await;
    assert_eq!(w.state(playbook, gate.report), StepState::Done);
    w.finish_and_close().await;
    w.stop().await;
}

/// Refused: the refusal path switches on at once and the unreached path does
/// not; then, on a second case, unanswered calls switch on the unreached path.
async fn walk_refusal(playbook: &str, gate: Option<&Gate>, refusal: &Refusal) {
    let mut w = Walk::start(playbook).await;
    if let Some(g) = gate {
        w.ok(
            playbook,
            g.step,
            json!({"action": "choose", "option": g.safe}),
        )
        .await;
        assert_eq!(w.state(playbook, g.report), StepState::Inactive);
    }
    for step in refusal.before {
        let action = action_for(&w.book(playbook).step(step).unwrap().kind);
        w.ok(playbook, step, action).await;
    }
    for s in refusal.if_refused {
        assert_eq!(w.state(playbook, s), StepState::Inactive, "{s} before");
        let early = w.step(playbook, s, json!({"action": "complete"})).await;
        assert_eq!(early.err().as_deref(), Some("inactive_branch"), "{s}");
    }
    let event = w
        .ok(
            playbook,
            refusal.contact,
            json!({"action": "contact", "outcome": "refused", "remark": "家长拒绝送医"}),
        )
        .await;
    assert_eq!(event["change"]["outcome"], "refused");
    assert_eq!(w.state(playbook, refusal.contact), StepState::Done);
    for s in refusal.if_refused {
        assert_eq!(
            w.state(playbook, s),
            StepState::Pending,
            "{s} after refusal"
        );
    }
    for s in refusal.if_unreached {
        if !refusal.if_refused.contains(s) {
            assert_eq!(
                w.state(playbook, s),
                StepState::Inactive,
                "refused is not unreached: {s}"
            );
        }
    }
    w.finish_and_close().await;
    w.stop().await;

    if refusal.if_unreached.is_empty() {
        return;
    }
    let mut w = Walk::start(playbook).await;
    if let Some(g) = gate {
        w.ok(
            playbook,
            g.step,
            json!({"action": "choose", "option": g.safe}),
        )
        .await;
    }
    for step in refusal.before {
        let action = action_for(&w.book(playbook).step(step).unwrap().kind);
        w.ok(playbook, step, action).await;
    }
    for attempt in 1..=refusal.attempts {
        for s in refusal.if_unreached {
            assert_eq!(
                w.state(playbook, s),
                StepState::Inactive,
                "{s} at {attempt}"
            );
        }
        w.ok(
            playbook,
            refusal.contact,
            json!({"action": "contact", "outcome": "no_answer"}),
        )
        .await;
    }
    for s in refusal.if_unreached {
        assert_eq!(
            w.state(playbook, s),
            StepState::Pending,
            "{s} once unreached"
        );
    }
    assert_eq!(w.state(playbook, refusal.contact), StepState::Pending);
    w.stop().await;
}

const GATE: Gate = Gate {
    step: "guardian_safety",
    safe: "safe",
    unsafe_answer: "guardian_source_of_harm",
    report: "mandatory_report",
    shut: &["guardian_call"],
};

#[tokio::test(flavor = "multi_thread")]
async fn guardian_refuses_care_neglect_is_reported_and_a_second_refusal_is_recorded() {
    let gate = Gate {
        unsafe_answer: "refusal_endangers",
        shut: &["guardian_meeting"],
        ..GATE
    };
    walk_gate("guardian_refuses_care", &gate).await;
    walk_refusal(
        "guardian_refuses_care",
        Some(&gate),
        &Refusal {
            contact: "guardian_meeting",
            before: &[],
            if_refused: &["refusal_stands"],
            if_unreached: &["home_visit"],
            attempts: 3,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn guardian_refuses_care_imminent_danger_opens_section_28() {
    let mut w = Walk::start("guardian_refuses_care").await;
    let pb = "guardian_refuses_care";
    assert_eq!(w.state(pb, "section_28_transfer"), StepState::Inactive);
    let event = w
        .ok(
            pb,
            "danger_now",
            json!({"action": "choose", "option": "imminent"}),
        )
        .await;
    assert_eq!(event["change"]["activated"], json!(["section_28_transfer"]));
    assert_eq!(w.state(pb, "section_28_transfer"), StepState::Pending);
    w.finish_and_close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dorm_night_university_family_refusal_opens_section_28_and_silence_other_contacts() {
    let playbook = "dorm_night_university";
    // An adult: the call is to the family, and no guardian gate stands before it.
    let w = Walk::start(playbook).await;
    let call = w.book(playbook).step("family_call").unwrap();
    assert!(
        matches!(&call.kind, StepKind::Contact { contacts, .. }
            if serde_json::to_value(contacts).unwrap() == "family"),
        "{:?}",
        call.kind
    );
    w.stop().await;
    walk_refusal(
        playbook,
        None,
        &Refusal {
            contact: "family_call",
            before: &[],
            if_refused: &["family_refused_28"],
            if_unreached: &["other_contacts"],
            attempts: 3,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dorm_night_university_imminent_assessment_means_hospital_tonight() {
    let pb = "dorm_night_university";
    let mut w = Walk::start(pb).await;
    w.ok(pb, "counselor_phone", json!({"action": "complete"}))
        .await;
    let event = w
        .ok(
            pb,
            "risk_assessment",
            json!({"action": "choose", "option": "imminent"}),
        )
        .await;
    assert_eq!(event["change"]["activated"], json!(["hospital_tonight"]));
    assert_eq!(w.state(pb, "hospital_tonight"), StepState::Pending);
    assert_eq!(w.state(pb, "overnight_watch"), StepState::Inactive);
    w.finish_and_close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eating_disorder_gate_and_refusal_add_the_refusal_playbook() {
    let pb = "eating_disorder_medical_risk";
    walk_gate(pb, &GATE).await;
    walk_refusal(
        pb,
        Some(&GATE),
        &Refusal {
            contact: "guardian_call",
            before: &[],
            if_refused: &["add_refusal_playbook"],
            if_unreached: &["other_contacts"],
            attempts: 3,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eating_disorder_vital_signs_that_meet_a_criterion_mean_hospital_not_counselling() {
    let pb = "eating_disorder_medical_risk";
    let mut w = Walk::start(pb).await;
    let blocked = w
        .step(
            pb,
            "medical_triage",
            json!({"action": "choose", "option": "meets_criteria"}),
        )
        .await;
    assert_eq!(
        blocked.err().as_deref(),
        Some("blocked"),
        "vital signs first"
    );
    w.ok(
        pb,
        "vital_signs",
        json!({"action": "note", "text": "14:10 静息心率 46，血压 88/50，体温 35.9"}),
    )
    .await;
    w.ok(
        pb,
        "medical_triage",
        json!({"action": "choose", "option": "meets_criteria"}),
    )
    .await;
    assert_eq!(w.state(pb, "same_day_hospital"), StepState::Pending);
    assert_eq!(w.state(pb, "outpatient_referral"), StepState::Inactive);
    assert_eq!(w.state(pb, "ambulance_now"), StepState::Inactive);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overdose_gate_refusal_and_a_deliberate_ingestion_bring_the_imminent_steps() {
    let pb = "overdose_ingestion";
    walk_gate(pb, &GATE).await;
    walk_refusal(
        pb,
        Some(&GATE),
        &Refusal {
            contact: "guardian_call",
            before: &[],
            if_refused: &["refusal_section_28"],
            if_unreached: &["other_contacts"],
            attempts: 3,
        },
    )
    .await;
    let mut w = Walk::start(pb).await;
    w.ok(
        pb,
        "intent",
        json!({"action": "choose", "option": "deliberate_or_unclear"}),
    )
    .await;
    assert_eq!(w.state(pb, "add_imminent_playbook"), StepState::Pending);
    w.ok(pb, "add_imminent_playbook", json!({"action": "complete"}))
        .await;
    w.add("imminent_suicide_risk").await;
    assert_eq!(
        w.state("imminent_suicide_risk", "stay_with_student"),
        StepState::Pending
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn contagion_cluster_walks_to_a_close() {
    let mut w = Walk::start("contagion_cluster").await;
    assert!(
        !w.book("contagion_cluster")
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Contact { .. })),
        "a response to a group calls nobody's guardian"
    );
    w.finish_and_close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_post_is_a_population_response_unless_the_platform_links_a_student() {
    let pb = "anonymous_treehole_post";
    let mut w = Walk::start(pb).await;
    w.ok(
        pb,
        "platform_link",
        json!({"action": "choose", "option": "not_linked"}),
    )
    .await;
    assert_eq!(w.state(pb, "open_student_case"), StepState::Inactive);
    assert_eq!(w.state(pb, "pinned_help"), StepState::Pending);
    w.finish_and_close().await;
    w.stop().await;

    let mut w = Walk::start(pb).await;
    w.ok(
        pb,
        "platform_link",
        json!({"action": "choose", "option": "linked"}),
    )
    .await;
    assert_eq!(w.state(pb, "open_student_case"), StepState::Pending);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_triage_routes_to_the_new_playbooks() {
    for (option, add) in [
        ("overdose", "add_overdose"),
        ("missing", "add_missing"),
        ("eating_disorder", "add_eating_disorder"),
        ("university_dorm_night", "add_dorm_night"),
        ("cluster", "add_contagion"),
        ("anonymous_post", "add_anonymous"),
    ] {
        let mut w = Walk::start("other_triage").await;
        let event = w
            .ok(
                "other_triage",
                "what_is_it",
                json!({"action": "choose", "option": option}),
            )
            .await;
        assert_eq!(event["change"]["activated"], json!([add]), "{option}");
        assert_eq!(w.state("other_triage", add), StepState::Pending, "{option}");
        assert_eq!(
            w.state("other_triage", "add_distress"),
            StepState::Inactive,
            "{option}"
        );
        w.finish_and_close().await;
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_student_gate_and_refused_is_not_unreached() {
    let pb = "missing_student";
    walk_gate(pb, &GATE).await;
    walk_refusal(
        pb,
        Some(&GATE),
        &Refusal {
            contact: "guardian_call",
            before: &[],
            if_refused: &[],
            if_unreached: &["other_contacts"],
            attempts: 3,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abuse_disclosure_gate_and_refused_is_not_unreached() {
    let pb = "abuse_disclosure";
    walk_gate(pb, &GATE).await;
    walk_refusal(
        pb,
        Some(&GATE),
        &Refusal {
            contact: "guardian_call",
            // The police hear of a disclosure on every path, before any call.
            before: &["police_report_outside_family"],
            if_refused: &[],
            if_unreached: &["other_contacts"],
            attempts: 3,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acute_psychosis_gate_and_refusal_or_silence_open_section_28() {
    let pb = "acute_psychosis_agitation";
    walk_gate(pb, &GATE).await;
    walk_refusal(
        pb,
        Some(&GATE),
        &Refusal {
            contact: "guardian_call",
            before: &[],
            if_refused: &["section_28_transfer"],
            if_unreached: &["section_28_transfer"],
            attempts: 3,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn school_bullying_gate_shuts_both_family_calls() {
    let pb = "school_bullying";
    walk_gate(
        pb,
        &Gate {
            shut: &["notify_victim_family", "notify_bully_family"],
            ..GATE
        },
    )
    .await;
}
