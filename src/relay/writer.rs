//! The relay's single writer. Every change (alerts, commands, escalations,
//! audit entries) is a request on one queue; the writer takes whatever is
//! waiting, applies it in one transaction with one commit (group commit),
//! publishes the events in `seq` order and then answers each request. A
//! producer's 201 therefore still means "on disk" (`synchronous=FULL`), but
//! sixteen producers waiting at once share one fsync instead of queueing
//! for sixteen.
//!
//! Each request's outcome is its own (a refused command or a conflicting
//! alert spoils nothing for the rest of its group); if the commit fails,
//! nothing of the group is stored and every request in it gets the error.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::playbook::Library;
use crate::store::{Store, StoreError, StoredEvent, Write, WriteOutcome};

/// Requests waiting for the writer before new ones wait to be queued.
const QUEUE: usize = 4096;

/// At most this many alerts go into one group, so one commit never holds
/// the database (and every waiting producer) for long.
const GROUP_ALERTS: usize = 4096;

/// At most this many requests go into one group.
const GROUP_REQUESTS: usize = 512;

struct Request {
    write: Write,
    answer: oneshot::Sender<Result<WriteOutcome, Arc<StoreError>>>,
}

/// Where committed events go live.
pub enum Publish {
    /// Straight onto the live channel (SQLite: this writer is the only one
    /// that appends events).
    Direct(broadcast::Sender<StoredEvent>),
    /// Through the feed that orders them with other relays' commits
    /// (PostgreSQL; see `super::cluster`).
    Ordered(Arc<super::cluster::Feed>),
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the writer over `store`, publishing through `publish`. It
    /// runs until every handle is dropped.
    pub fn start(
        store: Store,
        library: Arc<Library>,
        publish: Publish,
        deadlines_changed: Arc<tokio::sync::Notify>,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Writer {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(run(
            store,
            library,
            publish,
            requests,
            deadlines_changed,
            metrics,
        ));
        Writer { queue }
    }

    /// Applies one write and waits for its outcome (after the commit).
    pub async fn apply(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        let (answer, outcome) = oneshot::channel();
        self.queue
            .send(Request { write, answer })
            .await
            .map_err(|_| StoreError::Unavailable("the relay's writer has stopped".into()))?;
        match outcome.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(err)) => Err(StoreError::Unavailable(err.to_string())),
            Err(_) => Err(StoreError::Unavailable(
                "the relay's writer stopped before answering".into(),
            )),
        }
    }
}

async fn run(
    store: Store,
    library: Arc<Library>,
    publish: Publish,
    mut requests: mpsc::Receiver<Request>,
    deadlines_changed: Arc<tokio::sync::Notify>,
    metrics: Arc<super::metrics::Metrics>,
) {
    let mut writes: Vec<Write> = Vec::with_capacity(GROUP_REQUESTS);
    let mut answers = Vec::with_capacity(GROUP_REQUESTS);
    while let Some(first) = requests.recv().await {
        let mut alerts = alert_count(&first.write);
        writes.push(first.write);
        answers.push(first.answer);
        // Take what is already waiting; never wait for more. Under load the
        // queue fills while the previous group commits, so groups grow by
        // themselves; when idle a lone request commits at once.
        while writes.len() < GROUP_REQUESTS && alerts < GROUP_ALERTS {
            match requests.try_recv() {
                Ok(request) => {
                    alerts += alert_count(&request.write);
                    writes.push(request.write);
                    answers.push(request.answer);
                }
                Err(_) => break,
            }
        }
        let may_move_deadlines = writes
            .iter()
            .any(|w| matches!(w, Write::Ingest { .. } | Write::Command { .. }));
        let started = std::time::Instant::now();
        let applied = store.apply_group(&writes, Utc::now(), &library).await;
        metrics.group_committed(started.elapsed());
        tracing::debug!(
            writes = writes.len(),
            alerts,
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "write group"
        );
        match applied {
            Ok(outcomes) => {
                // Publish before answering: a producer that hears 201 and
                // then opens a stream finds its alert either in the store
                // or on the live channel, never in between. (On PostgreSQL
                // after another relay's commit the tailer publishes it a
                // moment later; it is in the store already.)
                for outcome in &outcomes {
                    metrics.count(outcome);
                }
                match &publish {
                    Publish::Direct(live) => {
                        for event in outcomes.iter().flat_map(WriteOutcome::events) {
                            // No receivers is fine: nobody is watching yet.
                            let _ = live.send(event.clone().published_now());
                        }
                    }
                    Publish::Ordered(feed) => {
                        feed.committed(outcomes.iter().flat_map(WriteOutcome::events));
                    }
                }
                for (answer, outcome) in answers.drain(..).zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
                if may_move_deadlines {
                    deadlines_changed.notify_one();
                }
            }
            Err(err) => {
                tracing::error!(error = %err, writes = writes.len(), "write group failed; nothing of it was stored");
                let err = Arc::new(err);
                for answer in answers.drain(..) {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
        writes.clear();
    }
}

fn alert_count(write: &Write) -> usize {
    match write {
        Write::Ingest { alerts, .. } => alerts.len(),
        _ => 1,
    }
}
