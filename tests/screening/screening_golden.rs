//! Golden tests per scale, from the published scoring: every cut-off on
//! both sides (UPI total 24 / 25, PHQ-9 4/5, 9/10, 14/15, 19/20, ...),
//! item-level triggers outranking totals, and validity checks that mark a
//! sheet "invalid, re-test" instead of grading it. Driven through the
//! rules built into the binary, so the shipped files are what is tested.

use crisisdesk::screening::grade::{Invalid, Outcome, Sheet, grade};
use crisisdesk::screening::rules::{self, Flag, Route, Scale};

fn scale(id: &str) -> Scale {
    rules::builtin().expect("built-in rules check").scales[id].clone()
}

fn sheet(answers: Vec<u8>) -> Sheet {
    Sheet {
        answers: Some(answers),
        given_scores: Vec::new(),
        extras: Vec::new(),
        seconds: None,
    }
}

fn graded(scale: &Scale, s: &Sheet) -> crisisdesk::screening::grade::Graded {
    match grade(scale, s) {
        Outcome::Graded(g) => g,
        Outcome::Invalid(why) => panic!("expected a grade, got invalid {why:?}"),
    }
}

/// A UPI sheet with `yes` answers on the given items.
fn upi(yes: &[usize]) -> Sheet {
    let mut a = vec![0u8; 60];
    for &i in yes {
        a[i - 1] = 1;
    }
    sheet(a)
}

/// `n` scored UPI items answered yes, avoiding the key items 8, 16, 25, 26
/// and the unscored lie items 5, 20, 35, 50.
fn upi_plain_yes(n: usize) -> Vec<usize> {
    let skip = [5, 8, 16, 20, 25, 26, 35, 50];
    (1..=60).filter(|i| !skip.contains(i)).take(n).collect()
}

#[test]
fn upi_total_24_is_class_ii_and_25_is_class_i() {
    let s = scale("upi");
    let g24 = graded(&s, &upi(&upi_plain_yes(24)));
    assert_eq!(g24.scores[0], Some(24.0));
    assert_eq!(
        (g24.flag, g24.class_en.as_str()),
        (Flag::General, "Class II")
    );
    let g25 = graded(&s, &upi(&upi_plain_yes(25)));
    assert_eq!((g25.flag, g25.class_en.as_str()), (Flag::Key, "Class I"));
    assert_eq!(g25.route, Route::Followup);
    let g19 = graded(&s, &upi(&upi_plain_yes(19)));
    assert_eq!((g19.flag, g19.class_en.as_str()), (Flag::None, "Class III"));
    let g20 = graded(&s, &upi(&upi_plain_yes(20)));
    assert_eq!(
        (g20.flag, g20.class_en.as_str()),
        (Flag::General, "Class II")
    );
}

#[test]
fn upi_lie_items_are_not_scored() {
    let s = scale("upi");
    let mut yes = upi_plain_yes(24);
    yes.extend([5, 20, 35, 50]);
    let g = graded(&s, &upi(&yes));
    assert_eq!(g.scores[0], Some(24.0), "the four lie items add nothing");
    assert_eq!(g.flag, Flag::General);
}

#[test]
fn upi_item_25_outranks_a_low_total_and_goes_to_the_crisis_queue() {
    let s = scale("upi");
    let g = graded(&s, &upi(&[25]));
    assert_eq!(g.scores[0], Some(1.0));
    assert_eq!(g.flag, Flag::High);
    assert_eq!(g.route, Route::Crisis);
    assert_eq!(g.category.as_str(), "suicide_risk");
    assert_eq!(g.class_en, "Class I");
    assert_eq!(g.triggers, vec!["item25".to_string()]);
    let first = &g.contributions[0];
    assert!(first.decisive);
    assert_eq!(
        (first.label_zh.as_str(), first.value.as_str()),
        ("UPI 第25题（想轻生）", "是")
    );
    // With a Class I total too, the trigger still decides and the total is
    // listed, not decisive.
    let mut yes = upi_plain_yes(30);
    yes.push(25);
    let g = graded(&s, &upi(&yes));
    assert_eq!((g.flag, g.route), (Flag::High, Route::Crisis));
    assert!(g.contributions[0].decisive);
    assert!(!g.contributions[1].decisive);
    assert_eq!(g.contributions[1].label_en, "UPI total");
}

#[test]
fn upi_key_items_8_16_26_each_make_class_ii() {
    let s = scale("upi");
    for item in [8, 16, 26] {
        let g = graded(&s, &upi(&[item]));
        assert_eq!(
            (g.flag, g.class_en.as_str()),
            (Flag::General, "Class II"),
            "item {item}"
        );
        assert_eq!(g.route, Route::Followup);
    }
}

#[test]
fn upi_counselling_request_is_class_i() {
    let s = scale("upi");
    let mut sh = upi(&[]);
    sh.extras = vec![Some(1)];
    let g = graded(&s, &sh);
    assert_eq!((g.flag, g.class_en.as_str()), (Flag::Key, "Class I"));
    sh.extras = vec![Some(0)];
    assert_eq!(graded(&s, &sh).flag, Flag::None);
}

