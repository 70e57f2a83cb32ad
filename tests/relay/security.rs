//! Nobody sees or does more than their role allows, and hostile or
//! runaway clients are refused cleanly: auth for every role × operation,
//! live revocation, Origin, rate and connection limits, frame limits.

use crate::common;

use std::time::Duration;

use common::*;
use crisisdesk::protocol::Role;
use crisisdesk::relay::RelayConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// Waits for the server to close; returns its close code.
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_can_do_exactly_what_it_should() {
    let relay = TestRelay::start().await;
    let seed = relay.token("seed", Role::Producer).await;
    let mut imminent = alert("seed-1", "S1", "high");
    imminent["imminent"] = json!(true);
    let case_id = post_alert(&relay, &seed, &imminent).await.body["case_id"]
        .as_str()
        .unwrap()
        .to_string();

    // (role, may post, may stream, may view, may acknowledge/act)
    let table = [
        (Role::Producer, true, false, false, false),
        (Role::Counselor, true, true, true, true),
        (Role::HeadTeacher, true, true, true, true),
        (Role::Leader, true, true, true, true),
        (Role::Nurse, true, true, true, true),
        (Role::Security, true, true, true, true),
        (Role::Reviewer, false, true, true, false),
        (Role::Admin, false, true, true, false),
    ];
    for (i, (role, post, stream, view, act)) in table.into_iter().enumerate() {
        let token = relay.token(&format!("user-{i}"), role).await;
        let posted = post_alert(
            &relay,
            &token,
            &alert(&format!("r-{i}"), &format!("S{}", 100 + i), "general"),
        )
        .await;
        assert_eq!(posted.status == 201, post, "{role} post: {}", posted.status);
        if !post {
            assert_eq!(posted.status, 403, "{role}");
        }
        let ws = connect(relay.addr, Some(&token), 0).await;
        assert_eq!(ws.is_ok(), stream, "{role} stream");
        let Ok(mut ws) = ws else {
            assert_eq!(ws.err(), Some(403));
            continue;
        };
        until_quiet(&mut ws).await;
        send_command(
            &mut ws,
            json!({"type": "command", "id": "v", "op": "view", "case_id": case_id}),
        )
        .await;
        assert_eq!(result_for(&mut ws, "v").await.0["ok"], view, "{role} view");
        // Acting on a step of another role is refused even for actors:
        // only the owner role (or a leader skipping) may.
        send_command(
            &mut ws,
            json!({"type": "command", "id": "s", "op": "step", "case_id": case_id,
            "playbook": "imminent_suicide_risk", "step": "first_aid", "action": "complete"}),
        )
        .await;
        let step = result_for(&mut ws, "s").await.0;
        assert_eq!(
            step["ok"],
            role == Role::Nurse,
            "{role} nurse's step: {step}"
        );
        if !act {
            assert_eq!(step["error"]["code"], "forbidden", "{role}");
        }
        send_command(&mut ws, json!({"type": "command", "id": "c", "op": "close", "case_id": case_id, "outcome": "error"})).await;
        let closed = result_for(&mut ws, "c").await.0;
        assert_eq!(
            closed["ok"], false,
            "nobody closes over open required steps without override"
        );
        let expected = if matches!(role, Role::Counselor | Role::Leader) {
            "required_steps_open"
        } else {
            "forbidden"
        };
        assert_eq!(closed["error"]["code"], expected, "{role}");
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_credential_ends_its_live_connection() {
    let relay = TestRelay::start().await;
    let token = relay.token("lost-laptop", Role::Counselor).await;
    let other = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&token), 0).await.unwrap();
    let mut still = connect(relay.addr, Some(&other), 0).await.unwrap();
    until_quiet(&mut ws).await;
    until_quiet(&mut still).await;

    let list = std::process::Command::new(BIN)
        .args(["token", "list", "--db", &relay.db_url])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("lost-laptop") && !listing.contains(&token),
        "{listing}"
    );
    let id = listing
        .lines()
        .find(|l| l.contains("lost-laptop"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let out = std::process::Command::new(BIN)
        .args(["token", "revoke", "--db", &relay.db_url, "--id", &id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        close_code(&mut ws).await,
        Some(CloseCode::Policy),
        "closed as revoked"
    );
    assert_eq!(connect(relay.addr, Some(&token), 0).await.err(), Some(401));
    let reply = post_alert(&relay, &token, &alert("after", "S9", "key")).await;
    assert_eq!(reply.status, 401);
    // Others carry on.
    send_command(
        &mut still,
        json!({"type": "command", "id": "x", "op": "view", "case_id": "C999999"}),
    )
    .await;
    assert_eq!(
        result_for(&mut still, "x").await.0["error"]["code"],
        "unknown_case"
    );
    let again = std::process::Command::new(BIN)
        .args(["token", "revoke", "--db", &relay.db_url, "--id", &id])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "revoking twice says so");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_origins_are_refused_unless_allowed() {
    let relay = TestRelay::start_with(RelayConfig {
        allowed_origins: vec!["https://duty.school.example".into()],
        ..RelayConfig::default()
    })
    .await;
    let token = relay.token("wang", Role::Counselor).await;
    let evil = connect_with(
        relay.addr,
        Some(&token),
        0,
        &[("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(evil.err(), Some(403));
    let good = connect_with(
        relay.addr,
        Some(&token),
        0,
        &[("Origin", "https://duty.school.example")],
    )
    .await;
    assert!(good.is_ok());
    assert!(
        connect(relay.addr, Some(&token), 0).await.is_ok(),
        "native clients send no Origin"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_producer_is_slowed_with_retry_after() {
    let relay = TestRelay::start_with(RelayConfig {
        requests_per_sec: 1.0,
        request_burst: 3.0,
        ..RelayConfig::default()
    })
    .await;
    let noisy = relay.token("noisy", Role::Producer).await;
    let calm = relay.token("calm", Role::Producer).await;
    for i in 0..3 {
        assert_eq!(
            post_alert(&relay, &noisy, &alert(&format!("n-{i}"), "S1", "key"))
                .await
                .status,
            201
        );
    }
    let limited = post_alert(&relay, &noisy, &alert("n-3", "S1", "key")).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let retry = limited
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.clone());
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(
        relay.relay.store().alert_count().await.unwrap(),
        3,
        "the refused one was not stored"
    );
    assert_eq!(
        post_alert(&relay, &calm, &alert("c-1", "S2", "key"))
            .await
            .status,
        201,
        "others unaffected"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_per_credential_are_capped() {
    let relay = TestRelay::start_with(RelayConfig {
        max_connections_per_credential: 2,
        ..RelayConfig::default()
    })
    .await;
    let token = relay.token("wang", Role::Counselor).await;
    let a = connect(relay.addr, Some(&token), 0).await.unwrap();
    let _b = connect(relay.addr, Some(&token), 0).await.unwrap();
    assert_eq!(connect(relay.addr, Some(&token), 0).await.err(), Some(429));
    drop(a);
    // The slot frees once the relay sees the close.
    let mut reopened = false;
    for _ in 0..50 {
        if connect(relay.addr, Some(&token), 0).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_frames_close_with_1009_and_bad_utf8_with_1007() {
    let relay = TestRelay::start().await;
    let token = relay.token("wang", Role::Counselor).await;

    let mut big = connect(relay.addr, Some(&token), 0).await.unwrap();
    until_quiet(&mut big).await;
    big.send(Message::Text("x".repeat(100 * 1024).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut big).await, Some(CloseCode::Size));

    let mut bad = connect(relay.addr, Some(&token), 0).await.unwrap();
    until_quiet(&mut bad).await;
    let frame = Frame::message(vec![0x7b, 0xff, 0xfe, 0x7d], OpCode::Data(Data::Text), true);
    bad.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(close_code(&mut bad).await, Some(CloseCode::Invalid));

    // The relay keeps serving.
    assert!(connect(relay.addr, Some(&token), 0).await.is_ok());
    relay.stop().await;
}
