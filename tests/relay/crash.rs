//! Nothing acknowledged is ever lost: a real relay process is killed with
//! SIGKILL at random moments while two producers post and retry (same id,
//! as the contract allows): one alert at a time, and in batches of ten
//! through `POST /v1/alerts/batch`, so group commits mix both. After every round it restarts on the same
//! database; at the end every alert that got a 201 (or a 200 duplicate) is
//! there exactly once, the stream is dense, and the audit chain verifies.
//!
//! Rounds: `CRISISDESK_CRASH_ROUNDS` (default 50, as CI runs it).

use crate::common;

/// This test is about durability, not rate limits.
const UNLIMITED: &[&str] = &["--rate-limit", "100000", "--rate-burst", "100000"];

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;

/// One producer posting alerts on a thread, retrying each until the relay
/// answers, and stopping when told to.
fn post_until_stopped(
    port_url: String,
    token: String,
    ids: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<(String, i64)>, Vec<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Generous: a killed relay fails the request at once anyway; a slow
        // commit on a loaded machine must not look like a lost answer.
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut acked = Vec::new();
    let mut pending = Vec::new();
    for id in ids {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            pending.push(id);
            continue;
        }
        let body = serde_json::to_vec(&alert(&id, &format!("S{}", id.len() % 9), "key")).unwrap();
        let answer = agent
            .post(&format!("{port_url}/v1/alerts"))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(&body[..]);
        match answer {
            // A well-behaved producer waits as told and sends it again.
            Ok(resp) if resp.status() == 429 => {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                std::thread::sleep(Duration::from_secs(wait));
                pending.push(id);
            }
            Ok(mut resp) if resp.status() == 201 || resp.status() == 200 => {
                let v: serde_json::Value =
                    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
                acked.push((id, v["seq"].as_i64().unwrap()));
            }
            // Killed mid-request, or refused while dying: not acknowledged,
            // so the producer keeps it and sends it again later.
            _ => pending.push(id),
        }
    }
    (acked, pending)
}

/// Like [`post_until_stopped`], ten alerts per `POST /v1/alerts/batch`.
/// A batch with no answer is retried whole; its alerts already stored then
/// answer `duplicate` at their first seq.
fn post_batches_until_stopped(
    port_url: String,
    token: String,
    ids: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<(String, i64)>, Vec<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Generous: a killed relay fails the request at once anyway; a slow
        // commit on a loaded machine must not look like a lost answer.
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut acked = Vec::new();
    let mut pending = Vec::new();
    for chunk in ids.chunks(10) {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            pending.extend_from_slice(chunk);
            continue;
        }
        let alerts: Vec<serde_json::Value> = chunk
            .iter()
            .map(|id| alert(id, &format!("S{}", id.len() % 9), "key"))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "alerts": alerts })).unwrap();
        let answer = agent
            .post(&format!("{port_url}/v1/alerts/batch"))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(&body[..]);
        match answer {
            Ok(mut resp) if resp.status() == 200 => {
                let v: serde_json::Value =
                    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
                for (id, result) in chunk.iter().zip(v["results"].as_array().unwrap()) {
                    assert!(
                        result["status"] == "created" || result["status"] == "duplicate",
                        "{id}: {result}"
                    );
                    acked.push((id.clone(), result["seq"].as_i64().unwrap()));
                }
            }
            _ => pending.extend_from_slice(chunk),
        }
    }
    (acked, pending)
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_alerts_survive_random_sigkills() {
    let rounds: usize = std::env::var("CRISISDESK_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");

    let mut acknowledged: BTreeMap<String, i64> = BTreeMap::new();
    let mut pending: Vec<String> = Vec::new();
    let mut pending_batched: Vec<String> = Vec::new();
    let mut next = 0;
    for round in 0..rounds {
        let (mut relay, addr) = spawn_relay_with(&db, UNLIMITED);
        let mut ids: Vec<String> = std::mem::take(&mut pending);
        ids.extend((0..40).map(|_| {
            next += 1;
            format!("crash-{next}")
        }));
        let mut batched: Vec<String> = std::mem::take(&mut pending_batched);
        batched.extend((0..40).map(|_| {
            next += 1;
            format!("crash-batch-{next}")
        }));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poster = {
            let (url, token, stop) = (format!("http://{addr}"), producer.clone(), stop.clone());
            std::thread::spawn(move || post_until_stopped(url, token, ids, stop))
        };
        let batch_poster = {
            let (url, token, stop) = (format!("http://{addr}"), producer.clone(), stop.clone());
            std::thread::spawn(move || post_batches_until_stopped(url, token, batched, stop))
        };
        // Kill at a random moment, often mid-request.
        std::thread::sleep(Duration::from_millis(fastrand::u64(5..120)));
        relay.kill().expect("SIGKILL");
        relay.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut acked, left) = poster.join().unwrap();
        let (acked_batched, left_batched) = batch_poster.join().unwrap();
        acked.extend(acked_batched);
        for (id, seq) in acked {
            if let Some(before) = acknowledged.insert(id.clone(), seq) {
                assert_eq!(before, seq, "round {round}: {id} acknowledged at two seqs");
            }
        }
        pending = left;
        pending_batched = left_batched;
    }

    // Restart once more and deliver what is still pending.
    let (mut relay, addr) = spawn_relay_with(&db, UNLIMITED);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut acked, left) = post_until_stopped(
        format!("http://{addr}"),
        producer.clone(),
        pending,
        stop.clone(),
    );
    assert!(left.is_empty(), "a healthy relay takes every retry");
    let (acked_batched, left) = post_batches_until_stopped(
        format!("http://{addr}"),
        producer.clone(),
        pending_batched,
        stop,
    );
    assert!(left.is_empty(), "a healthy relay takes every batch retry");
    acked.extend(acked_batched);
    for (id, seq) in acked {
        if let Some(before) = acknowledged.insert(id.clone(), seq) {
            assert_eq!(before, seq, "{id} acknowledged at two seqs");
        }
    }
    assert!(
        acknowledged.len() > rounds,
        "the test did post: {}",
        acknowledged.len()
    );

    // Every acknowledged alert is stored exactly once, at its seq, and the
    // stream has no gaps.
    let mut ws = connect(addr, Some(&counselor), 0).await.unwrap();
    let events = until_quiet(&mut ws).await;
    let seqs = seqs(&events);
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "dense stream"
    );
    let mut streamed: BTreeMap<String, i64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "alert") {
        let id = e["alert"]["id"].as_str().unwrap().to_string();
        assert!(
            streamed
                .insert(id.clone(), e["seq"].as_i64().unwrap())
                .is_none(),
            "{id} stored twice"
        );
    }
    for (id, seq) in &acknowledged {
        assert_eq!(
            streamed.get(id),
            Some(seq),
            "acknowledged {id} missing or moved"
        );
    }
    let unacknowledged: BTreeSet<_> = streamed
        .keys()
        .filter(|k| !acknowledged.contains_key(*k))
        .collect();
    assert!(
        unacknowledged.is_empty(),
        "every stored alert was eventually acknowledged by a retry: {unacknowledged:?}"
    );
    relay.kill().unwrap();
    let _ = relay.wait();

    let verify = std::process::Command::new(BIN)
        .args(["audit", "verify", "--db", &db])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
