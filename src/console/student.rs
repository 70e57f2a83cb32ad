//! The student view's state (一生一档): the record of the student of a
//! case, as the relay's `student` command returns it for my role — one
//! timeline across every case, screening, check-in, referral, level change
//! and note. The relay builds it with the function behind `crisisdesk
//! student show`, so the console decides nothing about who sees what; it
//! shows what it is given, made inert again on arrival (text from the
//! record is untrusted like any alert text).
//!
//! A read is sent quietly, like `view`; offline it waits in the outbox and
//! is answered once the relay is back. The name is never in the record:
//! `r` reveals it on the case, audited, exactly as on the case screen.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::action::Effect;
use super::app::App;
use super::frames::RefusalCode;
use super::keymap::Cmd;
use super::nav::{Ask, Screen};
use crate::followup::student::StudentRecord;
use crate::protocol::{CommandOp, CommandResult};
use crate::text::{inert, inert_block};

/// The latest record received.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The case it was asked from.
    pub case_id: String,
    pub record: StudentRecord,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct StudentPane {
    /// `student` reads waiting for the relay: command id → case id.
    waiting: HashMap<String, String>,
    /// One record is kept: the student on screen (or on the history tab).
    pub loaded: Option<Loaded>,
    /// Why the relay refused the latest read, in the console's words.
    pub refused: Option<String>,
    /// First line shown of the record.
    pub scroll: u16,
}

impl StudentPane {
    /// The record, if the one held is this student's.
    pub fn of_student(&self, student_id: &str) -> Option<&Loaded> {
        self.loaded
            .as_ref()
            .filter(|l| l.record.student_id == inert(student_id))
    }

    /// Whether a read for this case is on its way.
    pub fn waiting_for(&self, case_id: &str) -> bool {
        self.waiting.values().any(|c| c == case_id)
    }

    pub fn clear(&mut self) {
        self.waiting.clear();
        self.loaded = None;
        self.refused = None;
        self.scroll = 0;
    }
}

/// Makes every text of a record inert (the relay did; a console never
/// trusts that) and drops an identity, which the console takes only from
/// a reveal on the case.
fn made_inert(mut r: StudentRecord) -> StudentRecord {
    let opt = |v: &mut Option<String>| {
        if let Some(t) = v {
            *t = inert(t);
        }
    };
    r.student_id = inert(&r.student_id);
    r.identity = None;
    opt(&mut r.initials);
    opt(&mut r.school);
    opt(&mut r.grade);
    opt(&mut r.class);
    for c in &mut r.cases {
        c.case_id = inert(&c.case_id);
        c.status = inert(&c.status);
        c.category = inert(&c.category);
        opt(&mut c.outcome);
    }
    for s in &mut r.screenings {
        s.plan_id = inert(&s.plan_id);
        s.answered_at = inert(&s.answered_at);
        s.scale = inert(&s.scale);
        opt(&mut s.level);
        opt(&mut s.scale_level);
        opt(&mut s.class_en);
        opt(&mut s.class_zh);
        s.scores = std::mem::take(&mut s.scores)
            .into_iter()
            .filter(|(_, v)| v.is_number())
            .map(|(k, v)| (inert(&k), v))
            .collect();
    }
    for k in &mut r.upcoming {
        k.id = inert(&k.id);
        k.note = None;
    }
    for i in &mut r.timeline {
        opt(&mut i.case_id);
        opt(&mut i.who);
        i.kind = inert(&i.kind).into();
        // A note may run over lines; the view shows each line indented.
        i.what = inert_block(&i.what);
    }
    for w in &mut r.withheld {
        *w = inert(w).into();
    }
    r
}

impl App {
    /// Opens the student view from a case and asks the relay for the
    /// record (the relay audits the read on every case it shows).
    pub(super) fn open_student(&mut self, case_id: &str) -> Vec<Effect> {
        self.nav.screen = Screen::Student(case_id.to_string());
        self.student.scroll = 0;
        self.student.refused = None;
        self.request_student(case_id)
    }

