//! The console under a district's load (40,000 open cases): drawing the
//! list, applying a filter, searching, re-sorting, and taking a live alert.
//! Each measures the whole step a key press or a frame costs, through the
//! same action path the live console uses.

#[path = "../tests/console_support/mod.rs"]
mod console_support;

use std::hint::black_box;

use console_support::*;
use crisisdesk::console::view;
use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const CASES: u32 = 40_000;

fn draw(c: &mut Criterion) {
    let app = district_app(CASES);
    assert_eq!(app.order.len(), CASES as usize);
    let mut group = c.benchmark_group("draw_40000");
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        group.bench_function(format!("list_{w}x{h}"), |b| {
            b.iter(|| {
                terminal.draw(|f| view::draw(black_box(&app), f)).unwrap();
            })
        });
    }
    let mut app = app;
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Tab);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    group.bench_function("history_chart_120x40", |b| {
        b.iter(|| {
            terminal.draw(|f| view::draw(black_box(&app), f)).unwrap();
        })
    });
    group.finish();
}

fn filter(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter_40000");
    let mut app = district_app(CASES);
    // `l` cycles any → ≥key → ≥high → imminent → any: each press is one
    // full filter pass over 40,000 cases.
    group.bench_function("level_key_press", |b| {
        b.iter(|| key(&mut app, KeyCode::Char('l')))
    });
    key(&mut app, KeyCode::Char('x'));
    group.bench_function("school_key_press", |b| {
        b.iter(|| key(&mut app, KeyCode::Char('h')))
    });
    key(&mut app, KeyCode::Char('x'));
    group.bench_function("mine_key_press", |b| {
        b.iter(|| key(&mut app, KeyCode::Char('i')))
    });
    key(&mut app, KeyCode::Char('x'));
    // Typing in the search line: one character more, one less.
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "s0399");
    group.bench_function("search_keystroke", |b| {
        b.iter(|| {
            key(&mut app, KeyCode::Char('9'));
            key(&mut app, KeyCode::Backspace);
        })
    });
    key(&mut app, KeyCode::Esc);
    group.bench_function("sort_key_press", |b| {
        b.iter(|| key(&mut app, KeyCode::Char('o')))
    });
    group.finish();
}

fn live(c: &mut Criterion) {
    let mut app = district_app(CASES);
    let mut seq = app.last_seq;
    let mut case = CASES + 10;
    c.bench_function("live_alert_then_refresh_40000", |b| {
        b.iter(|| {
            seq += 1;
            case += 1;
            let body = json!({"id": format!("live{seq}"), "source": "hotline", "category": "self_harm",
                "level": "key", "student": {"id": format!("L{seq}"), "name": "李四"},
                "observed_at": "2026-11-20T21:00:00+08:00"});
            app.update(alert_event(seq, case, body, "2026-11-20T13:00:00Z"));
            app.refresh();
        })
    });
    c.bench_function("tick_then_refresh_40000", |b| {
        b.iter(|| {
            app.update(crisisdesk::console::Action::Tick(at(NOW)));
            app.refresh();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = draw, filter, live
}
criterion_main!(benches);
