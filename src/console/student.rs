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

use super::i18n::Strings;
use super::keymap::Cmd;
use super::nav::{Ask, Nav, Screen};
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

    /// The view opens at the top, with no refusal left from before.
    pub fn open(&mut self) {
        self.scroll = 0;
        self.refused = None;
    }

    /// The `student` read to send for the case, unless one is on its way.
    /// The caller sends it and hands back its id with [`StudentPane::sent`].
    pub fn request(&self, case_id: &str) -> Option<CommandOp> {
        (!self.waiting_for(case_id)).then(|| CommandOp::Student {
            case_id: case_id.to_string(),
        })
    }

    /// The read for `case_id` went out under `id`.
    pub fn sent(&mut self, id: Option<String>, case_id: &str) {
        if let Some(id) = id {
            self.waiting.insert(id, case_id.to_string());
        }
    }

    /// Whether the history tab should read the record: not while this
    /// student's is held and fresh (a minute).
    pub fn wants_record(&self, student_id: &str, now: DateTime<Utc>) -> bool {
        self.of_student(student_id)
            .is_none_or(|l| now - l.received_at >= chrono::TimeDelta::minutes(1))
    }

    /// Takes the answer to a `student` read; false when `result` answers
    /// another command.
    pub fn take_result(
        &mut self,
        result: &CommandResult,
        strings: &Strings,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(case_id) = self.waiting.remove(&result.id) else {
            return false;
        };
        let s = strings;
        if !result.ok {
            let why = result.error.as_ref().map(|e| s.refusal_of(e));
            self.refused = Some(match why {
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
                self.refused = None;
                self.loaded = Some(Loaded {
                    case_id,
                    record: made_inert(record),
                    received_at: now,
                });
            }
            None => {
                tracing::warn!("a student record did not match its shape; not shown");
                self.refused = Some(s.student_refused().to_string());
            }
        }
        true
    }

    /// How many lines the record takes in the view (for scrolling).
    pub fn lines(&self) -> usize {
        self.loaded.as_ref().map_or(0, |l| {
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

    /// A key on the student view of `case_id`; Some when it reads the
    /// record again (it may have grown since).
    pub fn on_cmd(&mut self, case_id: &str, cmd: Cmd, nav: &mut Nav) -> Option<CommandOp> {
        let last = u16::try_from(self.lines().saturating_sub(1)).unwrap_or(u16::MAX);
        let scroll = &mut self.scroll;
        match cmd {
            Cmd::Back => nav.screen = Screen::Detail(case_id.to_string()),
            Cmd::Down | Cmd::ScrollDown => *scroll = scroll.saturating_add(1).min(last),
            Cmd::Up | Cmd::ScrollUp => *scroll = scroll.saturating_sub(1),
            Cmd::PageDown => *scroll = scroll.saturating_add(10).min(last),
            Cmd::PageUp => *scroll = scroll.saturating_sub(10),
            Cmd::First => *scroll = 0,
            Cmd::Last => *scroll = last,
            Cmd::Reveal => nav.ask(Ask::RevealReason(case_id.to_string())),
            Cmd::StudentRecord => return self.request(case_id),
            _ => {}
        }
        None
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
