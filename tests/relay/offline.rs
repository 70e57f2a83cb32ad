//! An offline duty terminal: with the relay down, a responder keeps
//! working; the console records each action in its local outbox, says how
//! many are waiting, keeps them across its own restart, and sends them in
//! order when the relay is back. The relay applies each once and keeps the
//! console's time beside its own.

use crate::common;

use std::process::Command;

use common::*;

fn relay_on(db: &str, port: u16) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args([
            "relay",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
            db,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&format!(":{port}")), "{line}");
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_taken_offline_arrive_once_in_order_when_the_relay_returns() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let reviewer = token(&db, "audit", "reviewer");
    let (relay, addr) = spawn_relay(&db);
    let port = addr.port();
    let mut relay = Some(relay);

    let mut a = alert("off-1", "S1", "high");
    a["imminent"] = true.into();
    let case_id = post_raw(
        format!("http://{addr}/v1/alerts"),
        Some(producer.clone()),
        Some("application/json"),
        serde_json::to_vec(&a).unwrap(),
    )
    .await
    .body["case_id"]
        .as_str()
        .unwrap()
        .to_string();

    let tmux = Tmux::new();
    let console = format!(
        "{BIN} console --relay ws://127.0.0.1:{port} --lang en; echo CONSOLE-EXIT=$?; sleep 600"
    );
    let start = |tmux: &Tmux, session: &str| {
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "110",
            "-y",
            "32",
            "-e",
            &format!("CRISISDESK_TOKEN={counselor}"),
            "-e",
            &format!("XDG_DATA_HOME={}", dir.path().display()),
            "-e",
            &format!("HOME={}", dir.path().display()),
            &console,
        ]);
    };
    start(&tmux, "t");
    tmux.wait_for("the case", |s| {
        s.contains("● connected") && s.contains(&case_id)
    });

    // The relay goes down (power cut, crash).
    let mut down = relay.take().unwrap();
    down.kill().unwrap();
    down.wait().unwrap();
    tmux.wait_for("offline", |s| s.contains("offline"));

    // The counselor keeps working: acknowledge, arrive, skip first aid.
    tmux.run(&["send-keys", "-t", "t", "a"]);
    tmux.wait_for("one waiting", |s| s.contains("1 action waiting"));
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("the case screen", |s| {
        s.contains("Duty counselor reached by phone")
    });
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("two waiting", |s| s.contains("2 actions waiting"));
    // All roles: the cursor starts on the first step; first aid (the
    // nurse's) is the third. A counselor may not skip it: the relay will
    // refuse that later, and the console must say which and why.
    tmux.run(&["send-keys", "-t", "t", "t"]);
    tmux.wait_for("all roles", |s| s.contains("Check for injury"));
    tmux.run(&["send-keys", "-t", "t", "Down", "Down"]);
    tmux.wait_for("the first-aid row selected", |s| {
        s.lines()
            .any(|l| l.contains('▸') && l.contains("Check for injury"))
    });
    tmux.run(&["send-keys", "-t", "t", "s"]);
    tmux.wait_for("the reason prompt", |s| s.contains("Reason"));
    tmux.run(&["send-keys", "-t", "t", "-l", "no injury found"]);
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("three waiting", |s| s.contains("3 actions waiting"));

    // The console itself is closed and opened again, still offline: the
    // actions are on disk, not lost.
    tmux.run(&["send-keys", "-t", "t", "q"]);
    tmux.wait_for("exit", |s| s.contains("CONSOLE-EXIT=0"));
    tmux.run(&["kill-session", "-t", "t"]);
    start(&tmux, "t");
    tmux.wait_for("still waiting after a restart", |s| {
        s.contains("3 actions waiting")
    });

    // The relay comes back on the same address.
    let mut relay = relay_on(&db, port);
    let screen = tmux.wait_for("the outbox to drain", |s| {
        s.contains("● connected") && !s.contains("waiting to send")
    });
    assert!(screen.contains(&case_id));
    // What no longer applies is refused cleanly, and the console says
    // which and why.
    tmux.wait_for("the refusal shown", |s| {
        s.contains("not done") && s.contains("first_aid") && s.contains("nurse")
    });

    // On the relay: each action once, in the order taken, with both clocks.
    let mut ws = connect(addr, Some(&reviewer), 0).await.unwrap();
    let events = until_quiet(&mut ws).await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| *t == "case_acknowledged" || *t == "step_updated")
        .collect();
    assert_eq!(kinds, ["case_acknowledged", "step_updated"], "{events:?}");
    let step = events.iter().find(|e| e["type"] == "step_updated").unwrap();
    assert_eq!(step["change"]["step"], "counselor_arrives");
    let client_at = step["origin"]["client_at"]
        .as_str()
        .expect("the console's own time");
    let client_at = chrono::DateTime::parse_from_rfc3339(client_at).unwrap();
    let server_at = chrono::DateTime::parse_from_rfc3339(step["at"].as_str().unwrap()).unwrap();
    assert!(
        client_at < server_at,
        "taken offline, applied later: {client_at} < {server_at}"
    );

    // The skip of the nurse's step was refused by the relay (wrong role),
    // cleanly, and recorded as refused; nothing else was applied twice.
    let store = crisisdesk::store::Store::open(&db).await.unwrap();
    let audit = store.audit_for_case(&case_id).await.unwrap();
    let refusals = audit.iter().filter(|e| e.kind == "command_refused").count();
    let accepted = audit
        .iter()
        .filter(|e| e.kind == "command_accepted")
        .count();
    assert_eq!((accepted, refusals), (2, 1), "{audit:?}");
    relay.kill().unwrap();
    let _ = relay.wait();
}
