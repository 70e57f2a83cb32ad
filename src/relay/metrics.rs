//! `GET /metrics`: what an operator's Prometheus scrapes from each relay
//! (OpenMetrics text). Counts and timings only: no student, case or
//! credential name ever becomes a label, so a scrape leaks nothing a
//! console would not be allowed to see.
//!
//! The figures are the ones a night on duty depends on: alerts taken in
//! (by outcome), commands applied or refused, consoles connected, how long
//! an alert waits for its answer, how long a group commit takes, how long
//! an event takes from commit to a console's socket, escalations sent, and
//! the steps overdue right now.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{ApiError, Relay, auth};
use crate::protocol::Role;
use crate::store::{CommandOutcome, IngestOutcome, WriteOutcome};

/// The `outcome` label: one of a fixed set of lower-case words (never
/// anything from a request).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The relay's instruments. Cheap to update from hot paths: each is an
/// atomic (histograms a few), never a lock held across an await.
pub struct Metrics {
    registry: Registry,
    alerts: Family<OutcomeLabel, Counter>,
    commands: Family<OutcomeLabel, Counter>,
    escalations: Counter,
    connections: Gauge<i64, AtomicI64>,
    overdue_steps: Gauge<i64, AtomicI64>,
    ack_seconds: Histogram,
    group_commit_seconds: Histogram,
    delivery_seconds: Histogram,
    is_leader: Gauge<i64, AtomicI64>,
    events_tailed: Counter,
    listener_reconnects: Counter,
}

/// 0.25 ms to ~4 s, doubling: a loopback ack is well under a millisecond,
/// a commit on a slow disk tens of milliseconds, a stall seconds.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, 2.0, 15)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("crisisdesk");
        let alerts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "alerts",
            "Alerts taken in, by outcome (created, duplicate, conflict)",
            alerts.clone(),
        );
        let commands = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "commands",
            "Console commands, by outcome (applied, refused, repeated)",
            commands.clone(),
        );
        let escalations = Counter::default();
        registry.register(
            "escalation_groups",
            "Escalation slices written (each raises one or more overdue-step escalations)",
            escalations.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "stream_connections",
            "Consoles connected to this relay's stream",
            connections.clone(),
        );
        let overdue_steps = Gauge::default();
        registry.register(
            "overdue_steps",
            "Steps escalated as overdue and still open, on open real cases (read at scrape time)",
            overdue_steps.clone(),
        );
        let ack_seconds = Histogram::new(latency_buckets());
        registry.register(
            "alert_ack_seconds",
            "From an alert request read to its answer (stored and committed), per request",
            ack_seconds.clone(),
        );
        let group_commit_seconds = Histogram::new(latency_buckets());
        registry.register(
            "group_commit_seconds",
            "One write group applied and committed by the single writer",
            group_commit_seconds.clone(),
        );
        let delivery_seconds = Histogram::new(latency_buckets());
        registry.register(
            "event_delivery_seconds",
            "From an event's commit to its frame handed to a console's socket (live events)",
            delivery_seconds.clone(),
        );
        let is_leader = Gauge::default();
        registry.register(
            "is_leader",
            "1 while this relay runs the cluster's escalation scan and checkpoints (always 1 on SQLite)",
            is_leader.clone(),
        );
        let events_tailed = Counter::default();
        registry.register(
            "events_tailed",
            "Events published live after reading them from the database (another relay's commits, or a gap before this relay's own)",
            events_tailed.clone(),
        );
        let listener_reconnects = Counter::default();
        registry.register(
            "listener_reconnects",
            "Times the PostgreSQL listener for other relays' commits connected again after losing its server",
            listener_reconnects.clone(),
        );
        Metrics {
            registry,
            alerts,
            commands,
            escalations,
            connections,
            overdue_steps,
            ack_seconds,
            group_commit_seconds,
            delivery_seconds,
            is_leader,
            events_tailed,
            listener_reconnects,
        }
    }
}

impl Metrics {
    /// Counts what one committed write did.
    pub fn count(&self, outcome: &WriteOutcome) {
        let add = |family: &Family<OutcomeLabel, Counter>, outcome: &'static str| {
            family.get_or_create(&OutcomeLabel { outcome }).inc();
        };
        match outcome {
            WriteOutcome::Ingested(each) => {
                for o in each {
                    let o = match o {
                        IngestOutcome::Created { .. } => "created",
                        IngestOutcome::Duplicate { .. } => "duplicate",
                        IngestOutcome::Conflict => "conflict",
                    };
                    add(&self.alerts, o);
                }
            }
            WriteOutcome::Command(c) => {
                let o = match c {
                    CommandOutcome::Applied { .. } => "applied",
                    CommandOutcome::Refused(_) => "refused",
                    CommandOutcome::Repeated { .. } => "repeated",
                };
                add(&self.commands, o);
            }
            WriteOutcome::Escalated { events, .. } => {
                if !events.is_empty() {
                    self.escalations.inc();
                }
            }
            WriteOutcome::Audited => {}
        }
    }

    pub fn group_committed(&self, took: std::time::Duration) {
        self.group_commit_seconds.observe(took.as_secs_f64());
    }

    pub fn alert_answered(&self, took: std::time::Duration) {
        self.ack_seconds.observe(took.as_secs_f64());
    }

    pub fn delivered(&self, took: std::time::Duration) {
        self.delivery_seconds.observe(took.as_secs_f64());
    }

    pub fn set_leader(&self, leads: bool) {
        self.is_leader.set(i64::from(leads));
    }

    pub fn tailed(&self, events: usize) {
        self.events_tailed
            .inc_by(u64::try_from(events).unwrap_or(u64::MAX));
    }

    pub fn listener_reconnected(&self) {
        self.listener_reconnects.inc();
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Who may scrape: operators (`admin`) and reviewers. A scrape carries
/// only counts, but it still tells an outsider how busy a school's night
/// is, so it is not public.
fn may_scrape(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Reviewer)
}

pub async fn scrape(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    match scrape_text(&relay, &headers).await {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

async fn scrape_text(relay: &Relay, headers: &HeaderMap) -> Result<String, ApiError> {
    auth::require(relay, headers, may_scrape, "read metrics").await?;
    let overdue = relay.store().overdue_steps().await?;
    let metrics = relay.metrics();
    metrics.overdue_steps.set(overdue);
    metrics.encode().map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot encode the metrics",
        )
    })
}
