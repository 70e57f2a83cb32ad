//! The duty console: a ratatui TUI fed by the relay's stream.
//!
//! State and its one update path:
//! - [`app`]: `App` and `App::update` (`Action` in, `Effect` out), which
//!   orchestrates the parts below; `App::refresh` brings derived state up
//!   to date once per batch.
//! - [`action`]: the messages between the tasks and the state (a leaf).
//! - [`cases`]: every case seen, in a slab, and what a case holds.
//! - [`list`]: sort, filter and header counts over the cases, and the
//!   "my steps" index, all kept up to date incrementally.
//! - [`nav`]: which screen, tab and question is open (a leaf).
//! - [`alarms`]: new high/imminent cases and escalations to my role, and
//!   when one last rang; [`ledger`]: command ids, what each awaits.
//! - [`frames`]: frames from the relay, typed; refusal codes.
//!
//! The screens' own state, each a module that `app` uses and that never
//! reaches back into `App`: its methods take what they read (the cases,
//! the clock, the [`nav::Nav`]) and return what `App` is to do, the
//! question to send above all, which `App` sends, remembering its id.
//! - [`followups`] (rows built and kept, check-in prompts, missed
//!   check-ins), [`followup_filter`] (which rows and in what order),
//!   [`followup_rows`] (the rows themselves, a leaf) and [`cadence`] (the
//!   三个一 figures moved by each event).
//! - [`district`] and [`charts`]: the questions the reporting screens ask
//!   the relay, one in flight at a time, and their answers.
//! - [`reports`] (the header's countdown and the reports screen's rows)
//!   and [`report_actions`] (submit, accept, return, and their refusals).
//! - [`student`]: the student record (一生一档) as the relay answers it.
//!
//! Around it:
//! - [`view`]: drawing, a pure function of the state, one module per region.
//! - [`connection`]: the websocket supervisor task; [`outbox`]: actions
//!   kept on disk until the relay has them.
//! - [`tui`]: the terminal owner that always restores the terminal.
//! - [`i18n`]: the Chinese and English string catalogues.
//! - [`keymap`]: which key does what in each view (drives the help overlay).
//! - [`notify`]: the desktop notifier task.
//! - [`config`]: the per-user config file; [`theme`]: colour-blind-safe,
//!   high-contrast and no-colour styles.

pub mod action;
pub mod alarms;
pub mod app;
pub mod cadence;
pub mod cases;
pub mod charts;
pub mod config;
pub mod connection;
pub mod district;
pub mod followup_filter;
pub mod followup_rows;
pub mod followups;
pub mod frames;
pub mod i18n;
pub mod i18n_reports;
pub mod keymap;
pub mod ledger;
pub mod list;
pub mod nav;
pub mod notify;
pub mod outbox;
pub mod report_actions;
pub mod reports;
pub mod student;
pub mod theme;
pub mod tui;
pub mod view;

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{Local, Offset, Utc};
use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use app::{Action, App, Effect};
pub use config::{AlertPrefs, ConsoleConfig};
pub use connection::relay_label;
pub use i18n::Lang;
pub use theme::{Theme, ThemeName};

pub struct ConsoleOptions {
    /// `ws://host:port/v1/stream` (see [`stream_url`]): the relays to
    /// follow, tried in this order (several relays share one database).
    pub stream_urls: Vec<String>,
    pub token: String,
    pub lang: Lang,
    /// Extra words for the drill banner (the demo says so).
    pub banner: Option<String>,
    /// TLS settings for a wss:// relay (None for ws://).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The local outbox file for actions taken while offline (see
    /// [`outbox_path`]); None keeps them in memory only.
    pub outbox: Option<std::path::PathBuf>,
}

/// Where a duty terminal keeps unsent actions for these relays and this
/// credential: the per-user data directory, one file per set of relays and
/// credential, named by a hash so the token never appears on disk. The
/// relays of one list share a database, so one outbox serves them all and
/// survives a switch; the order they are tried in does not change it, and
/// a single relay keeps the file it always had.
pub fn outbox_path(stream_urls: &[String], token: &str) -> anyhow::Result<std::path::PathBuf> {
    let mut urls: Vec<&str> = stream_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    urls.dedup();
    let key = crate::store::hash_token(&format!("{}\n{token}", urls.join("\n")));
    Ok(crate::logging::default_dir()?.join(format!("outbox-{}.sqlite", &key[..16])))
}

