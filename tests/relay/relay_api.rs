//! The relay's contract, exercised over real sockets: HTTP ingest with a
//! real client, the stream with a real websocket client.

use crate::common;

use common::*;
use crisisdesk::protocol::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers() {
    let relay = TestRelay::start().await;
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let url = relay.url("/healthz");
    let status = tokio::task::spawn_blocking(move || agent.get(&url).call().unwrap().status())
        .await
        .unwrap();
    assert_eq!(status, 200);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ingested_alert_reaches_a_connected_stream() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();

    let reply = post_alert(&relay, &producer, &alert("a-1", "S1", "high")).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["seq"], 1);
    let case_id = reply.body["case_id"].as_str().unwrap().to_string();

    let ev = &alert_events(&mut ws, 1).await[0];
    assert_eq!(ev["type"], "alert");
    assert_eq!(ev["seq"], 1);
    assert_eq!(ev["alert"]["id"], "a-1");
    assert_eq!(ev["case_id"], case_id.as_str());
    assert_eq!(ev["opened"], true);
    assert!(ev["at"].is_string());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_id_creates_nothing_new_and_streams_nothing() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();

    let first = post_alert(&relay, &producer, &alert("dup", "S1", "key")).await;
    assert_eq!(first.status, 201);
    let again = post_alert(&relay, &producer, &alert("dup", "S1", "key")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["seq"], first.body["seq"]);
    assert_eq!(again.body["case_id"], first.body["case_id"]);

    // Same id, different content: refused rather than silently dropped.
    let conflict = post_alert(&relay, &producer, &alert("dup", "S1", "high")).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["error"]["field"], "id");

    let streamed = until_quiet(&mut ws).await;
    let alerts: Vec<_> = streamed.iter().filter(|e| e["type"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "a duplicate must not be streamed again");
    assert_eq!(alerts[0]["seq"], first.body["seq"]);
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 1);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_for_the_same_student_join_one_case_and_raise_its_level() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let a = post_alert(&relay, &producer, &alert("j-1", "S7", "general")).await;
    let mut higher = alert("j-2", "S7", "high");
    higher["imminent"] = json!(true);
    let b = post_alert(&relay, &producer, &higher).await;
    let c = post_alert(&relay, &producer, &alert("j-3", "S8", "key")).await;
    assert_eq!(a.body["case_id"], b.body["case_id"]);
    assert_ne!(a.body["case_id"], c.body["case_id"]);

    let counselor = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let evs = alert_events(&mut ws, 3).await;
    assert_eq!(evs[1]["opened"], false);
    assert_eq!(evs[1]["case"]["level"], "high");
    assert_eq!(evs[1]["case"]["imminent"], true);
    assert_eq!(evs[1]["case"]["alert_count"], 2);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drill_alerts_never_join_a_real_case() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let real = post_alert(&relay, &producer, &alert("r-1", "S1", "high")).await;
    let mut drill = alert("d-1", "S1", "high");
    drill["status"] = json!("exercise");
    drill["exercise_id"] = json!("night-drill");
    let drilled = post_alert(&relay, &producer, &drill).await;
    assert_eq!(drilled.status, 201);
    assert_ne!(real.body["case_id"], drilled.body["case_id"]);
    let case = relay
        .relay
        .store()
        .case(drilled.body["case_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.exercise_id.as_deref(), Some("night-drill"));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_with_since_has_no_gaps_and_no_duplicates() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    for i in 0..5 {
        post_alert(
            &relay,
            &producer,
            &alert(&format!("s-{i}"), &format!("S{i}"), "key"),
        )
        .await;
    }
    let mut whole = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let before = until_quiet(&mut whole).await;
    let resume_from = seqs(&before)[before.len() / 2];

    let mut ws = connect(relay.addr, Some(&counselor), resume_from)
        .await
        .unwrap();
    // Posted while this connection replays: must come after, exactly once.
    let live = tokio::spawn({
        let url = relay.url("/v1/alerts");
        let producer = producer.clone();
        async move {
            for i in 5..8 {
                post_raw(
                    url.clone(),
                    Some(producer.clone()),
                    Some("application/json"),
                    serde_json::to_vec(&alert(&format!("s-{i}"), &format!("S{i}"), "key")).unwrap(),
                )
                .await;
            }
        }
    });
    live.await.unwrap();
    let resumed = until_quiet(&mut ws).await;
    let all = until_quiet(&mut whole).await;
    let last = *seqs(&all).last().unwrap();
    assert_eq!(
        seqs(&resumed),
        ((resume_from + 1)..=last).collect::<Vec<_>>(),
        "no gaps, no duplicates"
    );
    let posted: Vec<_> = resumed
        .iter()
        .filter(|e| e["alert"]["id"] == "s-7")
        .collect();
    assert_eq!(posted.len(), 1, "a live alert arrives once");

    // Absent `since` means everything, dense from 1.
    let mut from_start = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    assert_eq!(
        seqs(&until_quiet(&mut from_start).await),
        (1..=last).collect::<Vec<_>>()
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_producers_stream_in_seq_order() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let mut posts = Vec::new();
    for i in 0..40 {
        let url = relay.url("/v1/alerts");
        let producer = producer.clone();
        posts.push(tokio::spawn(async move {
            post_raw(
                url,
                Some(producer),
                Some("application/json"),
                serde_json::to_vec(&alert(&format!("c-{i}"), &format!("S{}", i % 7), "key"))
                    .unwrap(),
            )
            .await
            .status
        }));
    }
    for p in posts {
        assert_eq!(p.await.unwrap(), 201);
    }
    let streamed = until_quiet(&mut ws).await;
    let n = streamed.len() as i64;
    assert_eq!(
        seqs(&streamed),
        (1..=n).collect::<Vec<_>>(),
        "dense and in order"
    );
    assert_eq!(streamed.iter().filter(|e| e["type"] == "alert").count(), 40);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_is_checked_before_anything_happens() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    let reviewer = relay.token("audit", Role::Reviewer).await;
    let body = serde_json::to_vec(&alert("x-1", "S1", "high")).unwrap();
    let url = relay.url("/v1/alerts");
    let json_ct = Some("application/json");

    let none = post_raw(url.clone(), None, json_ct, body.clone()).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.body["error"]["code"], "unauthorized");
    let bad = post_raw(url.clone(), Some("cdk_nope".into()), json_ct, body.clone()).await;
    assert_eq!(bad.status, 401);
    let reviewer_post = post_raw(url.clone(), Some(reviewer.clone()), json_ct, body.clone()).await;
    assert_eq!(reviewer_post.status, 403);
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 0);

    // Stream refusals happen before the upgrade, as HTTP statuses.
    assert_eq!(connect(relay.addr, None, 0).await.err(), Some(401));
    assert_eq!(
        connect(relay.addr, Some("cdk_nope"), 0).await.err(),
        Some(401)
    );
    assert_eq!(
        connect(relay.addr, Some(&producer), 0).await.err(),
        Some(403)
    );
    assert!(connect(relay.addr, Some(&counselor), 0).await.is_ok());
    assert!(connect(relay.addr, Some(&reviewer), 0).await.is_ok());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_json_error_naming_the_field_and_the_relay_keeps_serving() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let url = relay.url("/v1/alerts");
    let json_ct = Some("application/json");
    let post = |body: Vec<u8>, ct: Option<&'static str>| {
        post_raw(url.clone(), Some(producer.clone()), ct, body)
    };

    let malformed = post(b"{\"id\": \"a\", ".to_vec(), json_ct).await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error"]["code"], "malformed_json");

    let mut missing = alert("m-1", "S1", "high");
    missing.as_object_mut().unwrap().remove("category");
    let r = post(serde_json::to_vec(&missing).unwrap(), json_ct).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("category"),
        "{:?}",
        r.body
    );

    let mut wrong_type = alert("m-2", "S1", "high");
    wrong_type["student"]["under_14"] = json!("no");
    let r = post(serde_json::to_vec(&wrong_type).unwrap(), json_ct).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "student.under_14");

    let r = post(
        serde_json::to_vec(&alert("m-3", "S1", "urgent")).unwrap(),
        json_ct,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "level");

    let long_id = "x".repeat(129);
    let r = post(
        serde_json::to_vec(&alert(&long_id, "S1", "high")).unwrap(),
        json_ct,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "id");

    let mut huge = alert("m-4", "S1", "high");
    huge["summary"] = json!("字".repeat(30_000));
    let r = post(serde_json::to_vec(&huge).unwrap(), json_ct).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["error"]["code"], "too_large");

    let r = post(
        serde_json::to_vec(&alert("m-5", "S1", "high")).unwrap(),
        Some("text/plain"),
    )
    .await;
    assert_eq!(r.status, 415);
    let r = post(
        serde_json::to_vec(&alert("m-5", "S1", "high")).unwrap(),
        None,
    )
    .await;
    assert_eq!(r.status, 415);

    let mut unknown_field = alert("m-6", "S1", "high");
    unknown_field["imminet"] = json!(true);
    let r = post(serde_json::to_vec(&unknown_field).unwrap(), json_ct).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("imminet")
    );

    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 0);
    let ok = post(
        serde_json::to_vec(&alert("good", "S1", "high")).unwrap(),
        json_ct,
    )
    .await;
    assert_eq!(ok.status, 201, "relay still serves after bad input");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledge_is_applied_once_and_races_have_one_winner() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let li = relay.token("li", Role::HeadTeacher).await;
    let reviewer = relay.token("audit", Role::Reviewer).await;
    let case_id = post_alert(&relay, &producer, &alert("k-1", "S1", "high"))
        .await
        .body["case_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut a = connect(relay.addr, Some(&wang), 0).await.unwrap();
    let mut b = connect(relay.addr, Some(&li), 0).await.unwrap();
    let mut r = connect(relay.addr, Some(&reviewer), 0).await.unwrap();
    until_quiet(&mut a).await;
    until_quiet(&mut b).await;
    until_quiet(&mut r).await;

    // A reviewer may read but never change anything.
    send_command(
        &mut r,
        json!({"type": "command", "id": "r1", "op": "acknowledge", "case_id": case_id}),
    )
    .await;
    let (res, _) = result_for(&mut r, "r1").await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "forbidden");

    let ack = |id: &str| json!({"type": "command", "id": id, "op": "acknowledge", "case_id": case_id, "client_at": "2026-11-20T21:05:00+08:00", "terminal": "duty-1"});
    send_command(&mut a, ack("a1")).await;
    send_command(&mut b, ack("b1")).await;
    let (ra, _) = result_for(&mut a, "a1").await;
    let (rb, _) = result_for(&mut b, "b1").await;
    let oks = [ra["ok"].as_bool().unwrap(), rb["ok"].as_bool().unwrap()];
    assert_eq!(
        oks.iter().filter(|ok| **ok).count(),
        1,
        "exactly one wins: {ra} {rb}"
    );
    let loser = if oks[0] { &rb } else { &ra };
    assert_eq!(loser["error"]["code"], "already_acknowledged");
    assert!(
        loser["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acknowledged by")
    );

    // Re-sending the winner's command is answered from the record.
    let (winner_ws, winner_id) = if oks[0] {
        (&mut a, "a1")
    } else {
        (&mut b, "b1")
    };
    send_command(winner_ws, ack(winner_id)).await;
    let (again, _) = result_for(winner_ws, winner_id).await;
    assert_eq!(again["ok"], true);
    assert_eq!(again["duplicate"], true);

    // Everyone saw exactly one acknowledgement event.
    let mut watcher = connect(relay.addr, Some(&reviewer), 0).await.unwrap();
    let evs = until_quiet(&mut watcher).await;
    let acks: Vec<_> = evs
        .iter()
        .filter(|e| e["type"] == "case_acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "one acknowledgement event");
    assert_eq!(acks[0]["case"]["status"], "acknowledged");

    // Unknown case and garbage commands are refused plainly.
    send_command(
        &mut a,
        json!({"type": "command", "id": "a2", "op": "acknowledge", "case_id": "C999999"}),
    )
    .await;
    let (unknown, _) = result_for(&mut a, "a2").await;
    assert_eq!(unknown["error"]["code"], "unknown_case");
    send_command(
        &mut a,
        json!({"type": "command", "id": "a3", "op": "launch"}),
    )
    .await;
    let (garbage, _) = result_for(&mut a, "a3").await;
    assert_eq!(garbage["error"]["code"], "invalid_command");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_since_ahead_of_the_relay_is_refused_rather_than_silently_skipped() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    post_alert(&relay, &producer, &alert("a-1", "S1", "key")).await;
    let latest = relay.relay.store().latest_seq().await.unwrap();
    assert!(connect(relay.addr, Some(&counselor), latest).await.is_ok());
    assert_eq!(
        connect(relay.addr, Some(&counselor), latest + 1)
            .await
            .err(),
        Some(409)
    );
    relay.stop().await;
}
