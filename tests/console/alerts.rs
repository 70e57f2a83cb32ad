//! Noticing: a new high/imminent case or an escalation to my role rings the
//! bell, raises a desktop notification and a banner that stays until the
//! case is acknowledged — each switchable — and the notification never
//! carries a name or any alert text.

use crate::console_support::*;
use crisisdesk::console::app::{Action, App, DesktopNote, NotifierHealth, Screen};
use crisisdesk::console::{AlertPrefs, Effect, Lang};
use crossterm::event::KeyCode;
use serde_json::{Value, json};

fn high_body() -> Value {
    json!({"id": "live1", "source": "treehole", "category": "suicide_risk", "level": "high",
        "imminent": true,
        "student": {"id": "S2001", "name": "赵天佑", "school": "第二中学", "grade": "初三", "class": "(2)班"},
        "summary": "树洞：今晚就结束吧，药已经攒够了", "signals": [{"kind": "text", "match": "药"}],
        "observed_at": "2026-11-20T21:29:00+08:00"})
}

fn notes(effects: &[Effect]) -> Vec<&DesktopNote> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn rang(effects: &[Effect]) -> bool {
    effects.contains(&Effect::Bell)
}

/// Nothing that identifies the student or quotes the alert.
fn assert_private(note: &DesktopNote) {
    let all = format!("{} {}", note.summary, note.body);
    for secret in [
        "赵天佑",
        "赵",
        "S2001",
        "第二中学",
        "初三",
        "(2)班",
        "树洞",
        "今晚",
        "药",
    ] {
        assert!(!all.contains(secret), "{secret:?} leaked into {all:?}");
    }
}

#[test]
fn a_followup_alert_never_rings_notifies_or_raises_a_banner() {
    for lang in [Lang::Zh, Lang::En] {
        let mut app = sample_app(lang);
        let effects = app.update(alert_event(
            1001,
            40,
            followup_risk_alert(),
            "2026-11-20T13:15:00Z",
        ));
        app.refresh();
        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(app.open_alarms().count(), 0);
        let screen = render(&app, 120, 40);
        assert!(!screen.contains(app.strings.alarm_new), "{screen}");
        // Listed at its level all the same.
        assert!(screen.contains("C000040"), "{screen}");

        // The same alert routed as a crisis does alarm: the route, not the
        // content, decides.
        let mut crisis = followup_risk_alert();
        crisis["route"] = json!("crisis");
        crisis["id"] = json!("scr2");
        crisis["student"]["id"] = json!("S3002");
        let effects = app.update(alert_event(1002, 41, crisis, "2026-11-20T13:16:00Z"));
        assert!(rang(&effects), "{effects:?}");
        assert_eq!(notes(&effects).len(), 1);
    }
}

#[test]
fn a_new_high_case_rings_notifies_and_raises_a_banner() {
    for lang in [Lang::Zh, Lang::En] {
        let mut app = sample_app(lang);
        let effects = app.update(alert_event(1001, 20, high_body(), "2026-11-20T13:29:30Z"));
        app.refresh();
        assert!(rang(&effects), "{effects:?}");
        let notes = notes(&effects);
        assert_eq!(notes.len(), 1);
        let note = notes[0];
        assert!(note.summary.contains("C000020"), "{note:?}");
        let s = app.strings;
        assert!(
            note.summary
                .contains(s.level(crisisdesk::protocol::Level::High))
        );
        assert!(note.summary.contains(s.imminent));
        assert!(
            note.body
                .contains(s.category(crisisdesk::protocol::Category::SuicideRisk))
        );
        assert!(note.critical);
        assert_private(note);

        let screen = render(&app, 80, 24);
        assert!(
            screen.contains(s.alarm_new) && screen.contains("C000020"),
            "{screen}"
        );
        assert!(
            !screen.contains("赵天佑"),
            "the banner is pseudonymous:\n{screen}"
        );
    }
}

#[test]
fn history_replayed_on_connect_is_not_news() {
    let mut app = App::new(Lang::En, at(NOW), beijing());
    app.update(session("counselor", 5));
    let effects = app.update(alert_event(3, 20, high_body(), "2026-11-20T13:29:30Z"));
    app.refresh();
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(app.open_alarms().count(), 0);
    // A reconnect's session frame does not move the line: what came while
    // we were away is news.
    app.update(session("counselor", 50));
    let mut body = high_body();
    body["id"] = json!("live2");
    body["student"]["id"] = json!("S2002");
    let effects = app.update(alert_event(6, 21, body, "2026-11-20T13:29:40Z"));
    assert!(rang(&effects) && notes(&effects).len() == 1, "{effects:?}");
}

#[test]
fn only_high_or_imminent_alarms_and_a_rise_to_high_does() {
    let mut app = sample_app(Lang::En);
    let key_body = json!({"id": "k1", "source": "screening", "category": "bullying", "level": "key",
        "student": {"id": "S3001"}, "observed_at": "2026-11-20T21:00:00+08:00"});
    let effects = app.update(alert_event(
        1001,
        30,
        key_body.clone(),
        "2026-11-20T13:20:00Z",
    ));
    assert!(
        effects.is_empty(),
        "a key-level case is not an alarm: {effects:?}"
    );

    // A second alert joins the case and raises it to high.
    let mut raised = snapshot(30, &key_body, "2026-11-20T13:20:00Z", "open");
    raised["level"] = json!("high");
    raised["alert_count"] = json!(2);
    let mut second = key_body.clone();
    second["id"] = json!("k2");
    second["level"] = json!("high");
    let effects = app.update(ev(
        json!({"seq": 1002, "at": "2026-11-20T13:25:00Z", "type": "alert",
        "case_id": "C000030", "opened": false, "alert": second, "case": raised}),
    ));
    assert!(rang(&effects) && notes(&effects).len() == 1, "{effects:?}");

    // Another high alert on an already high case is not a new alarm.
    let mut third = key_body;
    third["id"] = json!("k3");
    third["level"] = json!("high");
    let mut again = raised.clone();
    again["alert_count"] = json!(3);
    let effects = app.update(ev(
        json!({"seq": 1003, "at": "2026-11-20T13:26:00Z", "type": "alert",
        "case_id": "C000030", "opened": false, "alert": third, "case": again}),
    ));
    assert!(effects.is_empty(), "{effects:?}");
}

