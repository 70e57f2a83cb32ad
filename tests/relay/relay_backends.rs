//! The real binary on every backend: `token`, `relay` and `audit` with
//! `--db sqlite:…` and, when `CRISISDESK_TEST_PG` names a server, with
//! `--db postgres://…` (a fresh database each). The relay listens on a
//! real socket; a real websocket client sees what a real HTTP client posts.

use crate::backends;
use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, connect, next_json, post_raw, result_for, send_command, spawn_relay, token};
use serde_json::{Value, json};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run crisisdesk");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn post(addr: std::net::SocketAddr, token: &str, alert: &Value) -> common::Reply {
    post_raw(
        format!("http://{addr}/v1/alerts"),
        Some(token.to_string()),
        Some("application/json"),
        serde_json::to_vec(alert).unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_accepts_an_alert_and_streams_it_to_a_websocket_client_on_every_backend() {
    for db in backends::databases().await {
        let label = db.label;
        // Tokens made by the CLI before the relay runs (the relay's pool
        // and the CLI's are separate clients of one database).
        let feed = token(&db.url, "feed", "producer");
        let wang = token(&db.url, "wang", "counselor");
        let (mut relay, addr) = spawn_relay(&db.url);

        let mut ws = connect(addr, Some(&wang), 0).await.unwrap();
        let hello = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(hello["type"], "session", "{label}");
        assert_eq!(hello["latest_seq"], 0, "{label}");
        while next_json(&mut ws, Duration::from_millis(300))
            .await
            .is_some()
        {}

        let alert = common::alert("a-1", "S1", "high");
        let reply = post(addr, &feed, &alert).await;
        assert_eq!(reply.status, 201, "{label}: {}", reply.body);
        let seq = reply.body["seq"].as_i64().unwrap();
        let case_id = reply.body["case_id"].as_str().unwrap().to_string();
        let event = next_json(&mut ws, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{label}: no event within 5 s"));
        assert_eq!(event["type"], "alert", "{label}");
        assert_eq!(event["seq"], seq, "{label}");
        assert_eq!(event["case_id"], case_id.as_str(), "{label}");
        let checklist = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(checklist["type"], "checklist_added", "{label}");
        assert_eq!(checklist["seq"], seq + 1, "{label}");

        // A retry is a duplicate: same seq, nothing streamed.
        let again = post(addr, &feed, &alert).await;
        assert_eq!(again.status, 200, "{label}: {}", again.body);
        assert_eq!(again.body["seq"], seq, "{label}");
        assert!(
            next_json(&mut ws, Duration::from_millis(300))
                .await
                .is_none(),
            "{label}"
        );

        // A console command through the relay's writer.
        send_command(
            &mut ws,
            json!({"type": "command", "id": "k1", "op": "acknowledge", "case_id": case_id}),
        )
        .await;
        let (result, _) = result_for(&mut ws, "k1").await;
        assert_eq!(result["ok"], true, "{label}: {result}");
        let ack = next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(ack["type"], "case_acknowledged", "{label}");
        assert_eq!(ack["seq"], seq + 2, "{label}");

        // The student record, on both backends.
        send_command(
            &mut ws,
            json!({"type": "command", "id": "s1", "op": "student", "case_id": case_id}),
        )
        .await;
        let (result, _) = result_for(&mut ws, "s1").await;
        assert_eq!(result["ok"], true, "{label}: {result}");

        // A console that resumes from 0 gets the same stream, dense.
        let mut late = connect(addr, Some(&wang), 0).await.unwrap();
        let seqs: Vec<i64> = common::until_quiet(&mut late)
            .await
            .iter()
            .filter_map(|e| e["seq"].as_i64())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "{label}");

        // The district view: the open case, its school, on both.
        let bureau = token(&db.url, "bureau", "district");
        let url = format!("http://{addr}/v1/district");
        let (status, body) = tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut resp = agent
                .get(&url)
                .header("Authorization", &format!("Bearer {bureau}"))
                .call()
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.body_mut().read_to_string().unwrap())
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{label}: {body}");
        assert!(body.contains("第一中学"), "{label}: {body}");

        drop(ws);
        drop(late);
        relay.kill().unwrap();
        let _ = relay.wait();

        // The audit trail verifies through the CLI, and its head moved.
        let (code, out, err) = run(&["audit", "verify", "--db", &db.url]);
        assert_eq!(code, 0, "{label}: {out}{err}");
        let (code, head, err) = run(&["audit", "head", "--db", &db.url]);
        assert_eq!(code, 0, "{label}: {err}");
        let head_seq: i64 = head.split_whitespace().next().unwrap().parse().unwrap();
        assert!(head_seq >= 4, "{label}: {head}");

        // The case's review and the period report, on both backends.
        let (code, review, err) = run(&["review", &case_id, "--db", &db.url]);
        assert_eq!(code, 0, "{label}: {err}");
        assert!(review.contains(&case_id), "{label}: {review}");
        let (code, _, err) = run(&[
            "report",
            "--db",
            &db.url,
            "--from",
            "2026-01-01",
            "--to",
            "2027-12-31",
        ]);
        assert_eq!(code, 0, "{label}: {err}");

        let (code, district, err) = run(&["district", "--db", &db.url, "--json"]);
        assert_eq!(code, 0, "{label}: {err}");
        assert!(district.contains("第一中学"), "{label}: {district}");

        // token list / revoke on the same database.
        let (code, list, err) = run(&["token", "list", "--db", &db.url]);
        assert_eq!(code, 0, "{label}: {err}");
        assert!(
            list.contains("feed") && list.contains("wang"),
            "{label}: {list}"
        );
        let (code, _, err) = run(&["token", "revoke", "--db", &db.url, "--id", "1"]);
        assert_eq!(code, 0, "{label}: {err}");
    }
}

