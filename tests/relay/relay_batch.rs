//! `POST /v1/alerts/batch` and group commit, over real sockets: one answer
//! per alert in order, bad alerts refused by themselves, re-posts answered
//! as duplicates, and many producers at once leaving a dense stream with
//! every acknowledged alert stored once.

use crate::common;

use common::*;
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

async fn post_batch(relay: &TestRelay, token: &str, alerts: Vec<Value>) -> Reply {
    post_raw(
        relay.url("/v1/alerts/batch"),
        Some(token.to_string()),
        Some("application/json"),
        serde_json::to_vec(&json!({ "alerts": alerts })).unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answers_each_alert_in_order_and_refuses_only_the_bad_ones() {
    let relay = TestRelay::start().await;
    let producer = relay.token("screening", Role::Producer).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();

    let mut missing_student = alert("b-2", "S2", "key");
    missing_student.as_object_mut().unwrap().remove("student");
    let reply = post_batch(
        &relay,
        &producer,
        vec![
            alert("b-1", "S1", "high"),
            missing_student,
            alert("b-3", "S3", "general"),
            // Joins the case b-1 opened a moment ago, in the same batch.
            alert("b-4", "S1", "key"),
            json!("not an alert"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["status"], "created");
    assert_eq!(results[1]["status"], "refused");
    assert_eq!(results[1]["error"]["code"], "invalid_field");
    assert_eq!(results[1]["error"]["field"], "alerts[1]");
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("student"),
        "{}",
        results[1]
    );
    assert_eq!(results[2]["status"], "created");
    assert_eq!(results[3]["status"], "created");
    assert_eq!(
        results[3]["case_id"], results[0]["case_id"],
        "same student, same case"
    );
    assert_ne!(results[2]["case_id"], results[0]["case_id"]);
    assert_eq!(results[4]["status"], "refused");
    assert_eq!(results[4]["error"]["field"], "alerts[4]");

    // Each created alert was streamed at the seq it was answered with.
    let streamed = alert_events(&mut ws, 3).await;
    let ids: Vec<&str> = streamed
        .iter()
        .map(|e| e["alert"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b-1", "b-3", "b-4"]);
    for (event, result) in streamed.iter().zip([&results[0], &results[2], &results[3]]) {
        assert_eq!(event["seq"], result["seq"]);
    }
    assert_eq!(
        streamed[2]["case"]["level"], "high",
        "a lower alert never lowers the case"
    );
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 3);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn posting_a_batch_again_creates_nothing_and_a_changed_alert_is_a_conflict() {
    let relay = TestRelay::start().await;
    let producer = relay.token("screening", Role::Producer).await;
    let batch: Vec<Value> = (0..50)
        .map(|i| alert(&format!("r-{i}"), &format!("S{i}"), "key"))
        .collect();
    let first = post_batch(&relay, &producer, batch.clone()).await;
    assert_eq!(first.status, 200);
    let latest = relay.relay.store().latest_seq().await.unwrap();

    let mut again = batch.clone();
    again[7]["level"] = json!("high");
    let second = post_batch(&relay, &producer, again).await;
    assert_eq!(second.status, 200);
    let (a, b) = (
        first.body["results"].as_array().unwrap(),
        second.body["results"].as_array().unwrap(),
    );
    for i in 0..50 {
        if i == 7 {
            assert_eq!(b[i]["status"], "refused");
            assert_eq!(b[i]["error"]["code"], "id_conflict");
        } else {
            assert_eq!(b[i]["status"], "duplicate", "{}", b[i]);
            assert_eq!(b[i]["seq"], a[i]["seq"]);
            assert_eq!(b[i]["case_id"], a[i]["case_id"]);
        }
    }
    assert_eq!(
        relay.relay.store().latest_seq().await.unwrap(),
        latest,
        "nothing new"
    );
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 50);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_batch_is_refused_whole_with_the_reason() {
    let relay = TestRelay::start().await;
    let producer = relay.token("screening", Role::Producer).await;
    let url = relay.url("/v1/alerts/batch");
    let send = |body: &'static str| {
        post_raw(
            url.clone(),
            Some(producer.clone()),
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
    };
    let not_json = send("{\"alerts\": [").await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.body["error"]["code"], "malformed_json");
    let no_array = send("{\"rows\": []}").await;
    assert_eq!(no_array.status, 400);
    assert_eq!(no_array.body["error"]["field"], "alerts");
    let empty = send("{\"alerts\": []}").await;
    assert_eq!(empty.status, 400);
    assert!(
        empty.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 1000")
    );
    let too_many = post_batch(
        &relay,
        &producer,
        (0..1001)
            .map(|i| alert(&format!("t-{i}"), "S", "key"))
            .collect(),
    )
    .await;
    assert_eq!(too_many.status, 400);
    assert!(
        too_many.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1001")
    );
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 0);

    let reviewer = relay.token("audit", Role::Reviewer).await;
    let forbidden = post_batch(&relay, &reviewer, vec![alert("x", "S", "key")]).await;
    assert_eq!(forbidden.status, 403);
    relay.stop().await;
}

/// Many producers at once share commits; the outcome must be what posting
/// them one by one gives: every acknowledged alert stored once at the seq
/// it was answered with, and the stream dense from 1.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_producers_and_batches_leave_a_dense_stream_with_every_ack_stored_once() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let mut posts = Vec::new();
    for p in 0..8 {
        let url = relay.url("/v1/alerts");
        let token = producer.clone();
        posts.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..20 {
                // Producers share students, so cases are joined across
                // producers inside one group.
                let body = alert(&format!("c{p}-{i}"), &format!("S{}", i % 5), "key");
                let reply = post_raw(
                    url.clone(),
                    Some(token.clone()),
                    Some("application/json"),
                    serde_json::to_vec(&body).unwrap(),
                )
                .await;
                assert_eq!(reply.status, 201, "{:?}", reply.body);
                acked.push((format!("c{p}-{i}"), reply.body["seq"].as_i64().unwrap()));
            }
            acked
        }));
    }
    let batch: Vec<Value> = (0..200)
        .map(|i| alert(&format!("cb-{i}"), &format!("S{}", i % 7), "high"))
        .collect();
    let batch_reply = post_batch(&relay, &producer, batch).await;
    let mut acked: Vec<(String, i64)> = Vec::new();
    for post in posts {
        acked.extend(post.await.unwrap());
    }
    for (i, r) in batch_reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(r["status"], "created");
        acked.push((format!("cb-{i}"), r["seq"].as_i64().unwrap()));
    }
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 360);

    let counselor = relay.token("wang", Role::Counselor).await;
    let mut ws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    let events = until_quiet(&mut ws).await;
    let seqs = seqs(&events);
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "dense from 1"
    );
    let by_seq: std::collections::HashMap<i64, &Value> = events
        .iter()
        .map(|e| (e["seq"].as_i64().unwrap(), e))
        .collect();
    for (id, seq) in &acked {
        let event = by_seq[seq];
        assert_eq!(event["type"], "alert");
        assert_eq!(event["alert"]["id"], id.as_str(), "seq {seq}");
    }
    // Seven students at most (ids S0..S6): one open case each.
    let cases: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "alert")
        .map(|e| e["case_id"].as_str().unwrap())
        .collect();
    assert_eq!(cases.len(), 7);
    relay.stop().await;
}
