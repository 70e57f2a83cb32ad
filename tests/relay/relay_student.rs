//! The console's `student` command against a real relay on a real socket
//! and a real SQLite file: a UPI screening imported through the binary,
//! a hostile alert posted over HTTP, then the record read over the
//! websocket by each role. The record must be what `crisisdesk student
//! show --format json` prints for that role (one function builds both),
//! and every reading audited.

use crate::common;
use crate::console_support;

use std::process::Command as Process;

use common::*;
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

const STUDENT: &str = "G110101200801010050";

fn bin(args: &[&str]) -> String {
    let out = Process::new(BIN)
        .args(args)
        .output()
        .expect("run crisisdesk");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One UPI row for the student: 26 symptom items and item 25 (high).
fn upi_csv() -> String {
    let mut header = vec!["学籍号", "姓名", "学校", "年级", "班级", "作答时间", "用时"]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    header.extend((1..=60).map(|q| format!("第{q}题")));
    let mut answers = vec!["否"; 60];
    for n in [
        1, 2, 3, 4, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 21, 22, 23, 24, 25, 27, 28, 29,
        30, 31, 32,
    ] {
        answers[n - 1] = "是";
    }
    let mut row = vec![
        STUDENT,
        "王小明",
        "第一中学",
        "初二",
        "3班",
        "2026-09-08 10:00:00",
        "600",
    ];
    row.extend(answers);
    format!("{}\n{}\n", header.join(","), row.join(","))
}

async fn ask(ws: &mut Ws, id: &str, case_id: &str) -> Value {
    send_command(
        ws,
        json!({"type": "command", "id": id, "op": "student", "case_id": case_id}),
    )
    .await;
    result_for(ws, id).await.0
}

/// Imports the screening and posts the hostile report; the case id.
async fn student_with_a_screening(relay: &TestRelay) -> String {
    let db = relay.db_url.clone();
    let csv = relay.dir.path().join("upi.csv");
    std::fs::write(&csv, upi_csv()).unwrap();
    bin(&[
        "screening",
        "plan",
        "create",
        "--db",
        &db,
        "--id",
        "p2026a",
        "--name",
        "2026秋季普查",
        "--scale",
        "upi",
        "--schools",
        "第一中学",
        "--from",
        "2026-09-01",
        "--to",
        "2026-09-30",
    ]);
    bin(&[
        "screening",
        "import",
        csv.to_str().unwrap(),
        "--plan",
        "p2026a",
        "--db",
        &db,
    ]);
    let producer = relay.token("feed", Role::Producer).await;
    let mut report = alert("t-1", STUDENT, "key");
    report["source"] = json!("teacher_report");
    report["summary"] = json!("作文里写了告别\u{1b}[2J\u{1b}]0;pwned\u{7}");
    report["student"]["school"] = json!("第一中学");
    let posted = post_alert(relay, &producer, &report).await;
    assert!(posted.status == 201, "{:?}", posted.body);
    posted.body["case_id"].as_str().unwrap().to_string()
}

/// The console itself, fed the relay's frames: `S` on the case sends the
/// read, the relay's answer is drawn, the history tab lists the screening.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_app_shows_the_record_a_real_relay_returns() {
    use crisisdesk::console::app::{Action, App, ConnectionState, Screen};
    use crisisdesk::console::{Effect, Lang, frames};
    use crossterm::event::KeyCode;
    let relay = TestRelay::start().await;
    let case_id = student_with_a_screening(&relay).await;
    let token = relay.token("王老师", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&token), 0).await.unwrap();
    let mut app = App::new(Lang::Zh, chrono::Utc::now(), console_support::beijing());
    app.update(Action::Connection(ConnectionState::Connected));
    let feed = |app: &mut App, v: Value| {
        let frame = frames::decode_value(v).expect("a frame the console reads");
        app.update(Action::Frame(Box::new(frame)))
    };
    while let Some(v) = next_json(&mut ws, std::time::Duration::from_millis(500)).await {
        feed(&mut app, v);
    }
    app.refresh();
    app.nav.selected = app.order_ids().iter().position(|c| *c == case_id).unwrap();
    console_support::key(&mut app, KeyCode::Enter);
    let effects = console_support::key(&mut app, KeyCode::Char('S'));
    assert_eq!(app.nav.screen, Screen::Student(case_id.clone()));
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let wire = crisisdesk::protocol::ClientFrame::Command(cmd.clone());
    send_command(&mut ws, serde_json::to_value(wire).unwrap()).await;
    let (result, _) = result_for(&mut ws, &cmd.id).await;
    feed(&mut app, result);
    app.refresh();
    let screen = console_support::render(&app, 120, 40);
    for want in [
        "学生档案（一生一档） · G110101200801010050 · 王** [",
        "按心理教师角色显示",
        "计划 p2026a · UPI v1 · 总分 27 · ▲ 高危",
        "[预警] further alert (key, suicide_risk, teacher_report): 作文里写了告别␛[2J",
    ] {
        assert!(screen.contains(want), "{want}\n{screen}");
    }
    // The case's history tab lists the same screening, from the record
    // just read (no second read within a minute).
    console_support::key(&mut app, KeyCode::Esc);
    assert!(console_support::key(&mut app, KeyCode::Tab).is_empty());
    let history = console_support::render(&app, 120, 40);
    assert!(
        history.contains("筛查结果 (1)") && history.contains("计划 p2026a · UPI v1 · 总分 27"),
        "{history}"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_reads_the_students_record_per_role_and_each_read_is_audited() {
    let relay = TestRelay::start().await;
    let db = relay.db_url.clone();
    let case_id = student_with_a_screening(&relay).await;

    let counselor = relay.token("王老师", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let session = next_json(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(session["type"], "session");
    // The 三个一 cadence: one student under 特别关注, none reviewed yet.
    let cadence = &session["followup_cadence"];
    assert_eq!(
        (
            cadence["review_students"].as_u64(),
            cadence["review_due"].as_u64()
        ),
        (Some(1), Some(1)),
        "{session}"
    );
    assert!(cadence["next_term_screening"].is_string(), "{cadence}");

    let answer = ask(&mut ws, "s-1", &case_id).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["data"]["case_id"], case_id.as_str());
    let record = &answer["data"]["record"];
    assert_eq!(record["student_id"], STUDENT);
    assert_eq!(record["initials"], "王**");
    assert!(record.get("identity").is_none(), "never the name");
    assert!(!answer.to_string().contains("王小明"), "{answer}");
    let screening = &record["screenings"][0];
    assert_eq!(
        (
            screening["plan_id"].as_str(),
            screening["scale"].as_str(),
            screening["level"].as_str()
        ),
        (Some("p2026a"), Some("upi"), Some("high"))
    );
    assert!(
        screening["scores"]["total"].as_f64().unwrap() >= 25.0,
        "{screening}"
    );
    let text = record.to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "the summary comes inert: {text}"
    );
    assert!(text.contains("作文里写了告别"), "{text}");

    // The same function as `student show`: the same record, bar the
    // moment it was read.
    let shown: Value = serde_json::from_str(&bin(&[
        "student",
        "show",
        STUDENT,
        "--db",
        &db,
        "--role",
        "counselor",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(&shown, record, "console and command line agree");
    let md = bin(&["student", "show", STUDENT, "--db", &db]);
    assert!(
        md.contains("| p2026a | 2026-09-08T10:00:00+08:00 | upi v1 | total 27.0 | high | yes |"),
        "{md}"
    );

    // A head teacher sees the cases, not the screening results.
    let teacher = relay.token("李老师", Role::HeadTeacher).await;
    let mut ws2 = connect(relay.addr, Some(&teacher), 0).await.unwrap();
    let answer = ask(&mut ws2, "h-1", &case_id).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let record = &answer["data"]["record"];
    assert_eq!(record["screenings"], json!([]));
    assert!(
        record["withheld"]
            .as_array()
            .unwrap()
            .contains(&json!("screening results")),
        "{record}"
    );
    assert_eq!(record["cases"][0]["case_id"], case_id.as_str());

    // The reviewer reads; the admin is refused; an unknown case is named.
    let reviewer = relay.token("督导", Role::Reviewer).await;
    let mut ws3 = connect(relay.addr, Some(&reviewer), 0).await.unwrap();
    assert_eq!(ask(&mut ws3, "r-1", &case_id).await["ok"], true);
    let admin = relay.token("admin", Role::Admin).await;
    let mut ws4 = connect(relay.addr, Some(&admin), 0).await.unwrap();
    let refused = ask(&mut ws4, "a-1", &case_id).await;
    assert_eq!(
        (refused["ok"].as_bool(), refused["error"]["code"].as_str()),
        (Some(false), Some("forbidden")),
        "{refused}"
    );
    let unknown = ask(&mut ws, "s-2", "C999999").await;
    assert_eq!(unknown["error"]["code"], "unknown_case", "{unknown}");

    // Every read by the console left a `case_viewed` entry naming the
    // command; the audit chain is intact.
    let audit = relay.relay.store().audit_for_case(&case_id).await.unwrap();
    let viewed: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e.kind == "case_viewed")
        .filter_map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).ok()?;
            (detail["via"] == "console").then(|| {
                (
                    e.actor_name.clone().unwrap_or_default(),
                    detail["command_id"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    for (who, id) in [("王老师", "s-1"), ("李老师", "h-1"), ("督导", "r-1")] {
        assert!(
            viewed.contains(&(who.to_string(), id.to_string())),
            "{who} {id}: {viewed:?}"
        );
    }
    let verified = Process::new(BIN)
        .args(["audit", "verify", "--db", &db])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    relay.stop().await;
}

/// The session's 三个一 figure counts students, and one with a check-in
/// recorded this month is no longer due for review.
#[tokio::test(flavor = "multi_thread")]
async fn a_check_in_this_month_takes_the_student_off_the_review_count() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    for (id, student, level) in [
        ("k1", "S1", "key"),
        ("k2", "S1", "high"),
        ("k3", "S2", "key"),
        ("g1", "S3", "general"),
    ] {
        let posted = post_alert(&relay, &producer, &alert(id, student, level)).await;
        assert!(posted.status == 201, "{:?}", posted.body);
    }
    let counselor = relay.token("王老师", Role::Counselor).await;
    let cadence = |session: &Value| {
        (
            session["followup_cadence"]["review_students"].as_u64(),
            session["followup_cadence"]["review_due"].as_u64(),
        )
    };
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let session = next_json(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        cadence(&session),
        (Some(2), Some(2)),
        "S1 once, S2; not the general S3"
    );
    // S2's case: acknowledged, monitored, its first check-in recorded now.
    let s2 = relay
        .relay
        .store()
        .student_cases("S2", false)
        .await
        .unwrap();
    let case_id = s2[0].case.id.clone();
    for (id, op) in [
        ("c1", json!({"op": "acknowledge", "case_id": case_id})),
        ("c2", json!({"op": "monitor", "case_id": case_id})),
        (
            "c3",
            json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well"}),
        ),
    ] {
        let mut command = op;
        command["type"] = json!("command");
        command["id"] = json!(id);
        send_command(&mut ws, command).await;
        let (result, _) = result_for(&mut ws, id).await;
        assert_eq!(result["ok"], true, "{id}: {result}");
    }
    let mut ws2 = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let session = next_json(&mut ws2, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(cadence(&session), (Some(2), Some(1)), "{session}");
    // A producer's or the district's session carries no figure.
    let district = relay.token("区教育局", Role::District).await;
    let mut ws3 = connect(relay.addr, Some(&district), 0).await.unwrap();
    let session = next_json(&mut ws3, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert!(session.get("followup_cadence").is_none(), "{session}");
    relay.stop().await;
}
