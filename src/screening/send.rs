//! Sending graded alerts while grading goes on. The importer stores a slice
//! of results, hands that slice's alerts here and goes on grading the next
//! slice while the relay commits these: the two run on the machine's two
//! cores instead of one after the other. Posts run on blocking threads, up
//! to [`BATCHES_IN_FLIGHT`] at once, and their answers are taken in the
//! order sent, so confirmations follow the file.
//!
//! Nothing is sent before it is stored (the importer saves a slice before
//! it hands it over), and a result is marked confirmed only after the relay
//! answered for it, so an import stopped anywhere is finished by running it
//! again.

// A build with neither the relay nor the HTTP client has nowhere to send
// (the importer refuses before it starts), so nothing here is called.
#![cfg_attr(
    not(any(feature = "relay", feature = "drill-client")),
    allow(dead_code, clippy::never_loop)
)]

use std::collections::VecDeque;
#[cfg(feature = "drill-client")]
use std::time::Duration;

use serde_json::Value;
#[cfg(feature = "drill-client")]
use tokio::task::JoinHandle;

use super::import::ImportError;
use super::map::RowError;
use crate::protocol::ErrorDetail;
#[cfg(feature = "relay")]
use crate::protocol::Role;
#[cfg(feature = "relay")]
use crate::store::Credential;
use crate::store::Store;

/// Batches posted before the first answer is awaited: while the relay
/// commits one, the next is on the wire, and batches that arrive together
/// share the relay's group commit.
#[cfg(feature = "drill-client")]
const BATCHES_IN_FLIGHT: usize = 3;

/// Built batches waiting for a free slot before grading waits for the
/// relay: bounds the JSON held when grading outruns sending.
#[cfg(feature = "drill-client")]
const MAX_QUEUED: usize = 3;

/// How long [`Outbox::pump`] may wait for answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Record what has arrived; wait only while more than [`MAX_QUEUED`] batches are queued.
    ForRoom,
    /// Until every batch is answered.
    All,
}

/// One batch of alerts, with what the importer needs to account for each.
pub struct Batch {
    pub students: Vec<String>,
    /// The file row of each alert, for the error file.
    pub rows: Vec<String>,
    pub bodies: Vec<Value>,
}

/// What the relay (or the in-process store) said, alert by alert.
#[derive(Debug, Default)]
pub struct Tally {
    pub created: usize,
    pub duplicate: usize,
    pub refused: usize,
    /// Refused alerts, by row and student, for the error file.
    pub refused_rows: Vec<RowError>,
    /// Alerts answered so far.
    pub done: usize,
}

enum Sent {
    Created(String),
    Duplicate(String),
    Refused(ErrorDetail),
}

#[cfg(feature = "drill-client")]
type Posted = JoinHandle<Result<Vec<Sent>, String>>;

/// Where batches go. Each way is built only with the feature that brings
/// what it needs: the HTTP client (`drill-client`), the relay's ingest
/// (`relay`); [`Destination`](super::import::Destination) names them all
/// and the importer refuses the one this build lacks.
enum Sink {
    #[cfg(feature = "drill-client")]
    Relay {
        agent: ureq::Agent,
        url: String,
        token: String,
        in_flight: VecDeque<(Batch, Posted)>,
    },
    /// The relay's own ingest path, in process (`--db` without `--relay`):
    /// cases, dedup, playbooks and audit as for any alert.
    #[cfg(feature = "relay")]
    Store {
        relay: std::sync::Arc<crate::relay::Relay>,
        credential: Credential,
    },
}

/// Takes batches as grading produces them and sends them in order.
pub struct Outbox<'a> {
    sink: Sink,
    store: &'a Store,
    plan_id: &'a str,
    /// Built, not yet posted (the relay already has enough in flight).
    queued: VecDeque<Batch>,
    progress: bool,
    /// Answered (student, case) pairs not yet recorded: they go into the
    /// importer's next slice transaction ([`Outbox::take_confirmed`]), the
    /// rest at [`Outbox::finish`]. One unrecorded when the import stops is
    /// sent again next time and answered `duplicate`: nothing is lost.
    confirmed: Vec<(String, String)>,
    pub tally: Tally,
}

