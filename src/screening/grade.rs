//! Grading one answer sheet by a scale rule: validity first (a row that is
//! not a real answer sheet is "invalid, re-test", never graded), then the
//! scores, then the item-level triggers, which outrank every band, then the
//! first band that matches. Pure: no I/O, so the golden tests drive it
//! directly.

use serde::Serialize;

use super::rules::{Flag, Method, Route, Rule, Scale, Subject};
use crate::protocol::Category;

/// One answer sheet as the importer parsed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sheet {
    /// Every item's answer, in item order, when the file has item columns.
    pub answers: Option<Vec<u8>>,
    /// Scores the export computed itself (used when there are no answers),
    /// one per `Scale::scores`, `None` where the file has no such column.
    pub given_scores: Vec<Option<f64>>,
    /// Extra columns (UPI's counselling request), one per `Scale::extras`.
    pub extras: Vec<Option<u8>>,
    /// How long the student took, when the export says.
    pub seconds: Option<u32>,
}

/// Why a row is not graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// The scale's lie items reached their cut-off.
    Lie,
    /// Every item answered with one value the scale treats as not a real
    /// answer (a straight line of "yes").
    Straight,
    /// Finished faster than anyone can read the items.
    TooFast,
    /// Neither item answers nor the scores the bands need.
    NoScores,
}

impl Invalid {
    pub fn code(self) -> &'static str {
        match self {
            Invalid::Lie => "lie_scale",
            Invalid::Straight => "straight_line",
            Invalid::TooFast => "too_fast",
            Invalid::NoScores => "no_scores",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Invalid::Lie => "效度（测谎）题得分超过标准，答卷无效，需重测",
            Invalid::Straight => "全部题目选同一答案，答卷无效，需重测",
            Invalid::TooFast => "作答用时过短，答卷无效，需重测",
            Invalid::NoScores => "既无题目作答也无所需分数，无法评分",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Invalid::Lie => "lie scale above its cut-off: invalid, re-test",
            Invalid::Straight => "every item given the same answer: invalid, re-test",
            Invalid::TooFast => "completed implausibly fast: invalid, re-test",
            Invalid::NoScores => "no item answers and not the scores needed: cannot grade",
        }
    }
}

/// One signal's part in a grade, as the console's "why" line shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub label_zh: String,
    pub label_en: String,
    pub value: String,
    /// The level this signal sets on its own (triggers, bands).
    pub effect: Option<Flag>,
    /// Points it adds in the multi-source rule.
    pub weight: Option<i64>,
    /// Whether it alone decided the level.
    pub decisive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    pub scores: Vec<Option<f64>>,
    pub flag: Flag,
    pub route: Route,
    pub category: Category,
    pub class_zh: String,
    pub class_en: String,
    /// Ids of the triggers that fired.
    pub triggers: Vec<String>,
    /// The band that matched, if any.
    pub band: Option<String>,
    /// Triggers first (decisive), then the band.
    pub contributions: Vec<Contribution>,
    /// Whether item-level triggers could be checked (false when the file
    /// carried only totals).
    pub items_checked: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Invalid(Invalid),
    Graded(Graded),
}

