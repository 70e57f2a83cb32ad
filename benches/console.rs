//! The console under a district's load: 40,000 open cases, each with the
//! checklist the relay attaches. One group per view; each measures what a
//! key press costs from the key to the frame drawn after it (update,
//! refresh, draw at 120×40), through the same action path the live
//! console uses. The target is one frame: 16 ms.

#[path = "../tests/console_support/mod.rs"]
mod console_support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use console_support::*;
use crisisdesk::console::app::App;
use crisisdesk::console::view;
use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const CASES: u32 = 40_000;

type Screen = Terminal<TestBackend>;

fn screen(w: u16, h: u16) -> Screen {
    Terminal::new(TestBackend::new(w, h)).unwrap()
}

fn frame(app: &App, terminal: &mut Screen) {
    terminal.draw(|f| view::draw(black_box(app), f)).unwrap();
}

/// A key, then the frame it causes.
fn press(app: &mut App, terminal: &mut Screen, code: KeyCode) {
    key(app, code);
    frame(app, terminal);
}

fn list(c: &mut Criterion) {
    let mut app = district_app(CASES);
    assert_eq!(app.list.order.len(), CASES as usize);
    let mut group = c.benchmark_group("list_40000");
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let mut terminal = screen(w, h);
        group.bench_function(format!("draw_{w}x{h}"), |b| {
            b.iter(|| frame(&app, &mut terminal))
        });
    }
    let mut terminal = screen(120, 40);
    group.bench_function("key_j_then_k", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    group.bench_function("key_page_down", |b| {
        b.iter(|| press(&mut app, &mut terminal, KeyCode::PageDown))
    });
    group.finish();
}

fn filters(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter_40000");
    let mut app = district_app(CASES);
    let mut terminal = screen(120, 40);
    // `l` cycles any → ≥key → ≥high → imminent → any: each press is one
    // full filter pass over 40,000 cases.
    group.bench_function("key_level", |b| {
        b.iter(|| press(&mut app, &mut terminal, KeyCode::Char('l')))
    });
    key(&mut app, KeyCode::Char('x'));
    group.bench_function("key_school", |b| {
        b.iter(|| press(&mut app, &mut terminal, KeyCode::Char('h')))
    });
    key(&mut app, KeyCode::Char('x'));
    group.bench_function("key_mine", |b| {
        b.iter(|| press(&mut app, &mut terminal, KeyCode::Char('i')))
    });
    key(&mut app, KeyCode::Char('x'));
    group.bench_function("key_sort", |b| {
        b.iter(|| press(&mut app, &mut terminal, KeyCode::Char('o')))
    });
    group.finish();
}

fn search(c: &mut Criterion) {
    let mut group = c.benchmark_group("search_40000");
    let mut app = district_app(CASES);
    let mut terminal = screen(120, 40);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "s0399");
    // Typing in the search line: one character more, one less.
    group.bench_function("keystroke_and_back", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('9'));
            press(&mut app, &mut terminal, KeyCode::Backspace);
        })
    });
    // The first character is the dearest: all 40,000 rows are shown, and
    // `s` (every student id has one) keeps them all. Each key is timed on
    // its own, the other one undoing it untimed.
    let mut fresh = district_app(CASES);
    key(&mut fresh, KeyCode::Char('/'));
    let (first, back) = (KeyCode::Char('s'), KeyCode::Backspace);
    for (name, timed, undo) in [
        ("first_keystroke", first, back),
        ("backspace_after_first", back, first),
    ] {
        if name.starts_with("backspace") {
            key(&mut fresh, first);
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    press(&mut fresh, &mut terminal, timed);
                    spent += start.elapsed();
                    press(&mut fresh, &mut terminal, undo);
                }
                spent
            })
        });
        if name.starts_with("backspace") {
            key(&mut fresh, back);
        }
    }
    // A student id typed in full and erased: ten keys.
    group.bench_function("type_id_and_erase_10_keys", |b| {
        b.iter(|| {
            for c in "s0399".chars() {
                press(&mut fresh, &mut terminal, KeyCode::Char(c));
            }
            for _ in 0..5 {
                press(&mut fresh, &mut terminal, KeyCode::Backspace);
            }
        })
    });
    group.finish();
}

