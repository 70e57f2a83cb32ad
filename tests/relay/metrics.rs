//! `GET /metrics` on a real relay: counts that move with what the relay
//! did, the overdue-step gauge after a real escalation, who may scrape, and
//! no student data in the text.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use crisisdesk::protocol::Role;
use serde_json::json;

/// Scrapes `/metrics` as `token`; (status, body).
async fn scrape(relay: &TestRelay, token: &str) -> (u16, String) {
    get_text(relay, "/metrics", token).await
}

/// The value of the sample line that starts with `series ` (exactly).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_ingest_streams_and_escalations_and_carry_no_student_data() {
    let relay = TestRelay::start().await;
    let producer = relay.token("screening", Role::Producer).await;
    let admin = relay.token("prometheus", Role::Admin).await;
    let counselor = relay.token("wang", Role::Counselor).await;

    // Nobody without a token, and no duty role, reads it.
    assert_eq!(scrape(&relay, "cdk_nope").await.0, 401);
    assert_eq!(scrape(&relay, &counselor).await.0, 403);

    let (status, before) = scrape(&relay, &admin).await;
    assert_eq!(status, 200);
    assert!(before.ends_with("# EOF\n"), "OpenMetrics text: {before}");
    assert_eq!(sample(&before, "crisisdesk_stream_connections"), 0.0);

    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let mut imminent = alert("m-1", "S-1", "high");
    imminent["imminent"] = json!(true);
    assert_eq!(post_alert(&relay, &producer, &imminent).await.status, 201);
    assert_eq!(post_alert(&relay, &producer, &imminent).await.status, 200);
    assert_eq!(
        post_alert(&relay, &producer, &alert("m-2", "S-2", "key"))
            .await
            .status,
        201
    );
    // The counselor's console received the live events.
    assert!(!alert_events(&mut ws, 2).await.is_empty());

    let (_, after) = scrape(&relay, &admin).await;
    assert_eq!(
        sample(&after, r#"crisisdesk_alerts_total{outcome="created"}"#),
        2.0
    );
    assert_eq!(
        sample(&after, r#"crisisdesk_alerts_total{outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(sample(&after, "crisisdesk_stream_connections"), 1.0);
    assert_eq!(sample(&after, "crisisdesk_alert_ack_seconds_count"), 3.0);
    assert!(sample(&after, "crisisdesk_group_commit_seconds_count") >= 3.0);
    assert!(
        sample(&after, "crisisdesk_event_delivery_seconds_count") >= 2.0,
        "live events timed to the console's socket"
    );
    assert_eq!(sample(&after, "crisisdesk_overdue_steps"), 0.0);

    // Eleven minutes later the imminent case's first steps are overdue and
    // escalated: the gauge counts them until they are done.
    let raised = relay
        .relay
        .escalate_overdue(Utc::now() + chrono::Duration::minutes(11))
        .await
        .unwrap();
    assert!(raised >= 3, "{raised}");
    let (_, storm) = scrape(&relay, &admin).await;
    assert_eq!(sample(&storm, "crisisdesk_overdue_steps"), raised as f64);
    assert!(sample(&storm, "crisisdesk_escalation_groups_total") >= 1.0);

    // Nothing about a student: no id, name, school or summary.
    for private in [
        "S-1",
        "S-2",
        "王小明",
        "第一中学",
        "PHQ-9",
        "wang",
        "screening",
    ] {
        assert!(!storm.contains(private), "`{private}` in the scrape");
    }

    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, closed) = scrape(&relay, &admin).await;
    assert_eq!(sample(&closed, "crisisdesk_stream_connections"), 0.0);
    relay.stop().await;
}
