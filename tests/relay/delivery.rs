//! Delivery under bad networks and bad peers: connections cut at random by
//! a loopback proxy, observed through the console's own websocket
//! supervisor; and a consumer that stops reading while others carry on.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use crisisdesk::console::Action;
use crisisdesk::console::app::ConnectionState;
use crisisdesk::console::connection::Supervisor;
use crisisdesk::console::frames::Frame;
use crisisdesk::protocol::Role;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A TCP proxy that cuts every connection after a random 50–400 ms while
/// `storm` is on, then passes traffic through.
async fn flaky_proxy(upstream: std::net::SocketAddr, storm: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calm_at = tokio::time::Instant::now() + storm;
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                if tokio::time::Instant::now() < calm_at {
                    let life = Duration::from_millis(fastrand::u64(50..400));
                    let _ = tokio::time::timeout(life, copy).await;
                    // Dropping both ends cuts the connection mid-stream.
                } else {
                    let _ = copy.await;
                }
            });
        }
    });
    addr
}

/// Runs the console's supervisor against `url`; returns the seqs of the
/// events it delivered to the UI, in order, once it has seen `last`, and
/// how many times it connected.
async fn observe(
    url: String,
    token: String,
    last: tokio::sync::watch::Receiver<i64>,
) -> (Vec<i64>, usize) {
    let (actions_tx, mut actions) = mpsc::channel(1024);
    let (_commands_tx, commands) = mpsc::channel(16);
    let supervisor = tokio::spawn(
        Supervisor {
            stream_urls: vec![url],
            token,
            tls: None,
            actions: actions_tx,
            commands,
            outbox: None,
        }
        .run(),
    );
    let mut seen = Vec::new();
    let mut connects = 0;
    loop {
        let target = *last.borrow();
        if target > 0 && seen.last() == Some(&target) {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(30), actions.recv()).await {
            Ok(Some(Action::Frame(frame))) => {
                if let Frame::Event(e, _) = *frame {
                    seen.push(e.seq);
                }
            }
            Ok(Some(Action::Connection(ConnectionState::Connected))) => connects += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("observer stalled at {:?} of {target}", seen.last()),
        }
    }
    supervisor.abort();
    (seen, connects)
}

#[tokio::test(flavor = "multi_thread")]
async fn observers_behind_a_cutting_proxy_see_every_event_once_in_order() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let proxy = flaky_proxy(relay.addr, Duration::from_secs(4)).await;
    let (last_tx, last_rx) = tokio::sync::watch::channel(0i64);

    let observers: Vec<_> = (0..3)
        .map(|i| {
            let url = format!("ws://{proxy}/v1/stream");
            let rx = last_rx.clone();
            let relay_store = relay.relay.store().clone();
            async move {
                let token = relay_store
                    .create_credential(&format!("observer-{i}"), Role::Counselor)
                    .await
                    .unwrap();
                observe(url, token, rx).await
            }
        })
        .map(tokio::spawn)
        .collect();

    // Alerts keep arriving through the storm.
    for i in 0..60 {
        post_alert(
            &relay,
            &producer,
            &alert(&format!("cut-{i}"), &format!("S{}", i % 11), "key"),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latest = relay.relay.store().latest_seq().await.unwrap();
    last_tx.send(latest).unwrap();

    let mut runs = Vec::new();
    for o in observers {
        runs.push(o.await.unwrap());
    }
    let expected: Vec<i64> = (1..=latest).collect();
    for (run, connects) in &runs {
        assert_eq!(run, &expected, "every event, once, in order");
        assert!(
            *connects > 3,
            "the proxy really cut connections ({connects} connects)"
        );
    }
    relay.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_stops_reading_slows_nobody_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let stuck_token = token(&db, "stuck", "counselor");
    let live_token = token(&db, "live", "counselor");
    let (mut relay, addr) =
        spawn_relay_with(&db, &["--rate-limit", "100000", "--rate-burst", "100000"]);

    // Connected, greeted, then never read again.
    let mut stuck = connect(addr, Some(&stuck_token), 0).await.unwrap();
    let hello = next_json(&mut stuck, Duration::from_secs(5)).await.unwrap();
    for _ in 0..hello["playbook_frames"].as_u64().unwrap_or(0) {
        next_json(&mut stuck, Duration::from_secs(5)).await.unwrap();
    }
    let mut live = connect(addr, Some(&live_token), 0).await.unwrap();
    until_quiet(&mut live).await;
    let before = rss_kib(relay.id());

    // Far more than the live buffer (1024 events) and the socket buffers
    // hold: about 6 MB of events the stuck console does not take.
    const N: usize = 3000;
    let reader = tokio::spawn(async move {
        let evs = alert_events(&mut live, N).await;
        (evs, live)
    });
    // Posted by eight producers at once: the stuck console answers no
    // pings, and the relay drops a connection silent for 45 s, so the
    // flow must be over well before that even on a slow debug build.
    let summary = "持续情绪低落，".repeat(100);
    const PRODUCERS: usize = 8;
    let mut posting = Vec::new();
    for p in 0..PRODUCERS {
        let (producer, summary) = (producer.clone(), summary.clone());
        posting.push(tokio::spawn(async move {
            for i in (p..N).step_by(PRODUCERS) {
                let mut a = alert(&format!("slow-{i}"), &format!("S{i}"), "general");
                a["summary"] = summary.clone().into();
                let r = post_alert_to(addr, &producer, &a).await;
                assert_eq!(r.status, 201);
            }
        }));
    }
    for p in posting {
        p.await.unwrap();
    }
    let (evs, _live) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the live console is not held up by the stuck one")
        .unwrap();
    assert_eq!(evs.len(), N);
    let after = rss_kib(relay.id());
    assert!(
        after < before + 64 * 1024,
        "relay memory grew from {before} KiB to {after} KiB while a consumer was stuck"
    );

    // When the stuck console reads again it gets everything, in order.
    let mut alerts = BTreeSet::new();
    let mut last = 0;
    while alerts.len() < N {
        let e = next_json(&mut stuck, Duration::from_secs(30))
            .await
            .expect("catches up");
        let seq = e["seq"].as_i64().unwrap();
        assert_eq!(seq, last + 1, "no gap, no repeat");
        last = seq;
        if e["type"] == "alert" {
            alerts.insert(e["alert"]["id"].as_str().unwrap().to_string());
        }
    }
    relay.kill().unwrap();
    let _ = relay.wait();
}

async fn post_alert_to(addr: std::net::SocketAddr, token: &str, body: &serde_json::Value) -> Reply {
    post_raw(
        format!("http://{addr}/v1/alerts"),
        Some(token.to_string()),
        Some("application/json"),
        serde_json::to_vec(body).unwrap(),
    )
    .await
}
