//! `GET /v1/stream?since=SEQ`: replay every stored event after `since`, then
//! live events, with no gaps and no duplicates; and take console commands.
//!
//! Delivery rule: the connection remembers the last `seq` it sent. Anything
//! it has not sent yet is read from the store, which holds every event
//! before it is published; the live channel is only a fast path. So a gap in
//! the live feed (a lagging receiver) is filled from the store, and an event
//! seen both in replay and live is sent once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{
    Query, State, rejection::QueryRejection, ws::rejection::WebSocketUpgradeRejection,
};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, interval};

use super::delivery::{LiveStep, on_live};
use super::{ApiError, Relay, auth};
use crate::audit::{AuditKind, NewEntry};
use crate::protocol::{
    Actor, ClientFrame, CommandResult, ErrorDetail, ResultTag, Role, Session, SessionTag,
};
use crate::store::{CommandOutcome, Credential, StoredEvent};

/// Events read from the store per query while catching up.
const REPLAY_PAGE: i64 = 500;
/// Largest frame a console may send (commands are small).
const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Per-connection read buffer (see `open_stream`).
const READ_BUFFER: usize = 4 * 1024;
/// Bytes gathered before a write reaches the socket while replaying.
const WRITE_BUFFER: usize = 16 * 1024;
const PING_EVERY: Duration = Duration::from_secs(15);
/// A connection silent for this long (no pong, no frame) is dead.
const IDLE_LIMIT: Duration = Duration::from_secs(45);

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    since: i64,
}

pub async fn open_stream(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Refusals happen before the upgrade, as plain HTTP answers.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !relay.config().allowed_origins.iter().any(|o| o == origin) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not open the stream (see the relay's --allow-origin)",
            ));
        }
    }
    let credential = auth::require(&relay, &headers, Role::can_stream, "read the stream").await?;
    let Query(StreamQuery { since }) = query.map_err(|e| {
        ApiError::invalid(
            ErrorDetail::new(
                "invalid_field",
                format!("`since` must be a whole number: {e}"),
            )
            .with_field("since"),
        )
    })?;
    if since < 0 {
        return Err(ApiError::invalid(
            ErrorDetail::new("invalid_field", "`since` must not be negative").with_field("since"),
        ));
    }
    // A client ahead of us would silently miss every event up to its
    // `since`: this relay's history was reset or it is another relay. Say
    // so, and let the client start over from 0.
    let latest = relay.store().latest_seq().await?;
    if since > latest {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            ErrorDetail::new(
                "since_ahead",
                format!(
                    "`since` {since} is ahead of this relay's latest event {latest}; \
                     its history differs from what you saw, resume from 0"
                ),
            )
            .with_field("since"),
        ));
    }
    if !relay.open_connection(&credential) {
        let mut refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!(
                "this credential already has {} live connections",
                relay.max_connections(&credential)
            ),
        );
        refusal.retry_after = Some(5);
        return Err(refusal);
    }
    // Released however the connection ends (including a failed upgrade).
    let slot = ConnectionSlot {
        relay: relay.clone(),
        credential: credential.id,
    };
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            format!("this endpoint speaks websocket only: {e}"),
        )
    })?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        // Consoles send small commands. tungstenite's default 128 KiB read
        // buffer is held per connection and zero-filled on every read; a
        // small one keeps an idle console cheap (a larger command frame
        // still arrives, in several reads).
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
                        tracing::info!(credential = %credential.name, role = %credential.role, since, "stream opened");
            let who = |kind, detail| {
                NewEntry::new(kind, detail).by(&credential.name, credential.role.as_str())
            };
            if let Err(err) = relay
                .audit(who(AuditKind::ConnectionOpened, serde_json::json!({"since": since})))
                .await
            {
                tracing::error!(error = %err, "cannot audit a connection; refusing it");
                return;
            }
            let sent = Connection::new(relay.clone(), credential.clone(), since)
                .run(socket)
                .await;
            if let Err(err) = relay
                .audit(who(AuditKind::ConnectionClosed, serde_json::json!({"last_seq": sent})))
                .await
            {
                tracing::error!(error = %err, "cannot audit a closed connection");
            }
            tracing::info!(credential = %credential.name, last_seq = sent, "stream closed");
        })
        .into_response())
}

