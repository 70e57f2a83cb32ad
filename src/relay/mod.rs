//! The alert relay: producers `POST /v1/alerts`, duty terminals follow
//! `GET /v1/stream` over a websocket. Alerts enter in [`ingest`], are stored
//! by [`crate::store`] and fan out to every connection from [`stream`].

mod auth;
pub mod delivery;
mod error;
mod ingest;
pub mod limits;
pub mod playbooks;
mod stream;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, broadcast};

use std::collections::HashSet;
use std::path::PathBuf;

use crate::audit::{Checkpoint, NewEntry};
use crate::playbook::Library;
use crate::protocol::{Alert, Command};
use crate::store::{CommandOutcome, Credential, IngestOutcome, Store, StoreError, StoredEvent};

pub use error::ApiError;

/// Live events kept for connections that are momentarily behind. A
/// connection that falls further back than this re-reads from the store,
/// so the bound costs a slow console a database read, never an event.
const LIVE_BUFFER: usize = 1024;

/// Shared state of a running relay.
pub struct Relay {
    store: Store,
    library: Arc<Library>,
    live: broadcast::Sender<StoredEvent>,
    /// One writer at a time, held across commit *and* publish, so live
    /// events leave in `seq` order.
    write_lock: Mutex<()>,
    rates: std::sync::Mutex<limits::RateLimiter>,
    connections: std::sync::Mutex<limits::ConnectionCounter>,
    revoked: tokio::sync::watch::Sender<Arc<HashSet<i64>>>,
    config: RelayConfig,
}

/// What an operator can tune; defaults suit a district relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where chain-head checkpoints go (see `docs/security.md`).
    pub checkpoint_file: Option<PathBuf>,
    /// Browser origins allowed to open the stream. Native consoles send no
    /// `Origin`; any request that carries one not listed is refused, so a
    /// web page cannot ride a logged-in browser into the relay.
    pub allowed_origins: Vec<String>,
    /// Requests (alert posts and commands) per second per credential, and
    /// the burst allowed above it (a screening import posts in bursts).
    pub requests_per_sec: f64,
    pub request_burst: f64,
    pub max_connections_per_credential: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            checkpoint_file: None,
            allowed_origins: Vec::new(),
            requests_per_sec: 50.0,
            request_burst: 500.0,
            max_connections_per_credential: 8,
        }
    }
}

impl Relay {
    pub fn new(store: Store, library: Library) -> Arc<Relay> {
        Relay::with_config(store, library, RelayConfig::default())
    }

