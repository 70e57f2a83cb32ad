//! The follow-ups view (跟踪回访): my role's check-ins, overdue first, then
//! due today and this week; recorded with Enter through the same command
//! path (and so the same outbox) as steps.

use crate::console_support::*;
use crisisdesk::console::Lang;
use crisisdesk::console::app::{App, Screen};
use crisisdesk::console::followups::Bucket;
use crossterm::event::KeyCode;
use serde_json::{Value, json};

fn checkin(num: u32, role: &str, due: &str) -> Value {
    let escalate_to = if role == "counselor" {
        "leader"
    } else {
        "counselor"
    };
    json!({"id": format!("C000001/{num}"), "num": num, "role": role, "escalate_to": escalate_to, "due_at": due})
}

/// Case 1 of the sample (S1001, key) moved to monitoring with check-ins:
/// one overdue, one later today, two this week, one next month, and one
/// for the counselor. Now is Friday 21:30 in Beijing.
pub fn followups_app(lang: Lang, role: &str) -> App {
    let mut app = sample_app_as(lang, role);
    let wang = json!({"id": "S1001", "name": "王小明", "school": "第一中学", "grade": "初二", "class": "(3)班"});
    let body = json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key", "student": wang,
        "observed_at": "2026-11-20T20:00:00+08:00"});
    let mut case = snapshot(1, &body, "2026-11-20T12:00:00Z", "monitoring");
    case["acknowledged_by"] = json!({"name": "wang", "role": "counselor"});
    app.update(ev(json!({
        "seq": 2001, "at": "2026-11-20T12:10:00Z", "type": "case_updated", "case_id": "C000001",
        "change": {"kind": "monitoring", "planned": [
            checkin(1, "head_teacher", "2026-11-20T10:00:00Z"),
            checkin(2, "head_teacher", "2026-11-20T15:00:00Z"),
            checkin(3, "head_teacher", "2026-11-23T10:00:00Z"),
            checkin(4, "head_teacher", "2026-11-24T10:00:00Z"),
            checkin(5, "counselor", "2026-11-25T10:00:00Z"),
            checkin(6, "head_teacher", "2026-12-21T10:00:00Z"),
        ]},
        "case": case,
        "origin": {"by": {"name": "wang", "role": "counselor"}, "command_id": "m-1"}
    })));
    app.refresh();
    key(&mut app, KeyCode::Char('f'));
    app
}

#[test]
fn my_check_ins_are_grouped_overdue_today_this_week() {
    let app = followups_app(Lang::En, "head_teacher");
    assert_eq!(app.nav.screen, Screen::Followups);
    let rows = app.followup_rows();
    let seen: Vec<(u32, Bucket)> = rows.iter().map(|r| (r.checkin.num, r.bucket)).collect();
    assert_eq!(
        seen,
        [
            (1, Bucket::Overdue),
            (2, Bucket::Today),
            (3, Bucket::ThisWeek),
            (4, Bucket::ThisWeek)
        ],
        "not the counselor's, not next month's"
    );
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("Overdue (1)")
            && screen.contains("Due today (1)")
            && screen.contains("This week (2)"),
        "{screen}"
    );
    // The counselor sees only the one that is theirs.
    let counselor = followups_app(Lang::En, "counselor");
    let nums: Vec<u32> = counselor
        .followup_rows()
        .iter()
        .map(|r| r.checkin.num)
        .collect();
    assert_eq!(
        nums,
        [1, 5],
        "their own, and the head teacher's overdue one they must now chase"
    );
}

