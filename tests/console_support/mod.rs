//! Builders shared by the console tests and benchmarks: events as the relay
//! sends them, a sample duty picture, and a district-sized one. The app is
//! only ever driven through its action path, as the live console is.
#![allow(dead_code)]

use chrono::{DateTime, FixedOffset, Utc};
use crisisdesk::console::app::{Action, App, ConnectionState};
use crisisdesk::console::frames;
use crisisdesk::console::{Lang, view};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// An event frame from JSON, checked against the wire types, and — for
/// alerts — redacted as the relay redacts it for a counselor, so fixtures
/// never show the console data a real relay would not send.
pub fn ev(v: Value) -> Action {
    let v: Value = serde_json::from_str(&crisisdesk::privacy::redact_event(
        crisisdesk::protocol::Role::Counselor,
        &v.to_string(),
    ))
    .unwrap();
    // Read as the console reads the wire (the route comes out here).
    let frame = frames::decode_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    assert!(
        matches!(frame, frames::Frame::Event(..)),
        "not an event: {v}"
    );
    Action::Frame(Box::new(frame))
}

pub fn case_id(n: u32) -> String {
    format!("C{n:06}")
}

/// The case snapshot an alert body leads to (a case of one alert).
pub fn snapshot(case_num: u32, body: &Value, opened_at: &str, status: &str) -> Value {
    let alert_status = body.get("status").cloned().unwrap_or(json!("actual"));
    json!({
        "id": case_id(case_num),
        "status": status,
        "level": body["level"],
        "imminent": body.get("imminent").cloned().unwrap_or(json!(false)),
        "category": body["category"],
        "alert_status": alert_status,
        "exercise_id": body.get("exercise_id").cloned(),
        "student_id": body["student"]["id"],
        "opened_at": opened_at,
        "updated_at": opened_at,
        "alert_count": 1
    })
}

/// An `alert` event that opens case `case_num`.
pub fn alert_event(seq: i64, case_num: u32, body: Value, opened_at: &str) -> Action {
    let case = snapshot(case_num, &body, opened_at, "open");
    ev(json!({
        "seq": seq, "at": opened_at, "type": "alert", "case_id": case_id(case_num),
        "opened": true, "alert": body, "case": case
    }))
}

pub fn library() -> &'static crisisdesk::playbook::Library {
    // Loaded once: the district fixture asks for it 40,000 times.
    static LIBRARY: std::sync::OnceLock<crisisdesk::playbook::Library> = std::sync::OnceLock::new();
    LIBRARY.get_or_init(|| crisisdesk::playbook::shipped::load(None).expect("built-in playbooks"))
}

/// The session frame; events up to `latest_seq` are history to the console.
pub fn session(role: &str, latest_seq: i64) -> Action {
    let frame = json!({
        "type": "session",
        "credential": {"name": "wang", "role": role},
        "latest_seq": latest_seq,
        "playbooks": library().playbooks(),
    });
    Action::Frame(Box::new(
        frames::decode_value(frame).expect("session frame"),
    ))
}

/// The checklist the relay would attach to a case with this alert.
pub fn checklist_event(seq: i64, case_num: u32, body: &Value, opened_at: &str) -> Option<Action> {
    let lib = library();
    let category = serde_json::from_value(body["category"].clone()).unwrap();
    let level = serde_json::from_value(body["level"].clone()).unwrap();
    let imminent = body
        .get("imminent")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let pb = lib.select(category, level, imminent)?;
    let progress = crisisdesk::playbook::Progress::new(pb, at(opened_at));
    Some(ev(json!({
        "seq": seq, "at": opened_at, "type": "checklist_added",
        "case_id": case_id(case_num), "playbook": pb.id, "progress": progress,
    })))
}