    pub fn with_config(store: Store, library: Library, config: RelayConfig) -> Arc<Relay> {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Arc::new(Relay {
            store,
            library: Arc::new(library),
            live,
            write_lock: Mutex::new(()),
            rates: std::sync::Mutex::new(limits::RateLimiter::new(
                config.requests_per_sec,
                config.request_burst,
            )),
            connections: std::sync::Mutex::new(limits::ConnectionCounter::default()),
            revoked: tokio::sync::watch::Sender::new(Arc::new(HashSet::new())),
            config,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores an alert and, when it is new, publishes its event.
    pub async fn ingest(
        &self,
        alert: &Alert,
        credential: &Credential,
    ) -> Result<IngestOutcome, StoreError> {
        let _writer = self.write_lock.lock().await;
        let outcome = self
            .store
            .ingest_alert(alert, credential, Utc::now(), &self.library)
            .await?;
        if let IngestOutcome::Created { events, .. } = &outcome {
            self.publish(events);
        }
        Ok(outcome)
    }

    /// Applies a console command and publishes what it changed.
    pub async fn command(
        &self,
        credential: &Credential,
        command: &Command,
    ) -> Result<CommandOutcome, StoreError> {
        let _writer = self.write_lock.lock().await;
        let outcome = self
            .store
            .apply_command(credential, command, Utc::now(), &self.library)
            .await?;
        if let CommandOutcome::Applied { events, .. } = &outcome {
            self.publish(events);
        }
        Ok(outcome)
    }

    /// Raises an escalation for every step overdue at `now` that has not
    /// escalated before; returns how many. The scanner passes the clock.
    pub async fn escalate_overdue(&self, now: chrono::DateTime<Utc>) -> Result<usize, StoreError> {
        let _writer = self.write_lock.lock().await;
        let events = self.store.escalate_overdue(now, &self.library).await?;
        self.publish(&events);
        Ok(events.len())
    }

    fn publish(&self, events: &[StoredEvent]) {
        for event in events {
            // No receivers is fine: nobody is watching yet.
            let _ = self.live.send(event.clone());
        }
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    /// Records an audit entry that no store change carries (a connection
    /// opened or closed).
    pub async fn audit(&self, entry: NewEntry) -> Result<(), StoreError> {
        let _writer = self.write_lock.lock().await;
        self.store.audit(&entry, Utc::now()).await.map(|_| ())
    }

    /// Takes one request from `credential`'s allowance; `Err` says how long
    /// to wait.
    pub fn rate_check(&self, credential: i64) -> Result<(), std::time::Duration> {
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(credential, std::time::Instant::now())
    }

    /// Counts a stream connection for `credential`, unless at its cap.
    pub fn open_connection(&self, credential: i64) -> bool {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_open(credential, self.config.max_connections_per_credential)
    }

    pub fn close_connection(&self, credential: i64) {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close(credential);
    }

    /// Revoked credential ids as last read from the store.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<Arc<HashSet<i64>>> {
        self.revoked.subscribe()
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.live.subscribe()
    }
}

/// The HTTP routes of the contract.
pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/alerts", post(ingest::post_alert))
        .route("/v1/stream", get(stream::open_stream))
        .with_state(relay)
}

/// How often the relay looks for steps that have gone overdue.
const ESCALATION_SCAN: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the relay over plain HTTP on `listener` until `shutdown`
/// resolves, running the background tasks meanwhile.
pub async fn serve(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = Background::start(&relay);
    let served = axum::serve(listener, router(relay.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    background.stop(&relay).await;
    served
}

/// Serves the relay over TLS (https:// and wss://).
pub async fn serve_tls(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let background = Background::start(&relay);
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let served = axum_server::from_tcp_rustls(
        listener.into_std()?,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .handle(handle)
    .serve(router(relay.clone()).into_make_service())
    .await;
    background.stop(&relay).await;
    served
}

/// The relay's own tasks: escalation scan, revocation watch, checkpoints.
struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn start(relay: &Arc<Relay>) -> Background {
        let mut tasks = vec![
            tokio::spawn(scan_for_escalations(relay.clone())),
            tokio::spawn(watch_revocations(relay.clone())),
        ];
        if let Some(file) = relay.config.checkpoint_file.clone() {
            tasks.push(tokio::spawn(write_checkpoints(relay.clone(), file)));
        }
        Background { tasks }
    }

    async fn stop(self, relay: &Relay) {
        for task in self.tasks {
            task.abort();
        }
        // One last head, so a clean shutdown leaves the newest checkpoint.
        if let Some(file) = &relay.config.checkpoint_file
            && let Err(err) = append_checkpoint(relay, file, &mut None).await
        {
            tracing::error!(error = %err, "final audit checkpoint failed");
        }
    }
}

/// How often the chain head is written to the checkpoint file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

async fn write_checkpoints(relay: Arc<Relay>, file: PathBuf) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    let mut last = None;
    loop {
        every.tick().await;
        if let Err(err) = append_checkpoint(&relay, &file, &mut last).await {
            tracing::error!(error = %err, file = %file.display(), "audit checkpoint failed");
        }
    }
}

/// Appends the head if it moved since `last`, and syncs the file.
async fn append_checkpoint(
    relay: &Relay,
    file: &std::path::Path,
    last: &mut Option<Checkpoint>,
) -> anyhow::Result<()> {
    let Some(head) = relay.store.audit_head().await? else {
        return Ok(());
    };
    if last.as_ref() == Some(&head) {
        return Ok(());
    }
    let line = format!("{} {}\n", head.to_line(), Utc::now().to_rfc3339());
    let file = file.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)?;
        f.write_all(line.as_bytes())?;
        f.sync_all()
    })
    .await??;
    *last = Some(head);
    Ok(())
}

/// How often revocations are picked up (they end connections within this).
const REVOCATION_POLL: std::time::Duration = std::time::Duration::from_millis(400);

/// `token revoke` runs in another process; the database is how it tells
/// us. Connections watch the set and close when their credential is in it.
async fn watch_revocations(relay: Arc<Relay>) {
    let mut every = tokio::time::interval(REVOCATION_POLL);
    loop {
        every.tick().await;
        match relay.store.revoked_ids().await {
            Ok(ids) => {
                relay.revoked.send_if_modified(|current| {
                    if **current == ids {
                        false
                    } else {
                        *current = Arc::new(ids);
                        true
                    }
                });
            }
            Err(err) => tracing::error!(error = %err, "cannot read revocations"),
        }
    }
}

async fn scan_for_escalations(relay: Arc<Relay>) {
    let mut every = tokio::time::interval(ESCALATION_SCAN);
    loop {
        every.tick().await;
        match relay.escalate_overdue(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(escalations = n, "overdue steps escalated"),
            Err(err) => tracing::error!(error = %err, "escalation scan failed"),
        }
    }
}
