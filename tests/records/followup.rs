//! The follow-up phase through a real relay, a real SQLite file and real
//! websocket clients: monitoring with planned check-ins, level changes with
//! a second role's sign-off, missed check-ins escalating like overdue
//! steps, re-opening, and the offline race on one check-in.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use crisisdesk::protocol::{Command, Role};
use serde_json::{Value, json};

async fn drain(ws: &mut Ws) {
    while next_json(ws, Duration::from_millis(300)).await.is_some() {}
}

async fn open_case(relay: &TestRelay, id: &str, student: &str, level: &str) -> String {
    let producer = relay.token(&format!("feed-{id}"), Role::Producer).await;
    let reply = post_alert(relay, &producer, &alert(id, student, level)).await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
    reply.body["case_id"].as_str().unwrap().to_string()
}

fn cmd(id: &str, op: Value) -> Value {
    let mut c = op;
    c["type"] = json!("command");
    c["id"] = json!(id);
    c
}

/// Sends a command and returns its result and the events that came with it.
async fn run(ws: &mut Ws, id: &str, op: Value) -> (Value, Vec<Value>) {
    send_command(ws, cmd(id, op)).await;
    let (res, mut seen) = result_for(ws, id).await;
    // The events of a command are published before its answer; pick up
    // any still in flight.
    while let Some(v) = next_json(ws, Duration::from_millis(200)).await {
        seen.push(v);
    }
    (res, seen)
}