pub fn acknowledged_event(
    seq: i64,
    case_num: u32,
    body: &Value,
    opened_at: &str,
    when: &str,
) -> Action {
    let mut case = snapshot(case_num, body, opened_at, "acknowledged");
    case["acknowledged_by"] = json!({"name": "li", "role": "head_teacher"});
    case["acknowledged_at"] = json!(when);
    case["updated_at"] = json!(when);
    ev(json!({
        "seq": seq, "at": when, "type": "case_acknowledged", "case_id": case_id(case_num),
        "by": {"name": "li", "role": "head_teacher"}, "case": case,
        "origin": {"by": {"name": "li", "role": "head_teacher"}, "command_id": format!("k{seq}")}
    }))
}

pub fn closed_event(
    seq: i64,
    case_num: u32,
    body: &Value,
    opened_at: &str,
    when: &str,
    outcome: &str,
) -> Action {
    let mut case = snapshot(case_num, body, opened_at, "closed");
    case["updated_at"] = json!(when);
    ev(json!({
        "seq": seq, "at": when, "type": "case_closed", "case_id": case_id(case_num),
        "outcome": outcome, "case": case,
        "origin": {"by": {"name": "wang", "role": "counselor"}, "command_id": format!("c{seq}")}
    }))
}

pub fn escalation_event(seq: i64, case_num: u32, when: &str, step: &str, to: &str) -> Action {
    ev(json!({
        "seq": seq, "at": when, "type": "escalation", "case_id": case_id(case_num),
        "playbook": "imminent_suicide_risk", "step": step, "to": to, "owner": "counselor",
        "reason": "past_due"
    }))
}

/// Feeds alerts (each opening a case, with the checklist the relay would
/// attach) and returns the next free seq.
pub fn feed(app: &mut App, mut seq: i64, cases: &[(u32, Value, &str)]) -> i64 {
    for (num, body, opened_at) in cases {
        app.update(alert_event(seq, *num, body.clone(), opened_at));
        seq += 1;
        if let Some(checklist) = checklist_event(seq, *num, body, opened_at) {
            app.update(checklist);
            seq += 1;
        }
    }
    seq
}

pub const NOW: &str = "2026-11-20T13:30:00Z";

/// The duty picture most snapshots start from, all of it history (replayed
/// on connect, so no alarms): an imminent tree-hole case with a hostile
/// summary, a drill, a Latin-script name, and a student with two earlier
/// cases and PHQ-9/GAD-7 screenings over a year.
pub fn sample_app(lang: Lang) -> App {
    sample_app_as(lang, "counselor")
}

