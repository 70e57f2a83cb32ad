//! The loaded set of playbooks and the rule that picks one for a case.

use std::cmp::Reverse;

use super::model::{Match, Playbook};
use crate::protocol::{Category, Level};

/// Checked playbooks, sorted by id. Build one with [`super::load_dir`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Library {
    playbooks: Vec<Playbook>,
}

/// How strongly a playbook's `[match]` claims a case; the greatest wins.
/// Explicit priority first, then the more specific rule: one written for
/// imminent (or non-imminent) cases beats one that ignores imminence, and
/// one with a higher minimum level beats a broader one.
fn rank(m: &Match) -> (i64, bool, Level) {
    (m.priority, m.imminent.is_some(), m.min_level)
}

impl Library {
    pub fn new(mut playbooks: Vec<Playbook>) -> Library {
        playbooks.sort_by(|a, b| a.id.cmp(&b.id));
        Library { playbooks }
    }

    pub fn playbooks(&self) -> &[Playbook] {
        &self.playbooks
    }

    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    /// Finds a playbook by id, for a responder adding one to a case by hand.
    pub fn get(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|pb| pb.id == id)
    }

    /// The playbook a new case gets. Deterministic: the best [`rank`] wins,
    /// and equal ranks (which `check_dir` reports) fall back to the smallest
    /// id. `None` when no playbook claims the case; the responder then adds
    /// one by hand.
    pub fn select(&self, category: Category, level: Level, imminent: bool) -> Option<&Playbook> {
        candidates(self.playbooks.iter(), category, level, imminent)
            .max_by_key(|(pb, m)| (rank(m), Reverse(pb.id.as_str())))
            .map(|(pb, _)| pb)
    }

    /// The two best candidates when they share the top rank: a library
    /// whose selection hangs on id order is a configuration mistake.
    pub(crate) fn tie<'a>(
        playbooks: &[&'a Playbook],
        category: Category,
        level: Level,
        imminent: bool,
    ) -> Option<(&'a Playbook, &'a Playbook)> {
        let mut found: Vec<(&Playbook, &Match)> =
            candidates(playbooks.iter().copied(), category, level, imminent).collect();
        found.sort_by_key(|(pb, m)| (Reverse(rank(m)), pb.id.as_str()));
        match found.as_slice() {
            [(a, ma), (b, mb), ..] if rank(ma) == rank(mb) => Some((a, b)),
            _ => None,
        }
    }
}

fn candidates<'a>(
    playbooks: impl Iterator<Item = &'a Playbook>,
    category: Category,
    level: Level,
    imminent: bool,
) -> impl Iterator<Item = (&'a Playbook, &'a Match)> {
    playbooks.filter_map(move |pb| {
        pb.matches
            .as_ref()
            .filter(|m| m.admits(category, level, imminent))
            .map(|m| (pb, m))
    })
}
