//! The 三个一 cadence follows the stream: a real relay counts this month's
//! 特别关注 review when the console connects, and every later event that
//! changes a student's place in it (a level raised, a check-in recorded, a
//! case closed) changes the figure on the follow-ups view at once, on the
//! same connection. A second console connecting afterwards is counted
//! afresh by the relay and must show the same figures.

use crate::common::*;
use crate::live_reports::Live;
use crisisdesk::console::app::App;
use crisisdesk::protocol::Role;
use crossterm::event::KeyCode;
use serde_json::{Value, json};

/// (due, students) as the console holds them.
fn figures(app: &App) -> Option<(u32, u32)> {
    app.followups
        .cadence
        .shown
        .as_ref()
        .map(|c| (c.review_due, c.review_students))
}

/// One command on a plain websocket, which must be accepted.
async fn command(ws: &mut Ws, id: &str, op: Value) {
    let mut body = op;
    body["type"] = json!("command");
    body["id"] = json!(id);
    send_command(ws, body).await;
    let (result, _) = result_for(ws, id).await;
    assert_eq!(result["ok"], true, "{id}: {result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cadence_moves_with_live_events_from_a_real_relay() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let mut case_of = std::collections::HashMap::new();
    for (id, student, level) in [
        ("c-1", "S1", "key"),
        ("c-2", "S2", "high"),
        ("c-3", "S3", "general"),
    ] {
        let reply = post_alert(&relay, &producer, &alert(id, student, level)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        case_of.insert(student, reply.body["case_id"].as_str().unwrap().to_string());
    }
    let mut leader = connect(relay.addr, Some(&relay.token("li", Role::Leader).await), 0)
        .await
        .unwrap();

    let mut console = Live::start(&relay, relay.token("wang", Role::Counselor).await);
    console
        .until("the relay's count", |a| figures(a).is_some())
        .await;
    console.press(KeyCode::Char('f')).await;
    // S1 (key) and S2 (high) are under 特别关注; S3 (general) is not.
    assert_eq!(figures(&console.app), Some((2, 2)));
    assert!(
        console.screen().contains("2 名待复查 / 共 2 名"),
        "{}",
        console.screen()
    );
    let counted_at = console.app.followups.cadence.shown.as_ref().unwrap().as_of;

    // S3 raised to key: one more student, due.
    command(
        &mut leader,
        "raise",
        json!({"op": "propose_level", "case_id": case_of["S3"], "level": "key", "reason": "复评升高"}),
    )
    .await;
    console
        .until("S3 on the review list", |a| figures(a) == Some((3, 3)))
        .await;
    assert!(
        console.screen().contains("3 名待复查 / 共 3 名"),
        "{}",
        console.screen()
    );

    // S1 seen this month: still listed, no longer due.
    let c1 = &case_of["S1"];
    command(
        &mut leader,
        "ack",
        json!({"op": "acknowledge", "case_id": c1}),
    )
    .await;
    command(
        &mut leader,
        "monitor",
        json!({"op": "monitor", "case_id": c1}),
    )
    .await;
    command(
        &mut leader,
        "seen",
        json!({"op": "checkin", "case_id": c1, "checkin": 1, "outcome": "seen_well"}),
    )
    .await;
    console
        .until("S1 reviewed", |a| figures(a) == Some((2, 3)))
        .await;

    // S2's case closed: off the list.
    command(
        &mut leader,
        "close",
        json!({"op": "close", "case_id": case_of["S2"], "outcome": "referred_out",
               "override_reason": "已转介市精神卫生中心"}),
    )
    .await;
    console
        .until("S2 off the list", |a| figures(a) == Some((1, 2)))
        .await;
    let screen = console.screen();
    assert!(screen.contains("1 名待复查 / 共 2 名"), "{screen}");
    // All of it on the first connection: the relay counted once.
    assert_eq!(
        console.app.followups.cadence.shown.as_ref().unwrap().as_of,
        counted_at,
        "the figures moved with the events, not with a new count"
    );

    // The relay, counting afresh for a new console, agrees.
    let mut fresh = Live::start(&relay, relay.token("zhao", Role::Counselor).await);
    fresh
        .until("the relay's second count", |a| figures(a).is_some())
        .await;
    assert_eq!(figures(&fresh.app), figures(&console.app));
    relay.stop().await;
}
