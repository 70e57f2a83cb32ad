//! The console drawn into a `TestBackend`, compared with committed insta
//! snapshots: every view, in both languages, at 80×24 and 120×40. The app is
//! driven only through its action path, as the live console is.

use crate::console_support::*;
use crisisdesk::console::app::{Action, App, ConnectionState, DetailTab, Screen};
use crisisdesk::console::{Lang, keymap};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];
const LANGS: [(Lang, &str); 2] = [(Lang::Zh, "zh"), (Lang::En, "en")];

/// Builds the app in the state a view is drawn from.
type Build = fn(Lang) -> App;
/// Moves an app to a view.
type Go = fn(&mut App);

/// Every view the console has, in a state worth seeing.
fn views() -> Vec<(&'static str, Build)> {
    vec![
        ("list", |l| sample_app(l)),
        ("list_filtered", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Char('l'));
            key(&mut app, KeyCode::Char('d'));
            app
        }),
        ("list_searching", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Char('/'));
            type_text(&mut app, "s100");
            app
        }),
        ("list_no_match", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Char('/'));
            type_text(&mut app, "nobody");
            key(&mut app, KeyCode::Enter);
            app
        }),
        ("list_sorted_newest", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Char('o'));
            app
        }),
        ("detail_checklist", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Enter);
            app
        }),
        ("detail_history_chart", open_history),
        ("detail_school_days", school_day_step),
        ("my_steps", |l| {
            let mut app = sample_app(l);
            app.update(Action::Tick(at("2026-11-20T14:30:00Z")));
            app.update(Action::Heard(at("2026-11-20T14:29:58Z")));
            key(&mut app, KeyCode::Char('m'));
            app
        }),
        ("followups", |l| {
            crate::followups::followups_app(l, "head_teacher")
        }),
        ("help_followups", |l| {
            let mut app = crate::followups::followups_app(l, "head_teacher");
            key(&mut app, KeyCode::Char('?'));
            app
        }),
        ("prompt_checkin_outcome", |l| {
            let mut app = crate::followups::followups_app(l, "head_teacher");
            key(&mut app, KeyCode::Enter);
            app
        }),
        ("student_record", |l| crate::student::student_app(l)),
        ("student_loading", |l| crate::student::loading_app(l)),
        ("help_student", |l| {
            let mut app = crate::student::student_app(l);
            key(&mut app, KeyCode::Char('?'));
            app
        }),
        ("detail_history_screenings", |l| {
            crate::student::history_app(l)
        }),
        ("followups_filtered", |l| crate::followups::filtered_app(l)),
        ("help_list", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Char('?'));
            app
        }),
        ("help_detail", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Enter);
            key(&mut app, KeyCode::Char('?'));
            app
        }),
        ("help_my_steps", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Char('m'));
            key(&mut app, KeyCode::Char('?'));
            app
        }),
        ("prompt_skip_reason", |l| {
            let mut app = sample_app(l);
            key(&mut app, KeyCode::Enter);
            key(&mut app, KeyCode::Char('s'));
            key(&mut app, KeyCode::Enter);
            app
        }),
        ("offline", |l| {
            let mut app = sample_app(l);
            app.update(Action::Connection(ConnectionState::Retrying {
                attempt: 3,
                retry_in_secs: 4,
            }));
            app.update(Action::Tick(at("2026-11-20T13:32:10Z")));
            app.refresh();
            app
        }),
        ("stale", |l| {
            let mut app = sample_app(l);
            app.update(Action::Tick(at("2026-11-20T13:30:48Z")));
            app.refresh();
            app
        }),
        ("connecting_empty", |l| {
            let mut app = App::new(l, at(NOW), beijing());
            app.relay_label = "ws://10.0.0.5:7710".into();
            app.refresh();
            app
        }),
        ("alarm_and_escalation", |l| {
            let mut app = sample_app(l);
            live_high_alert(&mut app);
            app.update(escalation_event(
                1002,
                2,
                "2026-11-20T13:31:00Z",
                "counselor_arrives",
                "counselor",
            ));
            app.refresh();
            app
        }),
        ("detail_why_followup", |l| {
            let mut app = sample_app(l);
            app.update(alert_event(
                1001,
                40,
                followup_risk_alert(),
                "2026-11-20T13:15:00Z",
            ));
            open_case(&mut app, "C000040");
            app
        }),
        ("cjk_heavy_list", |l| cjk_app(l, false)),
        ("cjk_heavy_detail", |l| cjk_app(l, true)),
        ("drill_demo_banner", |l| {
            let mut app = sample_app(l);
            app.banner = Some("demo demo-20261120-203000".into());
            key(&mut app, KeyCode::Down);
            key(&mut app, KeyCode::Enter);
            app
        }),
    ]
}

