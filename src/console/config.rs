//! The console's config file: TOML in the per-user config directory
//! (`~/.config/crisisdesk/console.toml` on Linux). Every key is optional;
//! what is missing takes the default embedded here, and a command-line flag
//! beats the file. A bad value is refused with an error that names the key
//! and says how to fix it — a console that silently ignored
//! `desktop = "no"` would leave a responder thinking notifications are off
//! (or on) when they are not.

use std::path::{Path, PathBuf};

use super::i18n::Lang;
use super::theme::ThemeName;

/// How new high-risk alerts and escalations are brought to attention. Each
/// channel can be switched off on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPrefs {
    /// A desktop notification through the session's notification service.
    pub desktop: bool,
    /// The terminal bell.
    pub bell: bool,
    /// A banner in the console that stays until the case is acknowledged.
    pub banner: bool,
}

impl Default for AlertPrefs {
    fn default() -> AlertPrefs {
        AlertPrefs {
            desktop: true,
            bell: true,
            banner: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsoleConfig {
    /// The relays to follow, in the order they are tried (`relay = "…"` or
    /// `relay = ["…", "…"]`); empty when the file names none.
    pub relays: Vec<String>,
    pub language: Option<Lang>,
    pub theme: ThemeName,
    pub alerts: AlertPrefs,
}

/// The file as shipped in `docs/console.md`, every key at its default.
pub const EXAMPLE: &str = r#"# crisisdesk console settings
relay = "ws://127.0.0.1:7710"   # the relay to follow, or a list tried in turn (--relay beats this)
language = "zh"                 # zh or en (--lang beats this; default: from the locale)
theme = "default"               # default, high-contrast or mono (NO_COLOR forces mono)

[notifications]
desktop = true                  # desktop notification for new high/imminent cases and my escalations
bell = true                     # terminal bell for the same
banner = true                   # in-console banner until the case is acknowledged
"#;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} is not valid TOML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

/// `~/.config/crisisdesk/console.toml` (or the platform's equivalent).
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("crisisdesk").join("console.toml"))
}

/// The paragraph `crisisdesk console --help` ends with.
pub fn help_footer() -> String {
    let path = default_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no per-user config directory: set HOME)".to_string());
    format!(
        "Config file: {path}\n  (relay, language, theme, [notifications] desktop/bell/banner; \
         see docs/console.md; --config PATH uses another file)\n\
         NO_COLOR=1 turns colour off."
    )
}

/// Loads the config. With `explicit`, that file must exist; without, the
/// default path is used if it exists, and defaults otherwise.
pub fn load(explicit: Option<&Path>) -> Result<ConsoleConfig, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) if p.exists() => p,
            _ => return Ok(ConsoleConfig::default()),
        },
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Unreadable {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    parse(&text, &shown)
}

/// Parses config text; `path` is only used in messages.
pub fn parse(text: &str, path: &str) -> Result<ConsoleConfig, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_string(),
        reason: e.to_string().trim().to_string(),
    })?;
    let invalid = |problem: String| ConfigError::Invalid {
        path: path.to_string(),
        problem,
    };
    let mut config = ConsoleConfig::default();
    for (key, value) in &table {
        match key.as_str() {
            "relay" => config.relays = relays(value).map_err(invalid)?,
            "language" => {
                let lang = string(key, value).map_err(invalid)?;
                config.language = Some(match lang {
                    "zh" => Lang::Zh,
                    "en" => Lang::En,
                    other => {
                        return Err(invalid(format!(
                            "`language` = \"{}\" is not a language this console speaks; use \"zh\" or \"en\"",
                            crate::text::inert(other)
                        )));
                    }
                });
            }
            "theme" => {
                let name = string(key, value).map_err(invalid)?;
                config.theme = ThemeName::parse(name).ok_or_else(|| {
                    invalid(format!(
                        "`theme` = \"{}\" is not a theme; use one of {}",
                        crate::text::inert(name),
                        theme_names()
                    ))
                })?;
            }
            "notifications" => {
                let Some(section) = value.as_table() else {
                    return Err(invalid(
                        "`notifications` must be a section: write [notifications] on its own line, \
                         then desktop/bell/banner = true or false"
                            .into(),
                    ));
                };
                for (k, v) in section {
                    let full = format!("notifications.{k}");
                    let slot = match k.as_str() {
                        "desktop" => &mut config.alerts.desktop,
                        "bell" => &mut config.alerts.bell,
                        "banner" => &mut config.alerts.banner,
                        _ => {
                            return Err(invalid(format!(
                                "unknown key `{}`; [notifications] knows desktop, bell and banner",
                                crate::text::inert(&full)
                            )));
                        }
                    };
                    *slot = v.as_bool().ok_or_else(|| {
                        invalid(format!(
                            "`{full}` must be true or false (without quotes), e.g. {k} = false"
                        ))
                    })?;
                }
            }
            other => {
                return Err(invalid(format!(
                    "unknown key `{}`; the console knows relay, language, theme and [notifications]",
                    crate::text::inert(other)
                )));
            }
        }
    }
    Ok(config)
}

