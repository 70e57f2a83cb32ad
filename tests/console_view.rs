//! The console drawn into a `TestBackend`, compared with committed insta
//! snapshots. The app is driven only through its action path, as the live
//! console is.

use chrono::{DateTime, FixedOffset, Utc};
use crisisdesk::console::app::{Action, App, ConnectionState};
use crisisdesk::console::{Lang, view};
use crisisdesk::protocol::{Event, ServerFrame};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn alert_event(seq: i64, case_num: u32, body: Value, opened_at: &str, status: &str) -> Action {
    let case_id = format!("C{case_num:06}");
    let exercise_id = body.get("exercise_id").cloned();
    let ev = json!({
        "seq": seq,
        "at": opened_at,
        "type": "alert",
        "case_id": case_id,
        "opened": true,
        "alert": body,
        "case": {
            "id": case_id,
            "status": "open",
            "level": body["level"],
            "imminent": body.get("imminent").cloned().unwrap_or(json!(false)),
            "category": body["category"],
            "alert_status": status,
            "exercise_id": exercise_id,
            "student_id": body["student"]["id"],
            "opened_at": opened_at,
            "updated_at": opened_at,
            "alert_count": 1
        }
    });
    let ev: Event = serde_json::from_value(ev).expect("valid event");
    Action::Frame(Box::new(ServerFrame::Event(Box::new(ev))))
}

fn library() -> crisisdesk::playbook::Library {
    crisisdesk::relay::playbooks::load(None).expect("built-in playbooks")
}

fn session(role: &str) -> Action {
    let frame = json!({
        "type": "session",
        "credential": {"name": "wang", "role": role},
        "latest_seq": 0,
        "playbooks": library().playbooks(),
    });
    Action::Frame(Box::new(
        serde_json::from_value(frame).expect("session frame"),
    ))
}

/// The checklist the relay would attach to a case with this alert.
fn checklist_event(seq: i64, case_num: u32, body: &Value, opened_at: &str) -> Option<Action> {
    let lib = library();
    let category = serde_json::from_value(body["category"].clone()).unwrap();
    let level = serde_json::from_value(body["level"].clone()).unwrap();
    let imminent = body
        .get("imminent")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let pb = lib.select(category, level, imminent)?;
    let progress = crisisdesk::playbook::Progress::new(pb, at(opened_at));
    let ev = json!({
        "seq": seq, "at": opened_at, "type": "checklist_added",
        "case_id": format!("C{case_num:06}"), "playbook": pb.id, "progress": progress,
    });
    let ev: Event = serde_json::from_value(ev).expect("checklist event");
    Some(Action::Frame(Box::new(ServerFrame::Event(Box::new(ev)))))
}

fn sample_app(lang: Lang) -> App {
    sample_app_as(lang, "counselor")
}

fn sample_app_as(lang: Lang, role: &str) -> App {
    let mut app = App::new(lang, at("2026-11-20T13:30:00Z"), beijing());
    app.relay_label = "ws://10.0.0.5:7710".into();
    app.update(Action::Connection(ConnectionState::Connected));
    app.update(session(role));
    let cases = [
        json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
               "student": {"id": "S1001", "name": "王小明", "school": "第一中学", "grade": "初二", "class": "(3)班"},
               "summary": "PHQ-9 第9题阳性", "observed_at": "2026-11-20T20:00:00+08:00"}),
        json!({"id": "a2", "source": "treehole", "category": "suicide_risk", "level": "high", "imminent": true,
               "student": {"id": "S1002", "name": "欧阳若曦", "school": "第三中学", "grade": "高一", "class": "(12)班", "under_14": false},
               "summary": "树洞匿名帖：“今晚就结束吧”\u{1b}[2J\u{1b}]0;pwned\u{7}",
               "signals": [{"kind": "text", "channel": "树洞"}],
               "observed_at": "2026-11-20T21:10:00+08:00"}),
        json!({"id": "a3", "source": "behavior", "category": "acute_distress", "level": "general",
               "student": {"id": "S1003", "name": "Li Wei", "grade": "大一"},
               "observed_at": "2026-11-20T19:00:00+08:00"}),
        json!({"id": "a4", "status": "exercise", "exercise_id": "night-drill", "source": "teacher_report",
               "category": "self_harm", "level": "high",
               "student": {"id": "S1004", "name": "陈嘉怡", "school": "实验小学", "grade": "六年级", "class": "(1)班", "under_14": true},
               "observed_at": "2026-11-20T21:00:00+08:00"}),
    ];
    let opened = [
        "2026-11-20T12:00:00Z",
        "2026-11-20T13:12:00Z",
        "2026-11-20T11:00:00Z",
        "2026-11-20T13:00:00Z",
    ];
    let mut seq = 0;
    for (i, (body, opened_at)) in cases.into_iter().zip(opened).enumerate() {
        let status = body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("actual")
            .to_string();
        seq += 1;
        app.update(alert_event(
            seq,
            i as u32 + 1,
            body.clone(),
            opened_at,
            &status,
        ));
        if let Some(checklist) = checklist_event(seq + 1, i as u32 + 1, &body, opened_at) {
            seq += 1;
            app.update(checklist);
        }
    }
    app.refresh();
    app
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(app, f)).unwrap();
    screen_text(terminal.backend().buffer())
}

