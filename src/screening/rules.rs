//! Scale rule files (`rules/*.toml`): a scale's items, answer range,
//! scores, item-level triggers, cut-off bands and validity checks, as data a
//! psychologist can read and check against the published scoring. Each file
//! names its sources and carries a `version` that every graded result keeps.
//!
//! The format (see docs/screening.md for a walk-through):
//!
//! ```toml
//! [scale]
//! id = "phq9"            # what a plan names with --scale
//! version = 1            # bump on any change to scoring or cut-offs
//! name_zh = "..."; name_en = "..."
//! items = 9              # answers are columns 1..=items
//! answers = { min = 0, max = 3 }
//! sources = ["kroenke2001"]
//!
//! [[sources]]            # every file cites where its scoring comes from
//! id = "kroenke2001"; cite = "..."
//!
//! [[scores]]             # sum / mean / count of items at or above a value
//! id = "total"; label_zh = "总分"; label_en = "total"; items = "1-9"; method = "sum"
//!
//! [[triggers]]           # item-level: outrank every band
//! id = "item9"; item = 9; at_least = 1; level = "high"; route = "crisis"; category = "suicide_risk"
//!
//! [[bands]]              # first match wins, after the triggers
//! id = "severe"; score = "total"; at_least = 20; level = "high"; class_zh = "重度"; class_en = "severe"
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Sink};

/// The scale files built into the binary, so an installed importer needs
/// no files beside it. `rules check rules` checks the same files on disk.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("rules/gad7.toml", include_str!("../../rules/gad7.toml")),
    ("rules/mht.toml", include_str!("../../rules/mht.toml")),
    ("rules/phq9.toml", include_str!("../../rules/phq9.toml")),
    ("rules/scl90.toml", include_str!("../../rules/scl90.toml")),
    ("rules/upi.toml", include_str!("../../rules/upi.toml")),
];

/// The multi-source risk rule file built into the binary.
pub const EMBEDDED_RISK: (&str, &str) = ("rules/risk.toml", include_str!("../../rules/risk.toml"));

/// A screening level, lowest first. `None` is a graded class that is not
/// flagged (PHQ-9 "mild", UPI Class III).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    None,
    General,
    Key,
    High,
}

impl Flag {
    pub fn zh(self) -> &'static str {
        match self {
            Flag::None => "未预警",
            Flag::General => "一般关注",
            Flag::Key => "重点关注",
            Flag::High => "高危关注",
        }
    }

    pub fn to_level(self) -> Option<crate::protocol::Level> {
        use crate::protocol::Level;
        match self {
            Flag::None => None,
            Flag::General => Some(Level::General),
            Flag::Key => Some(Level::Key),
            Flag::High => Some(Level::High),
        }
    }
}
crate::protocol::wire_names!(Flag);

/// Where a flagged result goes: the duty console's crisis queue, or the
/// school's screening follow-up list (no bell, no banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Crisis,
    Followup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sum,
    Mean,
    /// How many of the items were answered at or above `value`.
    CountAtLeast(u8),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub id: String,
    pub label_zh: String,
    pub label_en: String,
    /// 1-based item numbers.
    pub items: Vec<usize>,
    pub method: Method,
    /// Headers under which an export may carry this score already computed
    /// (used when a file has no item answers).
    pub headers: Vec<String>,
}

/// What a trigger or band looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// One score.
    Score(usize),
    /// Any of these scores (SCL-90: any factor mean).
    AnyScore(Vec<usize>),
    /// Any of these items.
    AnyItem(Vec<usize>),
    /// An optional extra column (UPI: asks for counselling).
    Extra(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    AtLeast(f64),
    Above(f64),
}