fn open_case(app: &mut App, id: &str) {
    app.refresh();
    app.nav.selected = app.order_ids().iter().position(|c| *c == id).unwrap();
    key(app, KeyCode::Enter);
}

/// Case C000001 with its screening interview selected: a limit of one
/// school day, counted on weekdays since no school calendar is loaded.
fn school_day_step(lang: Lang) -> App {
    let mut app = sample_app(lang);
    open_case(&mut app, "C000001");
    let rows = app.case_step_rows("C000001");
    let i = rows
        .iter()
        .position(|r| r.target.step == "interview")
        .expect("the counselor's interview");
    for _ in 0..i {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(app.nav.step_cursor, i);
    app
}

#[test]
fn a_school_day_limit_counted_on_the_schools_calendar_shows_its_due_time_plainly() {
    for (lang, want) in [
        (Lang::Zh, "1 个上学日 · 截止 2026-10-08 18:00 · 默认时限"),
        (
            Lang::En,
            "1 school day · due 2026-10-08 18:00 · default limit",
        ),
    ] {
        let mut app = sample_app(lang);
        // Opened on Wednesday 30 September at a school whose calendar has
        // the National Day week off: the relay counted the interview.
        let body = json!({"id": "sd", "source": "screening", "category": "suicide_risk", "level": "key",
            "student": {"id": "S3001", "name": "周一鸣", "school": "示例一中", "grade": "初一", "class": "(1)班"},
            "observed_at": "2026-09-30T09:00:00+08:00"});
        let opened = "2026-09-30T02:00:00Z";
        app.update(alert_event(2000, 50, body.clone(), opened));
        let lib = library();
        let pb = lib.get("suicidal_ideation_screening").unwrap();
        let mut progress = crisisdesk::playbook::Progress::new(pb, at(opened));
        let calendar = crisisdesk::followup::calendar::Calendar::parse(include_str!(
            "../../calendars/example.toml"
        ))
        .unwrap();
        assert!(progress.count_school_days(pb, &calendar));
        app.update(ev(json!({
            "seq": 2001, "at": opened, "type": "checklist_added",
            "case_id": "C000050", "playbook": pb.id, "progress": progress,
        })));
        open_case(&mut app, "C000050");
        let i = app
            .case_step_rows("C000050")
            .iter()
            .position(|r| r.target.step == "interview")
            .unwrap();
        for _ in 0..i {
            key(&mut app, KeyCode::Down);
        }
        let screen = render(&app, 120, 40);
        assert!(screen.contains(want), "{screen}");
        assert!(!screen.contains("未配置校历") && !screen.contains("no school calendar"));
    }
}

fn open_history(lang: Lang) -> App {
    let mut app = sample_app(lang);
    let i = app
        .order_ids()
        .iter()
        .position(|id| *id == "C000001")
        .unwrap();
    app.nav.selected = i;
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Tab);
    app
}

/// A new imminent high alert arriving live (after the replay).
fn live_high_alert(app: &mut App) -> Vec<crisisdesk::console::Effect> {
    let body = json!({"id": "live1", "source": "hotline", "category": "suicide_risk", "level": "high",
        "imminent": true,
        "student": {"id": "S2001", "name": "赵天佑", "school": "第二中学", "grade": "初三", "class": "(2)班"},
        "summary": "来电学生称正在天台", "observed_at": "2026-11-20T21:29:00+08:00"});
    let effects = app.update(alert_event(1001, 20, body, "2026-11-20T13:29:30Z"));
    app.refresh();
    effects
}

fn cjk_app(lang: Lang, open: bool) -> App {
    let mut app = sample_app(lang);
    feed(
        &mut app,
        500,
        &[(30, cjk_heavy_alert(), "2026-11-20T13:20:00Z")],
    );
    app.refresh();
    if open {
        let i = app
            .order_ids()
            .iter()
            .position(|id| *id == "C000030")
            .unwrap();
        app.nav.selected = i;
        key(&mut app, KeyCode::Enter);
    }
    app
}

#[test]
fn every_view_in_both_languages_at_both_sizes() {
    for (name, build) in views() {
        for (lang, tag) in LANGS {
            let app = build(lang);
            for (w, h) in SIZES {
                let screen = render(&app, w, h);
                // The snapshots keep the names and the folder they had when
                // this was its own test binary.
                insta::with_settings!({
                    snapshot_path => "../snapshots",
                    prepend_module_to_snapshot => false,
                }, {
                    insta::assert_snapshot!(format!("console_view__{name}_{tag}_{w}x{h}"), screen);
                });
            }
        }
    }
}