#[test]
fn recording_a_check_in_asks_the_outcome_then_a_note_and_sends_one_command() {
    use crisisdesk::console::Effect;
    use crisisdesk::followup::CheckinOutcome;
    use crisisdesk::protocol::CommandOp;
    let mut app = followups_app(Lang::Zh, "head_teacher");
    key(&mut app, KeyCode::Enter);
    assert!(
        render(&app, 80, 24).contains("回访结果"),
        "{}",
        render(&app, 80, 24)
    );
    type_text(&mut app, "9");
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "9 is no outcome");
    let bad = render(&app, 80, 24);
    assert!(app.nav.prompt.is_some(), "{bad}");
    key(&mut app, KeyCode::Backspace);
    type_text(&mut app, "2");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(render(&app, 80, 24).contains("回访记录"));
    type_text(&mut app, "午饭没吃");
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::Send(cmd)] = effects.as_slice() else {
        panic!("expected one command, got {effects:?}");
    };
    assert_eq!(
        cmd.op,
        CommandOp::Checkin {
            case_id: "C000001".into(),
            checkin: 1,
            outcome: CheckinOutcome::Concern,
            note: Some("午饭没吃".into()),
            raise: None,
        }
    );
    assert!(
        cmd.client_at.is_some(),
        "recorded offline, the console's time travels with it"
    );

    // The relay's answer arrives as an event: the row leaves the view.
    app.update(ev(json!({
        "seq": 2002, "at": "2026-11-20T13:31:00Z", "type": "case_updated", "case_id": "C000001",
        "change": {"kind": "checkin_recorded", "checkin": {
            "id": "C000001/1", "num": 1, "role": "head_teacher", "escalate_to": "counselor",
            "due_at": "2026-11-20T10:00:00Z", "done_at": "2026-11-20T13:31:00Z", "outcome": "concern",
            "note": "午饭没吃\u{1b}[2J", "by": {"name": "li", "role": "head_teacher"}}},
        "case": app.cases.get("C000001").map(|c| serde_json::to_value(&c.case).unwrap()).unwrap(),
        "origin": {"by": {"name": "li", "role": "head_teacher"}, "command_id": cmd.id}
    })));
    let nums: Vec<u32> = app.followup_rows().iter().map(|r| r.checkin.num).collect();
    assert_eq!(nums, [2, 3, 4]);
    let pending: Vec<u32> = app
        .cases
        .get("C000001")
        .unwrap()
        .checkins
        .iter()
        .map(|k| k.num)
        .collect();
    assert_eq!(
        pending,
        [2, 3, 4, 5, 6],
        "the console keeps no recorded check-in, nor its note"
    );
}

#[test]
fn a_closed_case_has_no_follow_ups_and_o_opens_the_case() {
    let mut app = followups_app(Lang::En, "head_teacher");
    key(&mut app, KeyCode::Char('o'));
    assert_eq!(app.nav.screen, Screen::Detail("C000001".into()));
    let mut app = followups_app(Lang::En, "head_teacher");
    let body = json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
        "student": {"id": "S1001"}, "observed_at": "2026-11-20T20:00:00+08:00"});
    app.update(closed_event(
        2002,
        1,
        &body,
        "2026-11-20T12:00:00Z",
        "2026-11-20T13:20:00Z",
        "referred_out",
    ));
    assert!(app.followup_rows().is_empty());
    // The live console refreshes before every frame.
    app.refresh();
    assert!(render(&app, 80, 24).contains("No check-ins due this week"));
}

#[test]
fn the_view_follows_the_clock_without_an_event() {
    use crisisdesk::console::app::Action;
    let mut app = followups_app(Lang::En, "head_teacher");
    let bucket_of = |app: &App, num: u32| {
        app.followups
            .rows()
            .iter()
            .find(|r| r.checkin.num == num)
            .map(|r| r.bucket)
    };
    assert_eq!(bucket_of(&app, 2), Some(Bucket::Today));
    // 23:01 in Beijing: check-in 2 (due 23:00) is now overdue.
    app.update(Action::Tick(at("2026-11-20T15:01:00Z")));
    app.refresh();
    assert_eq!(bucket_of(&app, 2), Some(Bucket::Overdue));
    // Past midnight into Monday: Monday's check-in is due today.
    app.update(Action::Tick(at("2026-11-22T16:30:00Z")));
    app.refresh();
    assert_eq!(
        bucket_of(&app, 3),
        Some(Bucket::Today),
        "Monday 18:00, seen on Monday 00:30"
    );
}

