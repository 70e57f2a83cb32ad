//! A drill played by the real `drill run` into a real relay, worked a
//! little by a counselor, then scored by `review --drill`: the scenario's
//! own expectations are found through the drill mark and judged against
//! the team's actual times.

use crate::common;

use common::*;
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn review_drill_scores_the_scenarios_expectations() {
    let relay = TestRelay::start().await;
    let producer = relay.token("drill-runner", Role::Producer).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let url = format!("http://{}", relay.addr);
    let played = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args([
                "drill",
                "run",
                "night_treehole_imminent",
                "--relay",
                &url,
                "--token",
                &producer,
            ])
            .args(["--speed", "3600", "--exercise-id", "night-1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );

    // The counselor arrives in time on the drill case.
    let mut ws = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let events = until_quiet(&mut ws).await;
    let case_id = events
        .iter()
        .find(|e| e["type"] == "checklist_added" && e["playbook"] == "imminent_suicide_risk")
        .and_then(|e| e["case_id"].as_str())
        .expect("the drill case got the imminent playbook")
        .to_string();
    send_command(
        &mut ws,
        json!({"type": "command", "id": "a", "op": "step", "case_id": case_id,
        "playbook": "imminent_suicide_risk", "step": "counselor_arrives", "action": "complete"}),
    )
    .await;
    assert_eq!(result_for(&mut ws, "a").await.0["ok"], true);

    let out = std::process::Command::new(BIN)
        .args([
            "review",
            "--drill",
            "night-1",
            "--db",
            &relay.db_url,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let score: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expectations = score["scenario_expectations"].as_array().unwrap();
    assert!(expectations.len() >= 5, "{expectations:?}");
    let arrives = expectations
        .iter()
        .find(|e| e["step"] == "imminent_suicide_risk/counselor_arrives")
        .unwrap();
    assert_eq!(arrives["verdict"], "on_time");
    assert_eq!(arrives["case_id"], case_id.as_str());
    assert!(
        expectations
            .iter()
            .filter(|e| e["verdict"] == "open")
            .count()
            >= 3,
        "the rest are still within their deadlines"
    );
    assert!(score["score"].as_u64().unwrap() < 100);
    relay.stop().await;
}