#[test]
fn the_banner_stays_until_the_case_is_acknowledged() {
    let mut app = sample_app(Lang::Zh);
    let body = high_body();
    app.update(alert_event(1001, 20, body.clone(), "2026-11-20T13:29:30Z"));
    for _ in 0..3 {
        app.update(Action::Tick(at("2026-11-20T13:45:00Z")));
        key(&mut app, KeyCode::Down);
    }
    assert!(
        render(&app, 80, 24).contains("新高危 1"),
        "ticks and keys do not clear it"
    );
    // `n` opens it.
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.nav.screen, Screen::Detail("C000020".into()));
    assert!(
        render(&app, 80, 24).contains("新高危 1"),
        "opening is not acknowledging"
    );
    app.update(acknowledged_event(
        1002,
        20,
        &body,
        "2026-11-20T13:29:30Z",
        "2026-11-20T13:46:00Z",
    ));
    app.refresh();
    assert_eq!(app.open_alarms().count(), 0);
    assert!(!render(&app, 80, 24).contains("新高危"));
}

#[test]
fn each_channel_can_be_switched_off() {
    let cases = [
        (
            AlertPrefs {
                desktop: false,
                ..AlertPrefs::default()
            },
            true,
            false,
            true,
        ),
        (
            AlertPrefs {
                bell: false,
                ..AlertPrefs::default()
            },
            false,
            true,
            true,
        ),
        (
            AlertPrefs {
                banner: false,
                ..AlertPrefs::default()
            },
            true,
            true,
            false,
        ),
    ];
    for (prefs, bell, desktop, banner) in cases {
        let mut app = sample_app(Lang::En);
        app.alert_prefs = prefs;
        let effects = app.update(alert_event(1001, 20, high_body(), "2026-11-20T13:29:30Z"));
        app.refresh();
        assert_eq!(rang(&effects), bell, "{prefs:?}");
        assert_eq!(!notes(&effects).is_empty(), desktop, "{prefs:?}");
        assert_eq!(
            render(&app, 80, 24).contains("NEW HIGH RISK"),
            banner,
            "{prefs:?}"
        );
    }
}

#[test]
fn an_escalation_to_my_role_is_noticed_and_others_are_not() {
    let mut app = sample_app(Lang::En);
    let effects = app.update(escalation_event(
        1001,
        2,
        "2026-11-20T13:31:00Z",
        "counselor_arrives",
        "counselor",
    ));
    assert!(rang(&effects), "{effects:?}");
    let notes_ = notes(&effects);
    assert_eq!(notes_.len(), 1);
    assert!(notes_[0].summary.contains("Escalation") && notes_[0].summary.contains("C000002"));
    assert!(!notes_[0].summary.contains("欧阳") && !notes_[0].body.contains("树洞"));

    let effects = app.update(escalation_event(
        1002,
        2,
        "2026-11-20T13:32:00Z",
        "counselor_arrives",
        "leader",
    ));
    assert!(effects.is_empty(), "not addressed to me: {effects:?}");
}

#[test]
fn an_escalation_storm_rings_once_and_the_banner_counts_every_step() {
    let mut app = sample_app(Lang::En);
    let (mut bells, mut notes_) = (0, 0);
    // 300 steps of two cases go overdue within the same few seconds.
    for i in 0..300 {
        let effects = app.update(escalation_event(
            2000 + i,
            if i % 2 == 0 { 1 } else { 2 },
            &format!("2026-11-20T13:31:{:02}Z", i / 20),
            "counselor_arrives",
            "counselor",
        ));
        bells += usize::from(rang(&effects));
        notes_ += notes(&effects).len();
    }
    assert_eq!((bells, notes_), (1, 1), "one alarm for the storm");
    assert_eq!(app.alarms.escalations().len(), 300);
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("300"),
        "the banner counts them all:\n{screen}"
    );
    // Half a minute later, a new escalation is noticed again.
    let effects = app.update(escalation_event(
        2400,
        2,
        "2026-11-20T13:32:00Z",
        "counselor_arrives",
        "counselor",
    ));
    assert!(rang(&effects));
}

#[test]
fn a_missing_notification_service_is_said_once() {
    let mut app = sample_app(Lang::En);
    app.update(Action::Notifier(NotifierHealth::Unavailable));
    let said = app.notice.clone().expect("the console says so");
    assert!(said.contains("desktop notifications unavailable"), "{said}");
    assert!(render(&app, 120, 40).contains("desktop notifications unavailable"));
    app.notice = None;
    app.update(Action::Notifier(NotifierHealth::Unavailable));
    assert_eq!(app.notice, None, "once, not every time");
    // The console goes on: new alerts still ring and show a banner.
    let effects = app.update(alert_event(1001, 20, high_body(), "2026-11-20T13:29:30Z"));
    app.refresh();
    assert!(rang(&effects));
    assert!(render(&app, 80, 24).contains("NEW HIGH RISK"));
}
