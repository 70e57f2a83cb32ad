//! The real binary in a real terminal (tmux) against a real relay process:
//! an alert posted to the relay appears on screen, opens, and quitting gives
//! the terminal back (alternate screen left, cursor shown).

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn posted_alert_appears_opens_and_quit_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let (mut relay, addr) = spawn_relay(&db);

    let tmux = Tmux::new();
    let command =
        format!("{BIN} console --relay ws://{addr} --lang en; echo CONSOLE-EXIT=$?; sleep 600");
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        "-e",
        &format!("CRISISDESK_TOKEN={counselor}"),
        "-e",
        &format!("XDG_DATA_HOME={}", dir.path().display()),
        "-e",
        &format!("HOME={}", dir.path().display()),
        &command,
    ]);
    tmux.wait_for("the console to connect", |s| s.contains("● connected"));

    let mut body = alert("e2e-1", "S42", "high");
    body["student"]["name"] = "赵天佑".into();
    body["summary"] = "教师报告\u{1b}[31m 红色".into();
    let reply = post_alert_to(addr, &producer, &body).await;
    assert_eq!(reply.status, 201);
    let case_id = reply.body["case_id"].as_str().unwrap().to_string();

    let list = tmux.wait_for("the case in the list", |s| s.contains(&case_id));
    assert!(list.contains("赵**"), "list shows the masked name:\n{list}");
    assert!(!list.contains("赵天佑"), "list never shows the full name");

    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    let detail = tmux.wait_for("the case detail", |s| s.contains("identity hidden"));
    assert!(
        detail.contains("赵**") && !detail.contains("赵天佑"),
        "{detail}"
    );
    assert!(
        detail.contains("␛[31m"),
        "escape sequence shown inert:\n{detail}"
    );

    // Revealing the identity is deliberate: a key, a reason, then the name.
    tmux.run(&["send-keys", "-t", "t", "r"]);
    tmux.wait_for("the reason prompt", |s| s.contains("audited"));
    tmux.run(&["send-keys", "-t", "t", "-l", "guardian call"]);
    tmux.run(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("the revealed name", |s| s.contains("赵天佑"));
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "1"
    );

    tmux.run(&["send-keys", "-t", "t", "q"]);
    let after = tmux.wait_for("the console to exit", |s| s.contains("CONSOLE-EXIT="));
    assert!(after.contains("CONSOLE-EXIT=0"), "clean exit:\n{after}");
    assert!(
        !after.contains("connected"),
        "console screen is gone:\n{after}"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "0",
        "alternate screen left"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "t", "#{cursor_flag}"])
            .trim(),
        "1",
        "cursor visible again"
    );
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