#[test]
fn a_long_list_scrolls_to_the_cursor_under_its_heading() {
    let mut app = sample_app_as(Lang::En, "head_teacher");
    let body = json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
        "student": {"id": "S1001"}, "observed_at": "2026-11-20T20:00:00+08:00"});
    let case = snapshot(1, &body, "2026-11-20T12:00:00Z", "monitoring");
    // 30 missed daily check-ins, then two this week.
    let mut planned: Vec<Value> = (1..=30)
        .map(|n| checkin(n, "head_teacher", &format!("2026-10-{:02}T10:00:00Z", n)))
        .collect();
    planned.push(checkin(31, "head_teacher", "2026-11-23T10:00:00Z"));
    planned.push(checkin(32, "head_teacher", "2026-11-24T10:00:00Z"));
    app.update(ev(json!({
        "seq": 2001, "at": "2026-11-20T12:10:00Z", "type": "case_updated", "case_id": "C000001",
        "change": {"kind": "monitoring", "planned": planned}, "case": case,
        "origin": {"by": {"name": "wang", "role": "counselor"}, "command_id": "m-1"}
    })));
    key(&mut app, KeyCode::Char('f'));
    let top = render(&app, 80, 24);
    assert!(
        top.contains("Overdue (30)") && !top.contains("This week"),
        "{top}"
    );
    for _ in 0..31 {
        key(&mut app, KeyCode::Down);
    }
    let bottom = render(&app, 80, 24);
    let selected = bottom
        .lines()
        .find(|l| l.starts_with('▸'))
        .unwrap_or_default();
    assert!(selected.contains("#32"), "{bottom}");
    assert!(
        bottom.contains("This week (2)") && !bottom.contains("Overdue (30)"),
        "{bottom}"
    );
}

/// A follow-up event updates the cached rows in place (no walk over every
/// case); they must be what a full rebuild gives, in order.
#[test]
fn rows_kept_up_per_event_equal_a_full_rebuild() {
    let mut app = followups_app(Lang::En, "head_teacher");
    let before = app.followups.rows().to_vec();
    assert_eq!(before, app.followup_rows());
    let wang = json!({"id": "S1001", "name": "王小明", "school": "第一中学"});
    let body = json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
        "student": wang, "observed_at": "2026-11-20T20:00:00+08:00"});
    let mut case = snapshot(1, &body, "2026-11-20T12:00:00Z", "monitoring");
    case["acknowledged_by"] = json!({"name": "wang", "role": "counselor"});
    // Check-in 2 recorded: its row leaves, the others stay in order.
    let mut recorded = checkin(2, "head_teacher", "2026-11-20T15:00:00Z");
    recorded["done_at"] = json!("2026-11-20T13:00:00Z");
    recorded["outcome"] = json!("seen_well");
    app.update(ev(json!({
        "seq": 2002, "at": "2026-11-20T13:00:00Z", "type": "case_updated", "case_id": "C000001",
        "change": {"kind": "checkin_recorded", "checkin": recorded},
        "case": case.clone(),
        "origin": {"by": {"name": "li", "role": "head_teacher"}, "command_id": "k-2"}
    })));
    assert_eq!(app.followups.rows(), app.followup_rows().as_slice());
    assert_eq!(app.followups.rows().len(), before.len() - 1);
    assert!(app.followups.rows().iter().all(|r| r.checkin.num != 2));
    // A new plan replaces the case's rows: again what a rebuild gives.
    app.update(ev(json!({
        "seq": 2003, "at": "2026-11-20T13:10:00Z", "type": "case_updated", "case_id": "C000001",
        "change": {"kind": "monitoring", "planned": [
            checkin(7, "head_teacher", "2026-11-20T14:00:00Z"),
            checkin(8, "head_teacher", "2026-11-21T10:00:00Z"),
        ]},
        "case": case,
        "origin": {"by": {"name": "wang", "role": "counselor"}, "command_id": "m-2"}
    })));
    assert_eq!(app.followups.rows(), app.followup_rows().as_slice());
    let nums: Vec<u32> = app.followups.rows().iter().map(|r| r.checkin.num).collect();
    assert_eq!(nums, [7, 8]);
}

