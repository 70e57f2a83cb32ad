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
}

impl Relay {
    pub fn new(store: Store, library: Library) -> Arc<Relay> {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Arc::new(Relay {
            store,
            library: Arc::new(library),
            live,
            write_lock: Mutex::new(()),
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
    let served = axum::serve(listener, router(relay))
        .with_graceful_shutdown(shutdown)
        .await;
    scanner.abort();
    served
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
