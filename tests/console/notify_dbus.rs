//! Desktop notifications end to end: the real relay, the real console in a
//! real terminal (tmux), and a real notification daemon (dunst, under Xvfb)
//! on a private D-Bus session bus. The daemon logs every notification it
//! shows through a script of its own config, and the test reads that log:
//! the note for a new high alert must arrive, and must not carry the
//! student's name or any alert text. A second test takes the bus away and
//! checks that the console says so once and keeps working.
//!
//! Needs dbus-daemon, Xvfb, dunst and tmux (`.ci/console-deps` installs
//! them); without them these tests fail rather than pass vacuously.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::console_support::Tmux;

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is missing: run .ci/console-deps (installs dbus, xvfb, dunst, tmux)"
    );
}

/// Spawns `cmd` and returns it with the first line it prints on stdout.
fn spawn_reading_first_line(cmd: &mut Command) -> (Guard, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    (Guard(child), line.trim().to_string())
}

/// A private session bus, an X server for the daemon, and dunst logging
/// each notification it shows to `log`.
struct Desktop {
    bus: String,
    log: std::path::PathBuf,
    _daemons: Vec<Guard>,
}

impl Desktop {
    fn start(dir: &Path) -> Desktop {
        for tool in ["dbus-daemon", "dbus-send", "Xvfb", "dunst", "tmux"] {
            need(tool);
        }
        let (dbus, bus) = spawn_reading_first_line(Command::new("dbus-daemon").args([
            "--session",
            "--nofork",
            "--print-address=1",
        ]));
        assert!(bus.starts_with("unix:"), "bus address: {bus:?}");
        let (xvfb, display) = spawn_reading_first_line(Command::new("Xvfb").args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "640x480x24",
            "-nolisten",
            "tcp",
        ]));
        let log = dir.join("notifications.log");
        let script = dir.join("log-notification.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf 'app=%s\\nsummary=%s\\nbody=%s\\nurgency=%s\\n--\\n' \"$1\" \"$2\" \"$3\" \"$5\" >> '{}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let config = dir.join("dunstrc");
        std::fs::write(
            &config,
            format!(
                "[global]\n    monitor = 0\n[log_everything]\n    appname = \"*\"\n    script = {}\n",
                script.display()
            ),
        )
        .unwrap();
        let dunst = Command::new("dunst")
            .arg("-config")
            .arg(&config)
            .env("DISPLAY", format!(":{display}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dunst");
        let desktop = Desktop {
            bus,
            log,
            _daemons: vec![Guard(dunst), xvfb, dbus],
        };
        desktop.wait_for_daemon();
        desktop
    }

    /// Until dunst owns the notification service name on the bus.
    fn wait_for_daemon(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
                .output()
                .expect("dbus-send");
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dunst never took org.freedesktop.Notifications"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the daemon's log until it holds `n` notifications.
    fn wait_for_notifications(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let notes: Vec<String> = text
                .split("--\n")
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
                .collect();
            if notes.len() >= n {
                return notes;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon showed {} notification(s), expected {n}",
                notes.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn console_env(dir: &Path, token: &str) -> Vec<(&'static str, String)> {
    let d = dir.display().to_string();
    vec![
        ("CRISISDESK_TOKEN", token.to_string()),
        ("HOME", d.clone()),
        ("XDG_DATA_HOME", d.clone()),
        ("XDG_CONFIG_HOME", d.clone()),
        ("XDG_RUNTIME_DIR", d),
    ]
}

fn high_alert(id: &str, student: &str) -> serde_json::Value {
    let mut body = alert(id, student, "high");
    body["imminent"] = true.into();
    body["student"]["name"] = "赵天佑".into();
    body["summary"] = "树洞：今晚就结束吧，药已经攒够了".into();
    body
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

#[tokio::test(flavor = "multi_thread")]
async fn a_high_alert_reaches_a_real_notification_daemon_without_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let desktop = Desktop::start(dir.path());
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let (relay, addr) = spawn_relay(&db);
    let _relay = Guard(relay);

    let mut env = console_env(dir.path(), &counselor);
    env.push(("DBUS_SESSION_BUS_ADDRESS", desktop.bus.clone()));
    let tmux = Tmux::start(
        &format!("{BIN} console --relay ws://{addr} --lang en; echo CONSOLE-EXIT=$?; sleep 600"),
        100,
        30,
        &env,
    );
    tmux.wait_for("the console to connect", |s| s.contains("● connected"));

    let case_id = post(addr, &producer, &high_alert("n-1", "S-NOTIFY-77")).await;
    let notes = desktop.wait_for_notifications(1);
    let note = &notes[0];
    assert!(note.contains("app=crisisdesk"), "{note}");
    assert!(note.contains(&case_id), "the case id is there: {note}");
    assert!(
        note.contains("High") && note.contains("NOW"),
        "level and imminence: {note}"
    );
    assert!(note.contains("Suicide risk"), "the category: {note}");
    assert!(note.contains("urgency=CRITICAL"), "{note}");
    for secret in [
        "赵天佑",
        "赵",
        "S-NOTIFY-77",
        "第一中学",
        "(3)班",
        "树洞",
        "药",
        "PHQ",
    ] {
        assert!(
            !note.contains(secret),
            "{secret:?} reached the desktop: {note}"
        );
    }
    let screen = tmux.wait_for("the banner", |s| s.contains("NEW HIGH RISK"));
    assert!(
        !screen.contains("unavailable"),
        "with a daemon there is nothing to warn about:\n{screen}"
    );

    // A general alert is not a notification.
    let mut general = alert("n-2", "S-NOTIFY-78", "general");
    general["student"]["name"] = "钱多多".into();
    let quiet = post(addr, &producer, &general).await;
    tmux.wait_for("the general case", |s| s.contains(&quiet));
    let later = post(addr, &producer, &high_alert("n-3", "S-NOTIFY-79")).await;
    let notes = desktop.wait_for_notifications(2);
    assert!(
        notes[1].contains(&later),
        "the next note is the next high case: {notes:?}"
    );
    assert!(!notes.iter().any(|n| n.contains(&quiet)), "{notes:?}");

    tmux.keys(&["q"]);
    let after = tmux.wait_for("the console to exit", |s| s.contains("CONSOLE-EXIT="));
    assert!(after.contains("CONSOLE-EXIT=0"), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_keeps_running_when_notifications_fail() {
    need("tmux");
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
    let producer = token(&db, "feed", "producer");
    let counselor = token(&db, "wang", "counselor");
    let (relay, addr) = spawn_relay(&db);
    let _relay = Guard(relay);

    // A bus address that leads nowhere, as on a box whose session is gone.
    let mut env = console_env(dir.path(), &counselor);
    env.push((
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}/no-such-bus", dir.path().display()),
    ));
    let tmux = Tmux::start(
        &format!("{BIN} console --relay ws://{addr} --lang en; echo CONSOLE-EXIT=$?; sleep 600"),
        120,
        30,
        &env,
    );
    tmux.wait_for("the console to connect", |s| s.contains("● connected"));

    let first = post(addr, &producer, &high_alert("f-1", "S-FAIL-1")).await;
    let screen = tmux.wait_for("the warning", |s| {
        s.contains("desktop notifications unavailable")
    });
    assert!(
        screen.contains(&first) && screen.contains("NEW HIGH RISK"),
        "{screen}"
    );

    // It goes on: the next alerts arrive, keys work, and it quits cleanly.
    let second = post(addr, &producer, &high_alert("f-2", "S-FAIL-2")).await;
    tmux.wait_for("the second case", |s| {
        s.contains(&second) && s.contains("NEW HIGH RISK 2")
    });
    tmux.keys(&["n"]);
    tmux.wait_for("the newest alarm's case", |s| {
        s.contains(&format!("Case {second}")) && s.contains("赵**")
    });
    tmux.keys(&["Escape", "q"]);
    let after = tmux.wait_for("the console to exit", |s| s.contains("CONSOLE-EXIT="));
    assert!(after.contains("CONSOLE-EXIT=0"), "{after}");
    let log =
        std::fs::read_to_string(dir.path().join("crisisdesk/console.log")).unwrap_or_default();
    assert!(
        log.contains("desktop notification failed"),
        "the failure is logged for whoever looks:\n{log}"
    );
    assert!(!log.contains("赵天佑"), "logs never carry names");
}