#[test]
fn the_case_screen_says_why_a_rule_flagged_the_student() {
    for (lang, why) in [
        (
            Lang::Zh,
            "依据: UPI 第25题 = 是 → 高危 · PHQ-9 总分 17 (+2) · 缺勤 3 天 (+1) · 规则 upi v3",
        ),
        (
            Lang::En,
            "Why: UPI item 25 = 是 → High · PHQ-9 total 17 (+2) · Absence 3 天 (+1) · rule upi v3",
        ),
    ] {
        let mut app = sample_app(lang);
        app.update(alert_event(
            1001,
            40,
            followup_risk_alert(),
            "2026-11-20T13:15:00Z",
        ));
        open_case(&mut app, "C000040");
        let screen = render(&app, 120, 40);
        assert!(screen.contains(why), "{screen}");
        // The raw signal is not dumped beside it; the scale still is.
        assert!(!screen.contains("contributions"), "{screen}");
        assert!(screen.contains("instrument=PHQ-9"), "{screen}");
    }
}

#[test]
fn why_text_from_a_rule_cannot_drive_the_terminal() {
    let mut body = followup_risk_alert();
    body["signals"][0]["contributions"][0]["label_zh"] = json!("UPI\u{1b}[2J第25题");
    body["signals"][0]["rule"] = json!("upi\u{7}");
    let mut app = sample_app(Lang::Zh);
    app.update(alert_event(1001, 40, body, "2026-11-20T13:15:00Z"));
    open_case(&mut app, "C000040");
    let why = app.cases["C000040"].alerts[0].why.clone().unwrap();
    assert!(!why.chars().any(char::is_control), "{why:?}");
}

#[test]
fn the_header_says_how_bad_it_is_at_80_columns() {
    for (lang, _) in LANGS {
        let app = sample_app(lang);
        let s = app.strings;
        let screen = render(&app, 80, 24);
        let header: Vec<&str> = screen.lines().take(2).collect();
        for want in [
            format!("‼{} 1", s.imminent),
            format!("▲{} 2", s.level(crisisdesk::protocol::Level::High)),
            format!("◆{} 1", s.level(crisisdesk::protocol::Level::Key)),
            format!("●{} 1", s.level(crisisdesk::protocol::Level::General)),
            format!("{} 4", s.unacknowledged),
            format!("⚠{} 1", s.my_overdue),
        ] {
            assert!(header[0].contains(&want), "{want:?} missing:\n{screen}");
        }
        assert!(header[1].contains(s.conn_connected), "{screen}");
        assert!(header[1].contains(&s.ago(0)), "data age shown:\n{screen}");
    }
}

#[test]
fn a_stale_connection_is_shown_not_hidden() {
    let mut app = sample_app(Lang::En);
    app.update(Action::Tick(at("2026-11-20T13:30:20Z")));
    assert!(render(&app, 80, 24).contains("● connected"));
    app.update(Action::Tick(at("2026-11-20T13:30:48Z")));
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("◐ no word from relay") && screen.contains("⚠data 48s ago"),
        "{screen}"
    );
    // A ping from the relay makes it live again.
    app.update(Action::Heard(at("2026-11-20T13:30:47Z")));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("● connected · data 1s ago"), "{screen}");
}

#[test]
fn offline_says_how_old_the_data_is() {
    let mut app = sample_app(Lang::Zh);
    app.update(Action::Connection(ConnectionState::Retrying {
        attempt: 2,
        retry_in_secs: 3,
    }));
    app.update(Action::Tick(at("2026-11-20T13:35:00Z")));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("○ 离线"), "{screen}");
    assert!(screen.contains("⚠数据 5分钟前"), "{screen}");
}

#[test]
fn case_list_orders_imminent_then_level_then_oldest() {
    let app = sample_app(Lang::Zh);
    assert_eq!(
        app.order_ids(),
        ["C000002", "C000004", "C000001", "C000003"]
    );
}

#[test]
fn sorting_is_visible_and_switchable() {
    let mut app = sample_app(Lang::En);
    assert!(render(&app, 80, 24).contains("sorted: imminent > level > oldest"));
    key(&mut app, KeyCode::Char('o'));
    assert!(render(&app, 80, 24).contains("sorted: newest first"));
    assert_eq!(
        app.order_ids(),
        ["C000002", "C000004", "C000001", "C000003"]
    );
    key(&mut app, KeyCode::Char('o'));
    key(&mut app, KeyCode::Char('o'));
    assert!(render(&app, 80, 24).contains("sorted: case id"));
    assert_eq!(
        app.order_ids(),
        ["C000001", "C000002", "C000003", "C000004"]
    );
}