impl<'a> Outbox<'a> {
    /// Posts to a running relay's batch endpoint with a producer token.
    #[cfg(feature = "drill-client")]
    pub fn relay(store: &'a Store, plan_id: &'a str, url: &str, token: &str) -> Outbox<'a> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Outbox::new(
            Sink::Relay {
                agent,
                url: url.to_string(),
                token: token.to_string(),
                in_flight: VecDeque::new(),
            },
            store,
            plan_id,
        )
    }

    /// Ingests in this process, under the import's own producer credential
    /// (created on first use).
    #[cfg(feature = "relay")]
    pub async fn store(store: &'a Store, plan_id: &'a str) -> Result<Outbox<'a>, ImportError> {
        let library = crate::playbook::shipped::load(None).map_err(|p| {
            ImportError::Rules(
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let id = match store.screening_import_credential().await? {
            Some(id) => id,
            None => {
                store
                    .create_credential_by("screening-import", Role::Producer, "screening import")
                    .await?;
                store
                    .screening_import_credential()
                    .await?
                    .ok_or_else(|| ImportError::Plan("credential".into()))?
            }
        };
        let credential = Credential {
            id,
            name: "screening-import".into(),
            role: Role::Producer,
            limits: Default::default(),
        };
        let relay = crate::relay::Relay::new(store.clone(), library);
        Ok(Outbox::new(
            Sink::Store { relay, credential },
            store,
            plan_id,
        ))
    }

    fn new(sink: Sink, store: &'a Store, plan_id: &'a str) -> Outbox<'a> {
        Outbox {
            sink,
            store,
            plan_id,
            queued: VecDeque::new(),
            progress: false,
            confirmed: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Print a line to stderr per answered batch.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Hands over a batch of stored results' alerts. Returns once the batch
    /// is posted or queued; answers that have arrived meanwhile are
    /// recorded on the way, never waited for.
    pub async fn push(&mut self, batch: Batch) -> Result<(), ImportError> {
        if batch.bodies.is_empty() {
            return Ok(());
        }
        self.queued.push_back(batch);
        let pumped = self.pump(Wait::ForRoom).await;
        if pumped.is_err() {
            // The import stops here: record what the relay did answer.
            let held = self.take_confirmed();
            self.store
                .screening_confirm_alerts(self.plan_id, &held)
                .await?;
        }
        pumped
    }

    /// Sends what is queued, waits for every answer and records the
    /// confirmations still held.
    pub async fn finish(mut self) -> Result<Tally, ImportError> {
        let pumped = self.pump(Wait::All).await;
        // Record what was answered even when a later batch failed.
        self.store
            .screening_confirm_alerts(self.plan_id, &self.confirmed)
            .await?;
        pumped?;
        Ok(self.tally)
    }

    pub fn plan_id(&self) -> &str {
        self.plan_id
    }

    /// The confirmations answered since the last call, for the importer to
    /// record in its next transaction.
    pub fn take_confirmed(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.confirmed)
    }

    /// Records finished answers in order and posts queued batches while
    /// there is room, waiting as `wait` says.
    async fn pump(&mut self, wait: Wait) -> Result<(), ImportError> {
        // Only posts over HTTP are answered later; the in-process ingest
        // answers each batch as it takes it.
        #[cfg(not(feature = "drill-client"))]
        let _ = wait;
        loop {
            match &mut self.sink {
                #[cfg(feature = "drill-client")]
                Sink::Relay {
                    agent,
                    url,
                    token,
                    in_flight,
                } => {
                    while in_flight.len() < BATCHES_IN_FLIGHT {
                        let Some(mut batch) = self.queued.pop_front() else {
                            break;
                        };
                        let (agent, url, token) = (agent.clone(), url.clone(), token.clone());
                        // The bodies go with the post; students and rows stay
                        // for the answer.
                        let bodies = std::mem::take(&mut batch.bodies);
                        let posted = tokio::task::spawn_blocking(move || {
                            http::post_batch(&agent, &url, &token, &bodies)
                        });
                        in_flight.push_back((batch, posted));
                    }
                    let must_wait = match wait {
                        Wait::ForRoom => self.queued.len() > MAX_QUEUED,
                        Wait::All => true,
                    };
                    let ready = in_flight
                        .front()
                        .is_some_and(|(_, posted)| must_wait || posted.is_finished());
                    if !ready {
                        return Ok(());
                    }
                    let Some((batch, posted)) = in_flight.pop_front() else {
                        return Ok(());
                    };
                    let answers = posted
                        .await
                        .map_err(|e| ImportError::Send(e.to_string()))?
                        .map_err(ImportError::Send)?;
                    self.record(&batch, answers);
                }
                #[cfg(feature = "relay")]
                Sink::Store { relay, credential } => {
                    let Some(batch) = self.queued.pop_front() else {
                        return Ok(());
                    };
                    let answers = local::ingest_here(relay, credential, &batch).await?;
                    self.record(&batch, answers);
                }
                // A build with neither way never makes an outbox.
                #[cfg(not(any(feature = "relay", feature = "drill-client")))]
                _ => return Ok(()),
            }
        }
    }

    /// Counts a batch's answers and marks the accepted ones confirmed.
    fn record(&mut self, batch: &Batch, answers: Vec<Sent>) {
        let confirmed = &mut self.confirmed;
        for ((student, row), sent) in batch.students.iter().zip(&batch.rows).zip(answers) {
            match sent {
                Sent::Created(case) => {
                    self.tally.created += 1;
                    confirmed.push((student.clone(), case));
                }
                Sent::Duplicate(case) => {
                    self.tally.duplicate += 1;
                    confirmed.push((student.clone(), case));
                }
                Sent::Refused(e) => {
                    self.tally.refused += 1;
                    self.tally
                        .refused_rows
                        .push(super::import::refusal(row, student, &e));
                }
            }
        }
        self.tally.done += batch.students.len();
        if self.progress {
            // Progress is a courtesy: a closed stderr (its reader went
            // away) must not stop the import with answers still held.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "已发送 / sent {}", self.tally.done);
        }
    }
}

#[cfg(feature = "relay")]
mod local {
    use super::{Batch, ImportError, Sent};
    use crate::protocol::ErrorDetail;
    use crate::store::{Credential, IngestOutcome};

    /// The in-process ingest of one batch, answered as the relay would.
    pub(super) async fn ingest_here(
        relay: &crate::relay::Relay,
        credential: &Credential,
        batch: &Batch,
    ) -> Result<Vec<Sent>, ImportError> {
        let mut answers: Vec<Option<Sent>> = Vec::with_capacity(batch.bodies.len());
        let mut parsed = Vec::with_capacity(batch.bodies.len());
        for body in &batch.bodies {
            let bytes = serde_json::to_vec(body).map_err(|e| ImportError::Send(e.to_string()))?;
            match crate::protocol::parse_alert(&bytes) {
                Ok(alert) => {
                    parsed.push(alert);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Sent::Refused(e))),
            }
        }
        let mut outcomes = relay.ingest_batch(parsed, credential).await?.into_iter();
        Ok(answers
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| match outcomes.next() {
                    Some(IngestOutcome::Created { case_id, .. }) => Sent::Created(case_id),
                    Some(IngestOutcome::Duplicate { case_id, .. }) => Sent::Duplicate(case_id),
                    Some(IngestOutcome::Conflict) | None => Sent::Refused(ErrorDetail::new(
                        "conflict",
                        "a different alert already has this id",
                    )),
                })
            })
            .collect())
    }
}

