//! The multi-source risk rule (`rules/risk.toml`): scale result, change
//! against earlier screenings, behaviour alerts and case history, added up
//! as points into a level, with every signal's contribution kept so the
//! console and `rules explain` can say why. Pure: the caller gathers the
//! student's history from the store.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use toml::Spanned;

use super::grade::{Contribution, Graded};
use super::rules::{Flag, RawSource, check_sources, toml_error_line};
use crate::diagnostic::{Diagnostic, Sink};

#[derive(Debug, Clone, PartialEq)]
pub enum SignalKind {
    /// The level is above the student's latest earlier screening.
    Rise,
    /// The latest earlier screening was key or above, and so is this one.
    Persist,
    /// Alerts of these sources within the window, `points` each.
    Alerts { sources: Vec<String> },
    /// The student has a case that is not closed.
    OpenCase,
    /// A case closed within the window.
    PastCase,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub id: String,
    pub kind: SignalKind,
    pub label_zh: String,
    pub label_en: String,
    pub points: i64,
    pub max_points: Option<i64>,
    pub within_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskRule {
    pub id: String,
    pub version: u32,
    pub scale_points: BTreeMap<Flag, i64>,
    /// Lowest points for each level, highest level first.
    pub levels: Vec<(Flag, i64)>,
    pub imminent_points: Option<i64>,
    pub signals: Vec<Signal>,
}

/// What the store knows about a student apart from this screening.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The student's latest earlier screening result's level, if any.
    pub previous: Option<Flag>,
    /// Non-screening alerts: (source, observed at).
    pub alerts: Vec<(String, DateTime<Utc>)>,
    pub open_cases: u32,
    /// When each closed case closed.
    pub closed_cases: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskGrade {
    pub flag: Flag,
    pub imminent: bool,
    pub points: i64,
    /// The scale's contributions first (triggers, band), then each signal
    /// that added points.
    pub contributions: Vec<Contribution>,
    pub rule_version: u32,
}

impl RiskRule {
    fn level_for(&self, points: i64) -> Flag {
        self.levels
            .iter()
            .find(|(_, at)| points >= *at)
            .map(|(f, _)| *f)
            .unwrap_or(Flag::None)
    }

