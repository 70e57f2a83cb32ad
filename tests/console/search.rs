//! The search line's rows: typing narrows what is shown and a backspace
//! shows again what was shown before (`ListIndex`), and both must give
//! exactly the rows a fresh search for the same text gives, live alerts
//! included.

use crisisdesk::console::app::App;
use crisisdesk::console::cases::Slot;
use crossterm::event::KeyCode;

use crate::console_support::*;

const CASES: u32 = 2_000;

/// The rows a search for `text` typed into a fresh console shows.
fn fresh(text: &str) -> Vec<Slot> {
    let mut app = district_app(CASES);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, text);
    app.list.order.clone()
}

/// A live alert for case `num` whose student has id `student`.
fn arrives(app: &mut App, seq: i64, num: u32, student: &str) {
    let mut body = cjk_heavy_alert();
    body["id"] = format!("live{num}").into();
    body["student"]["id"] = student.into();
    app.update(alert_event(seq, num, body, NOW));
    app.refresh();
}

#[test]
fn typing_then_backspacing_shows_the_rows_of_a_fresh_search() {
    let mut app = district_app(CASES);
    key(&mut app, KeyCode::Char('/'));
    let text = "s0019";
    let mut typed = Vec::new();
    for (n, c) in text.char_indices() {
        key(&mut app, KeyCode::Char(c));
        let prefix = &text[..n + c.len_utf8()];
        assert_eq!(app.list.order, fresh(prefix), "typed {prefix:?}");
        typed.push(app.list.order.clone());
    }
    assert_eq!(app.list.order.len(), 100, "S001900 to S001999");
    for n in (0..text.len()).rev() {
        key(&mut app, KeyCode::Backspace);
        let rows = if n == 0 {
            fresh("")
        } else {
            typed[n - 1].clone()
        };
        assert_eq!(app.list.order, rows, "back to {:?}", &text[..n]);
        assert_eq!(
            app.list.order,
            fresh(&text[..n]),
            "back to {:?}",
            &text[..n]
        );
    }
    assert_eq!(app.list.order.len(), CASES as usize);
}

#[test]
fn live_alerts_during_a_search_appear_when_they_match() {
    let mut app = district_app(CASES);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "s001");
    type_text(&mut app, "9");
    let seq = i64::from(CASES) * 10;
    arrives(&mut app, seq, CASES + 1, "S0019LIVE");
    arrives(&mut app, seq + 1, CASES + 2, "S0018LIVE");
    let id = |app: &App, slot: &Slot| app.cases.at(*slot).case.student_id.clone();
    let shown: Vec<String> = app.list.order.iter().map(|s| id(&app, s)).collect();
    assert!(shown.contains(&"S0019LIVE".to_string()), "{shown:?}");
    assert!(!shown.contains(&"S0018LIVE".to_string()));
    assert_eq!(shown.len(), 101);
    // Back to "s001", which was shown before either arrived: both match.
    key(&mut app, KeyCode::Backspace);
    let shown: Vec<String> = app.list.order.iter().map(|s| id(&app, s)).collect();
    assert!(shown.contains(&"S0019LIVE".to_string()), "{shown:?}");
    assert!(shown.contains(&"S0018LIVE".to_string()), "{shown:?}");
    assert_eq!(shown.len(), 1002);
    // Typing on from there narrows the rows that now include them.
    key(&mut app, KeyCode::Char('8'));
    let shown: Vec<String> = app.list.order.iter().map(|s| id(&app, s)).collect();
    assert!(shown.contains(&"S0018LIVE".to_string()), "{shown:?}");
    assert_eq!(shown.len(), 101);
}