/// Checks the transport before anything connects: wss:// needs the CA that
/// signed the relay; plain ws:// is only for a relay on this machine unless
/// the user says `--insecure`.
pub fn transport(
    stream_url: &str,
    ca: Option<&std::path::Path>,
    insecure: bool,
) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
    if stream_url.starts_with("wss://") {
        return crate::tls::client_config(ca).map(Some);
    }
    let host = stream_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    if !insecure && !crate::tls::is_loopback(host) {
        anyhow::bail!(
            "--relay: plain ws:// to {host} would send student data unencrypted; use wss:// with --ca, \
             or pass --insecure on a trusted network"
        );
    }
    Ok(None)
}

/// How the console looks and how it calls for attention (from the config
/// file; see [`config`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub theme: ThemeName,
    pub alerts: AlertPrefs,
}

impl From<&ConsoleConfig> for Settings {
    fn from(c: &ConsoleConfig) -> Settings {
        Settings {
            theme: c.theme,
            alerts: c.alerts,
        }
    }
}

/// Turns what a user types as `--relay` (`ws://h:p`, `http://h:p`, `h:p`,
/// with or without the path) into the stream endpoint.
pub fn stream_url(relay: &str) -> anyhow::Result<String> {
    let relay = relay.trim();
    let (scheme, rest) = match relay.split_once("://") {
        Some(("ws" | "http", rest)) => ("ws", rest),
        Some(("wss" | "https", rest)) => ("wss", rest),
        Some((other, _)) => anyhow::bail!(
            "--relay: unsupported scheme `{other}://`; use ws://HOST:PORT or http://HOST:PORT"
        ),
        None => ("ws", relay),
    };
    let rest = rest.trim_end_matches('/').trim_end_matches("/v1/stream");
    if rest.is_empty() {
        anyhow::bail!("--relay: missing host, e.g. ws://127.0.0.1:7710");
    }
    Ok(format!("{scheme}://{rest}/v1/stream"))
}

/// Frames drawn per second at most; a burst of events costs one draw.
const MAX_FPS: u64 = 30;

/// Actions applied before a draw at most, so a replay of thousands of
/// events still shows progress.
const MAX_BATCH: usize = 4096;

/// Runs the console with the settings from the default config file (the
/// demo's entry point).
pub async fn run(options: ConsoleOptions) -> anyhow::Result<()> {
    let config = config::load(None)?;
    run_with(options, Settings::from(&config)).await
}

