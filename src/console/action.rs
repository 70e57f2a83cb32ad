//! The messages between the console's tasks and its state: what can happen
//! ([`Action`]) and what the I/O side must do about it ([`Effect`]). A leaf:
//! the connection and notifier tasks import this, never the state.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use super::frames::Frame;
use crate::protocol::{Command, CommandResult};

/// Everything that can change the console's state.
#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// The clock moved (countdowns and ages are drawn against this).
    Tick(DateTime<Utc>),
    Frame(Box<Frame>),
    Connection(ConnectionState),
    /// Which relay the connection is on or trying now, as the chrome names
    /// it (see [`super::relay_label`]).
    Relay(String),
    /// The relay showed it is alive without sending data (a ping).
    Heard(DateTime<Utc>),
    /// How the desktop notifier is doing.
    Notifier(NotifierHealth),
    /// The relay's history is not the one this console followed: drop
    /// everything and rebuild from its stream.
    Reset,
    /// How many of this console's actions wait in its outbox.
    Outbox(usize),
    /// How many commands wait for room in the channel to the connection
    /// task (it is busy writing the outbox or the socket); the UI never
    /// waits for it, it says "sending…".
    Sending(usize),
    /// The relay's answer to one of this console's commands, with the
    /// command (which may have been sent by an earlier run).
    Answered(Box<Command>, Box<CommandResult>),
    Resize,
}

/// What the I/O side must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    /// Ring the terminal bell.
    Bell,
    /// Show a desktop notification (the notifier task does it).
    Notify(DesktopNote),
}

/// A desktop notification. It leaves this machine's screen for the
/// desktop's notification service (and whatever it logs or shows on a lock
/// screen), so it carries only the pseudonymous case id, the level and the
/// category — never a name, never alert text. Built only by
/// [`App::desktop_note`], from those fields alone.
#[derive(Debug, Clone, PartialEq)]
pub struct DesktopNote {
    pub case_id: String,
    pub summary: String,
    pub body: String,
    /// High or imminent: ask the desktop to keep it up until dismissed.
    pub critical: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifierHealth {
    /// Nothing sent yet.
    #[default]
    Unknown,
    Working,
    /// No notification service (no D-Bus session: SSH, headless, locked
    /// down). The console says so once and carries on.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting {
        attempt: u32,
    },
    Connected,
    /// Lost; the next attempt is in `retry_in_secs`.
    Retrying {
        attempt: u32,
        retry_in_secs: u64,
    },
    /// The relay refused the credential (HTTP status); retried slowly.
    Refused {
        status: u16,
        retry_in_secs: u64,
    },
}