pub fn sample_app_as(lang: Lang, role: &str) -> App {
    let mut app = App::new(lang, at(NOW), beijing());
    app.relay_label = "ws://10.0.0.5:7710".into();
    app.update(Action::Connection(ConnectionState::Connected));
    app.update(session(role, 1000));
    let wang = json!({"id": "S1001", "name": "王小明", "school": "第一中学", "grade": "初二", "class": "(3)班"});
    let earlier1 = json!({"id": "h1", "source": "screening", "category": "acute_distress", "level": "general",
        "student": wang, "summary": "春季普查", "observed_at": "2026-03-02T09:00:00+08:00",
        "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": 6}, {"kind": "scale", "instrument": "GAD-7", "score": 5}]});
    let earlier2 = json!({"id": "h2", "source": "screening", "category": "suicide_risk", "level": "key",
        "student": wang, "summary": "秋季普查", "observed_at": "2026-09-08T09:00:00+08:00",
        "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": 11, "items": {"9": 1}}, {"kind": "scale", "instrument": "GAD-7", "score": 9}]});
    let mut seq = 1;
    app.update(alert_event(
        seq,
        10,
        earlier1.clone(),
        "2026-03-02T01:00:00Z",
    ));
    app.update(closed_event(
        seq + 1,
        10,
        &earlier1,
        "2026-03-02T01:00:00Z",
        "2026-03-20T02:00:00Z",
        "no_risk",
    ));
    app.update(alert_event(
        seq + 2,
        11,
        earlier2.clone(),
        "2026-09-08T01:00:00Z",
    ));
    app.update(closed_event(
        seq + 3,
        11,
        &earlier2,
        "2026-09-08T01:00:00Z",
        "2026-10-15T02:00:00Z",
        "stabilized",
    ));
    seq += 4;
    let cases = [
        (
            1,
            json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
               "student": wang,
               "summary": "PHQ-9 第9题阳性", "observed_at": "2026-11-20T20:00:00+08:00",
               "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": 17, "items": {"9": 2}}]}),
            "2026-11-20T12:00:00Z",
        ),
        (
            2,
            json!({"id": "a2", "source": "treehole", "category": "suicide_risk", "level": "high", "imminent": true,
               "student": {"id": "S1002", "name": "欧阳若曦", "school": "第三中学", "grade": "高一", "class": "(12)班", "under_14": false},
               "summary": "树洞匿名帖：“今晚就结束吧”\u{1b}[2J\u{1b}]0;pwned\u{7}",
               "signals": [{"kind": "text", "channel": "树洞"}],
               "observed_at": "2026-11-20T21:10:00+08:00"}),
            "2026-11-20T13:12:00Z",
        ),
        (
            3,
            json!({"id": "a3", "source": "behavior", "category": "acute_distress", "level": "general",
               "student": {"id": "S1003", "name": "Li Wei", "grade": "大一"},
               "observed_at": "2026-11-20T19:00:00+08:00"}),
            "2026-11-20T11:00:00Z",
        ),
        (
            4,
            json!({"id": "a4", "status": "exercise", "exercise_id": "night-drill", "source": "teacher_report",
               "category": "self_harm", "level": "high",
               "student": {"id": "S1004", "name": "陈嘉怡", "school": "实验小学", "grade": "六年级", "class": "(1)班", "under_14": true},
               "observed_at": "2026-11-20T21:00:00+08:00"}),
            "2026-11-20T13:00:00Z",
        ),
    ];
    feed(&mut app, seq, &cases);
    app.refresh();
    app
}

/// A case written almost entirely in Chinese, with every field near its
/// limit: long school, grade and class names, a long summary, a long
/// student name. Nothing of it may split a glyph or spill over.
pub fn cjk_heavy_alert() -> Value {
    json!({"id": "cjk", "source": "parent_report", "category": "trauma_bereavement", "level": "high",
        "student": {"id": "学号二〇二六〇〇〇一", "name": "司马欧阳慕容长孙令狐",
                    "school": "某某市某某区第一实验学校附属初级中学（东校区）", "grade": "初中二年级",
                    "class": "（十二）班·心理健康特别关注班", "under_14": true},
        "summary": "家长来电称：孩子近一周夜间反复哭泣，拒绝上学，说“活着没有意思”，并把心爱的东西送给同学。家长情绪激动，要求学校今天内联系。",
        "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": 22}],
        "observed_at": "2026-11-20T21:20:00+08:00"})
}

/// A screening alert flagged by a rule, with its reasons (the `risk`
/// signal of SHARED_CONTRACTS.md), routed to follow-up: listed at its
/// level, never alarming.
pub fn followup_risk_alert() -> Value {
    json!({"id": "scr1", "source": "screening", "category": "suicide_risk", "level": "high",
    "route": "followup",
    "student": {"id": "S3001", "name": "刘思远", "school": "第二中学", "grade": "高二", "class": "(5)班"},
    "summary": "秋季心理普查", "observed_at": "2026-11-20T21:15:00+08:00",
    "signals": [
        {"kind": "risk", "rule": "upi", "rule_version": 3, "level": "high",
         "contributions": [
            {"label_zh": "UPI 第25题", "label_en": "UPI item 25", "value": "是", "effect": "high", "weight": null, "decisive": true},
            {"label_zh": "PHQ-9 总分", "label_en": "PHQ-9 total", "value": "17", "effect": null, "weight": 2, "decisive": false},
            {"label_zh": "缺勤", "label_en": "Absence", "value": "3 天", "effect": null, "weight": 1, "decisive": false}
         ]},
        {"kind": "scale", "instrument": "PHQ-9", "score": 17}
    ]})
}

