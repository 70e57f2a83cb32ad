//! `crisisdesk drill run` (the real binary) against a real relay on a real
//! socket: every inject arrives marked as a drill, injects for one student
//! join one case, a broken file sends nothing, failures retry and then name
//! the inject, and a drill never touches a real case.

use crate::common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use common::{BIN, TestRelay};
use crisisdesk::drill::DrillMark;
use crisisdesk::playbook;
use crisisdesk::protocol::{Alert, Role};
use crisisdesk::relay::{self, Relay};
use crisisdesk::store::Store;
use serde_json::Value;

/// Runs the binary off the runtime's threads so the in-process relay keeps
/// serving while it works.
async fn crisisdesk(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env_remove("CRISISDESK_TOKEN")
            .output()
            .expect("run crisisdesk")
    })
    .await
    .unwrap()
}

async fn drill_run(relay_url: &str, token: &str, file: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "drill", "run", file, "--relay", relay_url, "--token", token, "--speed", "3600",
    ];
    args.extend_from_slice(extra);
    crisisdesk(&args).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every alert event on the relay's stream, as (event, parsed alert).
async fn alerts_on_stream(relay: &TestRelay) -> Vec<(Value, Alert)> {
    let token = relay.token("watcher", Role::Counselor).await;
    let mut ws = common::connect(relay.addr, Some(&token), 0)
        .await
        .expect("stream opens");
    common::until_quiet(&mut ws)
        .await
        .into_iter()
        .filter(|e| e["type"] == "alert")
        .map(|e| {
            let alert: Alert = serde_json::from_value(e["alert"].clone()).unwrap();
            (e, alert)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_inject_arrives_as_an_exercise_and_one_student_is_one_case() {
    let relay = TestRelay::start().await;
    let token = relay.token("drill-runner", Role::Producer).await;
    let out = drill_run(
        &relay.url(""),
        &token,
        "night_treehole_imminent",
        &["--exercise-id", "night-test-1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let alerts = alerts_on_stream(&relay).await;
    let ids: Vec<&str> = alerts.iter().map(|(_, a)| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "night-test-1-1",
            "night-test-1-2",
            "night-test-1-3",
            "night-test-1-4"
        ]
    );
    let injects: Vec<String> = alerts
        .iter()
        .map(|(_, a)| DrillMark::of(a).unwrap().inject)
        .collect();
    assert_eq!(
        injects,
        [
            "treehole_post",
            "guardian_unreachable",
            "second_alert",
            "found_on_roof"
        ]
    );
    for (event, alert) in &alerts {
        assert_eq!(event["alert"]["status"], "exercise");
        assert_eq!(event["alert"]["exercise_id"], "night-test-1");
        assert_eq!(event["case"]["alert_status"], "exercise");
        assert_eq!(event["case"]["exercise_id"], "night-test-1");
        assert_eq!(alert.student.id, "DRILL-N2401");
        let mark = DrillMark::of(alert).unwrap();
        assert_eq!(mark.scenario, "night_treehole_imminent");
        assert_eq!(mark.speed, 3600.0);
    }
    let case = alerts[0].0["case_id"].as_str().unwrap();
    assert!(
        alerts.iter().all(|(e, _)| e["case_id"] == case),
        "the guardian development and the second alert join the first case"
    );
    assert_eq!(alerts.last().unwrap().0["case"]["alert_count"], 4);

    // Progress names injects, seqs and cases; never the student or the text.
    // (The stream itself withholds the name from every role, so take the
    // names from the scenario file.)
    let library = playbook::shipped::load(None).unwrap();
    let scenario = crisisdesk::drill::find("night_treehole_imminent", None, &library).unwrap();
    let names: Vec<String> = (0..scenario.injects.len())
        .filter_map(|i| {
            scenario
                .alert(i, "x".into(), "x", chrono::Utc::now().fixed_offset(), 1.0)
                .student
                .name
        })
        .collect();
    assert!(!names.is_empty());
    let printed = stdout(&out);
    for name in &names {
        assert!(!printed.contains(name.as_str()), "{printed}");
    }
    for (event, alert) in &alerts {
        assert_eq!(event["withheld"]["fields"][0], "student.name");
        let line = format!("seq {:<6} case {case}", event["seq"].as_i64().unwrap());
        assert!(printed.contains(&line), "{line:?} in\n{printed}");
        let summary = alert.summary.as_deref().unwrap();
        let fragment: String = summary.chars().take(12).collect();
        assert!(!printed.contains(&fragment), "{printed}");
    }
    assert!(printed.contains("4 of 4 inject(s) delivered"), "{printed}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_opens_one_case_per_student_under_a_default_exercise_id() {
    let relay = TestRelay::start().await;
    let token = relay.token("drill-runner", Role::Producer).await;
    let out = drill_run(&relay.url(""), &token, "screening_batch_key_level", &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let alerts = alerts_on_stream(&relay).await;
    assert_eq!(alerts.len(), 6);
    let exercise = alerts[0].1.exercise_id.clone().unwrap();
    let stamp = exercise
        .strip_prefix("screening_batch_key_level-")
        .unwrap_or_else(|| panic!("default id names the scenario: {exercise}"));
    assert_eq!(stamp.len(), "20261122T154005Z".len(), "{exercise}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
        "{exercise}"
    );
    let mut cases_by_student = std::collections::BTreeMap::new();
    for (event, alert) in &alerts {
        assert_eq!(alert.exercise_id.as_deref(), Some(exercise.as_str()));
        assert_eq!(event["alert"]["status"], "exercise");
        cases_by_student
            .entry(alert.student.id.clone())
            .or_insert_with(Vec::new)
            .push(event["case_id"].as_str().unwrap().to_string());
    }
    assert_eq!(cases_by_student.len(), 5, "five students");
    for (student, cases) in &cases_by_student {
        assert!(
            cases.windows(2).all(|w| w[0] == w[1]),
            "{student}: {cases:?}"
        );
    }
    let distinct: std::collections::BTreeSet<_> =
        cases_by_student.values().map(|c| &c[0]).collect();
    assert_eq!(distinct.len(), 5, "each student has a case of their own");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_scenario_sends_nothing() {
    let relay = TestRelay::start().await;
    let token = relay.token("drill-runner", Role::Producer).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("night_treehole_imminent.toml");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/playbooks/drills/night_treehole_imminent.toml"
    ))
    .unwrap();
    // The last inject is broken; the first three are fine, and still must
    // not be sent.
    let broken = shipped.replace("at = \"9m\"", "at = \"9 minutes\"");
    assert_ne!(broken, shipped);
    let line = broken
        .lines()
        .position(|l| l == "at = \"9 minutes\"")
        .unwrap()
        + 1;
    std::fs::write(&file, broken).unwrap();

    let out = drill_run(&relay.url(""), &token, file.to_str().unwrap(), &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:{line}: duration `9 minutes` has unknown unit ` `",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 0);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_never_joins_a_real_case_of_the_same_student() {
    let relay = TestRelay::start().await;
    let token = relay.token("drill-runner", Role::Producer).await;
    let real = common::post_alert(
        &relay,
        &token,
        &common::alert("real-1", "DRILL-N2401", "high"),
    )
    .await;
    assert_eq!(real.status, 201);
    let real_case = real.body["case_id"].as_str().unwrap().to_string();

    for exercise in ["night-a", "night-b"] {
        let out = drill_run(
            &relay.url(""),
            &token,
            "night_treehole_imminent",
            &["--exercise-id", exercise],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let alerts = alerts_on_stream(&relay).await;
    assert_eq!(alerts.len(), 9);
    let case_of = |exercise: &str| -> std::collections::BTreeSet<String> {
        alerts
            .iter()
            .filter(|(_, a)| a.exercise_id.as_deref() == Some(exercise))
            .map(|(e, _)| e["case_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (case_of("night-a"), case_of("night-b"));
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    assert!(!a.contains(&real_case) && !b.contains(&real_case));
    assert_ne!(a, b, "each drill has its own cases");

    let store = relay.relay.store();
    let real = store.case(&real_case).await.unwrap().unwrap();
    assert_eq!(real.alert_count, 1, "the real case saw only the real alert");
    assert_eq!(real.alert_status.as_str(), "actual");
    assert_eq!(real.exercise_id, None);
    relay.stop().await;
}

/// An address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_relay_fails_naming_the_inject() {
    let addr = free_addr();
    let out = drill_run(
        &format!("http://{addr}"),
        "cdk_nothing",
        "violence_threat_cstag",
        &["--retries", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "inject #1 `class_chat_threat` could not be delivered after 2 attempt(s): no answer from"
        ),
        "{err}"
    );
    assert!(
        stdout(&out).contains("retrying in 0.5s"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_comes_up_late_gets_every_inject_once() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite:{}",
        dir.path().join("late.sqlite").display()
    ))
    .await
    .unwrap();
    let token = store
        .create_credential("drill-runner", Role::Producer)
        .await
        .unwrap();
    let url = format!("http://{addr}");
    let run = tokio::spawn(async move {
        drill_run(&url, &token, "night_treehole_imminent", &["--retries", "8"]).await
    });

    // The first attempts find nothing listening; then the relay starts.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let relay = Relay::new(store, playbook::shipped::load(None).unwrap());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relay::serve(listener, relay.clone(), async {
        let _ = stopped.await;
    }));

    let out = run.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("retrying"), "{printed}");
    assert!(printed.contains("4 of 4 inject(s) delivered"), "{printed}");
    assert_eq!(relay.store().alert_count().await.unwrap(), 4);
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_stop_at_once_and_say_why() {
    let relay = TestRelay::start().await;
    let producer = relay.token("drill-runner", Role::Producer).await;
    let reviewer = relay.token("reader", Role::Reviewer).await;

    let out = drill_run(&relay.url(""), &reviewer, "night_treehole_imminent", &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("inject #1 `treehole_post` was refused by the relay: HTTP 403"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("retrying"));

    let out = drill_run(&relay.url(""), "cdk_wrong", "night_treehole_imminent", &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));

    // Re-using an exercise id would post different alerts under old ids.
    let again = ["--exercise-id", "same"];
    let first = drill_run(&relay.url(""), &producer, "night_treehole_imminent", &again).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = drill_run(&relay.url(""), &producer, "night_treehole_imminent", &again).await;
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("choose a new --exercise-id"),
        "{}",
        stderr(&second)
    );
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 4);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_exits_2_and_tls_is_refused() {
    let relay = TestRelay::start().await;
    let token = relay.token("drill-runner", Role::Producer).await;
    let url = relay.url("");
    for bad in [
        vec![
            "drill",
            "run",
            "night_treehole_imminent",
            "--relay",
            &url,
            "--token",
            &token,
            "--speed",
            "0",
        ],
        vec![
            "drill",
            "run",
            "night_treehole_imminent",
            "--relay",
            &url,
            "--token",
            &token,
            "--speed",
            "fast",
        ],
        vec![
            "drill",
            "run",
            "night_treehole_imminent",
            "--relay",
            &url,
            "--token",
            &token,
            "--exercise-id",
            "two words",
        ],
        vec!["drill", "run", "night_treehole_imminent", "--token", &token],
    ] {
        let out = crisisdesk(&bad).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    let out = drill_run(
        "https://relay.example:7710",
        &token,
        "night_treehole_imminent",
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TLS"), "{}", stderr(&out));
    let out = drill_run(&url, &token, "no_such_drill", &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no shipped drill scenario has id `no_such_drill`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(relay.relay.store().alert_count().await.unwrap(), 0);
    relay.stop().await;
}
