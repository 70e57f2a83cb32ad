//! Load benchmark of the real relay: the `crisisdesk relay` binary on a
//! temporary SQLite file (`synchronous=FULL`), driven over loopback by real
//! HTTP producers and real websocket consoles from this process.
//!
//! `cargo bench --bench relay_load` prints one line per figure, beside the
//! target of the relay-at-district-scale issue. `-- --quick` runs smaller
//! counts (a smoke run, not figures to publish); `-- --skip-open-cases`
//! leaves out the 40,000-case part, `-- --open-cases-only` runs only it. `CRISISDESK_BIN=path` runs another
//! build of the binary (an A/B of two builds, e.g. with and without the
//! `mimalloc` feature). Nothing here asserts a speed: it measures and prints.
//!
//! Figures:
//! - acked alerts/s with 1 and 16 producers, each waiting for its 201;
//!   through the batch endpoint; ack p50 / p99 with 1 producer;
//! - fan-out p50 / p99 (post sent → event received) at 100 and 1,000
//!   consoles, 20 alerts/s;
//! - replay of 10,000 stored events to a new console;
//! - relay RSS per idle console connection;
//! - with 40,000 open cases: ingest p50 / p99, idle CPU, and ingest p99
//!   while 40,000 steps go overdue at once (an escalation storm).
//!
//! `-- --postgres postgres://USER@HOST/DB` measures the acked and batch
//! throughput on a fresh PostgreSQL database made on that server, beside
//! the same figures on SQLite measured in the same run (a machine whose
//! speed drifts is then compared with itself); then, with two relays on
//! that database: fan-out from a post on relay A to consoles on relay B
//! (beside consoles on A itself), and failover: relay A killed with -9,
//! the time until a console that was on A, reconnected to B from its
//! `seq`, receives the next event. The storm figures stay SQLite-only.
//! `--cluster-only` with `--postgres` measures the two-relay figures alone.
//!
//! `-- --console-rss` measures the console instead (issue 10): the real
//! binary in tmux against a relay holding 40,000 open cases of every level
//! and category, its resident memory after the replay and after opening
//! and closing "my steps" and the follow-ups three times.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../tests/console_support/mod.rs"]
mod console_support;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The binary under test: this build's, or `CRISISDESK_BIN`.
fn bin() -> String {
    std::env::var("CRISISDESK_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_crisisdesk").to_string())
}

struct Scale {
    acked: usize,
    batches: usize,
    consoles: [usize; 2],
    fanout_alerts: usize,
    replay: usize,
    open_cases: usize,
}

const FULL: Scale = Scale {
    acked: 4000,
    batches: 100,
    consoles: [100, 1000],
    fanout_alerts: 200,
    replay: 10_000,
    open_cases: 40_000,
};

const QUICK: Scale = Scale {
    acked: 400,
    batches: 5,
    consoles: [10, 50],
    fanout_alerts: 20,
    replay: 1_000,
    open_cases: 2_000,
};

fn main() {
    // `cargo bench` passes `--bench`; our own flags come after `--`.
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { &QUICK } else { &FULL };
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--console-rss") {
        console_rss(dir.path(), scale.open_cases);
        return;
    }
    if let Some(server) = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1))
    {
        // `--cluster-only`: the two-relay figures alone (fan-out across
        // relays, failover), for working on those.
        let cluster_only = args.iter().any(|a| a == "--cluster-only");
        if !cluster_only {
            println!("throughput, SQLite then PostgreSQL, in one run");
            println!("-- SQLite (synchronous=FULL)");
            let relay = Relay::start(&sqlite_url(&dir.path().join("load.db")), None);
            throughput(&relay, scale);
            drop(relay);
        }
        println!("-- PostgreSQL (synchronous_commit as the server has it)");
        let url = runtime.block_on(fresh_pg_database(server));
        let relay = Relay::start(&url, None);
        if !cluster_only {
            throughput(&relay, scale);
        }
        println!("-- two relays on that PostgreSQL database");
        let other = relay.another(&url);
        let n = scale.consoles[0];
        runtime.block_on(fanout(&relay, &relay, n, scale.fanout_alerts, "on A"));
        runtime.block_on(fanout(&relay, &other, n, scale.fanout_alerts, "A to B"));
        drop(relay);
        runtime.block_on(failover(&other, &url, if quick { 3 } else { 10 }));
        return;
    }

    println!(
        "relay load benchmark ({})",
        if quick { "quick" } else { "full" }
    );
    if !args.iter().any(|a| a == "--open-cases-only") {
        let relay = Relay::start(&sqlite_url(&dir.path().join("load.db")), None);
        throughput(&relay, scale);
        runtime.block_on(streaming(&relay, scale));
        drop(relay);
    }
    if args.iter().any(|a| a == "--skip-open-cases") {
        return;
    }

    let storm = Relay::start(
        &sqlite_url(&dir.path().join("storm.db")),
        Some(&storm_playbooks(dir.path())),
    );
    runtime.block_on(open_cases(&storm, scale));
}

