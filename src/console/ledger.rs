//! The console's command ledger: the ids of the commands it sends, what
//! each one was (so its answer can say so), which ones are reveals
//! awaiting a name, and how many wait on the connection or in the outbox.

use std::collections::HashMap;

#[derive(Debug)]
pub struct Ledger {
    /// Identifies this console run in command ids (`<tag>-<n>`), so ids
    /// from two runs never meet in the relay's dedup.
    session_tag: String,
    next: u64,
    /// Sent commands worth a notice when answered: id → "C000012 确认".
    labels: HashMap<String, String>,
    /// Reveal commands awaiting their answer: id → case id.
    reveals: HashMap<String, String>,
    /// Actions recorded but not yet answered by the relay (the outbox).
    pub outbox_waiting: usize,
    /// Commands not yet taken by the connection task (see
    /// [`Action::Sending`](super::action::Action::Sending)).
    pub sending: usize,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            session_tag: format!("{:x}", fastrand::u64(..)),
            next: 0,
            labels: HashMap::new(),
            reveals: HashMap::new(),
            outbox_waiting: 0,
            sending: 0,
        }
    }
}

impl Ledger {
    /// The id of the next command this console sends.
    pub fn next_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.session_tag, self.next)
    }

    /// Remember what command `id` does, for the notice its answer raises.
    pub fn label(&mut self, id: &str, label: String) {
        self.labels.insert(id.to_string(), label);
    }

    /// `id` asks for a student's name on `case_id`.
    pub fn reveal(&mut self, id: &str, case_id: &str) {
        self.reveals.insert(id.to_string(), case_id.to_string());
    }

    /// The answer to `id` arrived: what it was, if it was worth a notice.
    pub fn take_label(&mut self, id: &str) -> Option<String> {
        self.labels.remove(id)
    }

    /// The answer to `id` arrived: the case whose name it revealed, if it
    /// was a reveal.
    pub fn take_reveal(&mut self, id: &str) -> Option<String> {
        self.reveals.remove(id)
    }
}