#[test]
fn filters_narrow_the_list_and_say_so() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Char('l')); // ≥ key
    assert_eq!(app.order_ids(), ["C000002", "C000004", "C000001"]);
    key(&mut app, KeyCode::Char('l')); // ≥ high
    assert_eq!(app.order_ids(), ["C000002", "C000004"]);
    key(&mut app, KeyCode::Char('l')); // imminent only
    assert_eq!(app.order_ids(), ["C000002"]);
    assert!(render(&app, 80, 24).contains("Filter: imminent only"));
    key(&mut app, KeyCode::Char('l')); // back to all
    assert_eq!(app.list.order.len(), 4);

    key(&mut app, KeyCode::Char('d')); // real only
    assert_eq!(app.order_ids(), ["C000002", "C000001", "C000003"]);
    key(&mut app, KeyCode::Char('d')); // drills only
    assert_eq!(app.order_ids(), ["C000004"]);
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.list.order.len(), 4);

    key(&mut app, KeyCode::Char('c')); // the first category: suicide risk
    assert_eq!(app.order_ids(), ["C000002", "C000001"]);
    key(&mut app, KeyCode::Char('x'));

    key(&mut app, KeyCode::Char('h')); // schools in name order: 实验小学 first
    let school = app.list.filter.school.clone().unwrap();
    assert!(
        app.order_ids()
            .iter()
            .all(|id| app.cases[*id].student.school.as_deref() == Some(school.as_str()))
    );
    assert_eq!(app.list.order.len(), 1);
    key(&mut app, KeyCode::Char('x'));

    key(&mut app, KeyCode::Char('u')); // unacknowledged: all four
    assert_eq!(app.list.order.len(), 4);
    key(&mut app, KeyCode::Char('u')); // acknowledged: none
    assert!(app.list.order.is_empty());
    assert!(render(&app, 80, 24).contains("No case matches the filter"));
}

#[test]
fn mine_means_acknowledged_by_me_or_my_open_steps() {
    let mut app = sample_app_as(Lang::En, "nurse");
    let nurse_has_steps =
        |app: &App, id: &str| !app.case_step_rows(id).iter().all(|r| !r.state.is_open());
    key(&mut app, KeyCode::Char('i'));
    let order: Vec<String> = app.order_ids().iter().map(|s| s.to_string()).collect();
    assert!(!order.is_empty() && order.len() < 4, "{order:?}");
    for id in app.sorted_ids() {
        assert_eq!(
            order.iter().any(|o| o == id),
            nurse_has_steps(&app, id),
            "{id}: shown exactly when a nurse step is open"
        );
    }
    // Acknowledging makes a case mine even without a step of mine.
    let outside = app
        .sorted_ids()
        .into_iter()
        .find(|id| !order.iter().any(|o| o == id))
        .unwrap()
        .to_string();
    let num: u32 = outside[1..].parse().unwrap();
    let c = &app.cases[&outside];
    let mut snap = serde_json::to_value(&c.case).unwrap();
    snap["status"] = json!("acknowledged");
    snap["acknowledged_by"] = json!({"name": "wang", "role": "nurse"});
    snap["acknowledged_at"] = json!(NOW);
    app.update(ev(
        json!({"seq": 900, "at": NOW, "type": "case_acknowledged", "case_id": outside,
        "by": {"name": "wang", "role": "nurse"}, "case": snap,
        "origin": {"by": {"name": "wang", "role": "nurse"}, "command_id": "x"}}),
    ));
    app.refresh();
    assert!(
        app.order_ids().contains(&outside.as_str()),
        "case {num} acknowledged by me is mine"
    );
}

#[test]
fn search_matches_case_id_student_id_and_class() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "c000003");
    assert_eq!(app.order_ids(), ["C000003"], "by case id, any case");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.list.order.len(), 4, "Esc clears the search");

    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "S1004");
    assert_eq!(app.order_ids(), ["C000004"], "by student id");
    key(&mut app, KeyCode::Esc);

    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "(12)班");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.order_ids(), ["C000002"], "by class");
    assert!(
        !app.nav.searching,
        "Enter keeps the search and gives the keys back"
    );
    assert!(render(&app, 80, 24).contains("/(12)班"));
    // Keys are list keys again: `q` would quit, `x` clears.
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.list.order.len(), 4);
}

/// Over SSH, Esc and the key after it can arrive in one read, which the
/// terminal parser reports as Alt+key: the console must obey both, exactly
/// as if they had come apart.
#[test]
fn esc_and_a_key_run_together_are_both_obeyed() {
    let alt = |app: &mut App, c: char| {
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::ALT,
        )));
        app.refresh();
    };
    let mut apart = sample_app(Lang::En);
    let mut together = sample_app(Lang::En);
    for app in [&mut apart, &mut together] {
        open_case(app, "C000002");
    }
    // From a case: back to the list, then `/` opens the search.
    key(&mut apart, KeyCode::Esc);
    key(&mut apart, KeyCode::Char('/'));
    alt(&mut together, '/');
    assert_eq!(
        together.nav.screen,
        Screen::List,
        "the Esc took the console back"
    );
    assert!(
        together.nav.searching,
        "and the key after it opened the search"
    );

    // Inside the search: Esc clears it, then j moves down the list.
    for app in [&mut apart, &mut together] {
        type_text(app, "c00000");
    }
    key(&mut apart, KeyCode::Esc);
    key(&mut apart, KeyCode::Char('j'));
    alt(&mut together, 'j');
    assert!(!together.nav.searching, "the Esc closed the search");
    assert_eq!(together.list.order.len(), 4, "and cleared it");
    assert_eq!(together.order_ids(), apart.order_ids());
    assert_eq!(
        together.nav.selected, apart.nav.selected,
        "then j moved as it would"
    );
    assert_eq!(render(&together, 80, 24), render(&apart, 80, 24));
}

