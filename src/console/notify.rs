//! The desktop notifier: a task of its own that takes [`DesktopNote`]s from
//! the UI and hands them to the desktop's notification service over D-Bus
//! (notify-rust). The UI never waits for it. When there is no service — no
//! session bus over SSH, on a headless box, or one that does not answer —
//! it reports [`NotifierHealth::Unavailable`] (the console says so once)
//! and keeps draining its queue; it never takes the console down.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use super::action::{Action, DesktopNote, NotifierHealth};

/// A notification service that did not answer in this time is treated as
/// absent for this note.
const SHOW_TIMEOUT: Duration = Duration::from_secs(5);

/// Where notes go. The real one is [`DesktopBackend`]; tests use others.
pub trait Backend: Send + 'static {
    /// Shows one note; `Err` says why it could not (logged, never shown
    /// with any case data).
    fn show(&mut self, note: &DesktopNote) -> impl Future<Output = Result<(), String>> + Send;
}

/// The freedesktop notification service on the session bus.
pub struct DesktopBackend;

impl Backend for DesktopBackend {
    async fn show(&mut self, note: &DesktopNote) -> Result<(), String> {
        session_bus_present()?;
        let mut n = notify_rust::Notification::new();
        n.appname("crisisdesk")
            .summary(&note.summary)
            .body(&note.body)
            .icon("dialog-warning");
        if note.critical {
            // Critical notifications stay until dismissed on most desktops.
            n.urgency(notify_rust::Urgency::Critical)
                .timeout(notify_rust::Timeout::Never);
        }
        match tokio::time::timeout(SHOW_TIMEOUT, n.show_async()).await {
            Ok(Ok(_handle)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("the notification service did not answer".to_string()),
        }
    }
}

/// A quick, explainable refusal before asking zbus: no session bus address
/// and no bus socket where systemd puts it means no notification service
/// (typical over SSH).
fn session_bus_present() -> Result<(), String> {
    let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    if !address.trim().is_empty() {
        return Ok(());
    }
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| std::path::Path::new(&d).join("bus"))
        .filter(|p| p.exists());
    match runtime_bus {
        Some(_) => Ok(()),
        None => Err("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)".to_string()),
    }
}

/// Runs until the UI goes away. Reports a change of health, not every
/// note: `Unavailable` once when notes stop getting through, `Working` when
/// they get through (again).
pub async fn run<B: Backend>(
    mut backend: B,
    mut notes: mpsc::Receiver<DesktopNote>,
    actions: mpsc::Sender<Action>,
) {
    let mut health = NotifierHealth::Unknown;
    while let Some(note) = notes.recv().await {
        let now = match backend.show(&note).await {
            Ok(()) => {
                tracing::info!(case = %note.case_id, "desktop notification shown");
                NotifierHealth::Working
            }
            Err(reason) => {
                // The reason is about the desktop, never about the case.
                tracing::warn!(case = %note.case_id, %reason, "desktop notification failed");
                NotifierHealth::Unavailable
            }
        };
        if now != health {
            health = now;
            if actions.send(Action::Notifier(now)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(usize);

    impl Backend for Failing {
        async fn show(&mut self, _: &DesktopNote) -> Result<(), String> {
            self.0 += 1;
            Err("no bus".into())
        }
    }

    fn note(id: &str) -> DesktopNote {
        DesktopNote {
            case_id: id.into(),
            summary: "s".into(),
            body: "b".into(),
            critical: true,
        }
    }

    #[tokio::test]
    async fn a_missing_service_is_reported_once_and_every_note_is_still_taken() {
        let (note_tx, note_rx) = mpsc::channel(8);
        let (action_tx, mut action_rx) = mpsc::channel(8);
        let task = tokio::spawn(run(Failing(0), note_rx, action_tx));
        for i in 0..5 {
            note_tx.send(note(&format!("C{i}"))).await.unwrap();
        }
        drop(note_tx);
        task.await
            .expect("the notifier ends cleanly, it does not panic");
        let mut reports = Vec::new();
        while let Ok(a) = action_rx.try_recv() {
            reports.push(format!("{a:?}"));
        }
        assert_eq!(reports, ["Notifier(Unavailable)"]);
    }
}
