//! Which key does what, per view. The same tables drive key handling in
//! `app.rs` and the help overlay in `view.rs`, so the overlay lists every
//! key of the current view and nothing else — it cannot drift.

use crossterm::event::KeyCode;

use super::nav::Screen;

/// A thing a key asks for. What it means can depend on the view (Down moves
/// the case cursor on the list and the step cursor on a case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    Quit,
    Help,
    Acknowledge,
    MySteps,
    OpenAlarm,
    DismissEscalations,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    Open,
    Back,
    Search,
    FilterLevel,
    FilterStatus,
    FilterCategory,
    FilterSchool,
    FilterMine,
    FilterDrills,
    ClearFilters,
    Sort,
    DoStep,
    SkipStep,
    ToggleRoles,
    AddPlaybook,
    CloseCase,
    Reveal,
    ScrollDown,
    ScrollUp,
    ToggleHistory,
    NextScale,
    OpenStepCase,
    Reports,
    Followups,
    RecordCheckin,
    /// Reports screen: the leader submits the selected report's next stage.
    SubmitReport,
    /// Reports screen: the district accepts the stage awaiting its review.
    AcceptReport,
    /// Reports screen: the district returns (退回) it, with a reason.
    ReturnReport,
    /// The district screen (区级总览).
    District,
    /// The report view with charts.
    Charts,
    /// Ask the relay again (district screen, charts).
    Refresh,
    /// Charts: the next period (1, 3, 6, 12 months).
    ChartPeriod,
    /// Charts: count drills too, or not.
    ChartDrills,
    StudentRecord,
    FilterWhen,
}

/// One row of the help overlay: the keys, how they are written, the command.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub cmd: Cmd,
}

const fn b(keys: &'static [KeyCode], label: &'static str, cmd: Cmd) -> Binding {
    Binding { keys, label, cmd }
}

use KeyCode::{
    BackTab, Backspace, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Tab, Up,
};

/// Keys that work in every view.
pub const GLOBAL: &[Binding] = &[
    b(&[Char('a')], "a", Cmd::Acknowledge),
    b(&[Char('n')], "n", Cmd::OpenAlarm),
    b(&[Char('e')], "e", Cmd::DismissEscalations),
    b(&[Char('m')], "m", Cmd::MySteps),
    b(&[Char('R')], "R", Cmd::Reports),
    b(&[Char('f')], "f", Cmd::Followups),
    b(&[Char('D')], "D", Cmd::District),
    b(&[Char('P')], "P", Cmd::Charts),
    b(&[Char('?')], "?", Cmd::Help),
    b(&[Char('q')], "q  Ctrl-C", Cmd::Quit),
];

pub const LIST: &[Binding] = &[
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[PageUp], "PgUp", Cmd::PageUp),
    b(&[PageDown], "PgDn", Cmd::PageDown),
    b(&[Home, Char('g')], "g Home", Cmd::First),
    b(&[End, Char('G')], "G End", Cmd::Last),
    b(&[Enter], "Enter", Cmd::Open),
    b(&[Char('/')], "/", Cmd::Search),
    b(&[Char('l')], "l", Cmd::FilterLevel),
    b(&[Char('u')], "u", Cmd::FilterStatus),
    b(&[Char('c')], "c", Cmd::FilterCategory),
    b(&[Char('h')], "h", Cmd::FilterSchool),
    b(&[Char('i')], "i", Cmd::FilterMine),
    b(&[Char('d')], "d", Cmd::FilterDrills),
    b(&[Char('x')], "x", Cmd::ClearFilters),
    b(&[Char('o')], "o", Cmd::Sort),
];

pub const DETAIL: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[Enter, Char(' ')], "Enter ␣", Cmd::DoStep),
    b(&[Char('s')], "s", Cmd::SkipStep),
    b(&[Char('t')], "t", Cmd::ToggleRoles),
    b(&[Tab, BackTab], "Tab", Cmd::ToggleHistory),
    b(&[Char('i')], "i", Cmd::NextScale),
    b(&[Char('J')], "J", Cmd::ScrollDown),
    b(&[Char('K')], "K", Cmd::ScrollUp),
    b(&[Char('p')], "p", Cmd::AddPlaybook),
    b(&[Char('C')], "C", Cmd::CloseCase),
    b(&[Char('r')], "r", Cmd::Reveal),
    b(&[Char('S')], "S", Cmd::StudentRecord),
];