#[test]
fn search_never_matches_the_students_name() {
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "欧阳");
    assert!(app.list.order.is_empty(), "names are not a search key");
}

#[test]
fn the_student_history_shows_earlier_cases_and_the_score_trend() {
    let app = open_history(Lang::En);
    assert_eq!(app.nav.detail_tab, DetailTab::History);
    let case = &app.cases["C000001"];
    let earlier: Vec<&str> = app
        .student_history(case)
        .iter()
        .map(|c| c.case.id.as_str())
        .collect();
    assert_eq!(earlier, ["C000011", "C000010"], "newest first");
    let series = app.score_series(case);
    assert_eq!(series[0].instrument, "PHQ-9");
    let scores: Vec<f64> = series[0].points.iter().map(|p| p.1).collect();
    assert_eq!(scores, [6.0, 11.0, 17.0], "oldest first, across cases");
    let screen = render(&app, 80, 24);
    assert!(screen.contains("PHQ-9: 6 → 11 → 17 ↑"), "{screen}");
    assert!(
        screen.contains("C000010") && screen.contains("no risk found"),
        "{screen}"
    );
    assert!(
        !screen.contains("王小明"),
        "the history tab names no one in full"
    );
    // `i` charts the next instrument.
    let mut app = app;
    key(&mut app, KeyCode::Char('i'));
    assert!(render(&app, 80, 24).contains("GAD-7: 5 → 9 ↑"));
}

#[test]
fn a_drill_history_never_mixes_with_real_cases() {
    let mut app = sample_app(Lang::En);
    let body = json!({"id": "dr", "status": "exercise", "exercise_id": "x", "source": "screening",
        "category": "other", "level": "general", "student": {"id": "S1001"},
        "observed_at": "2026-11-20T21:00:00+08:00"});
    feed(&mut app, 600, &[(40, body, "2026-11-20T13:10:00Z")]);
    app.refresh();
    let real: Vec<&str> = app
        .student_history(&app.cases["C000001"])
        .iter()
        .map(|c| c.case.id.as_str())
        .collect();
    assert!(!real.contains(&"C000040"), "{real:?}");
    assert!(app.student_history(&app.cases["C000040"]).is_empty());
}

#[test]
fn case_detail_with_hostile_summary_shows_escapes_inert() {
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 80, 24);
    assert!(
        !screen.contains("欧阳若曦"),
        "the relay never sent the name"
    );
    assert!(screen.contains("欧***"), "initials stand in for it");
    assert!(
        screen.contains("␛[2J"),
        "escape shown as a visible stand-in"
    );
    assert!(
        !screen.contains('\u{1b}'),
        "no raw escape reaches the terminal"
    );
}

#[test]
fn drill_case_detail_is_marked() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("DRILL 演练"), "banner on a drill screen");
    assert!(screen.contains("[DRILL night-drill]"));
}

#[test]
fn list_never_names_the_student_in_full() {
    for (lang, _) in LANGS {
        for (w, h) in SIZES {
            let mut app = sample_app(lang);
            live_high_alert(&mut app);
            let screen = render(&app, w, h);
            assert!(screen.contains("王**") && screen.contains("欧**"));
            for name in ["王小明", "欧阳若曦", "赵天佑"] {
                assert!(!screen.contains(name), "{name} on the list:\n{screen}");
            }
        }
    }
}

#[test]
fn cjk_text_is_laid_out_by_width_and_never_split() {
    for (name, build) in views() {
        for (lang, _) in LANGS {
            for (w, h) in SIZES {
                let app = build(lang);
                let backend = render_buffer(&app, w, h);
                let buffer = backend.buffer();
                for y in 0..h {
                    // A wide glyph in the last column would wrap the line.
                    let last = &buffer[(w - 1, y)];
                    assert!(
                        unicode_width::UnicodeWidthStr::width(last.symbol()) < 2,
                        "{name} {w}x{h}: a wide glyph in the last column of row {y}"
                    );
                }
            }
        }
    }
    let screen = render(&cjk_app(Lang::Zh, true), 80, 24);
    // The long name itself never arrives (privacy); its initials and the
    // long CJK id still have to lay out.
    assert!(
        screen.contains("司***") && screen.contains("学号二〇二六〇〇〇一"),
        "{screen}"
    );
    assert!(!screen.contains("司马欧阳慕容长孙令狐"), "{screen}");
}

