//! The district screen (区级总览) and the report charts, driven through
//! the app's key path: each asks the relay a question on its stream, shows
//! the answer (counts per school, never a student), asks again on `r`, on
//! report events and when the period changes, one question at a time.

use crate::console_support::*;
use crisisdesk::console::app::{Action, App, Screen};
use crisisdesk::console::{Effect, Lang};
use crisisdesk::protocol::{Command, CommandOp, CommandResult, ResultTag};
use crisisdesk::reporting::district::{DistrictView, ReportLine, SchoolRow};
use crisisdesk::review::figures::{ChartFigures, SchoolLevels};
use crossterm::event::KeyCode;
use serde_json::json;

fn sent(effects: &[Effect]) -> Vec<Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn answer(cmd: &Command, data: serde_json::Value) -> Action {
    Action::Answered(
        Box::new(cmd.clone()),
        Box::new(CommandResult {
            kind: ResultTag::Result,
            id: cmd.id.clone(),
            ok: true,
            error: None,
            duplicate: false,
            data: Some(data),
        }),
    )
}

fn school(name: &str, n: [usize; 6]) -> SchoolRow {
    SchoolRow {
        school: name.into(),
        open_high: n[0],
        open_imminent: n[1],
        overdue_steps: n[2],
        overdue_checkins: n[3],
        reports_awaiting_review: n[4],
        reports_overdue: n[5],
    }
}

fn district_view() -> DistrictView {
    DistrictView {
        as_of: at("2026-11-20T13:29:00Z"),
        schools: vec![
            school("第一中学", [3, 1, 2, 4, 1, 0]),
            school("实验小学", [0, 0, 0, 1, 0, 0]),
            school("第二中学\u{1b}[2J", [1, 1, 0, 0, 0, 1]),
        ],
        total: school("合计 total", [4, 2, 2, 5, 1, 1]),
        reports: vec![ReportLine {
            report_id: "IR-C000001".into(),
            school: "第一中学".into(),
            rules: vec!["death".into()],
            stages: vec![
                "first=submitted(late)".into(),
                "follow_up=pending".into(),
                "final=pending".into(),
            ],
            awaiting_review: true,
            next_due: Some(at("2026-11-21T13:20:00Z")),
        }],
    }
}

fn snap(name: String, screen: &str) {
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, screen);
    });
}

#[test]
fn the_district_screen_asks_the_relay_and_shows_counts_per_school() {
    for (lang, tag, heads) in [
        (Lang::Zh, "zh", ["高危", "逾期回访", "待审报告", "合计"]),
        (
            Lang::En,
            "en",
            ["high", "late check-ins", "to review", "total"],
        ),
    ] {
        let mut app = sample_app_as(lang, "district");
        let cmds = sent(&key(&mut app, KeyCode::Char('D')));
        assert_eq!(app.nav.screen, Screen::District);
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].op, CommandOp::DistrictView {});
        assert_eq!(app.notice, None, "a question is not an action to report on");
        let waiting = render(&app, 80, 24);
        assert!(waiting.contains(app.strings.upward().asking), "{waiting}");
        // Another `r` while the question is out asks nothing more yet.
        assert!(sent(&key(&mut app, KeyCode::Char('r'))).is_empty());
        app.update(answer(
            &cmds[0],
            serde_json::to_value(district_view()).unwrap(),
        ));
        app.refresh();
        for (w, h) in [(80, 24), (120, 40)] {
            let screen = render(&app, w, h);
            for head in heads {
                assert!(screen.contains(head), "{head}: {screen}");
            }
            assert!(screen.contains("第一中学"), "{screen}");
            assert!(screen.contains("IR-C000001"), "{screen}");
            assert!(
                !screen.contains('\u{1b}'),
                "a school name cannot drive the terminal"
            );
            snap(format!("console_district_{tag}_{w}x{h}"), &screen);
        }
        // The deferred `r` goes out on the next tick.
        let cmds = sent(&app.update(Action::Tick(at("2026-11-20T13:30:01Z"))));
        assert_eq!(cmds.len(), 1, "the deferred question");
        assert_eq!(cmds[0].op, CommandOp::DistrictView {});
        app.update(answer(
            &cmds[0],
            serde_json::to_value(district_view()).unwrap(),
        ));
        assert!(sent(&app.update(Action::Tick(at("2026-11-20T13:30:02Z")))).is_empty());
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.nav.screen, Screen::List);
    }
}

