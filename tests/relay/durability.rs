//! A relay killed with SIGKILL and restarted on the same database still has
//! every alert it answered 201 for, with the same `seq`s.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_alerts_survive_sigkill_with_the_same_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");

    let (mut relay, addr) = spawn_relay(&db);
    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let reply = post_raw(
            format!("http://{addr}/v1/alerts"),
            Some(producer.clone()),
            Some("application/json"),
            serde_json::to_vec(&alert(&format!("k-{i}"), &format!("S{}", i % 6), "high")).unwrap(),
        )
        .await;
        assert_eq!(reply.status, 201);
        acknowledged.push((format!("k-{i}"), reply.body["seq"].as_i64().unwrap()));
    }
    relay.kill().expect("SIGKILL the relay");
    relay.wait().unwrap();

    let (mut relay, addr) = spawn_relay(&db);
    let mut ws = connect(addr, Some(&counselor), 0)
        .await
        .expect("stream after restart");
    // Everything stored: alerts and the checklists they called for.
    let mut replay = Vec::new();
    while let Some(frame) = next_json(&mut ws, Duration::from_millis(500)).await {
        if frame.get("seq").is_some() {
            replay.push(frame);
        }
    }
    let seqs: Vec<i64> = replay.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "dense, in order"
    );
    let alerts: Vec<(String, i64)> = replay
        .iter()
        .filter(|e| e["type"] == "alert")
        .map(|e| {
            (
                e["alert"]["id"].as_str().unwrap().to_string(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        alerts, acknowledged,
        "every 201'd alert, once, with its seq"
    );

    // The sequence carries on where it stopped; a retry is still a duplicate.
    let next = post_raw(
        format!("http://{addr}/v1/alerts"),
        Some(producer.clone()),
        Some("application/json"),
        serde_json::to_vec(&alert("k-new", "S99", "key")).unwrap(),
    )
    .await;
    assert_eq!(next.body["seq"].as_i64(), Some(seqs.len() as i64 + 1));
    let retry = post_raw(
        format!("http://{addr}/v1/alerts"),
        Some(producer),
        Some("application/json"),
        serde_json::to_vec(&alert("k-0", "S0", "high")).unwrap(),
    )
    .await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body["seq"].as_i64(), Some(acknowledged[0].1));
    relay.kill().unwrap();
    let _ = relay.wait();
}

#[test]
fn relay_refuses_an_unsupported_database_url_with_a_clear_error() {
    let out = Command::new(BIN)
        .args(["relay", "--listen", "127.0.0.1:0", "--db", "mysql://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported database URL"), "{err}");
}

#[test]
fn token_create_refuses_an_unknown_role() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("t.sqlite").display());
    let out = Command::new(BIN)
        .args([
            "token", "create", "--db", &db, "--name", "x", "--role", "janitor",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role `janitor`"));
}