struct Connection {
    relay: Arc<Relay>,
    credential: Credential,
    /// The last `seq` this connection has sent.
    sent: i64,
    /// Answers to questions (`district_view`, `period_charts`), computed in
    /// tasks of their own so events keep flowing meanwhile.
    answers: tokio::sync::mpsc::Sender<CommandResult>,
    answered: Option<tokio::sync::mpsc::Receiver<CommandResult>>,
    /// One permit per question being answered.
    questions: Arc<tokio::sync::Semaphore>,
}

/// Questions one connection may have in flight at once.
const MAX_QUESTIONS: usize = 4;

enum Flow {
    Continue,
    Stop,
}

impl Connection {
    fn new(relay: Arc<Relay>, credential: Credential, since: i64) -> Self {
        let (answers, answered) = tokio::sync::mpsc::channel(MAX_QUESTIONS);
        Connection {
            relay,
            credential,
            sent: since,
            answers,
            answered: Some(answered),
            questions: Arc::new(tokio::sync::Semaphore::new(MAX_QUESTIONS)),
        }
    }

    /// Runs the connection; returns the last `seq` sent.
    async fn run(mut self, socket: WebSocket) -> i64 {
        let (mut tx, mut rx) = socket.split();
        // Subscribe before the replay so nothing published meanwhile is
        // missed; duplicates are dropped by the `sent` watermark.
        let mut live = self.relay.subscribe();
        if self.greet(&mut tx).await.is_err() || self.catch_up(&mut tx).await.is_err() {
            return self.sent;
        }
        let mut ping = interval(PING_EVERY);
        ping.reset();
        let mut revoked = self.relay.revocations();
        let mut last_heard = Instant::now();
        let Some(mut answered) = self.answered.take() else {
            return self.sent;
        };
        loop {
            tokio::select! {
                Some(answer) = answered.recv() => {
                    if send_json(&mut tx, &answer).await.is_err() {
                        break;
                    }
                }
                event = live.recv() => {
                    let (live, event) = match event {
                        Ok(event) => (Some(event.seq), Some(event)),
                        Err(RecvError::Lagged(_)) => (None, None),
                        Err(RecvError::Closed) => break,
                    };
                    let step = match (on_live(self.sent, live), event) {
                        (LiveStep::Skip, _) => Ok(()),
                        (LiveStep::Send, Some(event)) => {
                            self.sent = event.seq;
                            let sent = self.send_event(&mut tx, &event).await;
                            if let Some(at) = event.published_at() {
                                self.relay.metrics().delivered(at.elapsed());
                            }
                            sent
                        }
                        // Out of step (behind the live buffer, or a gap):
                        // the store has it all.
                        _ => self.catch_up(&mut tx).await,
                    };
                    if step.is_err() {
                        break;
                    }
                }
                _ = revoked.changed() => {
                    if revoked.borrow_and_update().contains(&self.credential.id) {
                        tracing::info!(credential = %self.credential.name, "credential revoked; closing");
                        let _ = tx.send(close(close_code::POLICY, "credential revoked")).await;
                        break;
                    }
                }
                frame = rx.next() => {
                    last_heard = Instant::now();
                    let frame = match frame {
                        Some(Ok(frame)) => frame,
                        Some(Err(err)) => {
                            // Say why before hanging up: 1009 too big, 1007
                            // not UTF-8, 1002 anything else malformed.
                            let (code, why) = close_reason(&err);
                            let _ = tx.send(close(code, why)).await;
                            break;
                        }
                        None => break,
                    };
                    match self.on_frame(frame, &mut tx).await {
                        Flow::Continue => {}
                        Flow::Stop => break,
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > IDLE_LIMIT {
                        tracing::info!(credential = %self.credential.name, "stream idle; closing");
                        break;
                    }
                    if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.close().await;
        self.sent
    }

    /// Sends one event as this credential's role may see it.
    async fn send_event<S>(&self, tx: &mut S, event: &StoredEvent) -> Result<(), SendError>
    where
        S: SinkExt<Message> + Unpin,
    {
        self.feed_event(tx, event).await?;
        tx.flush().await.map_err(|_| SendError::Closed)
    }

    /// Queues one event as this credential's role may see it, without
    /// flushing: a replay writes its frames into the connection's buffer
    /// and reaches the socket once per buffer-full, not once per event.
    async fn feed_event<S>(&self, tx: &mut S, event: &StoredEvent) -> Result<(), SendError>
    where
        S: SinkExt<Message> + Unpin,
    {
        if !event.visible_to(self.credential.role) {
            return Ok(());
        }
        let text = event.for_role(self.credential.role);
        tx.feed(Message::Text(text.as_ref().into()))
            .await
            .map_err(|_| SendError::Closed)
    }

    /// The first frame: who this credential is and the playbooks in force.
    async fn greet<S>(&mut self, tx: &mut S) -> Result<(), SendError>
    where
        S: SinkExt<Message> + Unpin,
    {
        let latest_seq = self.relay.store().latest_seq().await.map_err(|err| {
            tracing::error!(error = %err, "cannot read the latest seq");
            SendError::Store
        })?;
        let frames = self.relay.playbook_frames();
        // The cadence's figures for those who follow students up; a store
        // that cannot count them costs the figure, not the connection.
        let followup_cadence = if crate::followup::student::may_read_record(self.credential.role) {
            match self
                .relay
                .store()
                .followup_cadence(chrono::Utc::now())
                .await
            {
                Ok(c) => Some(c),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot count the follow-up cadence");
                    None
                }
            }
        } else {
            None
        };
        let session = Session {
            kind: SessionTag::Session,
            credential: Actor {
                name: self.credential.name.clone(),
                role: self.credential.role,
            },
            latest_seq,
            playbooks: Vec::new(),
            playbook_frames: frames.len(),
            followup_cadence,
        };
        let text = serde_json::to_string(&session).map_err(|_| SendError::Closed)?;
        send_text(tx, &text).await?;
        // Encoded once for the relay's life and shared: a clone is a
        // reference count, and each frame is small enough that the
        // connection's write buffer never grows past one playbook.
        for frame in frames.iter() {
            tx.send(Message::Text(frame.clone()))
                .await
                .map_err(|_| SendError::Closed)?;
        }
        Ok(())
    }

    /// Sends every stored event after `sent`, page by page.
    async fn catch_up<S>(&mut self, tx: &mut S) -> Result<(), SendError>
    where
        S: SinkExt<Message> + Unpin,
    {
        loop {
            let page = self
                .relay
                .store()
                .events_after(self.sent, REPLAY_PAGE)
                .await
                .map_err(|err| {
                    tracing::error!(error = %err, "replay read failed; closing so the console resumes");
                    SendError::Store
                })?;
            if page.is_empty() {
                return Ok(());
            }
            for event in page {
                self.feed_event(tx, &event).await?;
                self.sent = event.seq;
            }
            // Each page reaches the console before the next is read, so a
            // slow store never holds back what was already read.
            tx.flush().await.map_err(|_| SendError::Closed)?;
        }
    }

    async fn on_frame<S>(&mut self, frame: Message, tx: &mut S) -> Flow
    where
        S: SinkExt<Message> + Unpin,
    {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => return Flow::Stop,
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
            Message::Binary(_) => {
                let reply = refusal(
                    "",
                    ErrorDetail::new("unsupported_frame", "send commands as JSON text frames"),
                );
                return flow_of(send_json(tx, &reply).await);
            }
        };
        match self.on_command_text(text.as_str()).await {
            Some(reply) => flow_of(send_json(tx, &reply).await),
            None => Flow::Continue,
        }
    }

    /// The answer to a command, or None when it is a question answered
    /// later by its own task (see `queries`).
    async fn on_command_text(&self, text: &str) -> Option<CommandResult> {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(err) => {
                // Echo the id when the frame had one, so the console can
                // match the refusal to what it sent.
                let id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
                    .unwrap_or_default();
                return Some(refusal(
                    &id,
                    ErrorDetail::new("invalid_command", format!("command not understood: {err}")),
                ));
            }
        };
        let ClientFrame::Command(command) = frame;
        if command.id.is_empty() || command.id.chars().count() > 128 {
            return Some(refusal(
                &command.id,
                ErrorDetail::new("invalid_field", "command `id` must be 1 to 128 characters")
                    .with_field("id"),
            ));
        }
        if let Err(wait) = self.relay.rate_check(&self.credential) {
            return Some(refusal(
                &command.id,
                ErrorDetail::new(
                    "rate_limited",
                    format!(
                        "too many commands from this credential; retry in {} s (nothing was applied)",
                        wait.as_secs_f64().ceil().max(1.0)
                    ),
                ),
            ));
        }
        if !command.op.allowed_for(self.credential.role) {
            return Some(refusal(
                &command.id,
                ErrorDetail::new(
                    "forbidden",
                    format!(
                        "role `{}` may not {}",
                        self.credential.role,
                        command.op.name()
                    ),
                ),
            ));
        }
        // A read the relay answers itself, not through the writer.
        if let crate::protocol::CommandOp::Student { case_id } = &command.op {
            return Some(
                super::student::answer(&self.relay, &self.credential, &command.id, case_id).await,
            );
        }
        if command.op.is_query() {
            let Ok(permit) = self.questions.clone().try_acquire_owned() else {
                return Some(refusal(
                    &command.id,
                    ErrorDetail::new(
                        "rate_limited",
                        format!(
                            "{MAX_QUESTIONS} questions are being answered on this connection; \
                             ask again when one is answered"
                        ),
                    ),
                ));
            };
            let (relay, answers) = (self.relay.clone(), self.answers.clone());
            tokio::spawn(async move {
                let answer = super::queries::answer(relay, command).await;
                drop(permit);
                // The connection may have ended meanwhile; then no one asks.
                let _ = answers.send(answer).await;
            });
            return None;
        }
        Some(match self.relay.command(&self.credential, &command).await {
            Ok(CommandOutcome::Applied { data, .. }) => CommandResult {
                kind: ResultTag::Result,
                id: command.id,
                ok: true,
                error: None,
                duplicate: false,
                data,
            },
            Ok(CommandOutcome::Refused(error)) => refusal(&command.id, error),
            Ok(CommandOutcome::Repeated { ok, error }) => CommandResult {
                kind: ResultTag::Result,
                id: command.id,
                ok,
                error,
                duplicate: true,
                data: None,
            },
            Err(err) => {
                tracing::error!(error = %err, "command could not be stored");
                refusal(
                    &command.id,
                    ErrorDetail::new(
                        "store_unavailable",
                        "the relay could not store this command; nothing changed, send it again",
                    ),
                )
            }
        })
    }
}

/// Frees the credential's connection slot when dropped.
struct ConnectionSlot {
    relay: Arc<Relay>,
    credential: i64,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.relay.close_connection(self.credential);
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The close code and words for a frame the relay could not accept.
fn close_reason(err: &axum::Error) -> (u16, &'static str) {
    use tungstenite::Error as WsError;
    use tungstenite::error::CapacityError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(ws) = e.downcast_ref::<WsError>() {
            return match ws {
                WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
                    (close_code::SIZE, "frame too large")
                }
                WsError::Capacity(_) => (close_code::SIZE, "frame too large"),
                WsError::Utf8(_) => (close_code::INVALID, "text frame is not valid UTF-8"),
                _ => (close_code::PROTOCOL, "malformed frame"),
            };
        }
        source = e.source();
    }
    (close_code::PROTOCOL, "malformed frame")
}

#[derive(Debug)]
enum SendError {
    Closed,
    Store,
}

fn flow_of(result: Result<(), SendError>) -> Flow {
    match result {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Stop,
    }
}

fn refusal(id: &str, error: ErrorDetail) -> CommandResult {
    CommandResult {
        kind: ResultTag::Result,
        id: id.to_string(),
        ok: false,
        error: Some(error),
        duplicate: false,
        data: None,
    }
}

async fn send_text<S>(tx: &mut S, text: &str) -> Result<(), SendError>
where
    S: SinkExt<Message> + Unpin,
{
    tx.send(Message::Text(text.into()))
        .await
        .map_err(|_| SendError::Closed)
}

async fn send_json<S>(tx: &mut S, value: &CommandResult) -> Result<(), SendError>
where
    S: SinkExt<Message> + Unpin,
{
    let text = serde_json::to_string(value).map_err(|_| SendError::Closed)?;
    send_text(tx, &text).await
}
