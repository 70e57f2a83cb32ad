//! The console under a district's load: 40,000 open cases, each with the
//! checklist the relay attaches. One group per view; each measures what a
//! key press costs from the key to the frame drawn after it (update,
//! refresh, draw at 120×40), through the same action path the live
//! console uses. The target is one frame: 16 ms.

#[path = "../tests/console_support/mod.rs"]
mod console_support;

use std::hint::black_box;

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
    assert_eq!(app.order.len(), CASES as usize);
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = list, filters, search, detail, my_steps, live
}
criterion_main!(benches);
