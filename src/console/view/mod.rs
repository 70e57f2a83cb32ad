//! Drawing. A pure function of [`App`]: takes `&App`, never awaits, never
//! mutates. Every piece of alert text it draws was made inert on arrival
//! (see `app.rs`); widths are display widths, and every word comes from the
//! language catalogue (`i18n.rs`) — what is written here is symbols only.
//!
//! One module per region of the screen: [`chrome`] (header, banners,
//! status line), [`list`], [`detail`] (facts and checklist), [`history`]
//! (the student's history and score chart), [`steps`] ("my steps" and
//! step tables), [`followups`] (scheduled check-ins), [`prompt`], [`help`],
//! and the shared [`widgets`].

mod charts;
mod chrome;
mod detail;
mod district;
mod followups;
mod help;
mod history;
mod list;
mod prompt;
mod reports;
mod steps;
mod student;
mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::Block;

use super::app::App;
use super::nav::Screen;

use chrome::{
    draw_alarm_banner, draw_drill_banner, draw_escalation_banner, draw_header, draw_status,
};
use detail::draw_detail;
use help::draw_help;
use list::draw_list;
use prompt::draw_prompt;
use steps::draw_my_steps;

pub use widgets::{age, countdown, level_mark};

pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    frame.render_widget(Block::new().style(app.theme.base), area);
    let drill = app.shows_drill() || app.banner.is_some();
    let alarmed = app.alert_prefs.banner && app.open_alarms().next().is_some();
    let escalated = !app.alarms.escalations().is_empty();
    let prompt_height = if app.nav.prompt.is_some() { 4 } else { 0 };
    let [header, banner, alarm, escalation, body, prompt, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(u16::from(drill)),
        Constraint::Length(u16::from(alarmed)),
        Constraint::Length(u16::from(escalated)),
        Constraint::Min(1),
        Constraint::Length(prompt_height),
        Constraint::Length(1),
    ])
    .areas(area);

    draw_header(app, frame, header);
    if drill {
        draw_drill_banner(app, frame, banner);
    }
    if alarmed {
        draw_alarm_banner(app, frame, alarm);
    }
    if escalated {
        draw_escalation_banner(app, frame, escalation);
    }
    match &app.nav.screen {
        Screen::List => draw_list(app, frame, body),
        Screen::Detail(id) => match app.cases.get(id) {
            Some(case) => draw_detail(app, case, frame, body),
            None => draw_list(app, frame, body),
        },
        Screen::MySteps => draw_my_steps(app, frame, body),
        Screen::Reports => reports::draw_reports(app, frame, body),
        Screen::Followups => followups::draw_followups(app, frame, body),
        Screen::District => district::draw_district(app, frame, body),
        Screen::Charts => charts::draw_charts(app, frame, body),
        Screen::Student(id) => student::draw_student(app, id, frame, body),
    }
    if let Some(p) = &app.nav.prompt {
        draw_prompt(app, p, frame, prompt);
    }
    draw_status(app, frame, status);
    if app.nav.show_help {
        draw_help(app, frame, area);
    }
}