/// A number as a grade shows it: whole numbers without decimals, means to
/// two places.
pub fn show(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

fn compute(answers: &[u8], method: Method, items: &[usize]) -> f64 {
    let values = items.iter().map(|&i| answers[i - 1]);
    match method {
        Method::Sum => values.map(f64::from).sum(),
        Method::Mean => values.map(f64::from).sum::<f64>() / items.len().max(1) as f64,
        Method::CountAtLeast(t) => values.filter(|&v| v >= t).count() as f64,
    }
}

/// How an answer reads in a why line: the scale's own word when it has one
/// (是/否), else the number.
fn answer_text(scale: &Scale, value: u8) -> String {
    scale
        .answer_text
        .iter()
        .find(|(text, v)| **v == value && !text.is_ascii())
        .map(|(text, _)| text.clone())
        .unwrap_or_else(|| value.to_string())
}

pub fn grade(scale: &Scale, sheet: &Sheet) -> Outcome {
    if let Some(answers) = &sheet.answers {
        debug_assert_eq!(answers.len(), scale.items);
        if let Some(lie) = &scale.lie {
            let sum: f64 = lie.items.iter().map(|&i| f64::from(answers[i - 1])).sum();
            if sum >= lie.invalid_at_least - 1e-9 {
                return Outcome::Invalid(Invalid::Lie);
            }
        }
        if let Some(&first) = answers.first()
            && answers.iter().all(|&a| a == first)
            && scale.all_equal_invalid.contains(&first)
        {
            return Outcome::Invalid(Invalid::Straight);
        }
    }
    if let (Some(min), Some(took)) = (scale.min_seconds, sheet.seconds)
        && took < min
    {
        return Outcome::Invalid(Invalid::TooFast);
    }

    let scores: Vec<Option<f64>> = match &sheet.answers {
        Some(answers) => scale
            .scores
            .iter()
            .map(|s| Some(compute(answers, s.method, &s.items)))
            .collect(),
        None => sheet.given_scores.clone(),
    };
    let needed_missing = scale.bands.iter().any(|b| match &b.subject {
        Subject::Score(i) => scores.get(*i).copied().flatten().is_none(),
        Subject::AnyScore(list) => list
            .iter()
            .all(|i| scores.get(*i).copied().flatten().is_none()),
        Subject::AnyItem(_) | Subject::Extra(_) => false,
    });
    if sheet.answers.is_none() && (needed_missing || scores.iter().all(Option::is_none)) {
        return Outcome::Invalid(Invalid::NoScores);
    }

    let mut contributions = Vec::new();
    let mut flag = Flag::None;
    let mut route = Route::Followup;
    let mut category = None;
    let mut fired = Vec::new();
    let mut trigger_class: Option<(String, String)> = None;
    if let Some(answers) = &sheet.answers {
        for t in &scale.triggers {
            let Subject::AnyItem(items) = &t.subject else {
                continue;
            };
            for &item in items {
                let a = answers[item - 1];
                if t.threshold.passes(f64::from(a)) {
                    fired.push(t.id.clone());
                    contributions.push(Contribution {
                        label_zh: t.label_zh.clone().unwrap_or_default(),
                        label_en: t.label_en.clone().unwrap_or_default(),
                        value: answer_text(scale, a),
                        effect: Some(t.flag),
                        weight: None,
                        decisive: true,
                    });
                    if t.flag > flag {
                        flag = t.flag;
                        category = Some(t.category);
                    }
                    if t.route == Route::Crisis {
                        route = Route::Crisis;
                    }
                    if trigger_class.is_none()
                        && let (Some(zh), Some(en)) = (&t.class_zh, &t.class_en)
                    {
                        trigger_class = Some((zh.clone(), en.clone()));
                    }
                    break;
                }
            }
        }
    }

    let band = scale
        .bands
        .iter()
        .find_map(|b| band_match(scale, b, &scores, sheet).map(|c| (b, c)));
    let (class_zh, class_en, band_id) = match &band {
        Some((b, matched)) => {
            let outranked = b.flag <= flag && !fired.is_empty();
            if b.flag != Flag::None {
                contributions.push(Contribution {
                    decisive: !outranked,
                    ..matched.clone()
                });
            }
            if b.flag > flag {
                flag = b.flag;
                category = Some(b.category);
            }
            (
                b.class_zh
                    .clone()
                    .unwrap_or_else(|| scale.unflagged_zh.clone()),
                b.class_en
                    .clone()
                    .unwrap_or_else(|| scale.unflagged_en.clone()),
                Some(b.id.clone()),
            )
        }
        None => (scale.unflagged_zh.clone(), scale.unflagged_en.clone(), None),
    };
    // A trigger that names its own class (UPI item 25 is Class I by
    // definition) wins over a lower band's class.
    let (class_zh, class_en) = match trigger_class {
        Some((zh, en)) if band.as_ref().is_none_or(|(b, _)| b.flag < flag) => (zh, en),
        _ => (class_zh, class_en),
    };
    Outcome::Graded(Graded {
        scores,
        flag,
        route,
        category: category.unwrap_or(Category::Other),
        class_zh,
        class_en,
        triggers: fired,
        band: band_id,
        contributions,
        items_checked: sheet.answers.is_some(),
    })
}

/// Whether a band matches, and the contribution that says so.
fn band_match(
    scale: &Scale,
    b: &Rule,
    scores: &[Option<f64>],
    sheet: &Sheet,
) -> Option<Contribution> {
    let make = |label_zh: String, label_en: String, value: String| Contribution {
        label_zh,
        label_en,
        value,
        effect: Some(b.flag),
        weight: None,
        decisive: true,
    };
    let scale_label = |s: &str| format!("{} {s}", scale_short(scale));
    match &b.subject {
        Subject::Score(i) => {
            let v = scores.get(*i).copied().flatten()?;
            let s = &scale.scores[*i];
            b.threshold
                .passes(v)
                .then(|| make(scale_label(&s.label_zh), scale_label(&s.label_en), show(v)))
        }
        Subject::AnyScore(list) => {
            let passing: Vec<(usize, f64)> = list
                .iter()
                .filter_map(|&i| scores.get(i).copied().flatten().map(|v| (i, v)))
                .filter(|(_, v)| b.threshold.passes(*v))
                .collect();
            let (first_i, first_v) = *passing.first()?;
            let s = &scale.scores[first_i];
            let more = passing.len() - 1;
            let (zh, en) = if more == 0 {
                (scale_label(&s.label_zh), scale_label(&s.label_en))
            } else {
                (
                    format!("{}（另有 {more} 项）", scale_label(&s.label_zh)),
                    format!("{} (and {more} more)", scale_label(&s.label_en)),
                )
            };
            Some(make(zh, en, show(first_v)))
        }
        Subject::AnyItem(items) => {
            let answers = sheet.answers.as_ref()?;
            let item = items
                .iter()
                .find(|&&i| b.threshold.passes(f64::from(answers[i - 1])))?;
            Some(make(
                format!("{} 第{item}题", scale_short(scale)),
                format!("{} item {item}", scale_short(scale)),
                answer_text(scale, answers[item - 1]),
            ))
        }
        Subject::Extra(i) => {
            let v = sheet.extras.get(*i).copied().flatten()?;
            let e = &scale.extras[*i];
            b.threshold.passes(f64::from(v)).then(|| {
                make(
                    e.label_zh.clone(),
                    e.label_en.clone(),
                    answer_text(scale, v),
                )
            })
        }
    }
}

/// The scale's short name for labels: "UPI", "PHQ-9".
pub fn scale_short(scale: &Scale) -> String {
    scale
        .name_en
        .split_whitespace()
        .last()
        .map(|s| s.trim_matches(|c| c == '(' || c == ')').to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| scale.id.to_uppercase())
}