/// A second monitored case at another school, high and imminent, with
/// check-ins today and this week; the session carries the 三个一 cadence.
fn two_schools(lang: Lang) -> App {
    let mut app = followups_app(lang, "head_teacher");
    let zhao = json!({"id": "S2001", "name": "赵天佑", "school": "第二中学", "grade": "初三", "class": "(2)班"});
    let body = json!({"id": "b1", "source": "hotline", "category": "suicide_risk", "level": "high", "imminent": true,
        "student": zhao, "observed_at": "2026-11-20T20:30:00+08:00"});
    app.update(alert_event(2100, 20, body.clone(), "2026-11-20T12:30:00Z"));
    let case = snapshot(20, &body, "2026-11-20T12:30:00Z", "monitoring");
    let k = |num: u32, due: &str| json!({"id": format!("C000020/{num}"), "num": num, "role": "head_teacher", "escalate_to": "counselor", "due_at": due});
    app.update(ev(json!({
        "seq": 2101, "at": "2026-11-20T12:40:00Z", "type": "case_updated", "case_id": "C000020",
        "change": {"kind": "monitoring", "planned": [
            k(1, "2026-11-20T15:30:00Z"),
            k(2, "2026-11-23T12:00:00Z"),
        ]},
        "case": case,
        "origin": {"by": {"name": "wang", "role": "counselor"}, "command_id": "m-20"}
    })));
    let session = json!({
        "type": "session", "credential": {"name": "li", "role": "head_teacher"}, "latest_seq": 2200,
        "playbooks": library().playbooks(),
        "followup_cadence": {"as_of": "2026-11-20T13:00:00Z", "month": "2026-11", "review_students": 52,
            "review_due": 37, "next_term_screening": "2027-02-22", "next_census": "2027-09-13", "calendars": 3}
    });
    app.update(Action::Frame(Box::new(
        crisisdesk::console::frames::decode_value(session).unwrap(),
    )));
    app.refresh();
    app
}

/// The follow-ups view due today, sorted by level.
pub fn filtered_app(lang: Lang) -> App {
    let mut app = two_schools(lang);
    key(&mut app, KeyCode::Char('w'));
    key(&mut app, KeyCode::Char('w'));
    key(&mut app, KeyCode::Char('O'));
    app
}

use crisisdesk::console::app::Action;

fn shown(app: &App) -> Vec<(String, u32)> {
    app.followups
        .rows()
        .iter()
        .map(|r| (app.followup_case_id(r).to_string(), r.checkin.num))
        .collect()
}

#[test]
fn filters_and_sort_work_like_the_lists() {
    let mut app = two_schools(Lang::En);
    let c1 = |n: u32| ("C000001".to_string(), n);
    let c20 = |n: u32| ("C000020".to_string(), n);
    assert_eq!(
        shown(&app),
        [c1(1), c1(2), c20(1), c1(3), c20(2), c1(4)],
        "overdue, then today by due time, then the week"
    );
    // w: overdue only, then today only.
    key(&mut app, KeyCode::Char('w'));
    assert_eq!(shown(&app), [c1(1)]);
    key(&mut app, KeyCode::Char('w'));
    assert_eq!(shown(&app), [c1(2), c20(1)]);
    // O: by level within the heading — the imminent case first.
    key(&mut app, KeyCode::Char('O'));
    assert_eq!(shown(&app), [c20(1), c1(2)]);
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("filter: Due today") && screen.contains("by level"),
        "{screen}"
    );
    // O again: by school within each heading (第一中学 before 第二中学),
    // due time within a school.
    key(&mut app, KeyCode::Char('w'));
    key(&mut app, KeyCode::Char('w'));
    key(&mut app, KeyCode::Char('O'));
    assert_eq!(
        shown(&app),
        [c1(1), c1(2), c20(1), c1(3), c1(4), c20(2)],
        "by school"
    );
    // h: one school at a time, in name order, then none.
    key(&mut app, KeyCode::Char('x'));
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.followups.filter.school.as_deref(), Some("第一中学"));
    assert_eq!(shown(&app), [c1(1), c1(2), c1(3), c1(4)]);
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(shown(&app), [c20(1), c20(2)]);
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.followups.filter.school, None);
    // i: mine — case 1 has open head-teacher steps, case 20 (no
    // checklist, acknowledged by no one) is nobody's.
    key(&mut app, KeyCode::Char('i'));
    assert_eq!(shown(&app), [c1(1), c1(2), c1(3), c1(4)]);
    // Mine at the second school: none.
    key(&mut app, KeyCode::Char('h'));
    key(&mut app, KeyCode::Char('h'));
    assert!(shown(&app).is_empty(), "mine at 第二中学: none");
    assert!(
        render(&app, 80, 24).contains("No check-in matches the filter"),
        "{}",
        render(&app, 80, 24)
    );
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(shown(&app).len(), 6);
}