fn detail(c: &mut Criterion) {
    let mut group = c.benchmark_group("detail_40000");
    let mut app = district_app(CASES);
    let mut terminal = screen(120, 40);
    // Opening a case and going back: the case screen's first frame.
    group.bench_function("open_and_back", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Enter);
            press(&mut app, &mut terminal, KeyCode::Esc);
        })
    });
    key(&mut app, KeyCode::Enter);
    group.bench_function("checklist_cursor", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    // The history tab and its chart, in and out.
    group.bench_function("history_tab_in_and_out", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Tab);
            press(&mut app, &mut terminal, KeyCode::Tab);
        })
    });
    group.finish();
}

fn my_steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("my_steps_40000");
    let mut app = district_app(CASES);
    let mut terminal = screen(120, 40);
    key(&mut app, KeyCode::Char('m'));
    assert!(
        app.my_steps.len() >= CASES as usize,
        "{}",
        app.my_steps.len()
    );
    key(&mut app, KeyCode::Esc);
    // From the list into "my steps" and back: the first frame of the view
    // every time, since nothing of it is built until it is drawn.
    group.bench_function("open_and_back", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('m'));
            press(&mut app, &mut terminal, KeyCode::Esc);
        })
    });
    key(&mut app, KeyCode::Char('m'));
    group.bench_function("cursor_j_then_k", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    for _ in 0..5000 {
        key(&mut app, KeyCode::Char('j'));
    }
    group.bench_function("cursor_deep_in_the_list", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    group.finish();
}

fn live(c: &mut Criterion) {
    let mut group = c.benchmark_group("live_40000");
    let mut app = district_app(CASES);
    let mut seq = app.last_seq;
    let mut case = CASES + 10;
    group.bench_function("alert_then_refresh", |b| {
        b.iter(|| {
            seq += 1;
            case += 1;
            let body = json!({"id": format!("live{seq}"), "source": "hotline", "category": "self_harm",
                "level": "key", "student": {"id": format!("L{seq}"), "name": "李四"},
                "observed_at": "2026-11-20T21:00:00+08:00"});
            app.update(alert_event(seq, case, body.clone(), "2026-11-20T13:00:00Z"));
            seq += 1;
            if let Some(checklist) = checklist_event(seq, case, &body, "2026-11-20T13:00:00Z") {
                app.update(checklist);
            }
            app.refresh();
        })
    });
    group.bench_function("tick_then_refresh", |b| {
        b.iter(|| {
            app.update(crisisdesk::console::Action::Tick(at(NOW)));
            app.refresh();
        })
    });
    group.finish();
}

/// Every case of the district in monitoring, with the check-ins the
/// shipped schedule plans for its level, started over the last 60 days
/// (the Mon–Fri fallback calendar): about 40,000 students followed up.
fn monitored(n: u32) -> App {
    use crisisdesk::followup::calendar::Calendar;
    use crisisdesk::followup::schedule::Schedule;
    use crisisdesk::lifecycle::Grade;
    use crisisdesk::protocol::Level;
    let mut app = district_app(n);
    let schedule = Schedule::shipped().unwrap();
    let calendar = Calendar::fallback();
    let mut seq = app.last_seq;
    let levels = [Level::General, Level::Key, Level::High];
    let ids: Vec<String> = app.order_ids().iter().map(|s| s.to_string()).collect();
    for (i, case_id) in ids.iter().enumerate() {
        let case = app.cases.get(case_id).unwrap().case.clone();
        let start = at(NOW) - chrono::Duration::hours((i % 1440) as i64);
        let grade = Grade {
            level: levels[i % 3],
            imminent: false,
        };
        let planned: Vec<serde_json::Value> = schedule
            .plan(grade, start, &calendar)
            .iter()
            .enumerate()
            .map(|(k, p)| {
                json!({"id": format!("{case_id}/{}", k + 1), "num": k + 1,
                "role": p.role, "escalate_to": p.escalate_to, "due_at": p.due_at})
            })
            .collect();
        seq += 1;
        app.update(ev(json!({"seq": seq, "at": NOW, "type": "case_updated", "case_id": case_id,
            "change": {"kind": "monitoring", "planned": planned}, "case": case,
            "origin": {"by": {"name": "wang", "role": "counselor"}, "command_id": format!("m{seq}")}})));
    }
    app.refresh();
    app
}

fn followups(c: &mut Criterion) {
    let mut group = c.benchmark_group("followups_40000");
    let mut app = monitored(CASES);
    let mut terminal = screen(120, 40);
    key(&mut app, KeyCode::Char('f'));
    assert!(!app.followup_rows().is_empty());
    key(&mut app, KeyCode::Esc);
    group.bench_function("open_and_back", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('f'));
            press(&mut app, &mut terminal, KeyCode::Esc);
        })
    });
    key(&mut app, KeyCode::Char('f'));
    group.bench_function("cursor_j_then_k", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    // What a follow-up event costs while the view is open: one case's
    // plan replaced (the event parsed and applied, its rows updated in
    // place), then the frame.
    let case_id = app.order_ids()[0].to_string();
    let case = app.cases.get(&case_id).unwrap().case.clone();
    let plan = app.cases.get(&case_id).unwrap().checkins.clone();
    let planned: Vec<serde_json::Value> = plan
        .iter()
        .map(|k| {
            json!({"id": format!("{case_id}/{}", k.num), "num": k.num, "role": k.role,
                   "escalate_to": k.escalate_to, "due_at": k.due_at})
        })
        .collect();
    let mut seq = app.last_seq;
    group.bench_function("event_then_frame", |b| {
        b.iter(|| {
            seq += 1;
            app.update(ev(json!({"seq": seq, "at": NOW, "type": "case_updated",
                "case_id": case_id, "change": {"kind": "monitoring", "planned": planned},
                "case": case, "origin": {"by": {"name": "wang", "role": "counselor"},
                "command_id": format!("b{seq}")}})));
            app.refresh();
            frame(&app, &mut terminal);
        })
    });
    // The full rebuild, still done when the clock moves a row between
    // headings or a session starts: every case's check-ins, then the frame.
    group.bench_function("rebuild_then_frame", |b| {
        b.iter(|| {
            app.followups.invalidate();
            app.refresh();
            frame(&app, &mut terminal);
        })
    });
    // The follow-ups filters and sort over ~150,000 rows: each key is one
    // pass over the rows (and a sort of the kept ones by a key), then
    // the frame. `w` four times comes back to "all".
    key(&mut app, KeyCode::Char('x'));
    group.bench_function("filter_change_w_x4", |b| {
        b.iter(|| {
            for _ in 0..4 {
                press(&mut app, &mut terminal, KeyCode::Char('w'));
            }
        })
    });
    group.bench_function("filter_school_h", |b| {
        b.iter(|| press(&mut app, &mut terminal, KeyCode::Char('h')))
    });
    key(&mut app, KeyCode::Char('x'));
    // `O` three times: by level, by school, back to by due.
    group.bench_function("sort_change_o_x3", |b| {
        b.iter(|| {
            for _ in 0..3 {
                press(&mut app, &mut terminal, KeyCode::Char('O'));
            }
        })
    });
    group.finish();
}