#[test]
fn the_help_overlay_lists_every_key_of_the_current_view() {
    let screens: [(Go, Screen); 5] = [
        (|_| {}, Screen::List),
        (
            |a| {
                key(a, KeyCode::Enter);
            },
            Screen::Detail("C000002".into()),
        ),
        (
            |a| {
                key(a, KeyCode::Char('m'));
            },
            Screen::MySteps,
        ),
        (
            |a| {
                key(a, KeyCode::Char('f'));
            },
            Screen::Followups,
        ),
        (
            |a| {
                key(a, KeyCode::Enter);
                key(a, KeyCode::Char('S'));
            },
            Screen::Student("C000002".into()),
        ),
    ];
    for (lang, _) in LANGS {
        for (go, screen) in &screens {
            for (w, h) in SIZES {
                let mut app = sample_app(lang);
                go(&mut app);
                assert_eq!(&app.nav.screen, screen);
                key(&mut app, KeyCode::Char('?'));
                let text = render(&app, w, h);
                let role = app.me.as_ref().map(|m| m.role);
                for b in keymap::for_screen(screen)
                    .iter()
                    .chain(keymap::GLOBAL)
                    .filter(|b| keymap::permits(b.cmd, role))
                {
                    let desc = app.strings.cmd(b.cmd);
                    assert!(
                        text.contains(b.label) && text.contains(desc),
                        "{screen:?} {w}x{h}: `{}` {desc} missing:\n{text}",
                        b.label
                    );
                }
            }
        }
    }
}

#[test]
fn the_help_overlay_shows_no_key_of_another_view() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Char('?'));
    let text = render(&app, 120, 40);
    assert!(
        !text.contains(app.strings.cmd(keymap::Cmd::SkipStep)),
        "{text}"
    );
    assert!(!text.contains(app.strings.cmd(keymap::Cmd::OpenStepCase)));
}

#[test]
fn mono_theme_draws_no_colour() {
    use crisisdesk::console::{Theme, ThemeName};
    use ratatui::style::Color;
    let mut app = sample_app(Lang::En);
    live_high_alert(&mut app);
    app.theme = Theme::new(ThemeName::Mono);
    for build in [
        |_: &mut App| {},
        |a: &mut App| {
            key(a, KeyCode::Enter);
        },
    ] {
        let mut app = {
            let mut a = sample_app(Lang::En);
            live_high_alert(&mut a);
            a.theme = Theme::new(ThemeName::Mono);
            a
        };
        build(&mut app);
        let backend = render_buffer(&app, 120, 40);
        for cell in backend.buffer().content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
    }
    // The default theme does use colour (so the check above can fail).
    app.theme = Theme::new(ThemeName::Default);
    let backend = render_buffer(&app, 120, 40);
    assert!(
        backend
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset)
    );
}

#[test]
fn levels_read_without_colour() {
    let s = Lang::En.strings();
    let t = crisisdesk::console::Theme::new(crisisdesk::console::ThemeName::Mono);
    use crisisdesk::console::view::level_mark;
    use crisisdesk::protocol::Level;
    let marks: Vec<String> = [Level::High, Level::Key, Level::General]
        .iter()
        .map(|l| level_mark(s, &t, *l).0)
        .collect();
    assert_eq!(marks, ["▲ High", "◆ Key", "● General"]);
}

#[test]
fn any_size_draws_without_panicking() {
    let builders = views();
    for (w, h) in [
        (1, 1),
        (2, 3),
        (10, 5),
        (20, 8),
        (40, 12),
        (79, 23),
        (200, 60),
    ] {
        for (name, build) in &builders {
            let app = build(Lang::Zh);
            let screen = render(&app, w, h);
            assert_eq!(screen.lines().count(), h as usize, "{name} {w}x{h}");
        }
    }
}

#[test]
fn resizing_keeps_the_selection_in_view() {
    let mut app = district_app(300);
    key(&mut app, KeyCode::Char('G'));
    let last = app.order_ids().last().unwrap().to_string();
    for (w, h) in [(80, 24), (60, 10), (120, 40), (80, 12)] {
        app.update(Action::Resize);
        assert!(render(&app, w, h).contains(&last), "{w}x{h}");
    }
}

#[test]
fn only_visible_rows_are_drawn_for_a_long_list() {
    let mut app = district_app(5000);
    key(&mut app, KeyCode::Char('G'));
    let last = app.order_ids().last().unwrap().to_string();
    let first = app.order_ids().first().unwrap().to_string();
    let screen = render(&app, 80, 24);
    assert!(screen.contains(&last), "the selected last row is in view");
    assert!(!screen.contains(&first));
}

