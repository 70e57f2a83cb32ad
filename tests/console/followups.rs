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
    assert_eq!(app.screen, Screen::Followups);
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
    assert!(app.prompt.is_some(), "{bad}");
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
    assert_eq!(app.screen, Screen::Detail("C000001".into()));
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
