//! The HTML pages people print — the case review, the period report and an
//! incident report — opened in a real headless Chromium at A4 width
//! (794 × 1123 CSS px, 96 dpi). Fails on a console error, any request that
//! leaves the page (blocked by a strict CSP and reported), or a table or
//! chart wider than the page. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/chromium-screenshots/` for a person to look at.
//!
//! Chromium is driven by its command-line flags only (`--screenshot`,
//! `--dump-dom`, `--window-size`): no DevTools client to maintain. The
//! shipped pages carry no script; to measure them, the test loads a copy
//! with a probe script added (a CSP, an error listener, and a measurement
//! written into the DOM that `--dump-dom` returns).
//!
//! Without Chromium the test is skipped with a loud message, unless
//! `CI=true`: then a missing Chromium fails it (`.ci/browser-deps`
//! installs Debian's `chromium`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

const A4_WIDTH: u32 = 794;
const A4_HEIGHT: u32 = 1123;

fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CRISISDESK_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium, or `None` after saying loudly why the test does nothing. In
/// CI a missing browser is a failure, never a skip.
fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is not installed: run .ci/browser-deps"
        );
        eprintln!(
            "\n\n======================================================================\n\
             SKIPPED html_in_chromium: no `chromium` on PATH.\n\
             Install Debian's chromium (.ci/browser-deps) to run the browser test.\n\
             ======================================================================\n"
        );
    }
    found
}

fn base_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        // Nothing can leave the machine even if the page asked.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={A4_WIDTH},{A4_HEIGHT}"),
    ])
    .collect()
}