/// A student's record as the relay's `student` read returns it: three
/// cases, four screenings, 80 timeline items.
fn record_json(student_id: &str, case_id: &str) -> serde_json::Value {
    let timeline: Vec<serde_json::Value> = (0..80)
        .map(|i| {
            let kind = ["alert", "step", "checkin", "level"][i % 4];
            json!({"at": format!("2026-{:02}-{:02}T01:00:00Z", 1 + i / 8, 1 + i % 28),
                "case_id": case_id, "kind": kind,
                "who": "王老师 (counselor)",
                "what": format!("check-in {i} (head_teacher): seen_well — 早读正常，和同学打球，午饭正常 {i}")})
        })
        .collect();
    let screening = |plan: &str, at: &str, level: &str, total: f64| {
        json!({"plan_id": plan, "answered_at": at, "valid": true, "level": level, "imminent": false,
            "class_en": "Class II", "class_zh": "第二类", "scale": "upi", "scale_version": 3,
            "scale_level": level, "scores": {"total": total}})
    };
    json!({
        "student_id": student_id, "role": "counselor", "initials": "王**",
        "school": "第一中学", "grade": "初二", "class": "(3)班",
        "cases": [
            {"case_id": "C900001", "status": "closed", "level": "general", "imminent": false, "category": "acute_distress",
             "opened_at": "2025-03-02T01:00:00Z", "closed_at": "2025-03-20T02:00:00Z", "outcome": "no_risk", "drill": false},
            {"case_id": "C900002", "status": "closed", "level": "key", "imminent": false, "category": "suicide_risk",
             "opened_at": "2025-09-08T01:00:00Z", "closed_at": "2025-10-15T02:00:00Z", "outcome": "stabilized", "drill": false},
            {"case_id": case_id, "status": "monitoring", "level": "key", "imminent": false, "category": "suicide_risk",
             "opened_at": "2026-11-20T12:00:00Z", "closed_at": null, "outcome": null, "drill": false}
        ],
        "screenings": [
            screening("2025春", "2025-03-02T09:00:00+08:00", "general", 12.0),
            screening("2025秋", "2025-09-08T09:00:00+08:00", "key", 21.0),
            screening("2026春", "2026-03-02T09:00:00+08:00", "key", 19.0),
            screening("2026秋", "2026-09-08T09:00:00+08:00", "general", 9.0)
        ],
        "upcoming": [],
        "timeline": timeline,
        "withheld": []
    })
}

