//! The websocket supervisor: keeps one connection to a relay, resumes
//! from the last `seq` it delivered, reconnects with exponential backoff and
//! equal jitter, and carries commands out. Given several relays (on one
//! database, so one `seq` history), it tries them in turn: a lost or
//! refused connection moves to the next one, which resumes from the same
//! `seq` with the same outbox. It runs as a task and talks to the UI only
//! through channels.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::action::{Action, ConnectionState};
use super::frames::{self, Frame};
use super::outbox::Outbox;
use crate::protocol::{ClientFrame, Command};

/// How the chrome names relay `index` of `stream_urls`: its address, and
/// with several, which of them (`ws://10.0.0.6:7710 (2/2)`).
pub fn relay_label(stream_urls: &[String], index: usize) -> String {
    let url = stream_urls
        .get(index)
        .map_or("", |u| u.trim_end_matches("/v1/stream"));
    match stream_urls.len() {
        0 | 1 => url.to_string(),
        n => format!("{url} ({}/{n})", index + 1),
    }
}

const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A refused credential will not fix itself quickly; ask rarely.
const REFUSED_RETRY: Duration = Duration::from_secs(30);
/// Largest frame accepted from the relay.
const MAX_FRAME: usize = 1024 * 1024;
/// The relay pings every 15 s; this long without any frame means the
/// connection is dead even if the socket has not noticed (docs/protocol.md
/// §6.6). Until then the console shows the silence as staleness.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// The delay before attempt `attempt` (1-based): exponential growth capped
/// at 30 s, with "equal jitter" (a random half on top of a fixed half) so a district's consoles do not all return at
/// the same instant after a relay restart.
pub fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(BACKOFF_CAP);
    let millis = cap.as_millis() as u64;
    Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
}

pub struct Supervisor {
    /// Stream endpoints (see [`super::stream_url`]), tried in this order
    /// and round again; one or more.
    pub stream_urls: Vec<String>,
    pub token: String,
    /// Set for wss:// relays.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub actions: mpsc::Sender<Action>,
    pub commands: mpsc::Receiver<Command>,
    /// Where unanswered actions are kept on disk (None: memory only).
    pub outbox: Option<std::path::PathBuf>,
}

enum Ended {
    /// The UI has gone; stop.
    Shutdown,
    Lost,
    Refused(u16),
}

