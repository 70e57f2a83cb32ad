//! Shared test harness: a real relay on 127.0.0.1:0 over a real SQLite file,
//! a real HTTP client (ureq) and a real websocket client (tokio-tungstenite).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use crisisdesk::playbook;
use crisisdesk::protocol::Role;
use crisisdesk::relay::{self, Relay};
use crisisdesk::store::Store;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestRelay {
    pub addr: SocketAddr,
    pub relay: Arc<Relay>,
    pub db_url: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        TestRelay::start_with(relay::RelayConfig::default()).await
    }

    pub async fn start_with(config: relay::RelayConfig) -> TestRelay {
        TestRelay::start_with_store(config, |store| store).await
    }

    /// Like [`TestRelay::start_with`], with the store adjusted first (e.g.
    /// other reporting rules).
    pub async fn start_with_store(
        config: relay::RelayConfig,
        adjust: impl FnOnce(Store) -> Store,
    ) -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = format!("sqlite:{}", dir.path().join("relay.sqlite").display());
        let store = adjust(Store::open(&db_url).await.expect("open store"));
        let library = playbook::shipped::load(None).expect("built-in playbooks load");
        let relay = Relay::with_config(store, library, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(relay::serve(listener, relay.clone(), async {
            let _ = stopped.await;
        }));
        TestRelay {
            addr,
            relay,
            db_url,
            dir,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub async fn token(&self, name: &str, role: Role) -> String {
        self.relay
            .store()
            .create_credential(name, role)
            .await
            .expect("create credential")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// A valid alert body with the given id and student.
pub fn alert(id: &str, student: &str, level: &str) -> Value {
    json!({
        "id": id,
        "source": "screening",
        "category": "suicide_risk",
        "level": level,
        "student": {"id": student, "name": "王小明", "school": "第一中学", "grade": "初二", "class": "(3)班"},
        "summary": "PHQ-9 第9题阳性",
        "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": 17, "items": {"9": 2}}],
        "observed_at": "2026-11-20T21:04:00+08:00"
    })
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

/// POSTs raw bytes with a content type (None: no Content-Type header).
pub async fn post_raw(
    url: String,
    token: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
) -> Reply {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.post(&url);
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let mut resp = req.send(&body[..]).expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            headers,
        }
    })
    .await
    .expect("blocking request")
}

/// GETs `path` with a bearer token; (status, body text).
pub async fn get_text(relay: &TestRelay, path: &str, token: &str) -> (u16, String) {
    let url = relay.url(path);
    let token = token.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    })
    .await
    .expect("blocking request")
}

pub async fn post_alert(relay: &TestRelay, token: &str, alert: &Value) -> Reply {
    post_raw(
        relay.url("/v1/alerts"),
        Some(token.to_string()),
        Some("application/json"),
        serde_json::to_vec(alert).unwrap(),
    )
    .await
}

/// Opens the stream; Err carries the HTTP status of a refusal.
pub async fn connect(addr: SocketAddr, token: Option<&str>, since: i64) -> Result<Ws, u16> {
    connect_with(addr, token, since, &[]).await
}

/// Opens the stream with extra request headers.
pub async fn connect_with(
    addr: SocketAddr,
    token: Option<&str>,
    since: i64,
    headers: &[(&'static str, &str)],
) -> Result<Ws, u16> {
    let mut request = format!("ws://{addr}/v1/stream?since={since}")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(*k, v.parse().unwrap());
    }
    if let Some(t) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

/// The next JSON text frame, or None if nothing arrives within `wait`.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match frame {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads events until `n` have arrived (panics after 10 s).
pub async fn events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = next_json(ws, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("expected {n} events, got {}", out.len()));
        if v.get("seq").is_some() {
            out.push(v);
        }
    }
    out
}

pub async fn send_command(ws: &mut Ws, command: Value) {
    ws.send(Message::Text(command.to_string().into()))
        .await
        .expect("send command");
}

/// Reads frames until the result for command `id` arrives; returns it and
/// the events seen meanwhile.
pub async fn result_for(ws: &mut Ws, id: &str) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let v = next_json(ws, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no result for command {id}"));
        if v["type"] == "result" && v["id"] == id {
            return (v, seen);
        }
        seen.push(v);
    }
}

pub const BIN: &str = env!("CARGO_BIN_EXE_crisisdesk");

/// `crisisdesk token create` through the real binary.
pub fn token(db: &str, name: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "token", "create", "--db", db, "--name", name, "--role", role,
        ])
        .output()
        .expect("run token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `crisisdesk relay` on a free port; returns the child and address
/// (read from the line the relay prints on stdout).
pub fn spawn_relay(db: &str) -> (Child, SocketAddr) {
    spawn_relay_with(db, &[])
}

/// Like [`spawn_relay`] with extra relay options.
pub fn spawn_relay_with(db: &str, extra: &[&str]) -> (Child, SocketAddr) {
    spawn_relay_on(db, "127.0.0.1:0", extra)
}

/// Like [`spawn_relay_with`] on a chosen address (a console that must know
/// a relay's address before that relay exists).
pub fn spawn_relay_on(db: &str, listen: &str, extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["relay", "--listen", listen, "--db", db])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn relay");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("relay prints its address");
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    (child, addr)
}

/// Every event (frames with a `seq`) until the stream is quiet for 500 ms.
pub async fn until_quiet(ws: &mut Ws) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(frame) = next_json(ws, Duration::from_millis(500)).await {
        if frame.get("seq").is_some() {
            out.push(frame);
        }
    }
    out
}

/// Reads until `n` alert events have arrived, returning only those (other
/// events, such as the checklists alerts call for, are skipped).
pub async fn alert_events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = next_json(ws, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("expected {n} alert events, got {}", out.len()));
        if v["type"] == "alert" {
            out.push(v);
        }
    }
    out
}

pub fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

/// A private tmux server, killed when the test ends however it ends.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new() -> Tmux {
        Tmux {
            socket: format!(
                "crisisdesk-e2e-{}-{}",
                std::process::id(),
                fastrand::u32(..)
            ),
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// Polls the screen until `predicate` holds; panics with the screen.
    pub fn wait_for(&self, what: &str, predicate: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if predicate(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