/// A relay child process and the credentials the benchmark uses.
struct Relay {
    child: Child,
    addr: SocketAddr,
    producer: String,
    counselor: String,
    /// Reads `/metrics` (group commit counts and times).
    reviewer: String,
}

impl Relay {
    fn start(url: &str, playbooks: Option<&std::path::Path>) -> Relay {
        // District credentials: a screening system and a console wall get
        // their own limits, as an operator would give them.
        let producer = token(
            url,
            "screening-system",
            "producer",
            &["--rate", "1000000", "--burst", "1000000"],
        );
        let counselor = token(
            url,
            "console-wall",
            "counselor",
            &["--max-connections", "5000"],
        );
        let reviewer = token(url, "load-reviewer", "reviewer", &[]);
        Relay::spawn(url, playbooks, producer, counselor, reviewer)
    }

    /// A second relay on the same database, with the same credentials.
    fn another(&self, url: &str) -> Relay {
        Relay::spawn(
            url,
            None,
            self.producer.clone(),
            self.counselor.clone(),
            self.reviewer.clone(),
        )
    }

    fn spawn(
        url: &str,
        playbooks: Option<&std::path::Path>,
        producer: String,
        counselor: String,
        reviewer: String,
    ) -> Relay {
        let mut cmd = Command::new(bin());
        cmd.args(["relay", "--listen", "127.0.0.1:0", "--db", url]);
        if let Some(dir) = playbooks {
            cmd.arg("--playbooks").arg(dir);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("relay prints its address");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the relay: {line:?}"));
        Relay {
            child,
            addr,
            producer,
            counselor,
            reviewer,
        }
    }

    /// Write groups committed so far and their total time, from the
    /// relay's own `group_commit_seconds` histogram: with the alerts posted
    /// in between, how large the groups were and what one cost.
    /// Panics when the scrape fails or the metric is gone, so a renamed
    /// metric cannot silently drop these lines from the report.
    fn groups(&self) -> (u64, f64) {
        let text = agent()
            .get(&self.url("/metrics"))
            .header("Authorization", &format!("Bearer {}", self.reviewer))
            .call()
            .expect("scrape /metrics")
            .body_mut()
            .read_to_string()
            .expect("read /metrics");
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("/metrics has no {name}"))
        };
        (
            value("crisisdesk_group_commit_seconds_count ") as u64,
            value("crisisdesk_group_commit_seconds_sum "),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// User + system CPU time of the relay so far.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses).
        let rest = stat.rsplit(')').next().unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        // Linux reports in USER_HZ, 100 on every mainstream configuration.
        Duration::from_millis(ticks * 10)
    }
}

/// Resident memory of process `pid`, in KiB (0 once it is gone).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sqlite_url(db: &std::path::Path) -> String {
    format!("sqlite:{}", db.display())
}

