//! Screening (心理普查/测评): plans, import of platform exports, grading by
//! versioned scale rules, the multi-source risk rule, and the alerts that
//! carry a graded result into the normal case loop.
//!
//! - [`rules`]: the scale rule format (`rules/*.toml`) and its checker.
//! - [`grade`]: one answer sheet graded by one scale (pure).
//! - [`risk`]: the multi-source rule (`rules/risk.toml`) (pure).
//! - [`read`] / [`map`]: CSV and XLSX files, header templates, row checks.
//! - [`import`]: the import run: grade, store, send through the batch
//!   endpoint.
//! - [`store`]: all of screening's SQL.
//! - [`cli`]: `screening …` and `rules …`.
//!
//! docs/screening.md is the user's guide.

pub mod cli;
pub mod grade;
pub mod import;
pub mod map;
pub mod read;
pub mod risk;
pub mod rules;
pub mod send;
pub mod store;

pub use grade::{Contribution, Outcome, Sheet, grade};
pub use rules::{Flag, RuleSet, Scale};

/// The console's one-line "why" for a risk signal's contributions, e.g.
/// `UPI 第25题（想轻生） = 是 → 高危关注 · 近30天树洞预警 2 (+4) · 规则 upi v1`.
pub fn why_line(contributions: &[Contribution], rule: &str, version: i64, zh: bool) -> String {
    let mut parts: Vec<String> = contributions
        .iter()
        .map(|c| {
            let label = if zh { &c.label_zh } else { &c.label_en };
            let mut s = format!(
                "{} = {}",
                crate::text::inert(label),
                crate::text::inert(&c.value)
            );
            if let Some(effect) = c.effect.filter(|_| c.decisive) {
                s.push_str(&format!(
                    " → {}",
                    if zh { effect.zh() } else { effect.as_str() }
                ));
            }
            if let Some(w) = c.weight.filter(|w| *w != 0) {
                s.push_str(&format!(" (+{w})"));
            }
            s
        })
        .collect();
    parts.push(if zh {
        format!("规则 {rule} v{version}")
    } else {
        format!("rule {rule} v{version}")
    });
    parts.join(" · ")
}