#[test]
fn a_filtered_view_keeps_up_with_events() {
    let mut app = filtered_app(Lang::En);
    let before = shown(&app);
    assert_eq!(before.len(), 2);
    // Check-in 1 of C000020 recorded: it leaves the filtered view at once.
    let body = json!({"id": "b1", "source": "hotline", "category": "suicide_risk", "level": "high", "imminent": true,
        "student": {"id": "S2001"}, "observed_at": "2026-11-20T20:30:00+08:00"});
    let case = snapshot(20, &body, "2026-11-20T12:30:00Z", "monitoring");
    app.update(ev(json!({
        "seq": 2300, "at": "2026-11-20T13:40:00Z", "type": "case_updated", "case_id": "C000020",
        "change": {"kind": "checkin_recorded", "checkin": {"id": "C000020/1", "num": 1, "role": "head_teacher",
            "escalate_to": "counselor", "due_at": "2026-11-20T15:30:00Z", "done_at": "2026-11-20T13:40:00Z",
            "outcome": "seen_well", "by": {"name": "li", "role": "head_teacher"}}},
        "case": case,
        "origin": {"by": {"name": "li", "role": "head_teacher"}, "command_id": "k-20"}
    })));
    app.refresh();
    assert_eq!(shown(&app), [("C000001".to_string(), 2)]);
}

#[test]
fn the_cadence_is_shown_on_top() {
    let app = two_schools(Lang::Zh);
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("三个一 · 本月（2026-11）特别关注复查：37 名待复查 / 共 52 名"),
        "{screen}"
    );
    assert!(
        screen.contains("下次学期筛查 2027-02-22 · 新生普查 2027-09-13（3 所学校校历）"),
        "{screen}"
    );
}

fn missed(seq: i64, at: &str, num: u32, to: &str) -> Action {
    let body = json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
        "student": {"id": "S1001"}, "observed_at": "2026-11-20T20:00:00+08:00"});
    let case = snapshot(1, &body, "2026-11-20T12:00:00Z", "monitoring");
    ev(json!({
        "seq": seq, "at": at, "type": "case_updated", "case_id": "C000001",
        "change": {"kind": "checkin_missed", "to": to, "checkin": {"id": format!("C000001/{num}"), "num": num,
            "role": "head_teacher", "escalate_to": to, "due_at": "2026-11-20T10:00:00Z"}},
        "case": case
    }))
}

#[test]
fn a_missed_check_in_for_my_role_rings_once_per_storm() {
    use crisisdesk::console::Effect;
    // A counselor's console, live after seq 2001.
    let mut app = followups_app(Lang::En, "counselor");
    let effects = app.update(missed(2002, "2026-11-20T13:31:00Z", 1, "counselor"));
    assert!(effects.contains(&Effect::Bell), "{effects:?}");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Notify(n) if !n.body.contains("王"))),
        "{effects:?}"
    );
    app.refresh();
    assert_eq!(app.alarms.escalations().len(), 1);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("C000001 check-in #1"), "{screen}");
    // A second within 30 s joins the banner's count without a bell.
    let effects = app.update(missed(2003, "2026-11-20T13:31:20Z", 2, "counselor"));
    assert!(!effects.contains(&Effect::Bell), "{effects:?}");
    assert_eq!(app.alarms.escalations().len(), 2);
    // `e` dismisses; one addressed to the leader is not mine.
    key(&mut app, KeyCode::Char('e'));
    assert!(app.alarms.escalations().is_empty());
    let effects = app.update(missed(2004, "2026-11-20T13:40:00Z", 3, "leader"));
    assert!(effects.is_empty() && app.alarms.escalations().is_empty());
}

#[test]
fn a_missed_check_in_in_the_replay_is_listed_without_a_bell() {
    let mut app = sample_app_as(Lang::En, "counselor");
    // seq 900 is history (the session's latest_seq is 1000).
    let effects = app.update(missed(900, "2026-11-20T10:00:00Z", 1, "counselor"));
    assert!(effects.is_empty(), "{effects:?}");
}