fn updates<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "case_updated" && e["change"]["kind"] == kind)
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn monitoring_plans_check_ins_on_the_school_calendar_and_records_them() {
    let relay = TestRelay::start().await;
    let calendar = include_str!("../../calendars/example.toml").replace("示例一中", "第一中学");
    assert_eq!(
        relay.relay.store().load_calendar(&calendar).await.unwrap(),
        Ok("第一中学".to_string())
    );
    let case_id = open_case(&relay, "f-1", "S1", "high").await;
    let wang = relay.token("wang", Role::Counselor).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let liu = relay.token("liu", Role::Nurse).await;
    let mut c = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut h = connect(relay.addr, Some(&li), 0).await.unwrap();
    let mut n = connect(relay.addr, Some(&liu), 0).await.unwrap();
    drain(&mut c).await;
    drain(&mut h).await;
    drain(&mut n).await;

    let (res, _) = run(&mut c, "m0", json!({"op": "monitor", "case_id": case_id})).await;
    assert_eq!(res["error"]["code"], "not_acknowledged", "{res}");
    let (res, _) = run(&mut h, "h0", json!({"op": "monitor", "case_id": case_id})).await;
    assert_eq!(
        res["error"]["code"], "forbidden",
        "a head teacher does not decide the phase"
    );
    run(
        &mut c,
        "a1",
        json!({"op": "acknowledge", "case_id": case_id}),
    )
    .await;
    let (res, seen) = run(&mut c, "m1", json!({"op": "monitor", "case_id": case_id})).await;
    assert_eq!(res["ok"], true, "{res}");
    let monitoring = updates(&seen, "monitoring");
    assert_eq!(monitoring.len(), 1, "{seen:?}");
    let ev = monitoring[0];
    assert_eq!(ev["case"]["status"], "monitoring");
    assert_eq!(ev["change"]["calendar"], "第一中学");
    assert_eq!(ev["origin"]["by"]["name"], "wang");
    let planned = ev["change"]["planned"].as_array().unwrap();
    assert!(
        planned.len() >= 9,
        "daily, weekly, then monthly: {planned:?}"
    );
    assert_eq!(planned[0]["role"], "head_teacher");
    assert_eq!(planned[0]["id"], format!("{case_id}/1"));
    assert!(time(&planned[0]["due_at"]) > Utc::now());
    assert!(
        planned.iter().any(|p| p["role"] == "counselor"),
        "the weekly reviews"
    );
    // The head teacher's console sees the same event.
    let seen_by_head = until_quiet(&mut h).await;
    assert_eq!(updates(&seen_by_head, "monitoring").len(), 1);

    let (res, _) = run(
        &mut n,
        "n1",
        json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well"}),
    )
    .await;
    assert_eq!(res["error"]["code"], "forbidden", "{res}");
    let (res, _) = run(
        &mut h,
        "h-bad",
        json!({"op": "checkin", "case_id": case_id, "checkin": 99, "outcome": "seen_well"}),
    )
    .await;
    assert_eq!(res["error"]["code"], "unknown_checkin");
    assert_eq!(res["error"]["field"], "checkin");
    let (res, _) = run(
        &mut h,
        "h-raise",
        json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well",
               "raise": {"level": "high", "imminent": true}}),
    )
    .await;
    assert_eq!(res["error"]["code"], "raise_needs_concern");

    let (res, seen) = run(
        &mut h,
        "h1",
        json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well",
               "note": "早读时情绪平稳，和同桌有说有笑"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let recorded = updates(&seen, "checkin_recorded");
    assert_eq!(recorded.len(), 1);
    let k = &recorded[0]["change"]["checkin"];
    assert_eq!(k["outcome"], "seen_well");
    assert_eq!(k["by"]["name"], "li");
    assert_eq!(k["note"], "早读时情绪平稳，和同桌有说有笑");

    // The note is in the event for the team, never in the audit trail.
    let audit = relay.relay.store().audit_for_case(&case_id).await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e.detail.contains("\"op\":\"checkin\"") && e.kind == "command_accepted")
        .expect("the check-in is audited");
    assert!(!entry.detail.contains("早读"), "{}", entry.detail);
    assert!(
        entry.detail.contains("\"text_chars\":15"),
        "{}",
        entry.detail
    );

    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_a_high_case_as_stabilized_needs_a_last_review() {
    let relay = TestRelay::start().await;
    // Category `other`, not imminent: the `other` triage, whose two
    // required steps a leader skips below, so only the last review stands
    // in the way.
    let producer = relay.token("feed", Role::Producer).await;
    let mut a = alert("r-1", "S9", "high");
    a["category"] = json!("other");
    let reply = post_alert(&relay, &producer, &a).await;
    let case_id = reply.body["case_id"].as_str().unwrap().to_string();
    let wang = relay.token("wang", Role::Counselor).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let mut c = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut h = connect(relay.addr, Some(&li), 0).await.unwrap();
    drain(&mut c).await;
    drain(&mut h).await;
    run(
        &mut c,
        "a1",
        json!({"op": "acknowledge", "case_id": case_id}),
    )
    .await;
    let boss = relay.token("zhang", Role::Leader).await;
    let mut l = connect(relay.addr, Some(&boss), 0).await.unwrap();
    drain(&mut l).await;
    for step in ["stay_and_tell", "what_is_it"] {
        let (res, _) = run(
            &mut l,
            step,
            json!({"op": "step", "case_id": case_id, "playbook": "other_triage",
                   "step": step, "action": "skip", "reason": "handled in the meeting"}),
        )
        .await;
        assert_eq!(res["ok"], true, "{res}");
    }
    let (_, seen) = run(&mut c, "m1", json!({"op": "monitor", "case_id": case_id})).await;
    let planned = updates(&seen, "monitoring")[0]["change"]["planned"]
        .as_array()
        .unwrap()
        .clone();
    let close =
        |id: &str| json!({"op": "close", "case_id": case_id, "outcome": "stabilized", "note": id});

    let (res, _) = run(&mut c, "close1", close("close1")).await;
    assert_eq!(res["error"]["code"], "last_review_required", "{res}");
    // A head teacher's check-in is not the counselor's last review.
    run(
        &mut h,
        "h1",
        json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well"}),
    )
    .await;
    let (res, _) = run(&mut c, "close2", close("close2")).await;
    assert_eq!(res["error"]["code"], "last_review_required", "{res}");
    let review = planned.iter().find(|p| p["role"] == "counselor").unwrap()["num"]
        .as_u64()
        .unwrap();
    let (res, _) = run(
        &mut c,
        "c-review",
        json!({"op": "checkin", "case_id": case_id, "checkin": review, "outcome": "seen_well", "note": "末次评估：稳定"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let (res, seen) = run(&mut c, "close3", close("close3")).await;
    assert_eq!(res["ok"], true, "{res}");
    assert!(seen.iter().any(|e| e["type"] == "case_closed"));
    // What was not yet due is cancelled; the record keeps the two done.
    let left = relay.relay.store().checkins(&case_id).await.unwrap();
    assert_eq!(left.iter().filter(|k| k.done_at.is_some()).count(), 2);
    assert!(
        left.iter()
            .all(|k| k.done_at.is_some() || k.due_at <= Utc::now()),
        "{left:?}"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lowering_needs_a_second_role_and_a_lower_alert_never_lowers() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "l-1", "S2", "high").await;
    let wang = relay.token("wang", Role::Counselor).await;
    let zhao = relay.token("zhao", Role::Counselor).await;
    let boss = relay.token("zhang", Role::Leader).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let mut c = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut c2 = connect(relay.addr, Some(&zhao), 0).await.unwrap();
    let mut l = connect(relay.addr, Some(&boss), 0).await.unwrap();
    let mut h = connect(relay.addr, Some(&li), 0).await.unwrap();
    for ws in [&mut c, &mut c2, &mut l, &mut h] {
        drain(ws).await;
    }
    run(
        &mut c,
        "a",
        json!({"op": "acknowledge", "case_id": case_id}),
    )
    .await;
    run(&mut c, "m", json!({"op": "monitor", "case_id": case_id})).await;

    let (res, _) = run(
        &mut c,
        "p0",
        json!({"op": "propose_level", "case_id": case_id, "level": "key", "reason": " "}),
    )
    .await;
    assert_eq!(res["error"]["code"], "reason_required");
    assert_eq!(res["error"]["field"], "reason");
    let (res, _) = run(
        &mut h,
        "h-p",
        json!({"op": "propose_level", "case_id": case_id, "level": "key", "reason": "看起来好多了"}),
    )
    .await;
    assert_eq!(
        res["error"]["code"], "forbidden",
        "a head teacher does not lower"
    );
    let (res, seen) = run(
        &mut c,
        "p1",
        json!({"op": "propose_level", "case_id": case_id, "level": "key", "reason": "复评 PHQ-9 降至 6 分，面谈稳定"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let proposed = updates(&seen, "level_proposed");
    assert_eq!(proposed.len(), 1);
    assert_eq!(proposed[0]["case"]["level"], "high", "nothing lowered yet");
    assert_eq!(
        relay
            .relay
            .store()
            .case(&case_id)
            .await
            .unwrap()
            .unwrap()
            .level
            .as_str(),
        "high"
    );

    let (res, _) = run(
        &mut c,
        "own",
        json!({"op": "confirm_level", "case_id": case_id}),
    )
    .await;
    assert_eq!(res["error"]["code"], "own_proposal");
    let (res, _) = run(
        &mut c2,
        "same",
        json!({"op": "confirm_level", "case_id": case_id}),
    )
    .await;
    assert_eq!(res["error"]["code"], "signoff_required");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("counselor"),
        "{res}"
    );
    let (res, seen) = run(
        &mut l,
        "ok",
        json!({"op": "confirm_level", "case_id": case_id}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let changed = updates(&seen, "level_changed");
    assert_eq!(changed.len(), 1, "{seen:?}");
    let change = &changed[0]["change"];
    assert_eq!(change["change"]["from"]["level"], "high");
    assert_eq!(change["change"]["to"]["level"], "key");
    assert_eq!(change["change"]["proposed_by"]["name"], "wang");
    assert_eq!(change["change"]["confirmed_by"]["name"], "zhang");
    let replanned = change["planned"].as_array().expect("monitoring re-plans");
    assert!(
        replanned.iter().all(|k| k["role"] == "head_teacher"),
        "key: monthly head-teacher check-ins"
    );
    let (res, _) = run(
        &mut l,
        "again",
        json!({"op": "confirm_level", "case_id": case_id}),
    )
    .await;
    assert_eq!(res["error"]["code"], "no_proposal");

    // A later alert at a lower level leaves the case where it is.
    let producer = relay.token("feed2", Role::Producer).await;
    let reply = post_alert(&relay, &producer, &alert("l-2", "S2", "general")).await;
    assert_eq!(reply.body["case_id"], case_id.as_str());
    let case = relay.relay.store().case(&case_id).await.unwrap().unwrap();
    assert_eq!(case.level.as_str(), "key");
    assert_eq!(case.status.as_str(), "monitoring");

    // A concern at a check-in raises the level and attaches a playbook in
    // one command; the raise needs no sign-off.
    let first = replanned[0]["num"].as_u64().unwrap();
    drain(&mut h).await;
    let (res, seen) = run(
        &mut h,
        "concern",
        json!({"op": "checkin", "case_id": case_id, "checkin": first, "outcome": "concern",
               "note": "手臂有新划痕", "raise": {"level": "high", "playbook": "self_harm_discovered"}}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let kinds: Vec<String> = seen
        .iter()
        .filter(|e| e.get("seq").is_some())
        .map(|e| {
            format!(
                "{}/{}",
                e["type"].as_str().unwrap(),
                e["change"]["kind"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "case_updated/checkin_recorded",
            "case_updated/level_changed",
            "checklist_added/"
        ],
        "{seen:?}"
    );
    let raised = updates(&seen, "level_changed")[0];
    assert_eq!(raised["case"]["level"], "high");
    assert!(raised["change"]["change"].get("confirmed_by").is_none());
    assert_eq!(
        raised["change"]["change"]["reason"],
        format!("check-in {case_id}/{first}: concern")
    );
    let changes = relay.relay.store().level_changes(&case_id).await.unwrap();
    assert_eq!(
        changes.len(),
        2,
        "the lowering and the raise, both recorded"
    );
    let audit = relay.relay.store().audit_for_case(&case_id).await.unwrap();
    assert!(
        audit.iter().all(|e| !e.detail.contains("PHQ-9 降至")),
        "reasons stay out of the audit"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_check_in_escalates_once_and_a_closed_case_stops_them() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "e-1", "S3", "high").await;
    let wang = relay.token("wang", Role::Counselor).await;
    let boss = relay.token("zhang", Role::Leader).await;
    let mut c = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut l = connect(relay.addr, Some(&boss), 0).await.unwrap();
    drain(&mut c).await;
    drain(&mut l).await;
    run(
        &mut c,
        "a",
        json!({"op": "acknowledge", "case_id": case_id}),
    )
    .await;
    let (_, seen) = run(&mut c, "m", json!({"op": "monitor", "case_id": case_id})).await;
    let planned = updates(&seen, "monitoring")[0]["change"]["planned"]
        .as_array()
        .unwrap()
        .clone();
    let first_due = time(&planned[0]["due_at"]);
    let second_due = time(&planned[1]["due_at"]);
    let store = relay.relay.store();
    assert!(store.next_deadline().await.unwrap().unwrap() <= first_due);

    // Just before the first check-in is due: the checklist's steps escalate
    // (they were due within hours), the check-in not yet.
    let before = first_due - chrono::Duration::minutes(1);
    relay.relay.escalate_overdue(before).await.unwrap();
    let early = until_quiet(&mut c).await;
    assert!(updates(&early, "checkin_missed").is_empty());
    assert_eq!(
        store.next_deadline().await.unwrap(),
        Some(first_due),
        "the check-in is next"
    );

    let after = first_due + chrono::Duration::minutes(1);
    // The screening interview (1 school day) falls due at the same end of
    // the school day as the first check-in, and escalates with it.
    let raised = relay.relay.escalate_overdue(after).await.unwrap();
    assert!((1..=2).contains(&raised), "{raised}");
    let seen = until_quiet(&mut c).await;
    let missed = updates(&seen, "checkin_missed");
    assert_eq!(missed.len(), 1, "{seen:?}");
    assert_eq!(missed[0]["change"]["to"], "counselor");
    assert_eq!(missed[0]["change"]["checkin"]["role"], "head_teacher");
    assert!(missed[0].get("origin").is_none(), "raised by the relay");
    assert_eq!(
        relay.relay.escalate_overdue(after).await.unwrap(),
        0,
        "once"
    );
    // The missed check-in no longer drives the scanner; the next deadline
    // is the second check-in, or a checklist step with a wall-clock limit
    // counted from the case's opening when that comes first (it does when
    // the test runs late in the UTC day).
    let next = store.next_deadline().await.unwrap().unwrap();
    assert!(next > after && next <= second_due, "{next} vs {second_due}");
    // The district sees the missed check-in in its school's count.
    let district = crisisdesk::reporting::district::build(store, relay.relay.library(), after)
        .await
        .unwrap();
    assert_eq!(district.total.overdue_checkins, 1, "{district:?}");
    let audit = store.audit_for_case(&case_id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.kind == "escalation_raised" && e.detail.contains(&format!("{case_id}/1")))
    );

    // A late check-in is still recorded.
    let (res, seen) = run(
        &mut c,
        "late",
        json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "not_reached"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(updates(&seen, "checkin_recorded").len(), 1);

    // Closed (a leader's override): nothing more escalates, nothing more is recorded.
    let (res, _) = run(
        &mut l,
        "close",
        json!({"op": "close", "case_id": case_id, "outcome": "stabilized", "override_reason": "转介后由医院随访"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(store.next_deadline().await.unwrap(), None);
    let far = second_due + chrono::Duration::days(400);
    assert_eq!(relay.relay.escalate_overdue(far).await.unwrap(), 0);
    let (res, _) = run(
        &mut c,
        "closed-checkin",
        json!({"op": "checkin", "case_id": case_id, "checkin": 2, "outcome": "seen_well"}),
    )
    .await;
    assert_eq!(res["error"]["code"], "case_closed");

    // Re-opening needs a reason; then the case is acute again.
    let (res, _) = run(
        &mut l,
        "r0",
        json!({"op": "reopen", "case_id": case_id, "reason": ""}),
    )
    .await;
    assert_eq!(res["error"]["code"], "reason_required");
    let (res, seen) = run(
        &mut l,
        "r1",
        json!({"op": "reopen", "case_id": case_id, "reason": "复学后再次自伤"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let reopened = updates(&seen, "reopened");
    assert_eq!(reopened[0]["case"]["status"], "acknowledged");
    assert_eq!(reopened[0]["change"]["reason"], "复学后再次自伤");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_consoles_record_the_same_check_in_one_from_its_outbox() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "o-1", "S4", "high").await;
    let wang = relay.token("wang", Role::Counselor).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let mut c = connect(relay.addr, Some(&wang), 0).await.unwrap();
    drain(&mut c).await;
    run(
        &mut c,
        "a",
        json!({"op": "acknowledge", "case_id": case_id}),
    )
    .await;
    run(&mut c, "m", json!({"op": "monitor", "case_id": case_id})).await;

    // The head teacher's terminal is offline: the check-in waits in its
    // outbox file, across a restart of the console.
    let outbox_file = relay.dir.path().join("li.outbox");
    let offline: Command = serde_json::from_value(json!({
        "id": "li-offline-1", "op": "checkin", "case_id": case_id, "checkin": 1,
        "outcome": "concern", "note": "宿舍里独自哭泣", "client_at": "2026-11-21T08:10:00+08:00",
        "terminal": "dorm-pad"
    }))
    .unwrap();
    {
        let mut outbox = crisisdesk::console::outbox::Outbox::open(&outbox_file)
            .await
            .unwrap();
        outbox.push(offline).await;
    }
    // Meanwhile the counselor records the same check-in online.
    let (res, _) = run(
        &mut c,
        "wang-1",
        json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well", "note": "谈话后平稳"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");

    // Back online: the outbox sends what waits; the relay refuses it and
    // says who recorded the check-in.
    let mut outbox = crisisdesk::console::outbox::Outbox::open(&outbox_file)
        .await
        .unwrap();
    let waiting: Vec<Command> = outbox.waiting().cloned().collect();
    assert_eq!(waiting.len(), 1);
    let mut h = connect(relay.addr, Some(&li), 0).await.unwrap();
    drain(&mut h).await;
    let frame = |c: &Command| {
        let mut v = serde_json::to_value(c).unwrap();
        v["type"] = json!("command");
        v
    };
    send_command(&mut h, frame(&waiting[0])).await;
    let (res, _) = result_for(&mut h, "li-offline-1").await;
    assert_eq!(res["error"]["code"], "already_recorded", "{res}");
    let message = res["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wang") && message.contains("counselor"),
        "{message}"
    );
    // The connection dropped before the console marked it answered: the
    // retry gets the same answer and changes nothing.
    send_command(&mut h, frame(&waiting[0])).await;
    let (again, _) = result_for(&mut h, "li-offline-1").await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["error"]["code"], "already_recorded");
    outbox.answered("li-offline-1").await;
    assert!(outbox.is_empty());

    let checkins = relay.relay.store().checkins(&case_id).await.unwrap();
    let first = checkins.iter().find(|k| k.num == 1).unwrap();
    assert_eq!(first.by.as_ref().unwrap().name, "wang");
    assert_eq!(first.note.as_deref(), Some("谈话后平稳"));
    let recorded = relay
        .relay
        .store()
        .events_for_case(&case_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(&e.body, crisisdesk::protocol::EventBody::CaseUpdated {
                change: crisisdesk::followup::CaseChange::CheckinRecorded { checkin }, ..
            } if checkin.num == 1)
        })
        .count();
    assert_eq!(recorded, 1, "nothing doubled");
    relay.stop().await;
}