fn run_chromium(browser: &Path, args: &[String], page: &Path) -> std::process::Output {
    let mut child = Command::new(browser)
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    // A hung browser must not hang the suite.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the probe measured on a page.
#[derive(Debug)]
struct Probe {
    errors: Vec<String>,
    overflowing: Vec<String>,
    tables: u64,
    charts: u64,
}

const HEAD_PROBE: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
<script>window.__errors=[];\
addEventListener('error',function(e){__errors.push('error: '+(e.message||(e.target&&(e.target.src||e.target.href))||'?'))},true);\
addEventListener('securitypolicyviolation',function(e){__errors.push('outside request: '+e.blockedURI)});\
(function(){var o=console.error;console.error=function(){__errors.push('console.error: '+Array.prototype.join.call(arguments,' '));o.apply(console,arguments)}})();</script>";

const BODY_PROBE: &str = "<script>addEventListener('load',function(){\
var w=document.documentElement.clientWidth,bad=[];\
if(document.documentElement.scrollWidth>w+1)bad.push('page scrolls sideways: '+document.documentElement.scrollWidth+' > '+w);\
document.querySelectorAll('table,svg,figure,pre').forEach(function(el,i){var r=el.getBoundingClientRect();\
if(r.right>w+1)bad.push(el.tagName+' #'+i+' ends at '+Math.round(r.right)+' > '+w);\
if(el.tagName==='TABLE'&&el.scrollWidth>el.clientWidth+1)bad.push('TABLE #'+i+' content '+el.scrollWidth+' > '+el.clientWidth)});\
var p=document.createElement('pre');p.id='__probe';p.hidden=true;\
p.textContent='PROBE'+JSON.stringify({errors:__errors,overflowing:bad,tables:document.querySelectorAll('table').length,charts:document.querySelectorAll('svg').length})+'END';\
document.body.appendChild(p)});</script>";

fn probe(browser: &Path, work: &Path, name: &str, html: &str) -> Probe {
    let probed = html
        .replacen("<head>", &format!("<head>{HEAD_PROBE}"), 1)
        .replacen("</body>", &format!("{BODY_PROBE}</body>"), 1);
    assert_ne!(probed, html, "{name}: no <head>/<body> to probe");
    let page = work.join(format!("{name}.probe.html"));
    std::fs::write(&page, probed).unwrap();
    let mut args = base_args(&work.join(format!("profile-{name}-probe")));
    args.push("--dump-dom".into());
    let out = run_chromium(browser, &args, &page);
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .rsplit_once("PROBE")
        .and_then(|(_, rest)| rest.split_once("END"))
        .map(|(json, _)| {
            json.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: the probe never reported (page did not load?)\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}: {json}"));
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    Probe {
        errors: strings("errors"),
        overflowing: strings("overflowing"),
        tables: v["tables"].as_u64().unwrap(),
        charts: v["charts"].as_u64().unwrap(),
    }
}

/// Screenshot of the page exactly as shipped; returns the PNG's size.
fn screenshot(browser: &Path, work: &Path, shots: &Path, name: &str, html: &str) -> (u32, u32) {
    let page = work.join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();
    let png = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let mut args = base_args(&work.join(format!("profile-{name}-shot")));
    args.push(format!("--screenshot={}", png.display()));
    let out = run_chromium(browser, &args, &page);
    let bytes = std::fs::read(&png).unwrap_or_else(|_| {
        panic!(
            "{name}: no screenshot written\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// A record with real reports in it, made through a real relay; returns
/// the db URL (the relay keeps running so its temp dir lives).
async fn record(relay: &TestRelay) {
    let producer = relay.token("feed", Role::Producer).await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let district = relay.token("bureau", Role::District).await;
    // Long unbroken text is what overflows tables: a school name and a
    // narrative with no spaces to break at.
    let mut a = alert("a1", "S1", "high");
    a["imminent"] = json!(true);
    a["student"]["school"] = json!("某某市某某区第一实验中学（本部·初中部·寄宿制）");
    a["summary"] = json!(format!("{}<script>alert(1)</script>", "长".repeat(300)));
    let reply = post_alert(relay, &producer, &a).await;
    let case_id = reply.body["case_id"].as_str().unwrap().to_string();
    let mut b = alert("a2", "S2", "key");
    b["student"]["school"] = json!("第二中学");
    post_alert(relay, &producer, &b).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    while next_json(&mut lws, Duration::from_millis(300))
        .await
        .is_some()
    {}
    for cmd in [
        json!({"type": "command", "id": "ack", "op": "acknowledge", "case_id": case_id}),
        json!({"type": "command", "id": "c120", "op": "step", "case_id": case_id,
               "playbook": "imminent_suicide_risk", "step": "call_120", "action": "complete"}),
        json!({"type": "command", "id": "s", "op": "submit_report", "case_id": case_id, "stage": "first",
               "narrative": format!("21:05拨打120并送医，{}。https://example.com/not-a-link", "处置经过".repeat(80))}),
    ] {
        let id = cmd["id"].as_str().unwrap().to_string();
        send_command(&mut lws, cmd).await;
        let (r, _) = result_for(&mut lws, &id).await;
        assert_eq!(r["ok"], true, "{r}");
    }
    let mut dws = connect(relay.addr, Some(&district), 0).await.unwrap();
    while next_json(&mut dws, Duration::from_millis(300))
        .await
        .is_some()
    {}
    send_command(
        &mut dws,
        json!({"type": "command", "id": "r", "op": "return_report", "case_id": case_id,
               "stage": "first", "reason": "请补充送医医院名称与到达时间".repeat(10)}),
    )
    .await;
    let (r, _) = result_for(&mut dws, "r").await;
    assert_eq!(r["ok"], true, "{r}");
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn review_report_and_incident_report_render_cleanly_at_a4_in_chromium() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let relay = TestRelay::start().await;
    record(&relay).await;
    let db = relay.db_url.clone();
    let pages = [
        (
            "review",
            cli(&[
                "review",
                "C000001",
                "--db",
                &db,
                "--format",
                "html",
                "--utc-offset",
                "+08:00",
            ]),
        ),
        (
            "report",
            cli(&[
                "report",
                "--db",
                &db,
                "--from",
                "2020-01-01",
                "--to",
                "2099-01-01",
                "--format",
                "html",
                "--utc-offset",
                "+08:00",
            ]),
        ),
        (
            "incident",
            cli(&[
                "incident",
                "export",
                "IR-C000001",
                "--db",
                &db,
                "--format",
                "html",
                "--utc-offset",
                "+08:00",
            ]),
        ),
    ];
    let work = relay.dir.path().join("browser");
    std::fs::create_dir_all(&work).unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, html) in &pages {
        assert!(
            !html.to_lowercase().contains("<script"),
            "{name}: ships no script"
        );
        let p = probe(&browser, &work, name, html);
        assert!(p.errors.is_empty(), "{name}: {:?}", p.errors);
        assert!(p.overflowing.is_empty(), "{name}: {:?}", p.overflowing);
        assert!(p.tables >= 1, "{name}: {p:?}");
        let (w, h) = screenshot(&browser, &work, &shots, name, html);
        assert_eq!((w, h), (A4_WIDTH, A4_HEIGHT), "{name}");
    }
    // The charts are there to be seen: three in the period report.
    let report = probe(&browser, &work, "report-charts", &pages[1].1);
    assert_eq!(report.charts, 3, "{report:?}");
    relay.stop().await;
}

/// The harness itself can fail: a page with an outside request, a console
/// error and a too-wide table is caught on all three counts.
#[test]
fn the_probe_catches_outside_requests_console_errors_and_wide_tables() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>\
               <img src=\"https://example.com/t.png\"><table><tr><td style=\"white-space:nowrap\">"
        .to_string()
        + &"宽".repeat(120)
        + "</td></tr></table><script>console.error('broken')</script></body></html>";
    let p = probe(&browser, dir.path(), "bad", &bad);
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("outside request: https://example.com/t.png")),
        "{p:?}"
    );
    assert!(
        p.errors.iter().any(|e| e.contains("console.error: broken")),
        "{p:?}"
    );
    assert!(
        p.overflowing.iter().any(|o| o.starts_with("TABLE")),
        "{p:?}"
    );
}