#[cfg(feature = "drill-client")]
mod http {
    use std::time::Duration;

    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::Sent;
    use crate::protocol::ErrorDetail;

    #[derive(Deserialize)]
    struct BatchAnswer {
        results: Vec<BatchResult>,
    }

    #[derive(Deserialize)]
    struct BatchResult {
        status: String,
        #[serde(default)]
        case_id: Option<String>,
        #[serde(default)]
        error: Option<ErrorDetail>,
    }

    /// Posts one batch, retrying a relay that is restarting or briefly
    /// unavailable; a refusal of the whole request is final.
    pub(super) fn post_batch(
        agent: &ureq::Agent,
        url: &str,
        token: &str,
        alerts: &[Value],
    ) -> Result<Vec<Sent>, String> {
        let body = serde_json::to_vec(&json!({ "alerts": alerts })).map_err(|e| e.to_string())?;
        let endpoint = format!("{}/v1/alerts/batch", url.trim_end_matches('/'));
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..8 {
            let resp = agent
                .post(&endpoint)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(&body[..]);
            match resp {
                Ok(mut resp) if resp.status() == 200 => {
                    let text = resp
                        .body_mut()
                        .read_to_string()
                        .map_err(|e| e.to_string())?;
                    let answer: BatchAnswer = serde_json::from_str(&text)
                        .map_err(|e| format!("the relay's answer is not a batch result: {e}"))?;
                    if answer.results.len() != alerts.len() {
                        return Err(format!(
                            "the relay answered {} results for {} alerts",
                            answer.results.len(),
                            alerts.len()
                        ));
                    }
                    return Ok(answer
                        .results
                        .into_iter()
                        .map(|r| match (r.status.as_str(), r.case_id) {
                            ("created", Some(c)) => Sent::Created(c),
                            ("duplicate", Some(c)) => Sent::Duplicate(c),
                            _ => Sent::Refused(
                                r.error
                                    .unwrap_or_else(|| ErrorDetail::new("refused", r.status)),
                            ),
                        })
                        .collect());
                }
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    let detail = serde_json::from_str::<crate::protocol::ErrorBody>(&text)
                        .map(|b| format!("{} {}", b.error.code, b.error.message))
                        .unwrap_or_default();
                    last = format!("HTTP {status} {detail}");
                    if status != 503 && status != 429 && status < 500 {
                        return Err(last);
                    }
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(3));
        }
        Err(format!("relay {url}: {last}"))
    }
}