#[test]
fn upi_all_yes_is_invalid_but_all_no_is_an_honest_sheet() {
    let s = scale("upi");
    assert_eq!(
        grade(&s, &sheet(vec![1; 60])),
        Outcome::Invalid(Invalid::Straight)
    );
    let g = graded(&s, &sheet(vec![0; 60]));
    assert_eq!((g.flag, g.class_en.as_str()), (Flag::None, "Class III"));
}

#[test]
fn too_fast_is_invalid_at_the_boundary() {
    let s = scale("upi");
    let mut sh = upi(&[25]);
    sh.seconds = Some(119);
    assert_eq!(grade(&s, &sh), Outcome::Invalid(Invalid::TooFast));
    sh.seconds = Some(120);
    assert_eq!(graded(&s, &sh).flag, Flag::High);
}

/// A PHQ-9 sheet adding up to `total` on items 1-8 (item 9 = `item9`).
fn phq9(total: u8, item9: u8) -> Sheet {
    let mut a = vec![0u8; 9];
    let mut left = total - item9;
    for v in a.iter_mut().take(8) {
        let put = left.min(3);
        *v = put;
        left -= put;
    }
    assert_eq!(left, 0, "total {total} does not fit");
    a[8] = item9;
    sheet(a)
}

#[test]
fn phq9_every_cut_off_on_both_sides() {
    let s = scale("phq9");
    let cases = [
        (0, Flag::None, "minimal"),
        (4, Flag::None, "minimal"),
        (5, Flag::None, "mild"),
        (9, Flag::None, "mild"),
        (10, Flag::General, "moderate"),
        (14, Flag::General, "moderate"),
        (15, Flag::Key, "moderately severe"),
        (19, Flag::Key, "moderately severe"),
        (20, Flag::High, "severe"),
        (24, Flag::High, "severe"),
    ];
    for (total, flag, class) in cases {
        let g = graded(&s, &phq9(total, 0));
        assert_eq!(g.scores[0], Some(f64::from(total)));
        assert_eq!(
            (g.flag, g.class_en.as_str()),
            (flag, class),
            "total {total}"
        );
        assert_eq!(
            g.route,
            Route::Followup,
            "a total alone never goes to the crisis queue"
        );
    }
}

#[test]
fn phq9_any_answer_on_item_9_beats_the_total() {
    let s = scale("phq9");
    for item9 in 1..=3 {
        let g = graded(&s, &phq9(item9, item9));
        assert_eq!(
            (g.flag, g.route),
            (Flag::High, Route::Crisis),
            "item 9 = {item9}"
        );
        assert_eq!(
            g.class_en, "minimal",
            "the class stays the total's: {item9}"
        );
        assert!(g.contributions[0].decisive);
        let words = ["好几天", "一半以上的天数", "几乎每天"];
        assert_eq!(g.contributions[0].value, words[usize::from(item9) - 1]);
    }
    assert_eq!(graded(&s, &phq9(27, 3)).route, Route::Crisis);
    assert_eq!(graded(&s, &phq9(0, 0)).triggers.len(), 0);
}

#[test]
fn gad7_cut_offs_5_10_15() {
    let s = scale("gad7");
    let mk = |total: u8| {
        let mut a = vec![0u8; 7];
        let mut left = total;
        for v in a.iter_mut() {
            let put = left.min(3);
            *v = put;
            left -= put;
        }
        sheet(a)
    };
    for (total, flag, class) in [
        (4, Flag::None, "minimal"),
        (5, Flag::None, "mild"),
        (9, Flag::None, "mild"),
        (10, Flag::General, "moderate"),
        (14, Flag::General, "moderate"),
        (15, Flag::Key, "severe"),
        (21, Flag::Key, "severe"),
    ] {
        let g = graded(&s, &mk(total));
        assert_eq!(
            (g.flag, g.class_en.as_str()),
            (flag, class),
            "total {total}"
        );
    }
}

/// An SCL-90 sheet of all 1 (没有) with the given items set.
fn scl(set: &[(usize, u8)]) -> Sheet {
    let mut a = vec![1u8; 90];
    for &(i, v) in set {
        a[i - 1] = v;
    }
    sheet(a)
}

#[test]
fn scl90_total_160_is_negative_and_161_positive() {
    let s = scale("scl90");
    // 90 items at 1 = 90. Raise 35 items (none of item 15) from 1 to 3:
    // +70 = 160, with 35 positive items and no factor mean at 2 in every
    // factor? Spread so one check at a time is at its edge.
    let spread: Vec<usize> = (1..=90).filter(|&i| i != 15).collect();
    // Total 160 via 70 items raised by one (1 -> 2): 70 positive items, so
    // use 35 items raised by two instead to keep positives at 35.
    let at_160: Vec<(usize, u8)> = spread.iter().step_by(2).take(35).map(|&i| (i, 3)).collect();
    let g = graded(&s, &scl(&at_160));
    assert_eq!(g.scores[0], Some(160.0));
    assert_eq!(g.scores[1], Some(35.0));
    assert_ne!(g.band.as_deref(), Some("total_above_160"));
    let mut at_161 = at_160.clone();
    at_161.push((spread[1], 2));
    let g = graded(&s, &scl(&at_161));
    assert_eq!(g.scores[0], Some(161.0));
    assert_eq!(
        (g.flag, g.band.as_deref()),
        (Flag::Key, Some("total_above_160"))
    );
}