/// The student view among 40,000 cases: `S` on a case, the relay's answer
/// (parsed, made inert) and the frame, then `Esc`; a scroll key in it.
fn student(c: &mut Criterion) {
    use crisisdesk::console::Effect;
    use crisisdesk::console::app::Action;
    use crisisdesk::console::frames::Frame;
    use crisisdesk::protocol::CommandResult;
    use crossterm::event::{KeyEvent, KeyModifiers};
    let mut group = c.benchmark_group("student_40000");
    let mut app = district_app(CASES);
    let mut terminal = screen(120, 40);
    key(&mut app, KeyCode::Enter);
    let case_id = match &app.nav.screen {
        crisisdesk::console::app::Screen::Detail(id) => id.clone(),
        other => panic!("{other:?}"),
    };
    let student_id = app.cases.get(&case_id).unwrap().case.student_id.clone();
    let record = record_json(&student_id, &case_id);
    let open = |app: &mut App, terminal: &mut Screen| {
        let effects = app.update(Action::Key(KeyEvent::new(
            KeyCode::Char('S'),
            KeyModifiers::NONE,
        )));
        app.refresh();
        frame(app, terminal);
        let Some(Effect::Send(cmd)) = effects.first() else {
            panic!("no read sent: {effects:?}");
        };
        let result: CommandResult = serde_json::from_value(json!({"type": "result", "id": cmd.id,
            "ok": true, "data": {"case_id": case_id, "record": record}}))
        .unwrap();
        app.update(Action::Frame(Box::new(Frame::Result(result))));
        app.refresh();
        frame(app, terminal);
    };
    // Both frames: the "reading…" one after `S`, the record's after the
    // answer; then `Esc` and its frame.
    group.bench_function("open_answer_and_back", |b| {
        b.iter(|| {
            open(&mut app, &mut terminal);
            press(&mut app, &mut terminal, KeyCode::Esc);
        })
    });
    open(&mut app, &mut terminal);
    group.bench_function("scroll_j_then_k", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    group.finish();
}

/// The answer to a question the console asked, as the connection gives it.
fn answer(app: &mut App, effects: Vec<crisisdesk::console::Effect>, data: serde_json::Value) {
    use crisisdesk::console::app::Action;
    use crisisdesk::protocol::{CommandResult, ResultTag};
    for e in effects {
        if let crisisdesk::console::Effect::Send(cmd) = e {
            let result = CommandResult {
                kind: ResultTag::Result,
                id: cmd.id.clone(),
                ok: true,
                error: None,
                duplicate: false,
                data: Some(data.clone()),
            };
            app.update(Action::Answered(Box::new(cmd), Box::new(result)));
        }
    }
    app.refresh();
}

/// A district's figures: 178 schools, a report awaiting review in ten.
fn district_figures() -> serde_json::Value {
    let schools: Vec<serde_json::Value> = (0..178)
        .map(|i| {
            json!({"school": format!("第{i}中学"), "open_high": i % 7, "open_imminent": i % 3,
                   "overdue_steps": i % 11, "overdue_checkins": i % 5,
                   "reports_awaiting_review": usize::from(i % 17 == 0), "reports_overdue": 0})
        })
        .collect();
    let reports: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            json!({"report_id": format!("IR-C{i:06}"), "school": format!("第{i}中学"), "rules": ["death"],
                   "stages": ["first=submitted", "follow_up=pending", "final=pending"],
                   "awaiting_review": true, "next_due": null})
        })
        .collect();
    json!({"as_of": NOW, "schools": schools, "reports": reports,
           "total": {"school": "合计 total", "open_high": 500, "open_imminent": 100, "overdue_steps": 900,
                     "overdue_checkins": 300, "reports_awaiting_review": 10, "reports_overdue": 0}})
}