#[test]
fn repeated_event_is_applied_once() {
    let mut app = sample_app(Lang::Zh);
    let body = json!({"id": "a9", "source": "manual", "category": "other", "level": "general",
        "student": {"id": "S9"}, "observed_at": "2026-11-20T21:00:00+08:00"});
    let last = app.last_seq;
    app.update(alert_event(last, 9, body, "2026-11-20T13:00:00Z"));
    app.refresh();
    assert_eq!(
        app.list.order.len(),
        4,
        "an event at or below the last seq is ignored"
    );
}

#[test]
fn all_roles_toggle_shows_the_team() {
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Enter);
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
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Enter);
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
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('s'));
    let effects = key(&mut app, KeyCode::Enter);
    assert!(effects.is_empty(), "empty reason sends nothing");
    assert!(render(&app, 80, 24).contains("不能为空"));
    type_text(&mut app, "家长已在场");
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(effects.len(), 1);
    assert!(app.nav.prompt.is_none());
}

#[test]
fn choice_prompt_lists_the_options() {
    let mut app = sample_app(Lang::En);
    let choice = app
        .order_ids()
        .iter()
        .flat_map(|id| app.case_step_rows(id))
        .find(|r| matches!(r.kind, crisisdesk::playbook::StepKind::Choice { .. }))
        .expect("the sample cases have a choice step for the counselor");
    app.nav.prompt = Some(crisisdesk::console::app::Prompt {
        ask: crisisdesk::console::app::Ask::Choice(choice.target.clone()),
        input: "9".into(),
        error: None,
    });
    let effects = key(&mut app, KeyCode::Enter);
    assert!(
        effects.is_empty(),
        "an option number out of range sends nothing"
    );
    let screen = render(&app, 100, 24);
    assert!(screen.contains("⚠ type a number from the list"), "{screen}");
    assert!(screen.contains("1 "), "{screen}");
}

#[test]
fn refusals_are_said_in_the_console_language() {
    let mut app = sample_app(Lang::Zh);
    let effects = key(&mut app, KeyCode::Char('a'));
    let [crisisdesk::console::Effect::Send(cmd)] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let frame = json!({"type": "result", "id": cmd.id, "ok": false,
        "error": {"code": "already_acknowledged", "message": "case C000002 was already acknowledged by li (head_teacher)"}});
    app.update(Action::Frame(Box::new(
        crisisdesk::console::frames::decode_value(frame).unwrap(),
    )));
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("C000002 确认 未执行: 该案例已被他人确认"),
        "{screen}"
    );
}

#[test]
fn a_reset_forgets_a_history_the_relay_no_longer_has() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Enter);
    app.update(Action::Reset);
    app.refresh();
    assert!(app.cases.is_empty() && app.list.order.is_empty());
    assert_eq!(
        app.last_seq, 0,
        "the next connection replays from the start"
    );
    assert_eq!(app.nav.screen, Screen::List);
    assert!(render(&app, 80, 24).contains("reloaded"));
}

/// The list moves changed cases into place one by one on the live stream;
/// whatever arrives, that must give the order a full sort gives.
#[test]
fn incremental_sorting_matches_a_full_sort() {
    let mut rng = fastrand::Rng::with_seed(6);
    let mut app = district_app(600);
    let mut seq = app.last_seq + 1;
    let levels = ["general", "key", "high"];
    for round in 0..60 {
        // Batches from 1 to 300 events: below and above the re-sort limit.
        let batch = match round % 10 {
            9 => 300,
            4 => rng.usize(40..90),
            _ => rng.usize(1..8),
        };
        for _ in 0..batch {
            let n = rng.u32(1..700);
            let id = case_id(n);
            let body = json!({"id": format!("r{seq}"), "source": "manual", "category": "other",
                "level": levels[rng.usize(0..3)], "imminent": rng.u8(0..10) == 0,
                "student": {"id": format!("R{n}")}, "observed_at": "2026-11-20T21:00:00+08:00"});
            let opened_at = format!("2026-11-{:02}T10:{:02}:00Z", rng.u32(1..20), rng.u32(0..60));
            let existing = app.cases.get(&id).map(|c| c.case.clone());
            let action = match (existing, rng.u8(0..4)) {
                (Some(c), 0) if c.status != crisisdesk::protocol::CaseStatus::Closed => {
                    let mut snap = serde_json::to_value(&c).unwrap();
                    snap["status"] = json!("closed");
                    ev(
                        json!({"seq": seq, "at": NOW, "type": "case_closed", "case_id": id,
                        "outcome": "stabilized", "case": snap,
                        "origin": {"by": {"name": "w", "role": "counselor"}, "command_id": format!("c{seq}")}}),
                    )
                }
                (Some(c), _) if c.status != crisisdesk::protocol::CaseStatus::Closed => {
                    let mut snap = serde_json::to_value(&c).unwrap();
                    snap["level"] = body["level"].clone();
                    snap["imminent"] = json!(c.imminent || body["imminent"] == true);
                    ev(
                        json!({"seq": seq, "at": NOW, "type": "alert", "case_id": id,
                        "opened": false, "alert": body, "case": snap}),
                    )
                }
                (Some(_), _) => continue,
                (None, _) => alert_event(seq, n, body, &opened_at),
            };
            app.update(action);
            seq += 1;
        }
        app.refresh();
        let mut expected: Vec<&crisisdesk::console::app::CaseView> = app
            .cases
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c.case.status != crisisdesk::protocol::CaseStatus::Closed)
            .collect();
        expected.sort_by_key(|c| {
            (
                !c.case.imminent,
                std::cmp::Reverse(c.case.level),
                c.case.opened_at,
                c.case.id.clone(),
            )
        });
        let expected: Vec<&str> = expected.iter().map(|c| c.case.id.as_str()).collect();
        assert_eq!(app.sorted_ids(), expected, "round {round}");
    }
}