impl Threshold {
    pub fn passes(self, value: f64) -> bool {
        match self {
            Threshold::AtLeast(t) => value >= t - 1e-9,
            Threshold::Above(t) => value > t + 1e-9,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub subject: Subject,
    pub threshold: Threshold,
    pub flag: Flag,
    pub route: Route,
    pub category: crate::protocol::Category,
    pub class_zh: Option<String>,
    pub class_en: Option<String>,
    pub label_zh: Option<String>,
    pub label_en: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    pub id: String,
    pub label_zh: String,
    pub label_en: String,
    pub headers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LieScale {
    pub items: Vec<usize>,
    pub invalid_at_least: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub id: String,
    pub version: u32,
    pub name_zh: String,
    pub name_en: String,
    pub items: usize,
    pub min: u8,
    pub max: u8,
    /// Text answers an export may carry instead of numbers ("是" = 1).
    pub answer_text: BTreeMap<String, u8>,
    /// Items that are answered but never scored (UPI's lie items).
    pub unscored: Vec<usize>,
    pub lie: Option<LieScale>,
    /// Answering every item with one of these values makes the row
    /// invalid (a straight line of "yes" on UPI; not all-"no", which an
    /// untroubled student may honestly give).
    pub all_equal_invalid: Vec<u8>,
    /// Completion faster than this is not a real answer sheet.
    pub min_seconds: Option<u32>,
    pub scores: Vec<Score>,
    pub extras: Vec<Extra>,
    pub triggers: Vec<Rule>,
    pub bands: Vec<Rule>,
    /// Class of a result no band matched (UPI "第三类").
    pub unflagged_zh: String,
    pub unflagged_en: String,
    pub file: String,
}

impl Scale {
    pub fn score_index(&self, id: &str) -> Option<usize> {
        self.scores.iter().position(|s| s.id == id)
    }
}

// ---------------------------------------------------------------- raw form

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    scale: RawScale,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    validity: RawValidity,
    #[serde(default)]
    scores: Vec<RawScore>,
    #[serde(default)]
    extras: Vec<RawExtra>,
    #[serde(default)]
    triggers: Vec<RawRule>,
    #[serde(default)]
    bands: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScale {
    id: Spanned<String>,
    version: Spanned<i64>,
    name_zh: String,
    name_en: String,
    items: Spanned<i64>,
    answers: Spanned<RawAnswers>,
    #[serde(default)]
    answer_text: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    min_seconds: Option<Spanned<i64>>,
    #[serde(default)]
    unflagged_zh: Option<String>,
    #[serde(default)]
    unflagged_en: Option<String>,
    sources: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswers {
    min: i64,
    max: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub(crate) id: Spanned<String>,
    pub(crate) cite: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawValidity {
    #[serde(default)]
    unscored: Option<Spanned<String>>,
    #[serde(default)]
    lie_items: Option<Spanned<String>>,
    #[serde(default)]
    lie_invalid_at_least: Option<Spanned<f64>>,
    #[serde(default)]
    all_equal_invalid: Vec<i64>,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScore {
    id: Spanned<String>,
    label_zh: String,
    label_en: String,
    items: Spanned<String>,
    method: Spanned<String>,
    #[serde(default)]
    value: Option<i64>,
    #[serde(default)]
    headers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtra {
    id: Spanned<String>,
    label_zh: String,
    label_en: String,
    headers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    score: Option<Spanned<String>>,
    #[serde(default)]
    any_score: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    item: Option<Spanned<i64>>,
    #[serde(default)]
    any_item: Option<Spanned<String>>,
    #[serde(default)]
    extra: Option<Spanned<String>>,
    #[serde(default)]
    at_least: Option<f64>,
    #[serde(default)]
    above: Option<f64>,
    level: Spanned<String>,
    #[serde(default)]
    route: Option<Spanned<String>>,
    #[serde(default)]
    category: Option<Spanned<String>>,
    #[serde(default)]
    class_zh: Option<String>,
    #[serde(default)]
    class_en: Option<String>,
    #[serde(default)]
    label_zh: Option<String>,
    #[serde(default)]
    label_en: Option<String>,
    source: Spanned<String>,
}

/// Parses "1-4, 6, 8-10" into item numbers.
pub(crate) fn parse_items(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a
            .parse()
            .map_err(|_| format!("`{part}` is not an item number or range"))?;
        let b: usize = b
            .parse()
            .map_err(|_| format!("`{part}` is not an item number or range"))?;
        if a == 0 || b < a {
            return Err(format!("`{part}` is not a range of items from 1 up"));
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err("no items given".into());
    }
    Ok(out)
}

fn category(s: &str) -> Option<crate::protocol::Category> {
    use crate::protocol::Category::*;
    Some(match s {
        "suicide_risk" => SuicideRisk,
        "self_harm" => SelfHarm,
        "violence_threat" => ViolenceThreat,
        "bullying" => Bullying,
        "trauma_bereavement" => TraumaBereavement,
        "acute_distress" => AcuteDistress,
        "other" => Other,
        _ => return None,
    })
}

/// Line of a TOML parse error, from its span.
pub(crate) fn toml_error_line(sink: &Sink<String>, err: &toml::de::Error) -> usize {
    err.span().map(|s| sink.line(&s)).unwrap_or(1)
}

/// Parses and checks one scale file. Every problem is reported with its
/// line; a scale comes back only when there are none.
pub fn check_scale(file: &Path, text: &str) -> (Option<Scale>, Vec<Diagnostic<String>>) {
    let mut sink: Sink<String> = Sink::new(file, text);
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let line = toml_error_line(&sink, &err);
            sink.push(line, err.message().to_string());
            return (None, sink.diags);
        }
    };
    let scale = build_scale(&mut sink, raw, file);
    if sink.diags.is_empty() {
        (scale, sink.diags)
    } else {
        (None, sink.diags)
    }
}

/// Checks the `[[sources]]` list and that each cited id exists.
pub(crate) fn check_sources(sink: &mut Sink<String>, sources: &[RawSource]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for s in sources {
        if s.cite.get_ref().trim().len() < 10 {
            sink.push(
                sink.at(&s.cite),
                "a source needs a citation (title and address)".into(),
            );
        }
        if !ids.insert(s.id.get_ref().clone()) {
            sink.push(
                sink.at(&s.id),
                format!("source `{}` is defined twice", s.id.get_ref()),
            );
        }
    }
    ids
}

fn build_scale(sink: &mut Sink<String>, raw: RawFile, file: &Path) -> Option<Scale> {
    let s = &raw.scale;
    let source_ids = check_sources(sink, &raw.sources);
    if raw.sources.is_empty() {
        sink.push(
            sink.at(&s.id),
            "a scale file must cite its sources in [[sources]]".into(),
        );
    }
    for id in s.sources.get_ref() {
        if !source_ids.contains(id) {
            sink.push(sink.at(&s.sources), format!("unknown source `{id}`"));
        }
    }
    let id = s.id.get_ref().clone();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        sink.push(
            sink.at(&s.id),
            "scale id must be lowercase letters, digits or _".into(),
        );
    }
    let version = *s.version.get_ref();
    if !(1..=1_000_000).contains(&version) {
        sink.push(
            sink.at(&s.version),
            "version must be a whole number from 1".into(),
        );
    }
    let items = *s.items.get_ref();
    if !(1..=400).contains(&items) {
        sink.push(sink.at(&s.items), "items must be 1 to 400".into());
        return None;
    }
    let items = items as usize;
    let answers = s.answers.get_ref();
    if answers.min < 0 || answers.max > 9 || answers.min >= answers.max {
        sink.push(
            sink.at(&s.answers),
            "answers must have 0 <= min < max <= 9".into(),
        );
    }
    let (min, max) = (answers.min.clamp(0, 9) as u8, answers.max.clamp(0, 9) as u8);
    let mut answer_text = BTreeMap::new();
    for (text, value) in &s.answer_text {
        let v = *value.get_ref();
        if v < min as i64 || v > max as i64 {
            sink.push(
                sink.at(value),
                format!("answer text `{text}` maps outside {min}..={max}"),
            );
        }
        answer_text.insert(text.clone(), v.clamp(0, 9) as u8);
    }
    let min_seconds = s.min_seconds.as_ref().and_then(|m| {
        let v = *m.get_ref();
        if !(1..=86_400).contains(&v) {
            sink.push(sink.at(m), "min_seconds must be 1 to 86400".into());
            None
        } else {
            Some(v as u32)
        }
    });

    let item_list = |sink: &mut Sink<String>, text: &Spanned<String>| -> Vec<usize> {
        match parse_items(text.get_ref()) {
            Ok(list) => {
                if let Some(bad) = list.iter().find(|&&i| i > items) {
                    sink.push(
                        sink.at(text),
                        format!("item {bad} is beyond the scale's {items} items"),
                    );
                }
                let mut seen = HashSet::new();
                if let Some(dup) = list.iter().find(|i| !seen.insert(**i)) {
                    sink.push(sink.at(text), format!("item {dup} is listed twice"));
                }
                list
            }
            Err(e) => {
                sink.push(sink.at(text), e);
                Vec::new()
            }
        }
    };

    let v = &raw.validity;
    let unscored = v
        .unscored
        .as_ref()
        .map(|t| item_list(sink, t))
        .unwrap_or_default();
    let lie = match (&v.lie_items, &v.lie_invalid_at_least) {
        (Some(items_text), Some(at)) => Some(LieScale {
            items: item_list(sink, items_text),
            invalid_at_least: *at.get_ref(),
        }),
        (None, None) => None,
        (Some(t), None) => {
            sink.push(sink.at(t), "lie_items needs lie_invalid_at_least".into());
            None
        }
        (None, Some(t)) => {
            sink.push(sink.at(t), "lie_invalid_at_least needs lie_items".into());
            None
        }
    };
    for id in &v.sources {
        if !source_ids.contains(id) {
            sink.push(1, format!("[validity] cites unknown source `{id}`"));
        }
    }
    let all_equal_invalid: Vec<u8> = v
        .all_equal_invalid
        .iter()
        .filter_map(|&x| (x >= min as i64 && x <= max as i64).then_some(x as u8))
        .collect();
    if all_equal_invalid.len() != v.all_equal_invalid.len() {
        sink.push(
            1,
            format!("[validity] all_equal_invalid values must lie in {min}..={max}"),
        );
    }

    let mut scores = Vec::new();
    let mut score_ids = HashSet::new();
    for sc in &raw.scores {
        if !score_ids.insert(sc.id.get_ref().clone()) {
            sink.push(
                sink.at(&sc.id),
                format!("score `{}` is defined twice", sc.id.get_ref()),
            );
        }
        let list = item_list(sink, &sc.items);
        if let Some(u) = list.iter().find(|i| unscored.contains(i)) {
            sink.push(
                sink.at(&sc.items),
                format!("item {u} is unscored and cannot count in a score"),
            );
        }
        let method = match (sc.method.get_ref().as_str(), sc.value) {
            ("sum", None) => Method::Sum,
            ("mean", None) => Method::Mean,
            ("count_at_least", Some(v)) if v >= min as i64 && v <= max as i64 => {
                Method::CountAtLeast(v as u8)
            }
            ("count_at_least", _) => {
                sink.push(
                    sink.at(&sc.method),
                    format!("count_at_least needs a `value` in {min}..={max}"),
                );
                Method::Sum
            }
            (m @ ("sum" | "mean"), Some(_)) => {
                sink.push(
                    sink.at(&sc.method),
                    format!("method `{m}` takes no `value`"),
                );
                Method::Sum
            }
            (other, _) => {
                sink.push(
                    sink.at(&sc.method),
                    format!("unknown method `{other}`: use sum, mean or count_at_least"),
                );
                Method::Sum
            }
        };
        scores.push(Score {
            id: sc.id.get_ref().clone(),
            label_zh: sc.label_zh.clone(),
            label_en: sc.label_en.clone(),
            items: list,
            method,
            headers: sc.headers.clone(),
        });
    }
    if scores.is_empty() {
        sink.push(
            sink.at(&s.id),
            "a scale needs at least one [[scores]] entry".into(),
        );
    }
    let mut extras = Vec::new();
    for ex in &raw.extras {
        if ex.headers.is_empty() {
            sink.push(
                sink.at(&ex.id),
                "an extra column needs at least one header".into(),
            );
        }
        extras.push(Extra {
            id: ex.id.get_ref().clone(),
            label_zh: ex.label_zh.clone(),
            label_en: ex.label_en.clone(),
            headers: ex.headers.clone(),
        });
    }

    let mut rule_ids = HashSet::new();
    let mut build_rule = |sink: &mut Sink<String>, r: &RawRule, is_trigger: bool| -> Option<Rule> {
        if !rule_ids.insert(r.id.get_ref().clone()) {
            sink.push(
                sink.at(&r.id),
                format!("rule `{}` is defined twice", r.id.get_ref()),
            );
        }
        if !source_ids.contains(r.source.get_ref()) {
            sink.push(
                sink.at(&r.source),
                format!("unknown source `{}`", r.source.get_ref()),
            );
        }
        let given = [
            r.score.is_some(),
            r.any_score.is_some(),
            r.item.is_some(),
            r.any_item.is_some(),
            r.extra.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            sink.push(
                sink.at(&r.id),
                "give exactly one of score, any_score, item, any_item, extra".into(),
            );
            return None;
        }
        let score_ref = |sink: &mut Sink<String>, name: &str, at: usize| -> Option<usize> {
            let found = scores.iter().position(|s| s.id == name);
            if found.is_none() {
                sink.push(at, format!("unknown score `{name}`"));
            }
            found
        };
        let subject = if let Some(sc) = &r.score {
            Subject::Score(score_ref(sink, sc.get_ref(), sink.at(sc))?)
        } else if let Some(list) = &r.any_score {
            let at = sink.at(list);
            let idx: Vec<usize> = list
                .get_ref()
                .iter()
                .filter_map(|n| score_ref(sink, n, at))
                .collect();
            if idx.len() != list.get_ref().len() || idx.is_empty() {
                return None;
            }
            Subject::AnyScore(idx)
        } else if let Some(item) = &r.item {
            let i = *item.get_ref();
            if i < 1 || i as usize > items {
                sink.push(
                    sink.at(item),
                    format!("item {i} is not on this {items}-item scale"),
                );
                return None;
            }
            Subject::AnyItem(vec![i as usize])
        } else if let Some(list) = &r.any_item {
            Subject::AnyItem(item_list(sink, list))
        } else if let Some(ex) = &r.extra {
            match extras.iter().position(|e| &e.id == ex.get_ref()) {
                Some(i) => Subject::Extra(i),
                None => {
                    sink.push(sink.at(ex), format!("unknown extra `{}`", ex.get_ref()));
                    return None;
                }
            }
        } else {
            unreachable!("exactly one subject was checked above")
        };
        if is_trigger && !matches!(subject, Subject::AnyItem(_)) {
            sink.push(
                sink.at(&r.id),
                "a trigger is item-level: use item or any_item".into(),
            );
        }
        let threshold = match (r.at_least, r.above) {
            (Some(t), None) => Threshold::AtLeast(t),
            (None, Some(t)) => Threshold::Above(t),
            _ => {
                sink.push(sink.at(&r.id), "give exactly one of at_least, above".into());
                return None;
            }
        };
        let flag = match Flag::parse(r.level.get_ref()) {
            Some(f) => f,
            None => {
                sink.push(
                    sink.at(&r.level),
                    format!(
                        "unknown level `{}`: none, general, key or high",
                        r.level.get_ref()
                    ),
                );
                return None;
            }
        };
        if is_trigger && flag == Flag::None {
            sink.push(
                sink.at(&r.level),
                "a trigger must flag (general, key or high)".into(),
            );
        }
        let route = match &r.route {
            None => Route::Followup,
            Some(raw) => match raw.get_ref().as_str() {
                "followup" => Route::Followup,
                "crisis" => {
                    if !is_trigger {
                        sink.push(
                            sink.at(raw),
                            "only item-level triggers may route to the crisis queue".into(),
                        );
                    }
                    Route::Crisis
                }
                other => {
                    sink.push(
                        sink.at(raw),
                        format!("unknown route `{other}`: crisis or followup"),
                    );
                    Route::Followup
                }
            },
        };
        let category = match &r.category {
            None => crate::protocol::Category::Other,
            Some(c) => category(c.get_ref()).unwrap_or_else(|| {
                sink.push(sink.at(c), format!("unknown category `{}`", c.get_ref()));
                crate::protocol::Category::Other
            }),
        };
        if flag != Flag::None && r.class_zh.is_none() && !is_trigger {
            sink.push(sink.at(&r.id), "a band needs class_zh and class_en".into());
        }
        if r.class_zh.is_some() != r.class_en.is_some() {
            sink.push(sink.at(&r.id), "give class_zh and class_en together".into());
        }
        if is_trigger && (r.label_zh.is_none() || r.label_en.is_none()) {
            sink.push(
                sink.at(&r.id),
                "a trigger needs label_zh and label_en (the console's why line)".into(),
            );
        }
        Some(Rule {
            id: r.id.get_ref().clone(),
            subject,
            threshold,
            flag,
            route,
            category,
            class_zh: r.class_zh.clone(),
            class_en: r.class_en.clone(),
            label_zh: r.label_zh.clone(),
            label_en: r.label_en.clone(),
        })
    };
    let triggers: Vec<Rule> = raw
        .triggers
        .iter()
        .filter_map(|r| build_rule(sink, r, true))
        .collect();
    let bands: Vec<Rule> = raw
        .bands
        .iter()
        .filter_map(|r| build_rule(sink, r, false))
        .collect();
    for (i, b) in bands.iter().enumerate() {
        // A band after an identical-subject band with a lower at_least can
        // never match; catch the commonest ordering slip.
        for earlier in &bands[..i] {
            if let (Threshold::AtLeast(a), Threshold::AtLeast(e)) = (b.threshold, earlier.threshold)
                && earlier.subject == b.subject
                && e <= a
            {
                let line = raw
                    .bands
                    .iter()
                    .find(|r| r.id.get_ref() == &b.id)
                    .map(|r| sink.at(&r.id))
                    .unwrap_or(1);
                sink.push(
                    line,
                    format!(
                        "band `{}` can never match: `{}` before it already takes these results",
                        b.id, earlier.id
                    ),
                );
            }
        }
    }
    Some(Scale {
        id,
        version: version.clamp(1, 1_000_000) as u32,
        name_zh: s.name_zh.clone(),
        name_en: s.name_en.clone(),
        items,
        min,
        max,
        answer_text,
        unscored,
        lie,
        all_equal_invalid,
        min_seconds,
        scores,
        extras,
        triggers,
        bands,
        unflagged_zh: s.unflagged_zh.clone().unwrap_or_else(|| "未达预警".into()),
        unflagged_en: s
            .unflagged_en
            .clone()
            .unwrap_or_else(|| "below cut-off".into()),
        file: file.display().to_string(),
    })
}

/// A checked set of rules: the scales by id, and the risk rule.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub scales: BTreeMap<String, Scale>,
    pub risk: super::risk::RiskRule,
}

#[derive(Debug)]
pub struct RuleProblems(pub Vec<Diagnostic<String>>);

impl fmt::Display for RuleProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        write!(f, "{} problem(s) in the rule files", self.0.len())
    }
}

impl std::error::Error for RuleProblems {}

/// Checks a list of (file, text): every scale file and exactly one
/// `risk.toml`.
pub fn check_texts(files: &[(PathBuf, String)]) -> Result<RuleSet, RuleProblems> {
    let mut diags = Vec::new();
    let mut scales = BTreeMap::new();
    let mut risk = None;
    for (path, text) in files {
        if path.file_name().is_some_and(|n| n == "risk.toml") {
            let (r, d) = super::risk::check_risk(path, text);
            diags.extend(d);
            risk = r;
            continue;
        }
        let (scale, d) = check_scale(path, text);
        diags.extend(d);
        if let Some(scale) = scale {
            if let Some(first) = scales.get(&scale.id) {
                let first: &Scale = first;
                diags.push(Diagnostic {
                    file: path.clone(),
                    line: Some(1),
                    problem: format!("scale `{}` is already defined in {}", scale.id, first.file),
                });
            } else {
                scales.insert(scale.id.clone(), scale);
            }
        }
    }
    if risk.is_none()
        && !diags
            .iter()
            .any(|d| d.file.file_name().is_some_and(|n| n == "risk.toml"))
    {
        diags.push(Diagnostic {
            file: files
                .first()
                .map(|f| f.0.parent().unwrap_or(Path::new(".")).join("risk.toml"))
                .unwrap_or_else(|| PathBuf::from("risk.toml")),
            line: None,
            problem: "missing: the multi-source risk rule file risk.toml".into(),
        });
    }
    match (diags.is_empty(), risk) {
        (true, Some(risk)) => Ok(RuleSet { scales, risk }),
        _ => Err(RuleProblems(diags)),
    }
}

/// Checks every `*.toml` in `dir`.
pub fn check_dir(dir: &Path) -> Result<RuleSet, RuleProblems> {
    let (paths, errors) = match crate::diagnostic::toml_files(dir) {
        Ok(x) => x,
        Err(e) => {
            return Err(RuleProblems(vec![Diagnostic {
                file: dir.to_path_buf(),
                line: None,
                problem: format!("cannot read the rule directory: {e}"),
            }]));
        }
    };
    let mut diags: Vec<Diagnostic<String>> = errors
        .into_iter()
        .map(|e| Diagnostic {
            file: dir.to_path_buf(),
            line: None,
            problem: e.to_string(),
        })
        .collect();
    let mut files = Vec::new();
    for p in paths {
        match std::fs::read_to_string(&p) {
            Ok(t) => files.push((p, t)),
            Err(e) => diags.push(Diagnostic {
                file: p,
                line: None,
                problem: format!("cannot read: {e}"),
            }),
        }
    }
    if files.is_empty() && diags.is_empty() {
        diags.push(Diagnostic {
            file: dir.to_path_buf(),
            line: None,
            problem: "no rule files (*.toml) here".into(),
        });
    }
    match check_texts(&files) {
        Ok(set) if diags.is_empty() => Ok(set),
        Ok(_) => Err(RuleProblems(diags)),
        Err(RuleProblems(more)) => {
            diags.extend(more);
            Err(RuleProblems(diags))
        }
    }
}

/// The rules built into this binary.
pub fn builtin() -> Result<RuleSet, RuleProblems> {
    let mut files: Vec<(PathBuf, String)> = EMBEDDED
        .iter()
        .map(|(n, t)| (PathBuf::from(n), t.to_string()))
        .collect();
    files.push((PathBuf::from(EMBEDDED_RISK.0), EMBEDDED_RISK.1.to_string()));
    check_texts(&files)
}

/// `--rules DIR` if given, else the built-in rules.
pub fn load(dir: Option<&Path>) -> Result<RuleSet, RuleProblems> {
    match dir {
        Some(d) => check_dir(d),
        None => builtin(),
    }
}
