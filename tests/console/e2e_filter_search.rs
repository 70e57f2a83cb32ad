//! Filtering and search end to end: the real binary in tmux against a real
//! relay, with a config file choosing the language and switching the
//! desktop notifications off. Keys are typed as a responder would; the
//! screen is polled, never slept on.

use std::process::Child;

use crate::common::*;
use crate::console_support::Tmux;

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn post(addr: std::net::SocketAddr, token: &str, body: &serde_json::Value) -> String {
    let reply = post_raw(
        format!("http://{addr}/v1/alerts"),
        Some(token.to_string()),
        Some("application/json"),
        serde_json::to_vec(body).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["case_id"].as_str().unwrap().to_string()
}

/// The case ids on the list, top to bottom.
fn listed(screen: &str, ids: &[String]) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| ids.iter().find(|id| l.contains(id.as_str())).cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_and_search_narrow_the_list_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let (relay, addr) = spawn_relay(&db);
    let _relay = Guard(relay);

    let mut ids = Vec::new();
    for (i, (level, school, class)) in [
        ("high", "第一中学", "(3)班"),
        ("key", "第二中学", "(7)班"),
        ("general", "第一中学", "(9)班"),
        ("key", "第三中学", "(3)班"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = alert(&format!("fs-{i}"), &format!("S-FS-{i}"), level);
        body["student"]["school"] = school.into();
        body["student"]["class"] = class.into();
        ids.push(post(addr, &producer, &body).await);
    }

    // The config file picks English and turns desktop notifications off.
    let config = dir.path().join("console.toml");
    std::fs::write(
        &config,
        format!("relay = \"ws://{addr}\"\nlanguage = \"en\"\n\n[notifications]\ndesktop = false\n"),
    )
    .unwrap();
    let d = dir.path().display().to_string();
    let tmux = Tmux::start(
        &format!(
            "{BIN} console --config {}; echo CONSOLE-EXIT=$?; sleep 600",
            config.display()
        ),
        100,
        30,
        &[
            ("CRISISDESK_TOKEN", counselor),
            ("HOME", d.clone()),
            ("XDG_DATA_HOME", d.clone()),
            ("XDG_CONFIG_HOME", d),
        ],
    );
    let screen = tmux.wait_for("all four cases", |s| listed(s, &ids).len() == 4);
    assert!(
        screen.contains("● connected"),
        "English from the config:\n{screen}"
    );

    // l: key or higher.
    tmux.keys(&["l"]);
    let screen = tmux.wait_for("the level filter", |s| s.contains("Filter: Level ≥key"));
    assert_eq!(
        listed(&screen, &ids),
        [ids[0].clone(), ids[1].clone(), ids[3].clone()],
        "{screen}"
    );
    assert!(screen.contains("3/4 open"), "{screen}");

    // h: the first school in name order.
    tmux.keys(&["h"]);
    let screen = tmux.wait_for("the school filter", |s| s.contains("· 第一中学"));
    assert_eq!(listed(&screen, &ids), [ids[0].clone()], "{screen}");

    // x clears; / searches the class across schools.
    tmux.keys(&["x"]);
    tmux.wait_for("the cleared list", |s| listed(s, &ids).len() == 4);
    tmux.keys(&["/"]);
    tmux.type_text("(3)班");
    let screen = tmux.wait_for("the class search", |s| listed(s, &ids).len() == 2);
    assert_eq!(
        listed(&screen, &ids),
        [ids[0].clone(), ids[3].clone()],
        "{screen}"
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("the kept search", |s| s.contains("/(3)班"));

    // Enter on the list opens the first match; Esc comes back to the
    // still-filtered list.
    tmux.keys(&["Enter"]);
    // The relay sends initials, never the name.
    // Each wait names something only its own screen shows: the list also
    // carries the initials and the case id, and a wait that matched the old
    // screen would send the next keys to the wrong one.
    let case_header = format!("Case {}", ids[0]);
    tmux.wait_for("the case", |s| {
        s.contains(&case_header) && s.contains("王**") && !s.contains("王小明")
    });
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("the list", |s| {
        s.contains("2/4 open") && !s.contains(&case_header)
    });
    assert_eq!(
        listed(&screen, &ids),
        [ids[0].clone(), ids[3].clone()],
        "{screen}"
    );

    // A search by student id, then Esc while typing clears it.
    tmux.keys(&["x", "/"]);
    tmux.type_text("s-fs-2");
    let screen = tmux.wait_for("the student id search", |s| listed(s, &ids).len() == 1);
    assert_eq!(listed(&screen, &ids), [ids[2].clone()], "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("everything again", |s| listed(s, &ids).len() == 4);

    // o: visible sort change.
    tmux.keys(&["o"]);
    tmux.wait_for("the new sort", |s| s.contains("sorted: newest first"));

    tmux.keys(&["q"]);
    let after = tmux.wait_for("the console to exit", |s| s.contains("CONSOLE-EXIT="));
    assert!(after.contains("CONSOLE-EXIT=0"), "{after}");
}

#[test]
fn a_bad_config_names_the_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("console.toml");
    std::fs::write(&config, "[notifications]\ndesktop = \"no\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "console",
            "--relay",
            "ws://127.0.0.1:9",
            "--token",
            "x",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`notifications.desktop` must be true or false"),
        "{err}"
    );
}

#[test]
fn console_help_prints_the_config_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["console", "--help"])
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let path = dir.path().join("crisisdesk/console.toml");
    assert!(
        help.contains(&format!("Config file: {}", path.display())),
        "{help}"
    );
}

#[test]
fn no_relay_anywhere_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["console", "--token", "x"])
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pass --relay") && err.contains("`relay`"),
        "{err}"
    );
}
