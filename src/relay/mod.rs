//! The alert relay: producers `POST /v1/alerts`, duty terminals follow
//! `GET /v1/stream` over a websocket. Alerts enter in [`ingest`], are stored
//! by [`crate::store`] and fan out to every connection from [`stream`].

mod auth;
mod error;
mod ingest;
mod stream;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, broadcast};

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
    live: broadcast::Sender<StoredEvent>,
    /// One writer at a time, held across commit *and* publish, so live
    /// events leave in `seq` order.
    write_lock: Mutex<()>,
}

impl Relay {
    pub fn new(store: Store) -> Arc<Relay> {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Arc::new(Relay {
            store,
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
            .ingest_alert(alert, credential, Utc::now())
            .await?;
        if let IngestOutcome::Created { event, .. } = &outcome {
            // No receivers is fine: nobody is watching yet.
            let _ = self.live.send(event.clone());
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
            .apply_command(credential, command, Utc::now())
            .await?;
        if let CommandOutcome::Applied { events, .. } = &outcome {
            for event in events {
                let _ = self.live.send(event.clone());
            }
        }
        Ok(outcome)
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

/// Serves the relay on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    relay: Arc<Relay>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(relay))
        .with_graceful_shutdown(shutdown)
        .await
}
