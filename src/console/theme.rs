//! Colours and emphasis. Every level, state and alarm is told apart by a
//! symbol and a word first (see `view.rs`); colour only adds to that, so the
//! console reads the same to a colour-blind responder, on a monochrome
//! terminal, and with `NO_COLOR` set.

use ratatui::style::{Color, Modifier, Style};

/// The theme names a config file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThemeName {
    /// Okabe–Ito colours (safe for the common colour-vision deficiencies)
    /// on the 256-colour palette every current terminal and tmux has.
    #[default]
    Default,
    /// Black and white with bright accents and heavy emphasis, for glare,
    /// old monitors and low vision.
    HighContrast,
    /// No colour at all: bold, reverse and underline only.
    Mono,
}

impl ThemeName {
    pub const ALL: [(&'static str, ThemeName); 3] = [
        ("default", ThemeName::Default),
        ("high-contrast", ThemeName::HighContrast),
        ("mono", ThemeName::Mono),
    ];

    pub fn parse(name: &str) -> Option<ThemeName> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("default")
    }

    /// `NO_COLOR` (present and not empty, per no-color.org) overrides the
    /// configured theme: whoever set it asked for no colour anywhere.
    pub fn resolve(configured: ThemeName, no_color: Option<&str>) -> ThemeName {
        match no_color {
            Some(v) if !v.is_empty() => ThemeName::Mono,
            _ => configured,
        }
    }
}

/// The styles draw code uses; nothing in `view.rs` names a colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: ThemeName,
    /// Painted under everything (the high-contrast theme sets a background).
    pub base: Style,
    pub title: Style,
    pub high: Style,
    pub key: Style,
    pub general: Style,
    pub imminent: Style,
    /// Overdue steps, escalations, new high-risk alerts, refusals.
    pub alarm: Style,
    pub drill: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
    pub header_row: Style,
    pub selected: Style,
    pub finished: Style,
    pub chart: [Style; 3],
}

const VERMILLION: Color = Color::Indexed(166);
const ORANGE: Color = Color::Indexed(214);
const YELLOW: Color = Color::Indexed(220);
const BLUE: Color = Color::Indexed(32);
const SKY: Color = Color::Indexed(74);
const DARK_RED: Color = Color::Indexed(124);
const PURPLE: Color = Color::Indexed(175);

impl Theme {
    pub fn new(name: ThemeName) -> Theme {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let reversed = Style::new().add_modifier(Modifier::REVERSED);
        let common = Theme {
            name,
            base: Style::new(),
            title: bold,
            high: bold,
            key: Style::new(),
            general: Style::new(),
            imminent: bold.add_modifier(Modifier::REVERSED),
            alarm: bold.add_modifier(Modifier::REVERSED),
            drill: reversed,
            ok: Style::new(),
            warn: bold,
            bad: bold.add_modifier(Modifier::REVERSED),
            header_row: Style::new().add_modifier(Modifier::UNDERLINED),
            selected: reversed,
            finished: Style::new().add_modifier(Modifier::DIM),
            chart: [Style::new(), bold, Style::new()],
        };
        match name {
            ThemeName::Mono => common,
            ThemeName::Default => Theme {
                high: bold.fg(VERMILLION),
                key: Style::new().fg(YELLOW),
                imminent: bold.fg(Color::White).bg(DARK_RED),
                alarm: bold.fg(Color::White).bg(DARK_RED),
                drill: bold.fg(Color::Black).bg(YELLOW),
                ok: Style::new().fg(BLUE),
                warn: bold.fg(ORANGE),
                bad: bold.fg(VERMILLION),
                chart: [
                    Style::new().fg(SKY),
                    Style::new().fg(ORANGE),
                    Style::new().fg(PURPLE),
                ],
                ..common
            },
            ThemeName::HighContrast => Theme {
                base: Style::new().fg(Color::White).bg(Color::Black),
                title: bold.fg(Color::White),
                high: bold.fg(Color::Black).bg(Color::White),
                key: bold
                    .fg(Color::LightYellow)
                    .add_modifier(Modifier::UNDERLINED),
                general: Style::new().fg(Color::White),
                imminent: bold.fg(Color::Black).bg(Color::LightYellow),
                alarm: bold.fg(Color::Black).bg(Color::LightYellow),
                drill: bold.fg(Color::Black).bg(Color::LightCyan),
                ok: bold.fg(Color::LightCyan),
                warn: bold.fg(Color::LightYellow),
                bad: bold.fg(Color::Black).bg(Color::White),
                selected: bold.fg(Color::Black).bg(Color::White),
                finished: Style::new().fg(Color::Gray),
                chart: [
                    bold.fg(Color::White),
                    bold.fg(Color::LightYellow),
                    bold.fg(Color::LightCyan),
                ],
                ..common
            },
        }
    }

    pub fn level(&self, level: crate::protocol::Level) -> Style {
        match level {
            crate::protocol::Level::High => self.high,
            crate::protocol::Level::Key => self.key,
            crate::protocol::Level::General => self.general,
        }
    }
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::new(ThemeName::Default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_over_the_configured_theme() {
        assert_eq!(
            ThemeName::resolve(ThemeName::HighContrast, Some("1")),
            ThemeName::Mono
        );
        assert_eq!(
            ThemeName::resolve(ThemeName::HighContrast, Some("")),
            ThemeName::HighContrast,
            "an empty NO_COLOR does not count"
        );
        assert_eq!(
            ThemeName::resolve(ThemeName::Default, None),
            ThemeName::Default
        );
    }

    #[test]
    fn mono_uses_no_colour_at_all() {
        let t = Theme::new(ThemeName::Mono);
        for style in [
            t.base, t.title, t.high, t.key, t.general, t.imminent, t.alarm, t.drill, t.ok, t.warn,
            t.bad, t.selected, t.finished,
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
    }

    #[test]
    fn names_round_trip() {
        for (name, theme) in ThemeName::ALL {
            assert_eq!(ThemeName::parse(name), Some(theme));
            assert_eq!(theme.as_str(), name);
        }
        assert_eq!(ThemeName::parse("dark"), None);
    }
}
