//! The multi-source rule (rules/risk.toml) on its own: scale result,
//! change against the last screening, behaviour alerts, case history, each
//! contribution kept, and the why line the console and `rules explain`
//! print.

use chrono::{DateTime, Duration, Utc};
use crisisdesk::screening::grade::{Outcome, Sheet, grade};
use crisisdesk::screening::risk::History;
use crisisdesk::screening::rules::{self, Flag, RuleSet};
use crisisdesk::screening::why_line;

fn set() -> RuleSet {
    rules::builtin().unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-09-20T02:00:00Z".parse().unwrap()
}

fn upi(yes: &[usize]) -> crisisdesk::screening::grade::Graded {
    let mut a = vec![0u8; 60];
    for &i in yes {
        a[i - 1] = 1;
    }
    match grade(
        &set().scales["upi"],
        &Sheet {
            answers: Some(a),
            extras: vec![None],
            ..Sheet::default()
        },
    ) {
        Outcome::Graded(g) => g,
        other => panic!("{other:?}"),
    }
}

fn class2() -> crisisdesk::screening::grade::Graded {
    upi(&[8])
}

#[test]
fn a_scale_result_alone_keeps_its_level_and_carries_its_points() {
    let r = set().risk.grade(&class2(), &History::default(), now());
    assert_eq!((r.flag, r.points, r.imminent), (Flag::General, 1, false));
    assert_eq!(r.contributions.len(), 1);
    assert_eq!(r.contributions[0].weight, Some(1));
    assert_eq!(r.rule_version, 1);
}

#[test]
fn behaviour_reports_and_history_raise_the_level_with_each_contribution_named() {
    let history = History {
        previous: Some(Flag::None),
        alerts: vec![
            ("behavior".into(), now() - Duration::days(3)),
            ("behavior".into(), now() - Duration::days(10)),
            ("behavior".into(), now() - Duration::days(12)),
            // Outside the 30-day window: no points.
            ("treehole".into(), now() - Duration::days(45)),
        ],
        open_cases: 0,
        closed_cases: vec![now() - Duration::days(100)],
    };
    let r = set().risk.grade(&class2(), &history, now());
    // 1 (Class II) + 1 (rise) + 2 (three behaviour alerts, capped at 2) + 1 (past case) = 5 -> key
    assert_eq!(r.points, 5);
    assert_eq!(r.flag, Flag::Key);
    let labels: Vec<(&str, Option<i64>)> = r
        .contributions
        .iter()
        .map(|c| (c.label_en.as_str(), c.weight))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("UPI item 8", Some(1)),
            ("higher than the last screening", Some(1)),
            ("behaviour alerts, last 30 days", Some(2)),
            ("a case in the last year", Some(1)),
        ]
    );
    let line = why_line(&r.contributions, "upi", 1, true);
    assert_eq!(
        line,
        "UPI 第8题 = 是 → 一般关注 (+1) · 较上次筛查升级 = none→general (+1) · 近30天行为异常预警 = 3 (+2) · 一年内曾有个案 = 1 (+1) · 规则 upi v1"
    );
}

#[test]
fn enough_points_make_high_and_an_unflagged_scale_result_stays_unflagged() {
    let history = History {
        previous: Some(Flag::Key),
        alerts: vec![
            ("treehole".into(), now() - Duration::days(1)),
            ("teacher_report".into(), now() - Duration::days(2)),
        ],
        open_cases: 1,
        closed_cases: vec![],
    };
    let class1 = upi(&(1..=60)
        .filter(|i| ![5, 8, 16, 20, 25, 26, 35, 50].contains(i))
        .take(25)
        .collect::<Vec<_>>());
    assert_eq!(class1.flag, Flag::Key);
    let r = set().risk.grade(&class1, &history, now());
    // 3 (Class I) + 1 (persist) + 2 (tree-hole) + 2 (report) + 2 (open case) = 10 -> high
    assert_eq!((r.points, r.flag, r.imminent), (10, Flag::High, false));
    let clear = upi(&[]);
    assert_eq!(set().risk.grade(&clear, &history, now()).flag, Flag::None);
}

#[test]
fn item_25_is_decisive_and_imminent_with_enough_other_signals() {
    let quiet = set().risk.grade(&upi(&[25]), &History::default(), now());
    assert_eq!((quiet.flag, quiet.imminent), (Flag::High, false));
    assert!(quiet.contributions[0].decisive);
    assert_eq!(
        quiet.contributions[0].weight, None,
        "a decisive trigger needs no weight"
    );
    let loud = History {
        alerts: vec![("treehole".into(), now() - Duration::days(1))],
        open_cases: 1,
        ..History::default()
    };
    let r = set().risk.grade(&upi(&[25]), &loud, now());
    assert_eq!(
        (r.flag, r.imminent),
        (Flag::High, true),
        "2 + 2 other points reach imminent"
    );
}

#[test]
fn the_risk_file_is_checked_with_lines() {
    let text = std::fs::read_to_string("rules/risk.toml").unwrap();
    let broken = text
        .replace("kind = \"persist\"", "kind = \"persistent\"")
        .replace("high = 6", "high = 2");
    let (rule, diags) =
        crisisdesk::screening::risk::check_risk(std::path::Path::new("risk.toml"), &broken);
    assert!(rule.is_none());
    let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
    let line = broken
        .lines()
        .position(|l| l.contains("persistent"))
        .unwrap()
        + 1;
    assert!(
        shown.iter().any(|d| d.starts_with(&format!(
            "risk.toml:{line}: unknown signal kind `persistent`"
        ))),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|d| d.contains("levels.high must need more points than levels.key")),
        "{shown:?}"
    );
}