fn district(c: &mut Criterion) {
    let mut group = c.benchmark_group("district_40000");
    let mut app = district_app(CASES);
    app.update(session("district", i64::from(CASES) * 3 + 10));
    let effects = key(&mut app, KeyCode::Char('D'));
    answer(&mut app, effects, district_figures());
    let mut terminal = screen(120, 40);
    group.bench_function("draw_120x40", |b| b.iter(|| frame(&app, &mut terminal)));
    group.bench_function("cursor_j_then_k", |b| {
        b.iter(|| {
            press(&mut app, &mut terminal, KeyCode::Char('j'));
            press(&mut app, &mut terminal, KeyCode::Char('k'));
        })
    });
    // The answer to a refresh arriving, then the frame.
    group.bench_function("refresh_answered_then_frame", |b| {
        b.iter(|| {
            let effects = key(&mut app, KeyCode::Char('r'));
            answer(&mut app, effects, district_figures());
            frame(&app, &mut terminal);
        })
    });
    group.finish();
}

fn charts(c: &mut Criterion) {
    let mut group = c.benchmark_group("charts_40000");
    let mut app = district_app(CASES);
    let schools: Vec<serde_json::Value> = (0..178)
        .map(|i| json!({"school": format!("第{i}中学"), "general": 40 + i % 13, "key": i % 9, "high": i % 4}))
        .collect();
    let figures = json!({
        "from": "2025-11-30T16:00:00Z", "to": NOW, "drills_included": false, "cases": 40_000,
        "school_levels": schools,
        "monthly": (1..=12).map(|m| json!([format!("2026-{m:02}"), 3000 + m * 17])).collect::<Vec<_>>(),
        "time_to_ack": [["<1分", 9000], ["1–5分", 14000], ["5–15分", 8000], ["15–30分", 4000],
                        ["30–60分", 2000], ["1–4时", 1000], ["≥4时", 500]],
        "time_to_ack_p50_secs": 190, "time_to_ack_p90_secs": 1500,
    });
    let effects = key(&mut app, KeyCode::Char('P'));
    answer(&mut app, effects, figures.clone());
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let mut terminal = screen(w, h);
        group.bench_function(format!("draw_{w}x{h}"), |b| {
            b.iter(|| frame(&app, &mut terminal))
        });
    }
    let mut terminal = screen(120, 40);
    group.bench_function("period_key_answered_then_frame", |b| {
        b.iter(|| {
            let effects = key(&mut app, KeyCode::Char('p'));
            answer(&mut app, effects, figures.clone());
            frame(&app, &mut terminal);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = list, filters, search, detail, my_steps, live, followups, district, charts, student
}
criterion_main!(benches);