#[test]
fn scl90_positive_items_43_and_44() {
    let s = scale("scl90");
    let items: Vec<usize> = (1..=90).filter(|&i| i != 15).collect();
    // 43 and 44 items at 2: totals 133 and 134, under 160.
    let g43 = graded(
        &s,
        &scl(&items.iter().take(43).map(|&i| (i, 2)).collect::<Vec<_>>()),
    );
    assert_eq!(g43.scores[1], Some(43.0));
    assert_ne!(g43.band.as_deref(), Some("positive_items_above_43"));
    let g44 = graded(
        &s,
        &scl(&items.iter().take(44).map(|&i| (i, 2)).collect::<Vec<_>>()),
    );
    assert_eq!(
        (g44.flag, g44.band.as_deref()),
        (Flag::Key, Some("positive_items_above_43"))
    );
}

#[test]
fn scl90_one_factor_mean_at_2_flags_and_just_under_does_not() {
    let s = scale("scl90");
    // Hostility: items 11, 24, 63, 67, 74, 81 (6 items). Mean 2 = sum 12.
    let at_2 = scl(&[(11, 3), (24, 3), (63, 2), (67, 2), (74, 1), (81, 1)]);
    let g = graded(&s, &at_2);
    assert_eq!(
        (g.flag, g.band.as_deref()),
        (Flag::General, Some("factor_at_least_2"))
    );
    assert_eq!(g.contributions[0].label_zh, "SCL-90 敌对");
    assert_eq!(g.contributions[0].value, "2");
    let under = scl(&[(11, 3), (24, 3), (63, 2), (67, 1), (74, 1), (81, 1)]);
    assert_eq!(graded(&s, &under).flag, Flag::None);
}

#[test]
fn scl90_item_15_is_a_crisis_trigger_and_all_5_is_invalid() {
    let s = scale("scl90");
    let g = graded(&s, &scl(&[(15, 2)]));
    assert_eq!((g.flag, g.route), (Flag::High, Route::Crisis));
    assert_eq!(
        grade(&s, &sheet(vec![5; 90])),
        Outcome::Invalid(Invalid::Straight)
    );
    assert_eq!(graded(&s, &sheet(vec![1; 90])).flag, Flag::None);
}

fn mht(yes: &[usize]) -> Sheet {
    let mut a = vec![0u8; 100];
    for &i in yes {
        a[i - 1] = 1;
    }
    sheet(a)
}

#[test]
fn mht_lie_scale_6_grades_and_7_is_invalid() {
    let s = scale("mht");
    let lie = [82, 84, 86, 88, 90, 92, 94, 96, 98, 100];
    let g = graded(&s, &mht(&lie[..6]));
    assert_eq!(g.scores[0], Some(0.0), "lie items are not in the total");
    assert_eq!(grade(&s, &mht(&lie[..7])), Outcome::Invalid(Invalid::Lie));
}

#[test]
fn mht_content_scale_7_and_8() {
    let s = scale("mht");
    // 学习焦虑 is items 1-15; 冲动倾向 the odd items 81-99.
    assert_eq!(
        graded(&s, &mht(&(1..=7).collect::<Vec<_>>())).flag,
        Flag::None
    );
    let g = graded(&s, &mht(&(1..=8).collect::<Vec<_>>()));
    assert_eq!(
        (g.flag, g.class_en.as_str()),
        (Flag::General, "content scale high")
    );
    assert_eq!(g.contributions[0].label_zh, "MHT 学习焦虑");
    let impulsive: Vec<usize> = (81..=99).step_by(2).take(8).collect();
    let g = graded(&s, &mht(&impulsive));
    assert_eq!(g.contributions[0].label_zh, "MHT 冲动倾向");
    assert_eq!(g.scores[0], Some(8.0));
}

#[test]
fn totals_only_sheets_grade_by_bands_and_say_items_were_not_checked() {
    let s = scale("upi");
    let sh = Sheet {
        answers: None,
        given_scores: vec![Some(25.0)],
        extras: vec![None],
        seconds: None,
    };
    let g = graded(&s, &sh);
    assert_eq!((g.flag, g.items_checked), (Flag::Key, false));
    let none = Sheet {
        answers: None,
        given_scores: vec![None],
        extras: vec![None],
        seconds: None,
    };
    assert_eq!(grade(&s, &none), Outcome::Invalid(Invalid::NoScores));
}
