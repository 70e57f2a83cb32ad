//! The student view (一生一档) and the history tab's screenings: `S` on a
//! case sends one quiet `student` read; the relay's answer is drawn as
//! given, made inert; `r` reveals on the case as on the case screen. The
//! record's shape here is the relay's (`tests/relay/relay_student.rs` checks it
//! against a real relay and `student show`).

use crate::console_support::*;
use crisisdesk::console::app::{Action, App, DetailTab, Screen};
use crisisdesk::console::frames::Frame;
use crisisdesk::console::{Effect, Lang};
use crisisdesk::protocol::{CommandOp, CommandResult};
use crossterm::event::KeyCode;
use serde_json::{Value, json};

/// The record of S1001 (cases 10, 11 and 1 of the sample) as a
/// counselor's `student` read returns it; one note carries escapes.
pub fn counselor_record() -> Value {
    json!({
        "student_id": "S1001", "role": "counselor", "initials": "王**",
        "school": "第一中学", "grade": "初二", "class": "(3)班",
        "cases": [
            {"case_id": "C000010", "status": "closed", "level": "general", "imminent": false, "category": "acute_distress",
             "opened_at": "2026-03-02T01:00:00Z", "closed_at": "2026-03-20T02:00:00Z", "outcome": "no_risk", "drill": false},
            {"case_id": "C000011", "status": "closed", "level": "key", "imminent": false, "category": "suicide_risk",
             "opened_at": "2026-09-08T01:00:00Z", "closed_at": "2026-10-15T02:00:00Z", "outcome": "stabilized", "drill": false},
            {"case_id": "C000001", "status": "monitoring", "level": "key", "imminent": false, "category": "suicide_risk",
             "opened_at": "2026-11-20T12:00:00Z", "closed_at": null, "outcome": null, "drill": false}
        ],
        "screenings": [
            {"plan_id": "2026春普查", "answered_at": "2026-03-02T09:00:00+08:00", "valid": true, "level": "general",
             "imminent": false, "class_en": "Class III", "class_zh": "第三类", "scale": "upi", "scale_version": 3,
             "scale_level": "general", "scores": {"total": 12.0}},
            {"plan_id": "2026秋普查", "answered_at": "2026-09-08T09:00:00+08:00", "valid": true, "level": "key",
             "imminent": false, "class_en": "Class II", "class_zh": "第二类", "scale": "upi", "scale_version": 3,
             "scale_level": "key", "scores": {"total": 21.0, "item25": 0.0}},
            {"plan_id": "11月复测", "answered_at": "2026-11-20T20:00:00+08:00", "valid": false, "level": null,
             "imminent": false, "scale": "phq9", "scale_version": 1}
        ],
        "upcoming": [
            {"id": "C000001/2", "num": 2, "role": "head_teacher", "escalate_to": "counselor", "due_at": "2026-11-23T10:00:00Z"}
        ],
        "timeline": [
            {"at": "2026-03-02T01:00:00Z", "case_id": "C000010", "kind": "alert", "what": "opening alert (general, acute_distress, screening): 春季普查"},
            {"at": "2026-09-08T01:00:00Z", "case_id": "C000011", "kind": "screening", "what": "screening 2026秋普查: key"},
            {"at": "2026-11-20T12:00:00Z", "case_id": "C000001", "kind": "alert", "what": "opening alert (key, suicide_risk, screening): PHQ-9 第9题阳性"},
            {"at": "2026-11-20T12:10:00Z", "case_id": "C000001", "kind": "case", "who": "wang (counselor)", "what": "moved to monitoring: 6 check-ins planned"},
            {"at": "2026-11-20T13:05:00Z", "case_id": "C000001", "kind": "checkin", "who": "li (head_teacher)",
             "what": "check-in 1 (head_teacher): concern — 午饭没吃\u{1b}[2J\u{1b}]0;pwned\u{7}\n下午找他谈"}
        ],
        "withheld": []
    })
}

/// The sample (counselor), case C000001 open, `S` pressed; returns the
/// app and the command it sent.
fn opened(lang: Lang, role: &str) -> (App, crisisdesk::protocol::Command) {
    let mut app = sample_app_as(lang, role);
    app.nav.selected = app
        .order_ids()
        .iter()
        .position(|c| *c == "C000001")
        .unwrap();
    key(&mut app, KeyCode::Enter);
    let effects = key(&mut app, KeyCode::Char('S'));
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("expected one read, got {effects:?}");
    };
    let cmd = cmd.clone();
    (app, cmd)
}

pub fn answer(app: &mut App, id: &str, ok: bool, data: Value) {
    let result: CommandResult = serde_json::from_value(if ok {
        json!({"type": "result", "id": id, "ok": true, "data": data})
    } else {
        json!({"type": "result", "id": id, "ok": false, "error": data})
    })
    .unwrap();
    app.update(Action::Frame(Box::new(Frame::Result(result))));
    app.refresh();
}

/// The student view with the counselor's record received.
pub fn student_app(lang: Lang) -> App {
    let (mut app, cmd) = opened(lang, "counselor");
    answer(
        &mut app,
        &cmd.id,
        true,
        json!({"case_id": "C000001", "record": counselor_record()}),
    );
    app
}