    /// Combines a graded scale result with the student's history, as of
    /// `now` (windows count back from it).
    pub fn grade(&self, scale: &Graded, history: &History, now: DateTime<Utc>) -> RiskGrade {
        let mut contributions = scale.contributions.clone();
        let decisive_trigger = !scale.triggers.is_empty();
        let scale_points = self.scale_points.get(&scale.flag).copied().unwrap_or(0);
        // The scale's band (after the trigger contributions) carries the
        // scale's points as its weight.
        if let Some(band) = contributions.get_mut(scale.triggers.len()) {
            band.weight = Some(scale_points);
        }
        let mut other = 0i64;
        for s in &self.signals {
            let window = s.within_days.map(|d| now - Duration::days(d));
            let (count, value): (i64, String) = match &s.kind {
                SignalKind::Rise => match history.previous {
                    Some(prev) if scale.flag > prev => {
                        (1, format!("{}→{}", prev.as_str(), scale.flag.as_str()))
                    }
                    _ => (0, String::new()),
                },
                SignalKind::Persist => match history.previous {
                    Some(prev) if prev >= Flag::Key && scale.flag >= Flag::Key => {
                        (1, format!("{}→{}", prev.as_str(), scale.flag.as_str()))
                    }
                    _ => (0, String::new()),
                },
                SignalKind::Alerts { sources } => {
                    let n = history
                        .alerts
                        .iter()
                        .filter(|(src, at)| {
                            sources.contains(src) && window.is_none_or(|w| *at >= w) && *at <= now
                        })
                        .count() as i64;
                    (n, n.to_string())
                }
                SignalKind::OpenCase => {
                    let n = i64::from(history.open_cases.min(1));
                    (n, history.open_cases.to_string())
                }
                SignalKind::PastCase => {
                    let n = history
                        .closed_cases
                        .iter()
                        .filter(|at| window.is_none_or(|w| **at >= w))
                        .count() as i64;
                    (n.min(1), n.to_string())
                }
            };
            if count == 0 {
                continue;
            }
            let mut pts = count * s.points;
            if let Some(max) = s.max_points {
                pts = pts.min(max);
            }
            other += pts;
            contributions.push(Contribution {
                label_zh: s.label_zh.clone(),
                label_en: s.label_en.clone(),
                value,
                effect: None,
                weight: Some(pts),
                decisive: false,
            });
        }
        let points = scale_points + other;
        let flag = if scale.flag == Flag::None {
            Flag::None
        } else {
            scale.flag.max(self.level_for(points))
        };
        let imminent = decisive_trigger && self.imminent_points.is_some_and(|at| other >= at);
        RiskGrade {
            flag,
            imminent,
            points,
            contributions,
            rule_version: self.version,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    risk: RawHead,
    #[serde(default)]
    sources: Vec<RawSource>,
    scale_points: BTreeMap<String, Spanned<i64>>,
    levels: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    imminent: Option<RawImminent>,
    #[serde(default)]
    signals: Vec<RawSignal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    id: Spanned<String>,
    version: Spanned<i64>,
    sources: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImminent {
    with_trigger_points_at_least: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    id: Spanned<String>,
    kind: Spanned<String>,
    label_zh: String,
    label_en: String,
    points: Spanned<i64>,
    #[serde(default)]
    max_points: Option<i64>,
    #[serde(default)]
    within_days: Option<Spanned<i64>>,
    #[serde(default)]
    alert_sources: Vec<String>,
    source: Spanned<String>,
}

const ALERT_SOURCES: &[&str] = &[
    "behavior",
    "treehole",
    "teacher_report",
    "parent_report",
    "self_referral",
    "peer_tip",
    "hotline",
    "manual",
];

pub fn check_risk(file: &Path, text: &str) -> (Option<RiskRule>, Vec<Diagnostic<String>>) {
    let mut sink: Sink<String> = Sink::new(file, text);
    let raw: RawRisk = match toml::from_str(text) {
        Ok(r) => r,
        Err(err) => {
            let line = toml_error_line(&sink, &err);
            sink.push(line, err.message().to_string());
            return (None, sink.diags);
        }
    };
    let ids = check_sources(&mut sink, &raw.sources);
    for s in raw.risk.sources.get_ref() {
        if !ids.contains(s) {
            sink.push(sink.at(&raw.risk.sources), format!("unknown source `{s}`"));
        }
    }
    let version = *raw.risk.version.get_ref();
    if version < 1 {
        sink.push(
            sink.at(&raw.risk.version),
            "version must be a whole number from 1".into(),
        );
    }
    let flag_map = |sink: &mut Sink<String>, map: &BTreeMap<String, Spanned<i64>>, what: &str| {
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match Flag::parse(k) {
                Some(f) if f != Flag::None => {
                    if *v.get_ref() < 0 {
                        sink.push(sink.at(v), format!("{what}.{k} must not be negative"));
                    }
                    out.insert(f, *v.get_ref());
                }
                _ => sink.push(
                    sink.at(v),
                    format!("{what}: unknown level `{k}` (general, key or high)"),
                ),
            }
        }
        out
    };
    let scale_points = flag_map(&mut sink, &raw.scale_points, "scale_points");
    let level_map = flag_map(&mut sink, &raw.levels, "levels");
    let mut levels: Vec<(Flag, i64)> = level_map.into_iter().collect();
    levels.sort_by_key(|l| std::cmp::Reverse(l.0));
    for pair in levels.windows(2) {
        if pair[0].1 <= pair[1].1 {
            let at = raw
                .levels
                .get(pair[0].0.as_str())
                .map(|v| sink.at(v))
                .unwrap_or(1);
            sink.push(
                at,
                format!(
                    "levels.{} must need more points than levels.{}",
                    pair[0].0.as_str(),
                    pair[1].0.as_str()
                ),
            );
        }
    }
    if levels.len() != 3 {
        sink.push(1, "[levels] needs general, key and high".into());
    }
    let mut seen = HashSet::new();
    let mut signals = Vec::new();
    for s in &raw.signals {
        if !seen.insert(s.id.get_ref().clone()) {
            sink.push(
                sink.at(&s.id),
                format!("signal `{}` is defined twice", s.id.get_ref()),
            );
        }
        if !ids.contains(s.source.get_ref()) {
            sink.push(
                sink.at(&s.source),
                format!("unknown source `{}`", s.source.get_ref()),
            );
        }
        if *s.points.get_ref() < 0 || *s.points.get_ref() > 100 {
            sink.push(sink.at(&s.points), "points must be 0 to 100".into());
        }
        let kind = match s.kind.get_ref().as_str() {
            "rise" => SignalKind::Rise,
            "persist" => SignalKind::Persist,
            "open_case" => SignalKind::OpenCase,
            "past_case" => SignalKind::PastCase,
            "alerts" => {
                if s.alert_sources.is_empty() {
                    sink.push(sink.at(&s.kind), "kind `alerts` needs alert_sources".into());
                }
                for src in &s.alert_sources {
                    if !ALERT_SOURCES.contains(&src.as_str()) {
                        sink.push(
                            sink.at(&s.kind),
                            format!("unknown alert source `{src}`: {}", ALERT_SOURCES.join(", ")),
                        );
                    }
                }
                SignalKind::Alerts {
                    sources: s.alert_sources.clone(),
                }
            }
            other => {
                sink.push(sink.at(&s.kind), format!("unknown signal kind `{other}`: rise, persist, alerts, open_case or past_case"));
                continue;
            }
        };
        let needs_window = matches!(kind, SignalKind::Alerts { .. } | SignalKind::PastCase);
        match (&s.within_days, needs_window) {
            (None, true) => sink.push(
                sink.at(&s.id),
                format!("signal `{}` needs within_days", s.id.get_ref()),
            ),
            (Some(w), _) if !(1..=3650).contains(w.get_ref()) => {
                sink.push(sink.at(w), "within_days must be 1 to 3650".into())
            }
            (Some(w), false) => sink.push(
                sink.at(w),
                "within_days only applies to alerts and past_case".into(),
            ),
            _ => {}
        }
        signals.push(Signal {
            id: s.id.get_ref().clone(),
            kind,
            label_zh: s.label_zh.clone(),
            label_en: s.label_en.clone(),
            points: *s.points.get_ref(),
            max_points: s.max_points,
            within_days: s.within_days.as_ref().map(|w| *w.get_ref()),
        });
    }
    let rule = RiskRule {
        id: raw.risk.id.get_ref().clone(),
        version: version.max(1) as u32,
        scale_points,
        levels,
        imminent_points: raw
            .imminent
            .map(|i| *i.with_trigger_points_at_least.get_ref()),
        signals,
    };
    if sink.diags.is_empty() {
        (Some(rule), sink.diags)
    } else {
        (None, sink.diags)
    }
}