pub fn render(app: &App, width: u16, height: u16) -> String {
    screen_text(render_buffer(app, width, height).buffer())
}

pub fn render_buffer(app: &App, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(app, f)).unwrap();
    terminal.backend().clone()
}

/// The buffer as the eye sees it: one line per row, wide glyphs once.
pub fn screen_text(buffer: &ratatui::buffer::Buffer) -> String {
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

pub fn key(app: &mut App, code: KeyCode) -> Vec<crisisdesk::console::Effect> {
    let effects = app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    app.refresh();
    effects
}

pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// A district's load: `n` open cases over 178 schools, every level and
/// category, a few imminent, a share of drills, some acknowledged — all
/// replayed history, as when a console starts at the beginning of a shift.
pub fn district_app(n: u32) -> App {
    let mut app = App::new(Lang::Zh, at(NOW), beijing());
    app.update(Action::Connection(ConnectionState::Connected));
    app.update(session("counselor", i64::from(n) * 3 + 10));
    let levels = ["general", "key", "high"];
    let categories = [
        "suicide_risk",
        "self_harm",
        "violence_threat",
        "bullying",
        "trauma_bereavement",
        "acute_distress",
        "other",
    ];
    let mut seq = 1i64;
    for i in 0..n {
        let minute = i % 1440;
        let opened_at = format!(
            "2026-11-{:02}T{:02}:{:02}:00Z",
            1 + (i / 1440) % 19,
            minute / 60,
            minute % 60
        );
        let mut body = json!({
            "id": format!("d{i}"), "source": "screening",
            "category": categories[(i as usize / 3) % 7], "level": levels[(i as usize * 7) % 3],
            "imminent": i % 97 == 0,
            "student": {"id": format!("S{:06}", i), "name": "张三丰",
                        "school": format!("第{}中学", i % 178 + 1), "grade": "初二",
                        "class": format!("({})班", i % 12 + 1)},
            "summary": "普查", "observed_at": "2026-11-20T08:00:00+08:00",
            "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": i % 28}]
        });
        if i % 10 == 0 {
            body["status"] = json!("exercise");
            body["exercise_id"] = json!("district-drill");
        }
        app.update(alert_event(seq, i + 1, body.clone(), &opened_at));
        seq += 1;
        // The checklist the relay attaches, as on a real stream: "my
        // steps" then has tens of thousands of rows.
        if let Some(checklist) = checklist_event(seq, i + 1, &body, &opened_at) {
            app.update(checklist);
            seq += 1;
        }
        if i % 4 == 0 {
            app.update(acknowledged_event(
                seq,
                i + 1,
                &body,
                &opened_at,
                &opened_at,
            ));
            seq += 1;
        }
    }
    app.refresh();
    app
}

/// A private tmux server running the real binary, killed when the test
/// ends however it ends.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a `width`×`height` session with extra `env`.
    pub fn start(command: &str, width: u16, height: u16, env: &[(&str, String)]) -> Tmux {
        let tmux = Tmux {
            socket: format!(
                "crisisdesk-console-{}-{}",
                std::process::id(),
                fastrand::u32(..)
            ),
        };
        let mut args: Vec<String> = ["new-session", "-d", "-s", "t", "-x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(width.to_string());
        args.push("-y".into());
        args.push(height.to_string());
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(command.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tmux.run(&args);
        tmux
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types text literally (no key names).
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Polls the screen until `predicate` holds; panics with the screen.
    pub fn wait_for(&self, what: &str, predicate: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if predicate(&screen) {
                return screen;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