/// Typing narrows what is shown; a case that arrives in the same batch as
/// a keystroke must still be found.
#[test]
fn search_as_you_type_sees_cases_that_arrive_meanwhile() {
    let mut app = sample_app(Lang::En);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "s100");
    assert_eq!(app.order_ids().len(), 4);
    let body = json!({"id": "n5", "source": "manual", "category": "other", "level": "general",
        "student": {"id": "S1005"}, "observed_at": "2026-11-20T21:00:00+08:00"});
    // As in the live loop: the frame and the key in one batch, then refresh.
    app.update(alert_event(1001, 5, body, "2026-11-20T13:20:00Z"));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('5'),
        KeyModifiers::NONE,
    )));
    app.refresh();
    assert_eq!(app.order_ids(), ["C000005"]);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.order_ids().len(), 5, "a shorter search widens again");
}

/// Opening a case shows the student's name: the console tells the relay,
/// which records who looked (audit), without a notice on screen.
#[test]
fn opening_a_case_records_a_view() {
    use crisisdesk::console::Effect;
    use crisisdesk::protocol::CommandOp;
    let mut app = sample_app(Lang::En);
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("expected one view command, got {effects:?}");
    };
    assert_eq!(
        cmd.op,
        CommandOp::View {
            case_id: "C000002".into()
        }
    );
    assert_eq!(app.notice, None, "a view is not announced");
    let ok = json!({"type": "result", "id": cmd.id, "ok": true});
    app.update(Action::Frame(Box::new(
        crisisdesk::console::frames::decode_value(ok).unwrap(),
    )));
    assert_eq!(app.notice, None, "nor is its answer");
    // Moving around inside the case sends nothing more.
    assert!(key(&mut app, KeyCode::Down).is_empty());
    // The history tab reads the student's record for the screenings: one
    // quiet `student` read (audited by the relay as a view).
    let effects = key(&mut app, KeyCode::Tab);
    assert!(
        matches!(effects.as_slice(), [Effect::Send(c)] if matches!(c.op, CommandOp::Student { .. })),
        "{effects:?}"
    );
    assert_eq!(app.notice, None);
}

#[test]
fn revealing_the_identity_asks_why_and_shows_the_answer_only_here() {
    use crisisdesk::console::Effect;
    use crisisdesk::console::frames::Frame;
    use crisisdesk::protocol::{CommandOp, CommandResult, ResultTag};
    let mut app = sample_app(Lang::Zh);
    key(&mut app, KeyCode::Enter);
    assert!(render(&app, 100, 30).contains("身份已隐藏"));
    key(&mut app, KeyCode::Char('r'));
    let nothing = app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(nothing.is_empty(), "no reason, no reveal");
    for c in "需要联系家长".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let effects = app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("one command: {effects:?}");
    };
    let CommandOp::Reveal { reason, .. } = &cmd.op else {
        panic!("a reveal: {:?}", cmd.op);
    };
    assert_eq!(reason, "需要联系家长");
    app.update(Action::Frame(Box::new(Frame::Result(CommandResult {
        kind: ResultTag::Result,
        id: cmd.id.clone(),
        ok: true,
        error: None,
        duplicate: false,
        data: Some(json!({"student": {"id": "S1002", "name": "欧阳若曦\u{1b}[31m"}})),
    }))));
    app.refresh();
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("欧阳若曦␛[31m"),
        "revealed, and inert:\n{screen}"
    );
    key(&mut app, KeyCode::Esc);
    let list = render(&app, 100, 30);
    assert!(
        !list.contains("欧阳若曦"),
        "lists stay masked after a reveal"
    );
}