pub const MY_STEPS: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[Enter, Char(' ')], "Enter ␣", Cmd::DoStep),
    b(&[Char('s')], "s", Cmd::SkipStep),
    b(&[Char('o')], "o", Cmd::OpenStepCase),
];

pub const REPORTS: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[Char('s')], "s", Cmd::SubmitReport),
    b(&[Char('y')], "y", Cmd::AcceptReport),
    b(&[Char('x')], "x", Cmd::ReturnReport),
];

pub const DISTRICT: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[Char('r')], "r", Cmd::Refresh),
];

pub const CHARTS: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Char('p')], "p", Cmd::ChartPeriod),
    b(&[Char('d')], "d", Cmd::ChartDrills),
    b(&[Char('r')], "r", Cmd::Refresh),
];

pub const FOLLOWUPS: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[Enter, Char(' ')], "Enter ␣", Cmd::RecordCheckin),
    b(&[Char('o')], "o", Cmd::OpenStepCase),
    b(&[Char('w')], "w", Cmd::FilterWhen),
    b(&[Char('h')], "h", Cmd::FilterSchool),
    b(&[Char('i')], "i", Cmd::FilterMine),
    b(&[Char('x')], "x", Cmd::ClearFilters),
    b(&[Char('O')], "O", Cmd::Sort),
];

/// The student's record (一生一档), opened with `S` from a case.
pub const STUDENT: &[Binding] = &[
    b(&[Esc, Backspace, Left], "Esc ←", Cmd::Back),
    b(&[Up, Char('k')], "↑ k", Cmd::Up),
    b(&[Down, Char('j')], "↓ j", Cmd::Down),
    b(&[PageUp], "PgUp", Cmd::PageUp),
    b(&[PageDown], "PgDn", Cmd::PageDown),
    b(&[Home, Char('g')], "g Home", Cmd::First),
    b(&[End, Char('G')], "G End", Cmd::Last),
    b(&[Char('r')], "r", Cmd::Reveal),
    b(&[Char('S')], "S", Cmd::StudentRecord),
];

/// The view's own keys, most used first; [`GLOBAL`] applies as well.
pub fn for_screen(screen: &Screen) -> &'static [Binding] {
    match screen {
        Screen::List => LIST,
        Screen::Detail(_) => DETAIL,
        Screen::MySteps => MY_STEPS,
        Screen::Reports => REPORTS,
        Screen::Followups => FOLLOWUPS,
        Screen::District => DISTRICT,
        Screen::Charts => CHARTS,
        Screen::Student(_) => STUDENT,
    }
}

/// Whether a role may use a key's command: keys for commands the relay
/// would refuse this role are neither shown in the help nor obeyed (the
/// relay still checks; see `CommandOp::allowed_for`). Unknown role (no
/// session yet): only what every role may do.
pub fn permits(cmd: Cmd, role: Option<crate::protocol::Role>) -> bool {
    use crate::protocol::Role;
    match cmd {
        Cmd::SubmitReport => role == Some(Role::Leader),
        Cmd::AcceptReport | Cmd::ReturnReport => role == Some(Role::District),
        Cmd::District => role.is_some_and(crate::reporting::district::may_see),
        Cmd::Charts => role.is_some_and(crate::reporting::district::may_see_charts),
        _ => true,
    }
}

/// [`lookup`] for a role: a key whose command the role may not use does
/// nothing.
pub fn lookup_for(
    screen: &Screen,
    key: KeyCode,
    role: Option<crate::protocol::Role>,
) -> Option<Cmd> {
    lookup(screen, key).filter(|cmd| permits(*cmd, role))
}

/// The command a key means in this view: the view's own keys first, so a
/// view may give a global key a local meaning.
pub fn lookup(screen: &Screen, key: KeyCode) -> Option<Cmd> {
    for_screen(screen)
        .iter()
        .chain(GLOBAL)
        .find(|b| b.keys.contains(&key))
        .map(|b| b.cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_key_means_two_things_in_one_view() {
        for screen in [
            Screen::List,
            Screen::Detail("C1".into()),
            Screen::MySteps,
            Screen::Reports,
            Screen::Followups,
            Screen::District,
            Screen::Charts,
            Screen::Student("C1".into()),
        ] {
            let mut seen = HashSet::new();
            for b in for_screen(&screen).iter().chain(GLOBAL) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k:?} bound twice in {screen:?}");
                }
            }
        }
    }
}