/// `relay`: one address, or a list of them tried in turn (relays sharing
/// one database, docs/console.md "Several relays").
fn relays(value: &toml::Value) -> Result<Vec<String>, String> {
    let shape = || {
        "`relay` must be a quoted string, or a list of them, e.g. relay = \"ws://10.0.0.5:7710\" \
         or relay = [\"wss://a:7710\", \"wss://b:7710\"]"
            .to_string()
    };
    let urls: Vec<&str> = match value {
        toml::Value::String(url) => vec![url.as_str()],
        toml::Value::Array(list) => list
            .iter()
            .map(|v| v.as_str().ok_or_else(shape))
            .collect::<Result<_, _>>()?,
        _ => return Err(shape()),
    };
    if urls.is_empty() || urls.iter().any(|u| u.trim().is_empty()) {
        return Err(
            "`relay` is empty; write the relay's address, e.g. relay = \"ws://10.0.0.5:7710\""
                .into(),
        );
    }
    Ok(urls.iter().map(|u| u.trim().to_string()).collect())
}

fn string<'v>(key: &str, value: &'v toml::Value) -> Result<&'v str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("`{key}` must be a quoted string, e.g. {key} = \"…\""))
}

fn theme_names() -> String {
    ThemeName::ALL
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_to_the_defaults() {
        let c = parse(EXAMPLE, "console.toml").unwrap();
        assert_eq!(c.relays, ["ws://127.0.0.1:7710"]);
        assert_eq!(c.language, Some(Lang::Zh));
        assert_eq!(c.theme, ThemeName::Default);
        assert_eq!(c.alerts, AlertPrefs::default());
    }

    #[test]
    fn relay_may_be_a_list_tried_in_turn() {
        let c = parse(
            "relay = [\"ws://127.0.0.1:7710\", \" ws://127.0.0.1:7711 \"]\n",
            "x",
        )
        .unwrap();
        assert_eq!(c.relays, ["ws://127.0.0.1:7710", "ws://127.0.0.1:7711"]);
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        assert_eq!(parse("", "x").unwrap(), ConsoleConfig::default());
    }

    #[test]
    fn switches_turn_each_channel_off() {
        let c = parse("[notifications]\ndesktop = false\nbell = false\n", "x").unwrap();
        assert!(!c.alerts.desktop && !c.alerts.bell && c.alerts.banner);
    }

    fn problem(text: &str) -> String {
        parse(text, "/home/u/.config/crisisdesk/console.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let e = problem("[notifications]\ndesktop = \"no\"\n");
        assert!(e.contains("`notifications.desktop`"), "{e}");
        assert!(e.contains("true or false"), "{e}");
        assert!(e.contains("console.toml"), "{e}");

        let e = problem("theme = \"dark\"\n");
        assert!(
            e.contains("`theme`") && e.contains("\"high-contrast\""),
            "{e}"
        );

        let e = problem("language = \"fr\"\n");
        assert!(
            e.contains("`language`") && e.contains("\"zh\" or \"en\""),
            "{e}"
        );

        let e = problem("lang = \"en\"\n");
        assert!(
            e.contains("unknown key `lang`") && e.contains("language"),
            "{e}"
        );

        let e = problem("[notifications]\nsound = true\n");
        assert!(e.contains("`notifications.sound`"), "{e}");

        let e = problem("relay = 7710\n");
        assert!(e.contains("`relay` must be a quoted string"), "{e}");
        let e = problem("relay = [\"ws://a:1\", 7710]\n");
        assert!(e.contains("or a list of them"), "{e}");
        let e = problem("relay = []\n");
        assert!(e.contains("`relay` is empty"), "{e}");

        let e = problem("notifications = true\n");
        assert!(e.contains("[notifications]"), "{e}");
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = problem("theme = \n");
        assert!(e.contains("not valid TOML") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn an_explicit_file_must_exist() {
        let e = load(Some(Path::new("/nonexistent/console.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Unreadable { .. }), "{e}");
    }
}