/// `checkin_recorded` for check-in `num` of case 1 (S1001, key) or 20
/// (S2001, high and imminent), both in monitoring.
fn recorded(seq: i64, case: u32, num: u32, done_at: &str) -> Action {
    let body = if case == 1 {
        json!({"id": "a1", "source": "screening", "category": "suicide_risk", "level": "key",
            "student": {"id": "S1001"}, "observed_at": "2026-11-20T20:00:00+08:00"})
    } else {
        json!({"id": "b1", "source": "hotline", "category": "suicide_risk", "level": "high", "imminent": true,
            "student": {"id": "S2001"}, "observed_at": "2026-11-20T20:30:00+08:00"})
    };
    let case_id = format!("C{case:06}");
    ev(json!({
        "seq": seq, "at": done_at, "type": "case_updated", "case_id": case_id,
        "change": {"kind": "checkin_recorded", "checkin": {"id": format!("{case_id}/{num}"), "num": num,
            "role": "head_teacher", "escalate_to": "counselor", "due_at": "2026-11-20T10:00:00Z",
            "done_at": done_at, "outcome": "seen_well", "by": {"name": "li", "role": "head_teacher"}}},
        "case": snapshot(case, &body, "2026-11-20T12:00:00Z", "monitoring"),
        "origin": {"by": {"name": "li", "role": "head_teacher"}, "command_id": format!("k-{seq}")}
    }))
}

fn cadence_figures(app: &App) -> (String, u32, u32) {
    let c = app.followups.cadence.shown.as_ref().unwrap();
    (c.month.clone(), c.review_due, c.review_students)
}

#[test]
fn the_cadence_counts_news_once_and_turns_with_the_month() {
    let mut app = two_schools(Lang::En);
    // The relay's count holds everything up to the session's latest_seq
    // (2200): a check-in replayed at or below it is not counted again.
    app.update(recorded(2150, 1, 1, "2026-11-20T12:20:00Z"));
    assert_eq!(cadence_figures(&app), ("2026-11".into(), 37, 52));
    // News: S2001 seen this month, no longer due; S1001 seen again changes
    // nothing (already seen, by the replayed check-in).
    app.update(recorded(2201, 20, 1, "2026-11-20T13:40:00Z"));
    assert_eq!(cadence_figures(&app), ("2026-11".into(), 36, 52));
    app.update(recorded(2202, 1, 2, "2026-11-20T13:45:00Z"));
    assert_eq!(cadence_figures(&app), ("2026-11".into(), 36, 52));
    // Midnight in Beijing on 1 December: everyone on the list is due again.
    app.update(Action::Tick(at("2026-11-30T16:00:30Z")));
    assert_eq!(cadence_figures(&app), ("2026-12".into(), 52, 52));
    app.update(recorded(2203, 20, 2, "2026-11-30T17:00:00Z"));
    assert_eq!(cadence_figures(&app), ("2026-12".into(), 51, 52));
    // A clock that goes back does not turn the month back.
    app.update(Action::Tick(at("2026-11-30T15:00:00Z")));
    assert_eq!(cadence_figures(&app), ("2026-12".into(), 51, 52));
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("this month (2026-12): 51 of 52 students"),
        "{screen}"
    );
}

#[test]
fn a_raised_level_moves_a_row_in_the_level_sort() {
    let mut app = filtered_app(Lang::En);
    let c1 = |n: u32| ("C000001".to_string(), n);
    let c20 = |n: u32| ("C000020".to_string(), n);
    assert_eq!(shown(&app), [c20(1), c1(2)], "imminent first");
    // A later alert makes S1001 imminent too: within the same rank, the
    // sooner check-in (15:00 before 15:30) comes first.
    let body = json!({"id": "a9", "source": "hotline", "category": "suicide_risk", "level": "high",
        "imminent": true, "student": {"id": "S1001"}, "observed_at": "2026-11-20T21:20:00+08:00"});
    let case = snapshot(1, &body, "2026-11-20T12:00:00Z", "monitoring");
    app.update(ev(
        json!({"seq": 2301, "at": "2026-11-20T13:20:00Z", "type": "alert",
        "case_id": "C000001", "opened": false, "alert": body, "case": case}),
    ));
    app.refresh();
    assert_eq!(shown(&app), [c1(2), c20(1)]);
    assert_eq!(app.followups.all_rows(), app.followup_rows().as_slice());
}