#[test]
fn a_report_event_and_the_clock_refresh_an_open_district_screen() {
    let mut app = sample_app_as(Lang::Zh, "district");
    let cmds = sent(&key(&mut app, KeyCode::Char('D')));
    app.update(answer(
        &cmds[0],
        serde_json::to_value(district_view()).unwrap(),
    ));
    let report = {
        let rules = crisisdesk::reporting::Rules::embedded().unwrap();
        let form: crisisdesk::reporting::ReportForm = serde_json::from_value(json!({
            "incident_at": "2026-11-20T13:05:00Z", "school": "第一中学", "category": "suicide_risk",
            "level": "high", "imminent": true, "case_status": "acknowledged", "actions": [],
        }))
        .unwrap();
        crisisdesk::reporting::IncidentReport::open(
            "C000001",
            false,
            &[rules.get("death").unwrap()],
            None,
            form,
            at("2026-11-20T13:20:00Z"),
        )
    };
    let effects = app.update(ev(json!({
        "seq": 1001, "at": "2026-11-20T13:30:00Z", "type": "report_opened",
        "case_id": "C000001", "report": report,
    })));
    let cmds = sent(&effects);
    assert_eq!(cmds.len(), 1, "a report event asks again: {effects:?}");
    assert_eq!(cmds[0].op, CommandOp::DistrictView {});
    app.update(answer(
        &cmds[0],
        serde_json::to_value(district_view()).unwrap(),
    ));
    // A minute later, unasked: overdue steps come with the clock.
    assert!(sent(&app.update(Action::Tick(at("2026-11-20T13:30:30Z")))).is_empty());
    let cmds = sent(&app.update(Action::Tick(at("2026-11-20T13:31:05Z"))));
    assert_eq!(cmds.len(), 1);
    // Away from the screen, events ask nothing.
    app.update(answer(
        &cmds[0],
        serde_json::to_value(district_view()).unwrap(),
    ));
    key(&mut app, KeyCode::Esc);
    assert!(sent(&app.update(Action::Tick(at("2026-11-20T13:40:00Z")))).is_empty());
}

#[test]
fn a_refused_question_says_why_on_the_screen() {
    let mut app = sample_app_as(Lang::En, "district");
    let cmds = sent(&key(&mut app, KeyCode::Char('D')));
    app.update(Action::Answered(
        Box::new(cmds[0].clone()),
        Box::new(CommandResult {
            kind: ResultTag::Result,
            id: cmds[0].id.clone(),
            ok: false,
            error: Some(crisisdesk::protocol::ErrorDetail::new(
                "store_unavailable",
                "the relay could not read its record; ask again",
            )),
            duplicate: false,
            data: None,
        }),
    ));
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("⚠ the relay could not read its record"),
        "{screen}"
    );
}

fn figures() -> ChartFigures {
    ChartFigures {
        from: at("2026-05-31T16:00:00Z"),
        to: at("2026-11-20T13:30:00Z"),
        drills_included: false,
        cases: 42,
        school_levels: vec![
            SchoolLevels {
                school: "第一中学".into(),
                general: 12,
                key: 6,
                high: 3,
            },
            SchoolLevels {
                school: "实验小学".into(),
                general: 8,
                key: 2,
                high: 0,
            },
            SchoolLevels {
                school: "第二中学".into(),
                general: 5,
                key: 4,
                high: 2,
            },
        ],
        monthly: vec![
            ("2026-06".into(), 4),
            ("2026-07".into(), 1),
            ("2026-08".into(), 0),
            ("2026-09".into(), 15),
            ("2026-10".into(), 12),
            ("2026-11".into(), 10),
        ],
        time_to_ack: [
            "<1分",
            "1–5分",
            "5–15分",
            "15–30分",
            "30–60分",
            "1–4时",
            "≥4时",
        ]
        .iter()
        .zip([9, 14, 8, 4, 2, 1, 1])
        .map(|(l, n)| (l.to_string(), n))
        .collect(),
        time_to_ack_p50_secs: Some(190),
        time_to_ack_p90_secs: Some(1500),
    }
}

