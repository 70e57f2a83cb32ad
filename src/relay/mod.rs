//! The alert relay: producers `POST /v1/alerts`, duty terminals follow
//! `GET /v1/stream` over a websocket. Alerts enter in [`ingest`], are stored
//! by [`crate::store`] and fan out to every connection from [`stream`].

mod auth;
mod cluster;
pub mod delivery;
mod district;
mod error;
mod ingest;
pub mod limits;
mod metrics;
mod queries;
mod stream;
mod student;
mod writer;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use std::collections::HashSet;
use std::path::PathBuf;

use crate::audit::{Checkpoint, NewEntry};
use crate::playbook::Library;
use crate::protocol::{Alert, Command};
use crate::store::{
    CommandOutcome, Credential, IngestOutcome, Store, StoreError, StoredEvent, Write, WriteOutcome,
};

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
    /// The one writer: commits in groups and publishes in `seq` order.
    writer: writer::Writer,
    /// Pinged by the writer when a change may have moved the next step
    /// deadline, so the escalation scanner can sleep until it.
    deadlines_changed: Arc<tokio::sync::Notify>,
    rates: std::sync::Mutex<limits::RateLimiter>,
    connections: std::sync::Mutex<limits::ConnectionCounter>,
    revoked: tokio::sync::watch::Sender<Arc<HashSet<i64>>>,
    /// Credentials by token hash, so a request does not read the database
    /// to authenticate (see [`auth::CredentialCache`]).
    credentials: auth::CredentialCache,
    /// What `/metrics` reports (counts and timings, never identities).
    metrics: Arc<metrics::Metrics>,
    /// Whether this relay runs the once-per-cluster tasks (the escalation
    /// scan, checkpoints). Always on SQLite; on PostgreSQL while it holds
    /// the cluster's lock (see [`cluster`]).
    leader: tokio::sync::watch::Sender<bool>,
    /// On PostgreSQL, the tailer and listener that feed the live
    /// channel in `seq` order with every relay's commits; stopped when the
    /// relay is dropped.
    _cluster: Option<cluster::Tasks>,
    /// The `playbook` frames every stream starts with, encoded once.
    playbook_frames: Arc<[axum::extract::ws::Utf8Bytes]>,
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
        let library = Arc::new(library);
        let deadlines_changed = Arc::new(tokio::sync::Notify::new());
        let metrics = Arc::new(metrics::Metrics::default());
        let playbook_frames = encode_playbook_frames(&library);
        // SQLite: one relay per file, its writer publishes directly and it
        // leads. PostgreSQL: other relays may share the database.
        let (publish, cluster_tasks, leads) =
            match cluster::start(&store, &live, deadlines_changed.clone(), metrics.clone()) {
                Some((feed, tasks)) => (writer::Publish::Ordered(feed), Some(tasks), false),
                None => (writer::Publish::Direct(live.clone()), None, true),
            };
        metrics.set_leader(leads);
        let writer = writer::Writer::start(
            store.clone(),
            library.clone(),
            publish,
            deadlines_changed.clone(),
            metrics.clone(),
        );
        Arc::new(Relay {
            store,
            library,
            live,
            writer,
            deadlines_changed,
            rates: std::sync::Mutex::new(limits::RateLimiter::new(
                config.requests_per_sec,
                config.request_burst,
            )),
            connections: std::sync::Mutex::new(limits::ConnectionCounter::default()),
            revoked: tokio::sync::watch::Sender::new(Arc::new(HashSet::new())),
            credentials: auth::CredentialCache::default(),
            metrics,
            leader: tokio::sync::watch::Sender::new(leads),
            _cluster: cluster_tasks,
            playbook_frames,
            config,
        })
    }

    /// Whether this relay runs the once-per-cluster tasks now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Follows [`Relay::is_leader`].
    pub fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leader.subscribe()
    }

    fn set_leader(&self, leads: bool) {
        let changed = self.leader.send_if_modified(|current| {
            let changed = *current != leads;
            *current = leads;
            changed
        });
        if changed {
            self.metrics.set_leader(leads);
            if leads {
                tracing::info!("leading the cluster: escalation scan and checkpoints run here");
            } else {
                tracing::info!("no longer leading the cluster");
            }
        }
    }

    /// The `playbook` frames that follow every session frame.
    pub fn playbook_frames(&self) -> Arc<[axum::extract::ws::Utf8Bytes]> {
        self.playbook_frames.clone()
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
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
        let mut outcomes = self.ingest_batch(vec![alert.clone()], credential).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Corrupt("ingest gave no outcome".into()))
    }

    /// Stores alerts in order, committed together; one outcome per alert.
    pub async fn ingest_batch(
        &self,
        alerts: Vec<Alert>,
        credential: &Credential,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let write = Write::Ingest {
            alerts,
            credential: credential.clone(),
        };
        match self.writer.apply(write).await? {
            WriteOutcome::Ingested(outcomes) => Ok(outcomes),
            _ => Err(StoreError::Corrupt("ingest gave another outcome".into())),
        }
    }

    /// Applies a console command and publishes what it changed.
    pub async fn command(
        &self,
        credential: &Credential,
        command: &Command,
    ) -> Result<CommandOutcome, StoreError> {
        let write = Write::Command {
            credential: credential.clone(),
            command: command.clone(),
        };
        match self.writer.apply(write).await? {
            WriteOutcome::Command(outcome) => Ok(outcome),
            _ => Err(StoreError::Corrupt("command gave another outcome".into())),
        }
    }

    /// Raises an escalation for every step overdue at `now` that has not
    /// escalated before; returns how many. The scanner passes the clock and
    /// works in slices of [`ESCALATION_SLICE`] checklists, so other writes
    /// get in between the slices of a storm.
    pub async fn escalate_overdue(&self, now: chrono::DateTime<Utc>) -> Result<usize, StoreError> {
        let mut raised = 0;
        loop {
            let write = Write::Escalate {
                now,
                limit: ESCALATION_SLICE,
            };
            match self.writer.apply(write).await? {
                WriteOutcome::Escalated { events, more } => {
                    raised += events.len();
                    if !more {
                        return Ok(raised);
                    }
                }
                _ => {
                    return Err(StoreError::Corrupt(
                        "escalation gave another outcome".into(),
                    ));
                }
            }
        }
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    /// Records an audit entry that no store change carries (a connection
    /// opened or closed).
    pub async fn audit(&self, entry: NewEntry) -> Result<(), StoreError> {
        self.writer.apply(Write::Audit(entry)).await.map(|_| ())
    }

    /// Takes one request from `credential`'s allowance; `Err` says how long
    /// to wait.
    pub fn rate_check(&self, credential: &Credential) -> Result<(), std::time::Duration> {
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check_with(
                credential.id,
                credential.limits.rate_per_sec,
                credential.limits.burst,
                std::time::Instant::now(),
            )
    }

    /// Counts a stream connection for `credential`, unless at its cap.
    pub fn open_connection(&self, credential: &Credential) -> bool {
        let opened = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_open(credential.id, self.max_connections(credential));
        if opened {
            self.metrics.connection_opened();
        }
        opened
    }

    /// The credential's own connection cap, or the relay's default.
    pub fn max_connections(&self, credential: &Credential) -> usize {
        credential
            .limits
            .max_connections
            .map_or(self.config.max_connections_per_credential, |n| n as usize)
    }

    pub fn close_connection(&self, credential: i64) {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close(credential);
        self.metrics.connection_closed();
    }

    /// Whether `credential` was revoked, as of the last revocation poll.
    pub fn is_revoked(&self, credential: i64) -> bool {
        self.revoked.borrow().contains(&credential)
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
/// One `playbook` frame per playbook in force. A playbook that cannot be
/// encoded is left out (it was parsed from TOML, so it always can be).
fn encode_playbook_frames(library: &Library) -> Arc<[axum::extract::ws::Utf8Bytes]> {
    library
        .playbooks()
        .iter()
        .filter_map(|pb| {
            serde_json::to_string(&crate::protocol::PlaybookFrame {
                kind: crate::protocol::PlaybookTag::Playbook,
                playbook: pb.clone(),
            })
            .ok()
        })
        .map(axum::extract::ws::Utf8Bytes::from)
        .collect()
}

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/alerts", post(ingest::post_alert))
        .route("/v1/alerts/batch", post(ingest::post_batch))
        .route("/v1/stream", get(stream::open_stream))
        .route("/v1/district", get(district::district_view))
        .route("/v1/reports/{id}", get(district::report))
        .with_state(relay)
}

/// Checklists escalated per write group. A storm of 40,000 overdue steps
/// is written in slices this size, so the writer is never held long and
/// alerts keep flowing in between.
pub const ESCALATION_SLICE: usize = 64;

/// The scanner looks again at least this often even when no deadline is
/// near (another process, such as a restore, may have changed the store).
const ESCALATION_IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves the relay over plain HTTP on `listener` until `shutdown`
/// resolves, running the background tasks meanwhile.
pub async fn serve(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let background = Background::start(&relay);
    // TCP_NODELAY: an event frame goes out when written. Without it Nagle
    // holds a frame written while the previous one is unacknowledged, and
    // the console's delayed ACK makes that up to 40 ms (measured: fan-out
    // p50 14-27 ms on loopback, p99 40-65 ms). axum-server, which serves
    // TLS, sets it already.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(error = %err, "cannot set TCP_NODELAY on a connection");
        }
    });
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
        // Every relay watches revocations for its own connections; the
        // scan and the checkpoints run once per cluster, on the leader.
        let mut tasks = vec![tokio::spawn(watch_revocations(relay.clone()))];
        if let Some(lock) = relay.store.leader_lock() {
            tasks.push(tokio::spawn(cluster::lead(relay.clone(), lock)));
        }
        let scanner = relay.clone();
        tasks.push(tokio::spawn(cluster::while_leading(
            relay.clone(),
            move || scan_for_escalations(scanner.clone()),
        )));
        if let Some(file) = relay.config.checkpoint_file.clone() {
            let writer = relay.clone();
            tasks.push(tokio::spawn(cluster::while_leading(
                relay.clone(),
                move || write_checkpoints(writer.clone(), file.clone()),
            )));
        }
        Background { tasks }
    }

    async fn stop(self, relay: &Relay) {
        // One last head, so a clean shutdown leaves the newest checkpoint
        // (written by the leader, as every checkpoint is).
        let leads = relay.is_leader();
        for task in self.tasks {
            task.abort();
        }
        if leads
            && let Some(file) = &relay.config.checkpoint_file
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
                relay.credentials.forget(&ids);
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

/// Sleeps until the soonest step deadline (or until a change may have moved
/// it), then escalates what is overdue. Idle with 40,000 open cases it
/// wakes only when a deadline passes, instead of reading every checklist
/// every few seconds.
async fn scan_for_escalations(relay: Arc<Relay>) {
    loop {
        // Ask first, then wait: a change that lands between the two still
        // wakes us, because `notified` remembers a ping sent before it.
        let changed = relay.deadlines_changed.notified();
        let next = match relay.store.next_deadline().await {
            Ok(next) => next,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the next step deadline");
                Some(Utc::now() + chrono::Duration::seconds(5))
            }
        };
        let now = Utc::now();
        match next {
            Some(due) if due <= now => {}
            Some(due) => {
                let wait = (due - now)
                    .to_std()
                    .unwrap_or_default()
                    .min(ESCALATION_IDLE_CHECK);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = changed => continue,
                }
            }
            None => {
                tokio::select! {
                    () = tokio::time::sleep(ESCALATION_IDLE_CHECK) => {}
                    () = changed => continue,
                }
            }
        }
        match relay.escalate_overdue(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(escalations = n, "overdue steps escalated"),
            Err(err) => {
                tracing::error!(error = %err, "escalation scan failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