/// The history tab of C000001 with the record received.
pub fn history_app(lang: Lang) -> App {
    let mut app = sample_app(lang);
    app.nav.selected = app
        .order_ids()
        .iter()
        .position(|c| *c == "C000001")
        .unwrap();
    key(&mut app, KeyCode::Enter);
    let effects = key(&mut app, KeyCode::Tab);
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("the history tab reads the record: {effects:?}");
    };
    let id = cmd.id.clone();
    answer(
        &mut app,
        &id,
        true,
        json!({"case_id": "C000001", "record": counselor_record()}),
    );
    app
}

/// Before the answer: the view says it is reading.
pub fn loading_app(lang: Lang) -> App {
    opened(lang, "counselor").0
}

#[test]
fn s_on_a_case_sends_one_quiet_read_and_shows_the_record() {
    let (mut app, cmd) = opened(Lang::En, "counselor");
    assert_eq!(app.nav.screen, Screen::Student("C000001".into()));
    assert_eq!(
        cmd.op,
        CommandOp::Student {
            case_id: "C000001".into()
        }
    );
    assert!(app.notice.is_none(), "a read is quiet, like a view");
    assert!(render(&app, 80, 24).contains("Reading the record from the relay"));
    // Pressing S again while it is on its way sends nothing more.
    assert!(key(&mut app, KeyCode::Char('S')).is_empty());
    answer(
        &mut app,
        &cmd.id,
        true,
        json!({"case_id": "C000001", "record": counselor_record()}),
    );
    assert!(app.notice.is_none(), "no notice for a read");
    let screen = render(&app, 120, 40);
    for want in [
        "Student record · S1001 · 王** [",
        "Cases (3)",
        "C000010",
        "Screenings (3)",
        "2026-09-08 · plan 2026秋普查 · UPI v3 · total 21 · ◆ Key · Class II",
        "invalid, re-test",
        "Check-ins due (1)",
        "Timeline (newest first) (5)",
        "[check-in] li (head_teacher): check-in 1",
        "下午找他谈",
    ] {
        assert!(screen.contains(want), "{want}\n{screen}");
    }
    assert!(!screen.contains("王小明"), "no name without a reveal");
    // Esc goes back to the case.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.nav.screen, Screen::Detail("C000001".into()));
}

#[test]
fn text_from_the_record_cannot_drive_the_terminal() {
    let app = student_app(Lang::Zh);
    let buffer = render_buffer(&app, 120, 40);
    for cell in buffer.buffer().content() {
        assert!(
            !cell.symbol().chars().any(|c| c.is_control()),
            "a control character reached the screen"
        );
    }
    let record = &app.student.loaded.as_ref().unwrap().record;
    let note = &record.timeline.last().unwrap().what;
    assert!(
        !note.contains('\u{1b}') && !note.contains('\u{7}'),
        "{note:?}"
    );
}

#[test]
fn a_head_teacher_is_told_what_is_withheld() {
    let (mut app, cmd) = opened(Lang::Zh, "head_teacher");
    let mut record = counselor_record();
    record["role"] = json!("head_teacher");
    record["screenings"] = json!([]);
    record["withheld"] = json!([
        "other roles' notes",
        "level-change reasons",
        "screening results"
    ]);
    answer(
        &mut app,
        &cmd.id,
        true,
        json!({"case_id": "C000001", "record": record}),
    );
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("本角色不可见: 其他角色的记录、等级调整理由、筛查结果"),
        "{screen}"
    );
    assert!(screen.contains("按班主任角色显示"), "{screen}");
}

#[test]
fn a_refusal_is_shown_in_the_consoles_words() {
    let (mut app, cmd) = opened(Lang::Zh, "counselor");
    answer(
        &mut app,
        &cmd.id,
        false,
        json!({"code": "forbidden", "message": "role may not"}),
    );
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("中继拒绝读取档案: 当前角色无权执行此操作"),
        "{screen}"
    );
}

#[test]
fn r_reveals_on_the_case_and_the_record_shows_the_name() {
    let mut app = student_app(Lang::En);
    key(&mut app, KeyCode::Char('r'));
    type_text(&mut app, "家长来电核实");
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert!(matches!(cmd.op, CommandOp::Reveal { .. }), "{:?}", cmd.op);
    let id = cmd.id.clone();
    answer(
        &mut app,
        &id,
        true,
        json!({"student": {"id": "S1001", "name": "王小明\u{1b}[31m"}}),
    );
    let screen = render(&app, 120, 40);
    assert!(screen.contains("· 王小明"), "{screen}");
    assert_eq!(app.nav.screen, Screen::Student("C000001".into()));
}

#[test]
fn the_history_tab_lists_the_screenings_from_the_record() {
    let app = history_app(Lang::En);
    assert_eq!(app.nav.detail_tab, DetailTab::History);
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Screenings (3)"), "{screen}");
    assert!(
        screen.contains("2026-03-02 · plan 2026春普查 · UPI v3 · total 12 · ● General · Class III"),
        "{screen}"
    );
    // Tab away and back within a minute: no second read.
    let mut app = app;
    key(&mut app, KeyCode::Tab);
    assert!(key(&mut app, KeyCode::Tab).is_empty(), "fresh record kept");
}