#[test]
fn the_report_view_draws_the_period_reports_charts_as_text() {
    for (lang, tag, words) in [
        (
            Lang::Zh,
            "zh",
            ["各校个案级别分布", "月度趋势", "确认用时分布", "1–5分"],
        ),
        (
            Lang::En,
            "en",
            [
                "Cases by level per school",
                "Cases opened per month",
                "Time to acknowledge",
                "1–5m",
            ],
        ),
    ] {
        let mut app = sample_app_as(lang, "leader");
        let cmds = sent(&key(&mut app, KeyCode::Char('P')));
        assert_eq!(app.nav.screen, Screen::Charts);
        // Six months by default: from local midnight on 1 June (Beijing).
        assert_eq!(
            cmds[0].op,
            CommandOp::PeriodCharts {
                from: at("2026-05-31T16:00:00Z"),
                to: at(NOW),
                utc_offset: Some("+08:00".into()),
                drills: false,
            }
        );
        app.update(answer(&cmds[0], serde_json::to_value(figures()).unwrap()));
        app.refresh();
        for (w, h) in [(80, 24), (120, 40)] {
            let screen = render(&app, w, h);
            for word in words {
                assert!(screen.contains(word), "{word}: {screen}");
            }
            assert!(screen.contains("第一中学"), "{screen}");
            assert!(screen.contains('█'), "{screen}");
            snap(format!("console_charts_{tag}_{w}x{h}"), &screen);
        }
    }
}

#[test]
fn the_period_and_drills_ask_again_one_question_at_a_time() {
    let mut app = sample_app_as(Lang::Zh, "counselor");
    let first = sent(&key(&mut app, KeyCode::Char('P')));
    // `p` while the first question is out: asked after its answer.
    assert!(sent(&key(&mut app, KeyCode::Char('p'))).is_empty());
    assert_eq!(app.charts.months(), 12);
    app.update(answer(&first[0], serde_json::to_value(figures()).unwrap()));
    let again = sent(&app.update(Action::Tick(at("2026-11-20T13:30:01Z"))));
    match &again[0].op {
        CommandOp::PeriodCharts { from, drills, .. } => {
            assert_eq!(
                *from,
                at("2025-11-30T16:00:00Z"),
                "twelve months from 1 Dec 2025"
            );
            assert!(!drills);
        }
        other => panic!("{other:?}"),
    }
    app.update(answer(&again[0], serde_json::to_value(figures()).unwrap()));
    let drills = sent(&key(&mut app, KeyCode::Char('d')));
    assert!(matches!(
        drills[0].op,
        CommandOp::PeriodCharts { drills: true, .. }
    ));
    // An empty period says so.
    let mut none = figures();
    none.cases = 0;
    none.school_levels.clear();
    none.monthly.clear();
    none.time_to_ack.clear();
    app.update(answer(&drills[0], serde_json::to_value(none).unwrap()));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("本期间没有个案"), "{screen}");
}

#[test]
fn keys_for_the_district_and_charts_follow_the_role() {
    let mut nurse = sample_app_as(Lang::Zh, "nurse");
    assert!(key(&mut nurse, KeyCode::Char('D')).is_empty());
    assert!(key(&mut nurse, KeyCode::Char('P')).is_empty());
    assert_eq!(nurse.nav.screen, Screen::List);
    let mut reviewer: App = sample_app_as(Lang::Zh, "reviewer");
    assert_eq!(sent(&key(&mut reviewer, KeyCode::Char('D'))).len(), 1);
}
