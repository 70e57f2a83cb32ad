//! A full disk: the relay answers 503 `store_unavailable` to every write it
//! cannot commit, acknowledges nothing that is not stored, and serves again
//! by itself once there is room. Runs the real relay binary on a
//! size-limited tmpfs, which needs permission to mount (root, as on the
//! project's CI machine); without it the test says so and checks nothing.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;

const UNLIMITED: &[&str] = &["--rate-limit", "100000", "--rate-burst", "100000"];

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_with_503_loses_nothing_acked_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(dir.path())
        .output();
    if !matches!(&mounted, Ok(out) if out.status.success()) {
        eprintln!("disk_full: cannot mount a small tmpfs here (needs root); not run");
        return;
    }
    let _mount = Mount(dir.path().to_path_buf());
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let (mut relay, addr) = spawn_relay_with(&db, UNLIMITED);
    let url = format!("http://{addr}/v1/alerts");

    // Fill the disk but for a little room.
    let filler = dir.path().join("filler");
    let free = fs_free(dir.path());
    std::fs::write(
        &filler,
        vec![0u8; (free.saturating_sub(400 * 1024)) as usize],
    )
    .unwrap();

    let mut acked = Vec::new();
    let mut refused = 0;
    let mut i = 0;
    while refused < 5 && i < 2000 {
        let mut body = alert(&format!("full-{i}"), &format!("S{i}"), "key");
        body["summary"] = "持续情绪低落，".repeat(150).into();
        let reply = post_raw(
            url.clone(),
            Some(producer.clone()),
            Some("application/json"),
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        match reply.status {
            201 => acked.push((format!("full-{i}"), reply.body["seq"].as_i64().unwrap())),
            503 => {
                assert_eq!(
                    reply.body["error"]["code"], "store_unavailable",
                    "{:?}",
                    reply.body
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
        i += 1;
    }
    assert!(refused >= 5, "the disk filled up ({} acked)", acked.len());
    assert!(
        !acked.is_empty(),
        "some alerts fitted before the disk was full"
    );

    // Room again: the same relay process serves without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = None;
    for attempt in 0..20 {
        let reply = post_alert_to(
            &url,
            &producer,
            &alert(&format!("after-{attempt}"), "S-after", "key"),
        )
        .await;
        if reply.status == 201 {
            recovered = Some(reply.body["seq"].as_i64().unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered = recovered.expect("the relay serves again once there is room");

    // Every acknowledged alert is there once, at its seq; the stream is dense.
    let mut ws = connect(addr, Some(&counselor), 0)
        .await
        .unwrap_or_else(|status| panic!("stream refused with {status} after recovery"));
    let events = until_quiet(&mut ws).await;
    let seqs = seqs(&events);
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "dense stream"
    );
    let stored: std::collections::HashMap<&str, i64> = events
        .iter()
        .filter(|e| e["type"] == "alert")
        .map(|e| {
            (
                e["alert"]["id"].as_str().unwrap(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    eprintln!(
        "acked {} refused {refused}; {} events, recovered at {recovered}; stored {:?}",
        acked.len(),
        events.len(),
        stored.iter().take(5).collect::<Vec<_>>()
    );
    for (id, seq) in &acked {
        assert_eq!(
            stored.get(id.as_str()),
            Some(seq),
            "{id} acknowledged but not stored"
        );
    }
    assert!(stored.values().any(|s| *s == recovered));
    relay.kill().unwrap();
    let _ = relay.wait();

    let verify = Command::new(BIN)
        .args(["audit", "verify", "--db", &db])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

async fn post_alert_to(url: &str, token: &str, body: &serde_json::Value) -> Reply {
    post_raw(
        url.to_string(),
        Some(token.to_string()),
        Some("application/json"),
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// Free bytes on the filesystem holding `path` (from `df`).
fn fs_free(path: &std::path::Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}