    /// Sends a `student` read for the case, unless one is on its way.
    pub(super) fn request_student(&mut self, case_id: &str) -> Vec<Effect> {
        if self.student.waiting_for(case_id) {
            return Vec::new();
        }
        let effects = self.send(CommandOp::Student {
            case_id: case_id.to_string(),
        });
        for effect in &effects {
            if let Effect::Send(cmd) = effect {
                self.student
                    .waiting
                    .insert(cmd.id.clone(), case_id.to_string());
            }
        }
        effects
    }

    /// The history tab lists the student's screenings from the record:
    /// read it unless this student's is held and fresh (a minute).
    pub(super) fn history_record(&mut self, case_id: &str) -> Vec<Effect> {
        let Some(student_id) = self.cases.get(case_id).map(|c| c.case.student_id.clone()) else {
            return Vec::new();
        };
        let fresh = self
            .student
            .of_student(&student_id)
            .is_some_and(|l| self.now - l.received_at < chrono::TimeDelta::minutes(1));
        if fresh {
            return Vec::new();
        }
        self.request_student(case_id)
    }

    /// Takes the answer to a `student` read; false when `result` answers
    /// another command.
    pub(super) fn take_student_result(&mut self, result: &CommandResult) -> bool {
        let Some(case_id) = self.student.waiting.remove(&result.id) else {
            return false;
        };
        let s = self.strings;
        if !result.ok {
            let why = result.error.as_ref().map(|e| {
                s.refusal(RefusalCode::parse(&e.code))
                    .map(str::to_string)
                    .unwrap_or_else(|| inert(&e.message))
            });
            self.student.refused = Some(match why {
                Some(why) => format!("{}: {why}", s.student_refused()),
                None => s.student_refused().to_string(),
            });
            return true;
        }
        let record = result
            .data
            .as_ref()
            .and_then(|d| d.get("record"))
            .cloned()
            .and_then(|v| serde_json::from_value::<StudentRecord>(v).ok());
        match record {
            Some(record) => {
                self.student.refused = None;
                self.student.loaded = Some(Loaded {
                    case_id,
                    record: made_inert(record),
                    received_at: self.now,
                });
            }
            None => {
                tracing::warn!("a student record did not match its shape; not shown");
                self.student.refused = Some(s.student_refused().to_string());
            }
        }
        true
    }

    /// How many lines the record takes in the view (for scrolling).
    pub fn student_lines(&self) -> usize {
        self.student.loaded.as_ref().map_or(0, |l| {
            let r = &l.record;
            let notes: usize = r
                .timeline
                .iter()
                .map(|i| i.what.lines().count().max(1))
                .sum();
            // Title, role line, four headings, and a line for each item.
            6 + r.cases.len() + r.screenings.len() + r.upcoming.len() + notes
        })
    }

    pub(super) fn on_student_cmd(&mut self, case_id: &str, cmd: Cmd) -> Vec<Effect> {
        let last = u16::try_from(self.student_lines().saturating_sub(1)).unwrap_or(u16::MAX);
        let scroll = &mut self.student.scroll;
        match cmd {
            Cmd::Back => self.nav.screen = Screen::Detail(case_id.to_string()),
            Cmd::Down | Cmd::ScrollDown => *scroll = scroll.saturating_add(1).min(last),
            Cmd::Up | Cmd::ScrollUp => *scroll = scroll.saturating_sub(1),
            Cmd::PageDown => *scroll = scroll.saturating_add(10).min(last),
            Cmd::PageUp => *scroll = scroll.saturating_sub(10),
            Cmd::First => *scroll = 0,
            Cmd::Last => *scroll = last,
            Cmd::Reveal => self.nav.ask(Ask::RevealReason(case_id.to_string())),
            // Read again: the record may have grown since.
            Cmd::StudentRecord => return self.request_student(case_id),
            _ => {}
        }
        Vec::new()
    }
}
