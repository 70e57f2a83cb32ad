//! What the console is sounding the alarm about: new high and imminent
//! cases until someone acknowledges them, escalations addressed to my role
//! until I dismiss them, and whether the desktop notifier works. The
//! header and the banner read it; the console's `App` feeds it events.

use chrono::{DateTime, TimeDelta, Utc};

use super::action::NotifierHealth;
use super::cases::EscalationView;

/// After an escalation rings, later ones within this long only add to the
/// banner's count. A storm (a screening day's first deadlines passing
/// together) arrives as thousands of escalations within seconds: one bell
/// and one notification for it, and the banner counts them all.
const ESCALATION_QUIET: TimeDelta = TimeDelta::seconds(30);

#[derive(Debug, Default)]
pub struct Alarms {
    /// New high/imminent cases, oldest first, each once.
    cases: Vec<String>,
    /// Escalations addressed to my role not yet dismissed on this console,
    /// with their case id.
    escalations: Vec<(String, EscalationView)>,
    /// When an escalation last rang the bell or raised a notification.
    last_rang: Option<DateTime<Utc>>,
    pub notifier: NotifierHealth,
}

impl Alarms {
    /// A new high/imminent case for the banner (once, however often it
    /// is raised again).
    pub fn raise_case(&mut self, case_id: &str) {
        if !self.cases.iter().any(|c| c == case_id) {
            self.cases.push(case_id.to_string());
        }
    }

    /// The cases raised, oldest first (whether still unacknowledged is the
    /// case's own status).
    pub fn case_ids(&self) -> impl Iterator<Item = &str> {
        self.cases.iter().map(String::as_str)
    }

    /// An escalation to my role. Whether it may ring: it is news (`live`)
    /// and none rang within [`ESCALATION_QUIET`] before it.
    pub fn escalate(&mut self, case_id: &str, escalation: EscalationView, live: bool) -> bool {
        let at = escalation.at;
        self.escalations.push((case_id.to_string(), escalation));
        let quiet = self
            .last_rang
            .is_none_or(|last| at.signed_duration_since(last) >= ESCALATION_QUIET);
        let ring = live && quiet;
        if ring {
            self.last_rang = Some(at);
        }
        ring
    }

    /// An escalation shown in the banner that rings nothing of its own (a
    /// missed check-in, which its event already announced).
    pub fn note_escalation(&mut self, case_id: &str, escalation: EscalationView) {
        self.escalations.push((case_id.to_string(), escalation));
    }

    /// Undismissed escalations, oldest first.
    pub fn escalations(&self) -> &[(String, EscalationView)] {
        &self.escalations
    }

    /// A closed case's escalations are over.
    pub fn case_closed(&mut self, case_id: &str) {
        self.escalations.retain(|(c, _)| c != case_id);
    }

    pub fn dismiss_escalations(&mut self) {
        self.escalations.clear();
    }

    /// A new connection replays everything: start over. The notifier's
    /// health stays, and so does the quiet period (a reconnect must not
    /// make a storm ring twice).
    pub fn clear(&mut self) {
        self.cases.clear();
        self.escalations.clear();
    }
}
