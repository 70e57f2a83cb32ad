//! Playbooks: the pure model of role checklists (format, checks, progress).
//! Being written; see docs/playbooks.md.