/// The buffer as the eye sees it: one line per row, wide glyphs once.
fn screen_text(buffer: &ratatui::buffer::Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut skip = 0;
        let mut line = String::new();
        for x in 0..area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let symbol = buffer[(x, y)].symbol();
            skip = unicode_width::UnicodeWidthStr::width(symbol).saturating_sub(1);
            line.push_str(symbol);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    app.refresh();
}

#[test]
fn case_list_orders_imminent_then_level_then_oldest() {
    let app = sample_app(Lang::Zh);
    assert_eq!(app.order, ["C000002", "C000004", "C000001", "C000003"]);
}

#[test]
fn case_list_zh() {
    insta::assert_snapshot!(render(&sample_app(Lang::Zh), 80, 24));
}

#[test]
fn case_list_en() {
    insta::assert_snapshot!(render(&sample_app(Lang::En), 80, 24));
}

#[test]
fn case_detail_with_hostile_summary_shows_escapes_inert() {
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("欧阳若曦"), "detail shows the full name");
    assert!(
        screen.contains("␛[2J"),
        "escape shown as a visible stand-in"
    );
    assert!(
        !screen.contains('\u{1b}'),
        "no raw escape reaches the terminal"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn drill_case_detail_is_marked() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("DRILL 演练"), "banner on a drill screen");
    insta::assert_snapshot!(screen);
}

#[test]
fn help_overlay_and_disconnected_state() {
    let mut app = sample_app(Lang::En);
    app.update(Action::Connection(ConnectionState::Retrying {
        attempt: 3,
        retry_in_secs: 4,
    }));
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn list_never_names_the_student_in_full() {
    let screen = render(&sample_app(Lang::Zh), 80, 24);
    assert!(screen.contains("王**") && screen.contains("欧**"));
    assert!(!screen.contains("王小明") && !screen.contains("欧阳若曦"));
}

#[test]
fn repeated_event_is_applied_once() {
    let mut app = sample_app(Lang::Zh);
    let body = json!({"id": "a9", "source": "manual", "category": "other", "level": "general",
        "student": {"id": "S9"}, "observed_at": "2026-11-20T21:00:00+08:00"});
    let last = app.last_seq;
    app.update(alert_event(last, 9, body, "2026-11-20T13:00:00Z", "actual"));
    app.refresh();
    assert_eq!(
        app.order.len(),
        4,
        "an event at or below the last seq is ignored"
    );
}

#[test]
fn only_visible_rows_are_drawn_for_a_long_list() {
    let mut app = App::new(Lang::En, at("2026-11-20T13:30:00Z"), beijing());
    for i in 0..5000u32 {
        let body = json!({"id": format!("b{i}"), "source": "screening", "category": "other", "level": "general",
            "student": {"id": format!("S{i}")}, "observed_at": "2026-11-20T21:00:00+08:00"});
        app.update(alert_event(
            i as i64 + 1,
            i + 1,
            body,
            "2026-11-20T13:00:00Z",
            "actual",
        ));
    }
    app.refresh();
    key(&mut app, KeyCode::Char('G'));
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("C005000"),
        "the selected last row is in view"
    );
    assert!(!screen.contains("C000001"));
}

