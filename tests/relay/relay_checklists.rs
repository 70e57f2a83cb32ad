//! Checklist progress lives in the relay: consoles send step commands over
//! the websocket, the relay checks role and state, stores, and broadcasts.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

/// An imminent suicide-risk alert, which calls for the imminent playbook.
fn imminent(id: &str, student: &str) -> Value {
    let mut a = alert(id, student, "high");
    a["imminent"] = json!(true);
    a
}

async fn open_imminent_case(relay: &TestRelay) -> String {
    let producer = relay.token("feed", Role::Producer).await;
    let reply = post_alert(relay, &producer, &imminent("i-1", "S1")).await;
    assert_eq!(reply.status, 201);
    reply.body["case_id"].as_str().unwrap().to_string()
}

fn step(id: &str, case_id: &str, step: &str, action: Value) -> Value {
    let mut cmd = json!({
        "type": "command", "id": id, "op": "step", "case_id": case_id,
        "playbook": "imminent_suicide_risk", "step": step,
        "client_at": "2026-11-20T21:05:00+08:00", "terminal": "duty-2",
    });
    for (k, v) in action.as_object().unwrap() {
        cmd[k] = v.clone();
    }
    cmd
}

/// Skips past the session frame and replayed events.
async fn drain(ws: &mut Ws) {
    while next_json(ws, Duration::from_millis(300)).await.is_some() {}
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_frame_names_the_credential_and_carries_the_playbooks() {
    let relay = TestRelay::start().await;
    let wang = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let hello = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(hello["type"], "session");
    assert!(hello.get("seq").is_none(), "the greeting is not an event");
    assert_eq!(hello["credential"]["role"], "counselor");
    // The playbooks follow, one frame each, before anything else: no
    // frame is the whole library (it would leave a buffer that size in
    // every connection).
    assert_eq!(hello["playbooks"], json!([]));
    let announced = hello["playbook_frames"].as_u64().unwrap() as usize;
    let mut ids = Vec::new();
    for _ in 0..announced {
        let frame = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(frame["type"], "playbook", "{frame}");
        assert!(
            frame.to_string().len() < 64 * 1024,
            "one playbook per frame"
        );
        ids.push(frame["playbook"]["id"].as_str().unwrap().to_string());
    }
    assert!(
        ids.iter().any(|id| id == "imminent_suicide_risk"),
        "{ids:?}"
    );
    assert_eq!(ids.len(), relay.relay.library().playbooks().len());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imminent_alert_gets_the_imminent_playbook() {
    let relay = TestRelay::start().await;
    let case_id = open_imminent_case(&relay).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let evs = events(&mut ws, 2).await;
    assert_eq!(evs[0]["type"], "alert");
    assert_eq!(evs[1]["type"], "checklist_added");
    assert_eq!(evs[1]["case_id"], case_id.as_str());
    assert_eq!(evs[1]["playbook"], "imminent_suicide_risk");
    assert!(
        evs[1].get("origin").is_none(),
        "attached by the relay itself"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_consoles_see_each_others_steps_and_one_wins_a_race() {
    let relay = TestRelay::start().await;
    let case_id = open_imminent_case(&relay).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let zhou = relay.token("zhou", Role::Counselor).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let mut a = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut b = connect(relay.addr, Some(&zhou), 0).await.unwrap();
    let mut c = connect(relay.addr, Some(&li), 0).await.unwrap();
    drain(&mut a).await;
    drain(&mut b).await;
    drain(&mut c).await;

    // Both counselors tick "arrived" at once: one wins, the other is told.
    send_command(
        &mut a,
        step(
            "a1",
            &case_id,
            "counselor_arrives",
            json!({"action": "complete"}),
        ),
    )
    .await;
    send_command(
        &mut b,
        step(
            "b1",
            &case_id,
            "counselor_arrives",
            json!({"action": "complete"}),
        ),
    )
    .await;
    let (ra, _) = result_for(&mut a, "a1").await;
    let (rb, _) = result_for(&mut b, "b1").await;
    let wins = [&ra, &rb].iter().filter(|r| r["ok"] == true).count();
    assert_eq!(wins, 1, "{ra} {rb}");
    let loser = if ra["ok"] == true { &rb } else { &ra };
    assert_eq!(loser["error"]["code"], "already_done");

    // The head teacher's console sees exactly one update, with who did it.
    let update = next_json(&mut c, Duration::from_secs(2))
        .await
        .expect("update within a second");
    assert_eq!(update["type"], "step_updated");
    assert_eq!(update["change"]["step"], "counselor_arrives");
    assert_eq!(update["origin"]["by"]["role"], "counselor");
    assert_eq!(update["origin"]["terminal"], "duty-2");
    assert_eq!(update["origin"]["client_at"], "2026-11-20T21:05:00+08:00");
    let done = &update["progress"]["steps"]["counselor_arrives"]["outcome"];
    assert_eq!(done["how"], "checked");
    assert!(
        next_json(&mut c, Duration::from_millis(300))
            .await
            .is_none(),
        "only one update"
    );

    // Re-sending the winning command does not apply it twice.
    let (winner, id) = if ra["ok"] == true {
        (&mut a, "a1")
    } else {
        (&mut b, "b1")
    };
    send_command(
        winner,
        step(
            id,
            &case_id,
            "counselor_arrives",
            json!({"action": "complete"}),
        ),
    )
    .await;
    let (again, _) = result_for(winner, id).await;
    assert_eq!(again["duplicate"], true);
    assert!(
        next_json(&mut c, Duration::from_millis(300))
            .await
            .is_none()
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_step_commands_are_refused_plainly_and_change_nothing() {
    let relay = TestRelay::start().await;
    let case_id = open_imminent_case(&relay).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&wang), 0).await.unwrap();
    drain(&mut ws).await;
    let cases = [
        (
            "r1",
            step(
                "r1",
                &case_id,
                "stay_with_student",
                json!({"action": "complete"}),
            ),
            "wrong_role",
        ),
        (
            "r2",
            step(
                "r2",
                &case_id,
                "no_such_step",
                json!({"action": "complete"}),
            ),
            "unknown_step",
        ),
        (
            "r3",
            step(
                "r3",
                &case_id,
                "brief_assessment",
                json!({"action": "note", "text": "ok"}),
            ),
            "blocked",
        ),
        (
            "r4",
            step(
                "r4",
                &case_id,
                "counselor_arrives",
                json!({"action": "skip", "reason": " "}),
            ),
            "reason_required",
        ),
        (
            "r5",
            step(
                "r5",
                "C999999",
                "counselor_arrives",
                json!({"action": "complete"}),
            ),
            "unknown_case",
        ),
    ];
    for (id, cmd, code) in cases {
        send_command(&mut ws, cmd).await;
        let (res, seen) = result_for(&mut ws, id).await;
        assert_eq!(res["ok"], false, "{id}: {res}");
        assert_eq!(res["error"]["code"], code, "{id}: {res}");
        assert!(!res["error"]["message"].as_str().unwrap().is_empty());
        assert!(
            seen.is_empty(),
            "{id}: a refusal broadcasts nothing: {seen:?}"
        );
    }
    let mut wrong_playbook = step("r6", &case_id, "x", json!({"action": "complete"}));
    wrong_playbook["playbook"] = json!("return_to_school");
    send_command(&mut ws, wrong_playbook).await;
    let (res, _) = result_for(&mut ws, "r6").await;
    assert_eq!(res["error"]["code"], "no_such_checklist");

    let checklists = relay.relay.store().checklists(&case_id).await.unwrap();
    assert_eq!(checklists.len(), 1);
    assert!(checklists[0].1.steps.is_empty(), "nothing was recorded");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn required_steps_block_closing_unless_a_leader_overrides_with_a_reason() {
    let relay = TestRelay::start().await;
    let case_id = open_imminent_case(&relay).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let boss = relay.token("zhang", Role::Leader).await;
    let nurse = relay.token("liu", Role::Nurse).await;
    let mut c = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut l = connect(relay.addr, Some(&boss), 0).await.unwrap();
    let mut n = connect(relay.addr, Some(&nurse), 0).await.unwrap();
    drain(&mut c).await;
    drain(&mut l).await;
    drain(&mut n).await;
    let close = |id: &str, reason: Option<&str>| {
        let mut cmd = json!({"type": "command", "id": id, "op": "close", "case_id": case_id, "outcome": "stabilized"});
        if let Some(r) = reason {
            cmd["override_reason"] = json!(r);
        }
        cmd
    };

    send_command(&mut n, close("n1", None)).await;
    assert_eq!(
        result_for(&mut n, "n1").await.0["error"]["code"],
        "forbidden"
    );
    send_command(&mut c, close("c1", None)).await;
    let (refused, _) = result_for(&mut c, "c1").await;
    assert_eq!(refused["error"]["code"], "required_steps_open");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("imminent_suicide_risk/")
    );
    send_command(&mut l, close("l1", None)).await;
    assert_eq!(
        result_for(&mut l, "l1").await.0["error"]["code"],
        "required_steps_open"
    );

    send_command(&mut l, close("l2", Some("学生已由家长陪同就医，演练结束"))).await;
    let (ok, _) = result_for(&mut l, "l2").await;
    assert_eq!(ok["ok"], true, "{ok}");
    let closed = next_json(&mut c, Duration::from_secs(2)).await.unwrap();
    assert_eq!(closed["type"], "case_closed");
    assert_eq!(closed["case"]["status"], "closed");
    assert!(!closed["overridden"].as_array().unwrap().is_empty());
    assert_eq!(closed["origin"]["by"]["role"], "leader");

    // A closed case takes no more work.
    send_command(
        &mut c,
        step(
            "c2",
            &case_id,
            "counselor_arrives",
            json!({"action": "complete"}),
        ),
    )
    .await;
    assert_eq!(
        result_for(&mut c, "c2").await.0["error"]["code"],
        "case_closed"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overdue_steps_escalate_once_to_the_escalation_role() {
    let relay = TestRelay::start().await;
    let case_id = open_imminent_case(&relay).await;
    let boss = relay.token("zhang", Role::Leader).await;
    let mut ws = connect(relay.addr, Some(&boss), 0).await.unwrap();
    drain(&mut ws).await;

    // Nothing is overdue yet.
    assert_eq!(relay.relay.escalate_overdue(Utc::now()).await.unwrap(), 0);
    let later = Utc::now() + chrono::Duration::minutes(11);
    let raised = relay.relay.escalate_overdue(later).await.unwrap();
    assert!(
        raised >= 3,
        "the 5- and 10-minute steps are overdue: {raised}"
    );
    let mut seen = Vec::new();
    for _ in 0..raised {
        seen.push(next_json(&mut ws, Duration::from_secs(2)).await.unwrap());
    }
    let arrives = seen
        .iter()
        .find(|e| e["step"] == "counselor_arrives")
        .expect("the counselor's arrival escalated");
    assert_eq!(arrives["type"], "escalation");
    assert_eq!(arrives["to"], "leader");
    assert_eq!(arrives["owner"], "counselor");
    assert_eq!(arrives["case_id"], case_id.as_str());
    assert_eq!(arrives["reason"], "past_due");
    // Scanning again raises nothing new.
    assert_eq!(relay.relay.escalate_overdue(later).await.unwrap(), 0);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_responder_can_add_another_playbook_once() {
    let relay = TestRelay::start().await;
    let case_id = open_imminent_case(&relay).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&wang), 0).await.unwrap();
    drain(&mut ws).await;
    let add = |id: &str, pb: &str| json!({"type": "command", "id": id, "op": "add_playbook", "case_id": case_id, "playbook": pb});
    send_command(&mut ws, add("p1", "return_to_school")).await;
    let (ok, mut seen) = result_for(&mut ws, "p1").await;
    assert_eq!(ok["ok"], true, "{ok}");
    // The answer goes straight back; the broadcast follows on the stream.
    if let Some(next) = next_json(&mut ws, Duration::from_secs(2)).await {
        seen.push(next);
    }
    let added = seen
        .iter()
        .find(|e| e["type"] == "checklist_added")
        .expect("broadcast");
    assert_eq!(added["origin"]["by"]["name"], "wang");
    send_command(&mut ws, add("p2", "return_to_school")).await;
    assert_eq!(
        result_for(&mut ws, "p2").await.0["error"]["code"],
        "already_attached"
    );
    send_command(&mut ws, add("p3", "astrology")).await;
    let (unknown, _) = result_for(&mut ws, "p3").await;
    assert_eq!(unknown["error"]["code"], "unknown_playbook");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("imminent_suicide_risk")
    );
    relay.stop().await;
}

#[test]
fn a_malformed_playbook_stops_the_relay_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("playbooks");
    std::fs::create_dir(&books).unwrap();
    std::fs::write(
        books.join("broken.toml"),
        "id = \"broken\"\nversion = 1\n[[steps]\nid = 3\n",
    )
    .unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let out = std::process::Command::new(BIN)
        .args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--playbooks",
        ])
        .arg(&books)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml:3:"), "{err}");
    assert!(err.contains("will not start"), "{err}");
}

/// A calendar for `school` whose clock reads about noon now (its UTC
/// offset is picked so), every day a school day except a holiday from
/// tomorrow for seven days; and the offset and today's local date.
fn holiday_from_tomorrow(school: &str) -> (String, chrono::FixedOffset, chrono::NaiveDate) {
    use chrono::Timelike;
    let hour = i32::try_from(Utc::now().hour()).unwrap();
    // Local hour = UTC hour + offset ≡ 12: the count starts today, well
    // before the school day ends (18:00), whenever the test runs.
    let offset_hours = (12 - hour + 36) % 24 - 12;
    let offset = chrono::FixedOffset::east_opt(offset_hours * 3600).unwrap();
    let today = Utc::now().with_timezone(&offset).date_naive();
    let day = |n: i64| (today + chrono::Duration::days(n)).format("%Y-%m-%d");
    let sign = if offset_hours < 0 { '-' } else { '+' };
    let text = format!(
        "school = \"{school}\"\nutc_offset = \"{sign}{:02}:00\"\n\
         weekdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n\
         [[term]]\nname = \"term\"\nstart = {}\nend = {}\n\
         [[holiday]]\nname = \"holiday\"\nstart = {}\nend = {}\n",
        offset_hours.abs(),
        day(-10),
        day(60),
        day(1),
        day(7),
    );
    (text, offset, today)
}

/// `hh:mm` local on `today + days` at `offset`, in UTC.
fn local_at(
    offset: chrono::FixedOffset,
    today: chrono::NaiveDate,
    days: i64,
    hh: u32,
    mm: u32,
) -> chrono::DateTime<Utc> {
    (today + chrono::Duration::days(days))
        .and_hms_opt(hh, mm, 0)
        .unwrap()
        .and_local_timezone(offset)
        .unwrap()
        .with_timezone(&Utc)
}

fn escalated_steps(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "escalation")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_school_day_limit_set_before_a_holiday_escalates_on_the_first_school_day_after() {
    let relay = TestRelay::start().await;
    let (calendar, offset, today) = holiday_from_tomorrow("第一中学");
    assert_eq!(
        relay.relay.store().load_calendar(&calendar).await.unwrap(),
        Ok("第一中学".to_string())
    );
    let boss = relay.token("zhang", Role::Leader).await;
    let mut ws = connect(relay.addr, Some(&boss), 0).await.unwrap();
    drain(&mut ws).await;
    // A screening result at 重点 level: the screening playbook, whose
    // interview is due within 1 school day.
    let producer = relay.token("feed", Role::Producer).await;
    let reply = post_alert(&relay, &producer, &alert("sd-1", "S1", "key")).await;
    assert_eq!(reply.status, 201);
    let case_id = reply.body["case_id"].as_str().unwrap().to_string();
    let seen = until_quiet(&mut ws).await;
    let added = seen
        .iter()
        .find(|e| e["type"] == "checklist_added")
        .expect("the screening checklist");
    assert_eq!(added["playbook"], "suicidal_ideation_screening");
    // Today is school day 0; one school day later is the end of the first
    // school day after the holiday, on the school's calendar.
    let due = local_at(offset, today, 8, 18, 0);
    let stamp = &added["progress"]["school_due"]["interview"];
    assert_eq!(stamp["days"], 1, "{stamp}");
    assert_eq!(stamp["calendar"], "第一中学", "{stamp}");
    assert_eq!(
        stamp["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        due
    );

    // Every day of the holiday passes: the interview is never escalated
    // (the 4-hour steps are, on the first scan).
    for day in 1..=7 {
        relay
            .relay
            .escalate_overdue(local_at(offset, today, day, 23, 0))
            .await
            .unwrap();
    }
    relay
        .relay
        .escalate_overdue(local_at(offset, today, 8, 17, 59))
        .await
        .unwrap();
    let during = escalated_steps(&until_quiet(&mut ws).await);
    assert!(during.contains(&"read_items".to_string()), "{during:?}");
    assert!(
        !during.contains(&"interview".to_string()),
        "escalated in the holiday: {during:?}"
    );
    // The first school day after it ends: now it escalates, to the leader.
    let after = due + chrono::Duration::seconds(1);
    assert_eq!(relay.relay.escalate_overdue(after).await.unwrap(), 1);
    let events = until_quiet(&mut ws).await;
    let interview = events
        .iter()
        .find(|e| e["type"] == "escalation" && e["step"] == "interview")
        .expect("the interview escalated");
    assert_eq!(interview["to"], "leader");
    assert_eq!(interview["case_id"], case_id.as_str());
    assert_eq!(
        interview["due"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        due
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_school_calendar_school_days_are_weekdays_and_say_so() {
    let relay = TestRelay::start().await;
    let boss = relay.token("zhang", Role::Leader).await;
    let mut ws = connect(relay.addr, Some(&boss), 0).await.unwrap();
    drain(&mut ws).await;
    let producer = relay.token("feed", Role::Producer).await;
    let opened = Utc::now();
    let reply = post_alert(&relay, &producer, &alert("sd-2", "S2", "key")).await;
    assert_eq!(reply.status, 201);
    let seen = until_quiet(&mut ws).await;
    let added = seen
        .iter()
        .find(|e| e["type"] == "checklist_added")
        .expect("the screening checklist");
    let stamp = &added["progress"]["school_due"]["interview"];
    assert!(stamp.get("calendar").is_none(), "no calendar: {stamp}");
    let at = stamp["at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<Utc>>()
        .unwrap();
    let weekdays = crisisdesk::followup::calendar::Calendar::fallback()
        .school_days_due(stamp["from"].as_str().unwrap().parse().unwrap(), 1)
        .unwrap();
    assert_eq!(at, weekdays);
    assert!(at > opened + chrono::Duration::hours(1));
    relay.stop().await;
}
