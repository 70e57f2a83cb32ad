//! The alert relay: producers `POST /v1/alerts`, duty terminals follow
//! `GET /v1/stream` over a websocket. Alerts enter in [`ingest`], are stored
//! by [`crate::store`] and fan out to every connection from [`stream`].

mod auth;
mod error;
mod ingest;
pub mod playbooks;
mod stream;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, broadcast};

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
    /// Where chain-head checkpoints go (see `docs/security.md`).
    checkpoint_file: Option<PathBuf>,
}

impl Relay {
    pub fn new(store: Store, library: Library) -> Arc<Relay> {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Arc::new(Relay {
            store,
            library: Arc::new(library),
            live,
            write_lock: Mutex::new(()),
            checkpoint_file: None,
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
        if let CommandOutcome::Applied { events } = &outcome {
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

    /// Sets the file the relay appends chain-head checkpoints to.
    pub fn with_checkpoint_file(store: Store, library: Library, file: PathBuf) -> Arc<Relay> {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Arc::new(Relay {
            store,
            library: Arc::new(library),
            live,
            write_lock: Mutex::new(()),
            checkpoint_file: Some(file),
        })
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

/// Serves the relay on `listener` until `shutdown` resolves, scanning for
/// overdue steps meanwhile.
pub async fn serve(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scanner = tokio::spawn(scan_for_escalations(relay.clone()));
    let checkpoints = relay
        .checkpoint_file
        .clone()
        .map(|file| tokio::spawn(write_checkpoints(relay.clone(), file)));
    let served = axum::serve(listener, router(relay.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    scanner.abort();
    if let Some(task) = checkpoints {
        task.abort();
        // One last head, so a clean shutdown leaves the newest checkpoint.
        if let Some(file) = &relay.checkpoint_file
            && let Err(err) = append_checkpoint(&relay, file, &mut None).await
        {
            tracing::error!(error = %err, "final audit checkpoint failed");
        }
    }
    served
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