/// A screening day on every backend: a plan, a PHQ-9 export imported
/// straight into the store (`--db`, no relay), then the plan's counts, the
/// statistics export and a flagged student's record. PostgreSQL gives the
/// same figures and the same record as SQLite, from the same file.
#[test]
fn a_screening_import_reads_the_same_on_every_backend() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dbs = runtime.block_on(backends::databases());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("phq9.csv");
    // 30 students; answers cycle so that totals cover every band, and every
    // fifth student answers item 9 above 0 (a crisis route).
    let mut csv = String::from("学籍号,学校,年级,班级,作答时间");
    for q in 1..=9 {
        csv.push_str(&format!(",第{q}题"));
    }
    csv.push('\n');
    for i in 1..=30 {
        csv.push_str(&format!(
            "P{i:04},第一中学,高一,{}班,2026-11-02 10:{:02}:00",
            i % 4 + 1,
            i
        ));
        for q in 1..=9 {
            let answer = if q == 9 {
                u32::from(i % 5 == 0)
            } else {
                (i + q) % 4
            };
            csv.push_str(&format!(",{answer}"));
        }
        csv.push('\n');
    }
    std::fs::write(&file, csv).unwrap();
    let mut seen = Vec::new();
    for db in &dbs {
        let label = db.label;
        let (code, _, err) = run(&[
            "screening",
            "plan",
            "create",
            "--db",
            &db.url,
            "--id",
            "t1",
            "--name",
            "11月复测",
            "--scale",
            "phq9",
            "--schools",
            "第一中学",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ]);
        assert_eq!(code, 0, "{label}: {err}");
        let (code, out, err) = run(&[
            "screening",
            "import",
            file.to_str().unwrap(),
            "--plan",
            "t1",
            "--db",
            &db.url,
        ]);
        assert_eq!(code, 0, "{label}: {out}{err}");
        let (code, plan, err) = run(&["screening", "plan", "show", "t1", "--db", &db.url]);
        assert_eq!(code, 0, "{label}: {err}");
        assert!(plan.contains("30"), "{label}: 30 screened: {plan}");
        let (code, stats, err) = run(&[
            "stats",
            "--db",
            &db.url,
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-01",
            "--format",
            "csv",
        ]);
        assert_eq!(code, 0, "{label}: {err}");
        let (code, record, err) = run(&[
            "student", "show", "P0005", "--db", &db.url, "--format", "json",
        ]);
        assert_eq!(code, 0, "{label}: {err}");
        let record: serde_json::Value = serde_json::from_str(&record).unwrap();
        assert!(
            record.to_string().contains("phq9"),
            "{label}: the screening is on the record: {record}"
        );
        seen.push((label, out, plan, stats, record));
    }
    if let [
        (_, out_a, plan_a, stats_a, _),
        (_, out_b, plan_b, stats_b, _),
    ] = &seen[..]
    {
        // The import's summary without its timings line, which differs.
        let summary = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.contains(" ms") && !l.contains(" s ") && !l.contains("用时"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(summary(out_b), summary(out_a));
        assert_eq!(plan_b, plan_a);
        assert_eq!(stats_b, stats_a);
    }
}