/// A new, empty database on `server`; its URL.
async fn fresh_pg_database(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("cdk_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to --postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create the benchmark database");
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{name}{query}", &base[..authority_end])
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(db: &str, name: &str, role: &str, extra: &[&str]) -> String {
    let out = Command::new(bin())
        .args([
            "token", "create", "--db", db, "--name", name, "--role", role,
        ])
        .args(extra)
        .output()
        .expect("run token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn alert(id: &str, student: &str) -> Value {
    json!({
        "id": id,
        "source": "screening",
        "category": "acute_distress",
        "level": "key",
        "student": {"id": student, "school": "第一中学", "grade": "初二", "class": "(3)班"},
        "summary": "负载测试",
        "observed_at": "2026-11-20T09:00:00+08:00"
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Posts one alert and waits for its answer; returns the status.
fn post(agent: &ureq::Agent, relay: &Relay, body: &Value) -> u16 {
    agent
        .post(&relay.url("/v1/alerts"))
        .header("Authorization", &format!("Bearer {}", relay.producer))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Sequential posts from one producer; returns each ack's latency.
fn acked_run(relay: &Relay, prefix: &str, n: usize) -> Vec<Duration> {
    let agent = agent();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let body = alert(&format!("{prefix}-{i}"), &format!("{prefix}-s{i}"));
        let t = Instant::now();
        let status = post(&agent, relay, &body);
        lat.push(t.elapsed());
        assert_eq!(status, 201, "alert {prefix}-{i} not created");
    }
    lat.sort();
    lat
}

fn throughput(relay: &Relay, scale: &Scale) {
    let before = relay.groups();
    let t = Instant::now();
    let lat = acked_run(relay, "one", scale.acked / 2);
    let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "acked alerts/s, 1 producer:        {rate:>9.0}   ack p50 {} p99 {}   (target p99 <= 2 ms)",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    print_groups(relay, before, lat.len());

    let producers = 16;
    let per = scale.acked / producers * 4;
    let before = relay.groups();
    let t = Instant::now();
    let all: Vec<Duration> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..producers)
            .map(|p| s.spawn(move || acked_run(relay, &format!("p{p}"), per)))
            .collect();
        runs.into_iter()
            .flat_map(|h| h.join().expect("producer"))
            .collect()
    });
    let rate = all.len() as f64 / t.elapsed().as_secs_f64();
    let mut all = all;
    all.sort();
    println!(
        "acked alerts/s, 16 producers:      {rate:>9.0}   ack p99 {}   (target >= 20,000/s)",
        ms(percentile(&all, 0.99))
    );
    print_groups(relay, before, all.len());

    let batch_producers = 4;
    let per = scale.batches / batch_producers;
    let before = relay.groups();
    let t = Instant::now();
    std::thread::scope(|s| {
        for p in 0..batch_producers {
            s.spawn(move || {
                let agent = agent();
                for b in 0..per {
                    let alerts: Vec<Value> = (0..1000)
                        .map(|i| alert(&format!("b{p}-{b}-{i}"), &format!("b{p}-{b}-s{i}")))
                        .collect();
                    let reply = agent
                        .post(&relay.url("/v1/alerts/batch"))
                        .header("Authorization", &format!("Bearer {}", relay.producer))
                        .header("Content-Type", "application/json")
                        .send(json!({ "alerts": alerts }).to_string())
                        .expect("batch post");
                    assert_eq!(reply.status().as_u16(), 200, "batch refused");
                }
            });
        }
    });
    let n = batch_producers * per * 1000;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "alerts/s through the batch endpoint: {rate:>8.0}   ({batch_producers} producers, 1,000 per batch; target >= 100,000/s)"
    );
    print_groups(relay, before, n);
}

/// How the writer grouped the alerts of one phase: groups committed, alerts
/// per group, and the mean time one group held the writer.
fn print_groups(relay: &Relay, before: (u64, f64), alerts: usize) {
    let after = relay.groups();
    let groups = after.0.saturating_sub(before.0);
    if groups == 0 {
        return;
    }
    println!(
        "    {groups} write groups, {:.1} alerts per group, {:.2} ms per group",
        alerts as f64 / groups as f64,
        (after.1 - before.1) * 1000.0 / groups as f64
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn console(relay: &Relay, since: i64) -> Ws {
    let mut request = format!("ws://{}/v1/stream?since={since}", relay.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", relay.counselor)
            .parse()
            .expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("console connects");
    ws
}

/// The `seq` of a stream frame, read without a full parse.
fn seq_of(text: &str) -> Option<i64> {
    let at = text.find("\"seq\":")? + 6;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Reads the session frame and the `playbook_frames` that follow it.
async fn read_greeting(ws: &mut Ws) {
    let wait = Duration::from_secs(5);
    let Ok(Some(Ok(Message::Text(session)))) = tokio::time::timeout(wait, ws.next()).await else {
        return;
    };
    let frames = serde_json::from_str::<Value>(&session)
        .ok()
        .and_then(|v| v["playbook_frames"].as_u64())
        .unwrap_or(0);
    for _ in 0..frames {
        if tokio::time::timeout(wait, ws.next()).await.is_err() {
            return;
        }
    }
}

async fn latest_seq(relay: &Relay) -> i64 {
    // The session frame, sent first, names the latest seq.
    let mut ws = console(relay, 0).await;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["type"] == "session" {
                    return v["latest_seq"].as_i64().unwrap_or(0);
                }
            }
            _ => return 0,
        }
    }
}

async fn streaming(relay: &Relay, scale: &Scale) {
    let latest = latest_seq(relay).await;

    // Replay: a new console asks for the last N events.
    let since = (latest - scale.replay as i64).max(0);
    let t = Instant::now();
    let mut ws = console(relay, since).await;
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(text) = frame
            && seq_of(&text) == Some(latest)
        {
            break;
        }
    }
    println!(
        "replay of {} events to a new console: {}   (target <= 30 ms for 10,000)",
        latest - since,
        ms(t.elapsed())
    );
    drop(ws);

    // Idle connections: RSS before and after opening many consoles that
    // are caught up and silent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = relay.rss_kib();
    let mut idle = Vec::new();
    let wanted = *scale.consoles.last().unwrap_or(&100);
    for _ in 0..wanted {
        idle.push(console(relay, latest).await);
    }
    // Let each one read its greeting as a console does: the session frame
    // and the playbook frames it announces. (A client that stops reading
    // leaves a frame in the relay's write buffer, which is not the cost
    // of an idle console.)
    for ws in &mut idle {
        read_greeting(ws).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = relay.rss_kib();
    println!(
        "relay RSS per idle console:        {:>6.1} KiB   ({wanted} consoles, {before} -> {after} KiB; target <= 8 KB)",
        (after.saturating_sub(before)) as f64 / wanted as f64
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;

    for &n in &scale.consoles {
        fanout(relay, relay, n, scale.fanout_alerts, "").await;
    }
}

/// `n` consoles follow the stream of `watched` while a producer posts
/// `alerts` at 20/s to `posted` (the same relay, or another on the same
/// PostgreSQL database); latency is from just before the post to each
/// console's receipt.
async fn fanout(posted: &Relay, watched: &Relay, n: usize, alerts: usize, label: &str) {
    let relay = watched;
    let start_seq = latest_seq(relay).await;
    let received: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..n {
        let mut ws = console(relay, start_seq).await;
        let received = received.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx);
        tasks.push(tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut got = 0;
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(text) = frame {
                    if text.contains("\"type\":\"session\"") {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    if let Some(at) = text.find("\"id\":\"fan-") {
                        let digits: String = text[at + 10..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        if let Ok(i) = digits.parse() {
                            received.lock().expect("lock").push((i, Instant::now()));
                            got += 1;
                            if got == alerts {
                                break;
                            }
                        }
                    }
                }
            }
        }));
    }
    for rx in ready {
        let _ = rx.await;
    }
    let relay_url = posted.url("/v1/alerts");
    let token = posted.producer.clone();
    // Ids unique per round and per relay pair.
    let tag = format!("c{n}{}", label.replace(' ', ""));
    let sent: Vec<Instant> = tokio::task::spawn_blocking(move || {
        let agent = agent();
        let mut sent = Vec::new();
        let every = Duration::from_millis(50);
        let begin = Instant::now();
        for i in 0..alerts {
            let due = begin + every * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            // Ids unique per round (the consoles read the number after `fan-`).
            let body = alert(&format!("fan-{i}-{tag}"), &format!("fan-s{tag}-{i}"));
            sent.push(Instant::now());
            let status = agent
                .post(&relay_url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(body.to_string())
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            assert!(
                status == 201 || status == 200,
                "fan-out alert refused: {status}"
            );
        }
        sent
    })
    .await
    .expect("producer");
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(tasks),
    )
    .await;
    let mut lat: Vec<Duration> = received
        .lock()
        .expect("lock")
        .iter()
        .map(|(i, at)| at.saturating_duration_since(sent[*i]))
        .collect();
    let expected = n * alerts;
    lat.sort();
    let target = if !std::ptr::eq(posted, watched) {
        "20 ms across relays"
    } else if n <= 100 {
        "2 ms"
    } else {
        "10 ms"
    };
    println!(
        "fan-out to {n:>4} consoles at 20/s {label:>6}: p50 {} p99 {}   ({}/{} deliveries; target p99 <= {target})",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        lat.len(),
        expected,
    );
}

/// Failover, `rounds` times: a console follows relay A while a producer
/// posts to `survivor` every 20 ms; A is killed with -9; the console sees
/// its stream end, reconnects to `survivor` from the last `seq` it holds,
/// and the time from the kill to the first new event it receives there is
/// the figure. The stream it ends up with must be dense.
async fn failover(survivor: &Relay, url: &str, rounds: usize) {
    let mut times = Vec::new();
    for round in 0..rounds {
        let mut victim = survivor.another(url);
        let mut ws = console(&victim, latest_seq(&victim).await).await;
        read_greeting(&mut ws).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let producer = {
            let (url, token, stop) = (
                survivor.url("/v1/alerts"),
                survivor.producer.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let agent = agent();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = alert(&format!("fo-{round}-{i}"), &format!("fo-s{round}-{i}"));
                    let _ = agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {token}"))
                        .header("Content-Type", "application/json")
                        .send(body.to_string());
                    i += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        // Follow A for a moment, keeping the last seq.
        let mut last = 0;
        let follow_until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < follow_until {
            if let Ok(Some(Ok(Message::Text(text)))) =
                tokio::time::timeout(Duration::from_millis(100), ws.next()).await
                && let Some(seq) = seq_of(&text)
            {
                assert!(last == 0 || seq == last + 1, "dense before the kill");
                last = seq;
            }
        }
        let killed = Instant::now();
        let _ = victim.child.kill();
        let _ = victim.child.wait();
        // Whatever A had sent before it died, then the end of its stream.
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        {
            if let Message::Text(text) = frame
                && let Some(seq) = seq_of(&text)
            {
                last = seq;
            }
        }
        drop(ws);
        let mut ws = console(survivor, last).await;
        let next = loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Some(seq) = seq_of(&text) {
                        break seq;
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => panic!("no event on the surviving relay after the failover"),
            }
        };
        times.push(killed.elapsed());
        assert_eq!(next, last + 1, "resumed with no gap and no duplicate");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = producer.join();
    }
    times.sort();
    println!(
        "failover (kill -9 of relay A -> next event on B): p50 {} max {}   ({rounds} rounds; target <= 3 s)",
        ms(percentile(&times, 0.5)),
        ms(times.last().copied().unwrap_or_default())
    );
}

/// The shipped playbooks with every time limit set to 30 s, so the first
/// steps of every case opened together go overdue together.
fn storm_playbooks(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("storm-playbooks");
    std::fs::create_dir_all(&out).expect("playbook dir");
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");
    for entry in std::fs::read_dir(shipped).expect("playbooks") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("read playbook");
            let fast: String = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("due = ") {
                        "due = \"30s\"".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(out.join(path.file_name().expect("name")), fast + "\n")
                .expect("write playbook");
        }
    }
    out
}

async fn open_cases(relay: &Relay, scale: &Scale) {
    let n = scale.open_cases;
    let url = relay.url("/v1/alerts/batch");
    let token = relay.producer.clone();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || {
        let agent = agent();
        for b in 0..n.div_ceil(1000) {
            let alerts: Vec<Value> = (b * 1000..((b + 1) * 1000).min(n))
                .map(|i| alert(&format!("open-{i}"), &format!("open-s{i}")))
                .collect();
            let reply = agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(json!({ "alerts": alerts }).to_string())
                .expect("batch");
            assert_eq!(reply.status().as_u16(), 200);
        }
    })
    .await
    .expect("loader");
    let loaded = t.elapsed();
    println!("{n} open cases loaded in {}", ms(loaded));

    // Idle: nothing posted, nothing due yet.
    let cpu0 = relay.cpu();
    let idle_for = Duration::from_secs(5);
    tokio::time::sleep(idle_for).await;
    let idle = relay.cpu().saturating_sub(cpu0);
    println!(
        "idle CPU with {n} open cases:     {:>6.2} % of a core   (target <= 0.5 %)",
        idle.as_secs_f64() / idle_for.as_secs_f64() * 100.0
    );

    // Ingest with that many open, before the deadlines.
    let relay_ref = relay;
    let lat = tokio::task::block_in_place(|| acked_run(relay_ref, "with-open", 500));
    println!(
        "ingest with {n} open cases:       p50 {} p99 {}   (target p99 <= 5 ms)",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );

    // The storm: every case's first deadline passes ~30 s after it opened.
    // Post steadily across that moment; report the latency while the
    // escalations are being written.
    let deadline = t + Duration::from_secs(30);
    let storm_end = deadline + loaded + Duration::from_secs(15);
    let mut console = console(relay, latest_seq(relay).await).await;
    let escalations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = escalations.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(frame)) = console.next().await {
            if let Message::Text(text) = frame
                && text.contains("\"type\":\"escalation\"")
            {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let lat = tokio::task::block_in_place(|| {
        let agent = agent();
        let mut lat = Vec::new();
        let mut i = 0;
        while Instant::now() < storm_end {
            let body = alert(&format!("storm-{i}"), &format!("storm-s{i}"));
            let t = Instant::now();
            let status = post(&agent, relay_ref, &body);
            if Instant::now() > deadline {
                lat.push(t.elapsed());
            }
            assert_eq!(status, 201);
            i += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        lat.sort();
        lat
    });
    watcher.abort();
    println!(
        "ingest during the storm:           p50 {} p99 {} max {}   ({} escalations seen; target p99 <= 5 ms)",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        escalations.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// An alert of a district's mix: every level and category, a few imminent,
/// 178 schools, each student once.
fn district_alert(i: usize) -> Value {
    const LEVELS: [&str; 3] = ["general", "key", "high"];
    const CATEGORIES: [&str; 7] = [
        "suicide_risk",
        "self_harm",
        "violence_threat",
        "bullying",
        "trauma_bereavement",
        "acute_distress",
        "other",
    ];
    json!({
        "id": format!("district-{i}"),
        "source": "screening",
        "category": CATEGORIES[(i / 3) % 7],
        "level": LEVELS[(i * 7) % 3],
        "imminent": i.is_multiple_of(97),
        "student": {"id": format!("S{i:06}"), "name": "张三丰",
                    "school": format!("第{}中学", i % 178 + 1), "grade": "初二",
                    "class": format!("({})班", i % 12 + 1)},
        "summary": "普查",
        "observed_at": "2026-11-20T08:00:00+08:00",
        "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": i % 28}]
    })
}

/// The console's resident memory with `n` open cases, the real binary in
/// tmux as a duty terminal runs it.
fn console_rss(dir: &std::path::Path, n: usize) {
    let relay = Relay::start(&sqlite_url(&dir.join("district.db")), None);
    let agent = agent();
    for b in 0..n.div_ceil(1000) {
        let alerts: Vec<Value> = (b * 1000..((b + 1) * 1000).min(n))
            .map(district_alert)
            .collect();
        let reply = agent
            .post(&relay.url("/v1/alerts/batch"))
            .header("Authorization", &format!("Bearer {}", relay.producer))
            .header("Content-Type", "application/json")
            .send(json!({ "alerts": alerts }).to_string())
            .expect("batch");
        assert_eq!(reply.status().as_u16(), 200);
    }
    let config = dir.join("console.toml");
    std::fs::write(
        &config,
        format!(
            "relay = \"ws://{}\"\nlanguage = \"en\"\n\n[notifications]\ndesktop = false\n",
            relay.addr
        ),
    )
    .expect("console config");
    let home = dir.display().to_string();
    let started = Instant::now();
    // `exec`: the pane's process is the console itself.
    let tmux = console_support::Tmux::start(
        &format!("exec {} console --config {}", bin(), config.display()),
        120,
        40,
        &[
            ("CRISISDESK_TOKEN", relay.counselor.clone()),
            ("HOME", home.clone()),
            ("XDG_DATA_HOME", home.clone()),
            ("XDG_CONFIG_HOME", home),
        ],
    );
    let pid: u32 = tmux
        .run(&["display-message", "-p", "-t", "t", "#{pane_pid}"])
        .trim()
        .parse()
        .expect("the console's pid");
    let open = format!("{n} open");
    tmux.wait_for("the whole replay", |s| s.contains(&open));
    println!(
        "console: {n} open cases on screen {} after start",
        ms(started.elapsed())
    );
    // Let the last frames settle before reading.
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "console RSS with {n} open cases:  {:>6.1} MB   (target <= 80 MB)",
        rss_kib(pid) as f64 / 1024.0
    );
    for round in 1..=3 {
        tmux.keys(&["m"]);
        tmux.wait_for("my steps", |s| s.contains("My steps"));
        tmux.keys(&["Escape"]);
        tmux.wait_for("the list", |s| s.contains(&open));
        tmux.keys(&["f"]);
        tmux.wait_for("the follow-ups", |s| !s.contains(&open));
        tmux.keys(&["Escape"]);
        tmux.wait_for("the list", |s| s.contains(&open));
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "  after my steps and follow-ups, round {round}: {:>6.1} MB",
            rss_kib(pid) as f64 / 1024.0
        );
    }
    // Quit as a responder would, so a wrapper (`heaptrack`, through
    // `CRISISDESK_BIN`) gets to write its profile before tmux goes.
    tmux.keys(&["q"]);
    let gone = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(100));
    }
}