fn open_imminent_case(lang: Lang) -> App {
    let mut app = sample_app(lang);
    key(&mut app, KeyCode::Enter);
    app
}

#[test]
fn checklist_zh() {
    insta::assert_snapshot!(render(&open_imminent_case(Lang::Zh), 100, 32));
}

#[test]
fn checklist_en() {
    insta::assert_snapshot!(render(&open_imminent_case(Lang::En), 100, 32));
}

#[test]
fn my_steps_zh() {
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Char('m'));
    insta::assert_snapshot!(render(&app, 100, 24));
}

#[test]
fn my_steps_en_with_overdue_steps() {
    let mut app = sample_app(Lang::En);
    // An hour later the 10-minute steps are long overdue.
    app.update(Action::Tick(at("2026-11-20T14:30:00Z")));
    key(&mut app, KeyCode::Char('m'));
    let screen = render(&app, 100, 24);
    assert!(
        screen.contains("⚠OVERDUE"),
        "overdue is said in words:\n{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn all_roles_toggle_shows_the_team() {
    let mut app = open_imminent_case(Lang::Zh);
    let mine = app.case_step_rows("C000002").len();
    key(&mut app, KeyCode::Char('t'));
    let all = app.case_step_rows("C000002").len();
    assert!(
        all > mine,
        "all roles ({all}) shows more than mine ({mine})"
    );
    assert!(mine > 0);
}

#[test]
fn check_step_sends_a_complete_command() {
    use crisisdesk::console::Effect;
    use crisisdesk::protocol::CommandOp;
    let mut app = open_imminent_case(Lang::En);
    let rows = app.case_step_rows("C000002");
    let first_check = rows
        .iter()
        .position(|r| matches!(r.kind, crisisdesk::playbook::StepKind::Check))
        .expect("a check step for the counselor");
    for _ in 0..first_check {
        key(&mut app, KeyCode::Down);
    }
    let effects = app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("expected one command, got {effects:?}");
    };
    match &cmd.op {
        CommandOp::Step {
            case_id,
            step,
            action,
            ..
        } => {
            assert_eq!(case_id, "C000002");
            assert_eq!(step, &rows[first_check].target.step);
            assert_eq!(action, &crisisdesk::playbook::StepAction::Complete);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        cmd.client_at.is_some(),
        "the console's own time travels with it"
    );
}

#[test]
fn skip_needs_a_reason_and_the_prompt_says_so() {
    let mut app = open_imminent_case(Lang::Zh);
    key(&mut app, KeyCode::Char('s'));
    let effects = app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(effects.is_empty(), "empty reason sends nothing");
    let screen = render(&app, 80, 24);
    assert!(screen.contains("不能为空"), "{screen}");
    for c in "家长已在场".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let effects = app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert_eq!(effects.len(), 1);
    assert!(app.prompt.is_none());
}

#[test]
fn choice_prompt_lists_the_options() {
    let mut app = sample_app(Lang::En);
    let choice = app
        .order
        .clone()
        .iter()
        .flat_map(|id| app.case_step_rows(id))
        .find(|r| matches!(r.kind, crisisdesk::playbook::StepKind::Choice { .. }));
    let Some(choice) = choice else {
        panic!("the sample cases have a choice step for the counselor");
    };
    app.prompt = Some(crisisdesk::console::app::Prompt {
        ask: crisisdesk::console::app::Ask::Choice(choice.target.clone()),
        input: "9".into(),
        error: None,
    });
    let effects = app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(
        effects.is_empty(),
        "an option number out of range sends nothing"
    );
    insta::assert_snapshot!(render(&app, 100, 24));
}

#[test]
fn a_reset_forgets_a_history_the_relay_no_longer_has() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Enter);
    app.update(Action::Reset);
    app.refresh();
    assert!(app.cases.is_empty() && app.order.is_empty());
    assert_eq!(
        app.last_seq, 0,
        "the next connection replays from the start"
    );
    assert_eq!(app.screen, crisisdesk::console::app::Screen::List);
    assert!(render(&app, 80, 24).contains("reloaded"));
}