pub async fn run_with(options: ConsoleOptions, settings: Settings) -> anyhow::Result<()> {
    // Room for a few frames' worth: a replay waits on the UI (and the
    // socket on the relay) rather than queue decoded events in memory.
    let (action_tx, mut actions) = mpsc::channel::<Action>(256);
    let (command_tx, command_rx) = mpsc::channel(256);
    // Small: a notifier that cannot keep up drops notes rather than make
    // the UI wait; the banner and the bell still fire.
    let (note_tx, note_rx) = mpsc::channel(64);

    let supervisor = connection::Supervisor {
        stream_urls: options.stream_urls.clone(),
        token: options.token.clone(),
        tls: options.tls.clone(),
        actions: action_tx.clone(),
        commands: command_rx,
        outbox: options.outbox.clone(),
    };
    let supervisor = tokio::spawn(supervisor.run());
    let notifier = tokio::spawn(notify::run(
        notify::DesktopBackend,
        note_rx,
        action_tx.clone(),
    ));
    let input = tokio::spawn(read_terminal(action_tx.clone()));
    let ticker = tokio::spawn(tick(action_tx.clone()));
    drop(action_tx);

    let offset = Local::now().offset().fix();
    let mut app = App::new(options.lang, Utc::now(), offset);
    app.relay_label = relay_label(&options.stream_urls, 0);
    app.banner = options.banner;
    let no_color = std::env::var("NO_COLOR").ok();
    app.theme = Theme::new(ThemeName::resolve(settings.theme, no_color.as_deref()));
    app.alert_prefs = settings.alerts;

    let mut tui = tui::Tui::enter()?;
    let frame_time = Duration::from_millis(1000 / MAX_FPS);
    let mut ring = false;
    // Commands the connection task has not taken yet: its channel can be
    // full while it writes the outbox or waits on the socket, and the UI
    // must never wait for that. They go in order as soon as there is room.
    let mut unsent: VecDeque<crate::protocol::Command> = VecDeque::new();
    let result = loop {
        app.refresh();
        if let Err(err) = tui.draw(|frame| view::draw(&app, frame)) {
            break Err(err.into());
        }
        // The throttle counts from here: the next frame may be drawn one
        // frame time after this one, and a key on an idle console (the
        // last draw long ago) is drawn at once.
        let now = Instant::now();
        let next_frame = now.checked_add(frame_time).unwrap_or(now);
        if std::mem::take(&mut ring) {
            // A bell that cannot be rung is not worth stopping for.
            let _ = tui.bell();
        }
        let first = tokio::select! {
            action = actions.recv() => action,
            permit = command_tx.reserve(), if !unsent.is_empty() => {
                if let (Ok(permit), Some(cmd)) = (permit, unsent.pop_front()) {
                    permit.send(cmd);
                }
                flush_commands(&command_tx, &mut unsent);
                Some(Action::Sending(unsent.len()))
            }
        };
        let Some(first) = first else {
            break Ok(());
        };
        // Coalesce: apply everything already queued, and whatever arrives
        // before the next frame is due, then draw once. Each action is
        // applied as it is taken, not gathered first: during a replay a
        // gathered batch held thousands of decoded frames at once, and
        // that peak stayed resident (issue 10). `timeout_at` takes a
        // deadline, so no time is ever subtracted (a deadline already past
        // returns at once).
        let waiting_before = unsent.len();
        let mut next = Some(first);
        let mut applied = 0;
        while let Some(action) = next.take() {
            for effect in app.update(action) {
                match effect {
                    Effect::Send(cmd) => unsent.push_back(cmd),
                    Effect::Bell => ring = true,
                    Effect::Notify(note) => {
                        if note_tx.try_send(note).is_err() {
                            tracing::warn!("desktop notifier busy; a notification was dropped");
                        }
                    }
                }
            }
            applied += 1;
            if applied >= MAX_BATCH {
                break;
            }
            next = match actions.try_recv() {
                Ok(action) => Some(action),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(next_frame, actions.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
        }
        flush_commands(&command_tx, &mut unsent);
        if unsent.len() != waiting_before {
            app.update(Action::Sending(unsent.len()));
        }
        if app.should_quit {
            break Ok(());
        }
    };
    drop(tui);
    supervisor.abort();
    notifier.abort();
    input.abort();
    ticker.abort();
    result
}

/// Hands queued commands to the connection task while its channel has
/// room, never waiting. A closed channel means the connection task has
/// ended (the console is quitting): nothing can be sent any more.
fn flush_commands(
    command_tx: &mpsc::Sender<crate::protocol::Command>,
    unsent: &mut VecDeque<crate::protocol::Command>,
) {
    while let Some(cmd) = unsent.pop_front() {
        match command_tx.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                unsent.push_front(cmd);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(
                    dropped = unsent.len() + 1,
                    "connection task gone; commands not sent"
                );
                unsent.clear();
                return;
            }
        }
    }
}

async fn read_terminal(actions: mpsc::Sender<Action>) {
    let mut events = EventStream::new();
    while let Some(event) = events.next().await {
        let action = match event {
            Ok(TermEvent::Key(key)) => Action::Key(key),
            Ok(TermEvent::Resize(_, _)) => Action::Resize,
            Ok(_) => continue,
            Err(err) => {
                tracing::error!(error = %err, "terminal input failed");
                return;
            }
        };
        if actions.send(action).await.is_err() {
            return;
        }
    }
}

async fn tick(actions: mpsc::Sender<Action>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        if actions.send(Action::Tick(Utc::now())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stream_url;

    #[test]
    fn relay_urls_are_normalised() {
        assert_eq!(
            stream_url("ws://127.0.0.1:1").unwrap(),
            "ws://127.0.0.1:1/v1/stream"
        );
        assert_eq!(stream_url("http://h:1/").unwrap(), "ws://h:1/v1/stream");
        assert_eq!(stream_url("https://h").unwrap(), "wss://h/v1/stream");
        assert_eq!(stream_url("h:1/v1/stream").unwrap(), "ws://h:1/v1/stream");
        assert!(stream_url("ftp://h").is_err());
        assert!(stream_url("ws://").is_err());
    }

    #[test]
    fn plain_ws_is_for_this_machine_only() {
        use super::transport;
        assert!(transport("ws://127.0.0.1:7710/v1/stream", None, false).is_ok());
        assert!(transport("ws://localhost/v1/stream", None, false).is_ok());
        assert!(transport("ws://10.0.0.5:7710/v1/stream", None, false).is_err());
        assert!(transport("ws://10.0.0.5:7710/v1/stream", None, true).is_ok());
        let err = transport("wss://relay.example/v1/stream", None, false).unwrap_err();
        assert!(err.to_string().contains("--ca"), "{err}");
    }
}
