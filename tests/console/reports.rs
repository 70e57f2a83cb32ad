//! Incident reports on the console: the header counts down to the soonest
//! report stage still to be sent, turns to an alarm past its deadline, and
//! shows the district how many stages await its review.

use crate::console_support::*;
use crisisdesk::console::Lang;
use crisisdesk::console::app::{Action, App};
use crisisdesk::protocol::{CaseStatus, Category, Level};
use crisisdesk::reporting::{IncidentReport, ReportForm, Rules};
use serde_json::json;

/// A report opened at 13:20 under the death rule (first report in 1 h).
fn report_event(app: &mut App, seq: i64) {
    let rules = Rules::embedded().unwrap();
    let form = ReportForm {
        incident_at: at("2026-11-20T13:05:00Z"),
        school: Some("第一中学".into()),
        grade: Some("初二".into()),
        category: Category::SuicideRisk,
        level: Level::High,
        imminent: true,
        case_status: CaseStatus::Acknowledged,
        outcome: None,
        emergency_calls: vec!["120".into()],
        actions: Vec::new(),
        narrative: None,
        student_name: None,
    };
    let report = IncidentReport::open(
        "C000001",
        false,
        &[rules.get("death").unwrap()],
        None,
        form,
        at("2026-11-20T13:20:00Z"),
    );
    app.update(ev(json!({
        "seq": seq, "at": "2026-11-20T13:20:00Z", "type": "report_opened",
        "case_id": "C000001", "report": report,
    })));
}

fn header(app: &App) -> String {
    render(app, 120, 40)
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_header_counts_down_to_the_next_report_deadline() {
    for (lang, tag, due, late) in [
        (
            Lang::Zh,
            "zh",
            "上报 IR-C000001 首报 剩 50m",
            "⚠上报逾期 IR-C000001 首报 +5m",
        ),
        (
            Lang::En,
            "en",
            "report IR-C000001 first due in 50m",
            "⚠report IR-C000001 first overdue +5m",
        ),
    ] {
        let mut app = sample_app_as(lang, "leader");
        report_event(&mut app, 1001);
        app.refresh();
        let top = header(&app);
        assert!(top.contains(due), "{top}");
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("console_report_countdown_{tag}_120x40"), top);
        });
        app.update(Action::Tick(at("2026-11-20T14:25:00Z")));
        app.refresh();
        let top = header(&app);
        assert!(top.contains(late), "{top}");
    }
}

#[test]
fn the_district_sees_how_many_stages_await_its_review() {
    let mut app = sample_app_as(Lang::Zh, "district");
    report_event(&mut app, 1001);
    app.refresh();
    assert!(!header(&app).contains("待审报告"), "nothing submitted yet");
    let mut report = app.reports["C000001"].clone();
    let leader = crisisdesk::protocol::Actor {
        name: "li".into(),
        role: crisisdesk::protocol::Role::Leader,
    };
    report
        .submit(
            crisisdesk::reporting::Stage::First,
            &leader,
            report.form.clone(),
            at("2026-11-20T13:25:00Z"),
        )
        .unwrap();
    app.update(ev(json!({
        "seq": 1002, "at": "2026-11-20T13:25:00Z", "type": "report_updated",
        "case_id": "C000001", "change": {"change": "submitted", "stage": "first", "late": false},
        "report": report,
    })));
    app.refresh();
    let top = header(&app);
    assert!(top.contains("待审报告 1"), "{top}");
    assert!(
        !top.contains("剩"),
        "the district has no deadline of its own: {top}"
    );
}

#[test]
fn the_reports_screen_lists_stages_and_a_returns_reason_in_both_languages() {
    for (lang, tag, returned) in [
        (Lang::Zh, "zh", "退回原因: 请补充送医时间"),
        (Lang::En, "en", "returned because: 请补充送医时间"),
    ] {
        let mut app = sample_app_as(lang, "leader");
        report_event(&mut app, 1001);
        let mut report = app.reports["C000001"].clone();
        let leader = crisisdesk::protocol::Actor {
            name: "li".into(),
            role: crisisdesk::protocol::Role::Leader,
        };
        let district = crisisdesk::protocol::Actor {
            name: "bureau".into(),
            role: crisisdesk::protocol::Role::District,
        };
        let first = crisisdesk::reporting::Stage::First;
        report
            .submit(
                first,
                &leader,
                report.form.clone(),
                at("2026-11-20T13:25:00Z"),
            )
            .unwrap();
        report
            .return_stage(
                first,
                &district,
                "请补充送医时间\u{1b}[2J",
                at("2026-11-20T13:28:00Z"),
            )
            .unwrap();
        app.update(ev(json!({
            "seq": 1002, "at": "2026-11-20T13:28:00Z", "type": "report_updated",
            "case_id": "C000001",
            "change": {"change": "returned", "stage": "first", "reason": "请补充送医时间"},
            "report": report,
        })));
        crate::console_support::key(&mut app, crossterm::event::KeyCode::Char('R'));
        for (w, h) in [(80, 24), (120, 40)] {
            let screen = render(&app, w, h);
            assert!(screen.contains("IR-C000001"), "{screen}");
            assert!(screen.contains(returned), "{screen}");
            assert!(
                !screen.contains('\u{1b}'),
                "a reason cannot drive the terminal"
            );
            insta::with_settings!({
                snapshot_path => "../snapshots",
                prepend_module_to_snapshot => false,
            }, {
                insta::assert_snapshot!(format!("console_reports_screen_{tag}_{w}x{h}"), screen);
            });
        }
        crate::console_support::key(&mut app, crossterm::event::KeyCode::Esc);
        assert_eq!(app.nav.screen, crisisdesk::console::app::Screen::List);
    }
}

#[test]
fn a_live_overdue_report_rings_for_the_leader_only() {
    let overdue = |seq: i64| {
        ev(json!({
            "seq": seq, "at": "2026-11-20T14:21:00Z", "type": "report_overdue", "case_id": "C000001",
            "report_id": "IR-C000001", "stage": "first", "due": "2026-11-20T14:20:00Z", "to": "leader",
        }))
    };
    let mut leader = sample_app_as(Lang::Zh, "leader");
    report_event(&mut leader, 1001);
    let effects = leader.update(overdue(1002));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, crisisdesk::console::Effect::Bell)),
        "{effects:?}"
    );
    let mut counselor = sample_app_as(Lang::Zh, "counselor");
    report_event(&mut counselor, 1001);
    let effects = counselor.update(overdue(1002));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, crisisdesk::console::Effect::Bell)),
        "{effects:?}"
    );
}