impl Supervisor {
    pub async fn run(mut self) {
        let mut last_seq = 0i64;
        let mut attempt = 0u32;
        // Which relay of the list this attempt goes to, and how many in a
        // row refused the credential (each gets asked before the slow
        // retry).
        let mut current = 0usize;
        let mut shown: Option<usize> = None;
        let mut refused_in_row = 0usize;
        let relays = self.stream_urls.len().max(1);
        // Commands not yet answered, on disk; re-sent in order after every
        // reconnect (and after a restart of the console). The relay applies
        // a command id once, so re-sending is safe.
        let mut unanswered = match &self.outbox {
            Some(path) => match Outbox::open(path).await {
                Ok(outbox) => outbox,
                Err(err) => {
                    tracing::error!(error = %err, "outbox unavailable; actions kept in memory only");
                    Outbox::in_memory()
                }
            },
            None => Outbox::in_memory(),
        };
        if self.waiting(&unanswered).await.is_err() {
            return;
        }
        loop {
            attempt += 1;
            if shown != Some(current) {
                shown = Some(current);
                let label = relay_label(&self.stream_urls, current);
                if self.actions.send(Action::Relay(label)).await.is_err() {
                    return;
                }
            }
            if self
                .report(ConnectionState::Connecting { attempt })
                .await
                .is_err()
            {
                return;
            }
            let url = self.stream_urls.get(current).cloned().unwrap_or_default();
            let ended = self
                .session(&url, &mut last_seq, &mut attempt, &mut unanswered)
                .await;
            // The session sets `attempt` to 0 once it is connected.
            if attempt == 0 {
                refused_in_row = 0;
            }
            // Another relay of the list next, unless this one's history is
            // to be followed afresh (409).
            if !matches!(ended, Ended::Refused(409) | Ended::Shutdown) {
                current = (current + 1) % relays;
            }
            let delay = match ended {
                Ended::Shutdown => return,
                Ended::Lost => backoff(attempt),
                // The relay's history is not the one we followed (reset
                // database, another relay): forget it and start over.
                Ended::Refused(409) => {
                    last_seq = 0;
                    if self.actions.send(Action::Reset).await.is_err() {
                        return;
                    }
                    Duration::ZERO
                }
                Ended::Refused(status) => {
                    // Every relay asked once (the credential or the store
                    // is refused everywhere): the slow retry; else the
                    // next relay soon.
                    refused_in_row += 1;
                    let delay = if refused_in_row >= relays {
                        refused_in_row = 0;
                        REFUSED_RETRY
                    } else {
                        backoff(attempt)
                    };
                    let state = ConnectionState::Refused {
                        status,
                        retry_in_secs: delay.as_secs_f64().ceil() as u64,
                    };
                    if self.report(state).await.is_err() {
                        return;
                    }
                    delay
                }
            };
            if !matches!(ended, Ended::Refused(_)) {
                let state = ConnectionState::Retrying {
                    attempt,
                    retry_in_secs: delay.as_secs_f64().ceil() as u64,
                };
                if self.report(state).await.is_err() {
                    return;
                }
            }
            // Keep accepting commands while waiting, so none is lost.
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                                        cmd = self.commands.recv() => match cmd {
                        Some(cmd) => {
                            unanswered.push(cmd).await;
                            if self.waiting(&unanswered).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    }
                }
            }
        }
    }

    /// Tells the UI how many actions wait for the relay.
    async fn waiting(&self, outbox: &Outbox) -> Result<(), ()> {
        self.actions
            .send(Action::Outbox(outbox.len()))
            .await
            .map_err(|_| ())
    }

    async fn report(&self, state: ConnectionState) -> Result<(), ()> {
        self.actions
            .send(Action::Connection(state))
            .await
            .map_err(|_| ())
    }

    async fn session(
        &mut self,
        stream_url: &str,
        last_seq: &mut i64,
        attempt: &mut u32,
        unanswered: &mut Outbox,
    ) -> Ended {
        let url = format!("{stream_url}?since={}", *last_seq);
        let mut request = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(error = %err, "bad relay URL");
                return Ended::Lost;
            }
        };
        match HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            Ok(v) => {
                request.headers_mut().insert("Authorization", v);
            }
            Err(_) => return Ended::Refused(401),
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let (socket, _) = match tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            // TCP_NODELAY: a responder's command goes out when sent, not
            // after the relay acknowledges an earlier frame (Nagle).
            true,
            self.tls.clone().map(tokio_tungstenite::Connector::Rustls),
        )
        .await
        {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                tracing::warn!(status, "relay refused the stream");
                return Ended::Refused(status);
            }
            Err(err) => {
                tracing::info!(error = %err, "relay unreachable");
                return Ended::Lost;
            }
        };
        tracing::info!(since = *last_seq, relay = %stream_url, "stream connected");
        *attempt = 0;
        if self.report(ConnectionState::Connected).await.is_err() {
            return Ended::Shutdown;
        }
        let (mut tx, mut rx) = socket.split();
        for cmd in unanswered.waiting() {
            if send_command(&mut tx, cmd).await.is_err() {
                return Ended::Lost;
            }
        }
        let silence = tokio::time::sleep(SILENCE_LIMIT);
        tokio::pin!(silence);
        // The district is sent report events only, so its seqs have gaps
        // by design (docs/protocol.md §9); everyone else's never do.
        let mut sparse = false;
        // A session frame waiting for the playbook frames it announced.
        let mut greeting: Option<Box<crate::protocol::Session>> = None;
        loop {
            tokio::select! {
                _ = &mut silence => {
                    tracing::warn!(secs = SILENCE_LIMIT.as_secs(), "relay silent; reconnecting");
                    return Ended::Lost;
                }
                frame = rx.next() => {
                    silence.as_mut().reset(tokio::time::Instant::now() + SILENCE_LIMIT);
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::Lost,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                            let heard = Action::Heard(chrono::Utc::now());
                            if self.actions.send(heard).await.is_err() {
                                return Ended::Shutdown;
                            }
                            continue;
                        }
                        Some(Ok(_)) => continue,
                    };
                    let frame = match frames::decode(text.as_str()) {
                        Ok(f) => f,
                        Err(err) => {
                            tracing::warn!(error = %err, "unreadable frame from relay; skipped");
                            continue;
                        }
                    };
                    // The session frame is followed by its playbooks, one
                    // frame each: the app gets one whole session.
                    let frame = match (frame, greeting.take()) {
                        (Frame::Session(session), _) if session.playbook_frames > 0 => {
                            greeting = Some(session);
                            continue;
                        }
                        (Frame::Playbook(pb), Some(mut session)) => {
                            session.playbooks.push(*pb);
                            if session.playbooks.len() < session.playbook_frames {
                                greeting = Some(session);
                                continue;
                            }
                            Frame::Session(session)
                        }
                        (Frame::Playbook(_), None) => {
                            tracing::warn!("playbook frame outside a greeting; skipped");
                            continue;
                        }
                        (frame, Some(session)) => {
                            // Fewer playbooks than announced: use what came.
                            tracing::warn!(
                                announced = session.playbook_frames,
                                got = session.playbooks.len(),
                                "greeting cut short"
                            );
                            sparse = session.credential.role == crate::protocol::Role::District;
                            if self.actions.send(Action::Frame(Box::new(Frame::Session(session)))).await.is_err() {
                                return Ended::Shutdown;
                            }
                            frame
                        }
                        (frame, None) => frame,
                    };
                    match &frame {
                        Frame::Event(ev, _) if ev.seq <= *last_seq => continue,
                        Frame::Event(ev, _) if ev.seq != *last_seq + 1 && *last_seq > 0 && !sparse => {
                            // A gap should be impossible; resume from what we
                            // have rather than show a hole.
                            tracing::warn!(expected = *last_seq + 1, got = ev.seq, "gap in stream; resyncing");
                            return Ended::Lost;
                        }
                        Frame::Event(ev, _) => *last_seq = ev.seq,
                        Frame::Result(r) => {
                            // The answer travels with the command it answers:
                            // after a restart the UI no longer knows the ids
                            // it sent, but must still say what was refused.
                            let sent = unanswered.waiting().find(|c| c.id == r.id).cloned();
                            unanswered.answered(&r.id).await;
                            if self.waiting(unanswered).await.is_err() {
                                return Ended::Shutdown;
                            }
                            if let Some(command) = sent {
                                let answered = Action::Answered(Box::new(command), Box::new(r.clone()));
                                if self.actions.send(answered).await.is_err() {
                                    return Ended::Shutdown;
                                }
                                continue;
                            }
                        }
                        Frame::Session(session) => {
                            sparse = session.credential.role == crate::protocol::Role::District;
                        }
                        Frame::Playbook(_) => {}
                    }
                    if self.actions.send(Action::Frame(Box::new(frame))).await.is_err() {
                        return Ended::Shutdown;
                    }
                }
                cmd = self.commands.recv() => {
                                        let Some(cmd) = cmd else { return Ended::Shutdown };
                    // On disk first, then on the wire.
                    unanswered.push(cmd.clone()).await;
                    if self.waiting(unanswered).await.is_err() {
                        return Ended::Shutdown;
                    }
                    if send_command(&mut tx, &cmd).await.is_err() {
                        return Ended::Lost;
                    }
                }
            }
        }
    }
}

async fn send_command<S>(tx: &mut S, cmd: &Command) -> Result<(), ()>
where
    S: SinkExt<Message> + Unpin,
{
    let text = serde_json::to_string(&ClientFrame::Command(cmd.clone())).map_err(|_| ())?;
    tx.send(Message::Text(text.into())).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for attempt in 1..40 {
            let d = backoff(attempt);
            let exp = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
        assert!(backoff(30) <= BACKOFF_CAP);
        // Jitter: forty draws at the cap are not all equal.
        let draws: std::collections::HashSet<_> = (0..40).map(|_| backoff(20)).collect();
        assert!(draws.len() > 1);
    }
}
