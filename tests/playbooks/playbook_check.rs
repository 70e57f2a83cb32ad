//! The checker behind `crisisdesk playbook check`: one test per kind of
//! problem, each asserting the exact `file:line: problem` a counselor sees.

use std::path::Path;

use crisisdesk::playbook::{Problem, check_dir, check_str, load_dir, parse};

/// Fifteen lines, so a snippet's line n is file line `H + n`.
const HEADER: &str = r#"id = "t"
version = 1
roles = ["counselor"]
title.zh = "测试"
title.en = "Test"
summary.zh = "测试预案"
summary.en = "A test playbook"

[match]
categories = ["other"]

[[sources]]
id = "cssrs"
name = "C-SSRS screener"

"#;
const H: usize = 15;

fn check(steps: &str) -> Vec<String> {
    let text = format!("{HEADER}{steps}");
    check_str(Path::new("t.toml"), &text)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn line(n: usize, problem: &str) -> String {
    format!("t.toml:{n}: {problem}")
}

const STEP_A: &str = r#"[[steps]]
id = "a"
role = "counselor"
title = { zh = "甲", en = "A" }
instruction = { zh = "做甲", en = "Do A" }
"#;

#[test]
fn a_minimal_playbook_is_clean() {
    assert_eq!(check(STEP_A), Vec::<String>::new());
    let pb = parse(Path::new("t.toml"), &format!("{HEADER}{STEP_A}")).expect("parses");
    assert_eq!(pb.id, "t");
    assert_eq!(pb.steps[0].title.zh, "甲");
}

#[test]
fn toml_syntax_error_points_at_its_line() {
    let d = check(&STEP_A.replace(r#"id = "a""#, r#"id = "a"#));
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with(&format!("t.toml:{}: invalid TOML: ", H + 2)),
        "{d:?}"
    );
}

#[test]
fn misspelt_key_is_refused_not_ignored() {
    let d = check(&format!("{STEP_A}requried = true\n"));
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with(&line(H + 6, "invalid TOML: unknown field `requried`")),
        "{d:?}"
    );
}

#[test]
fn unknown_role() {
    let d = check(&STEP_A.replace("\"counselor\"", "\"teacher\""));
    assert_eq!(
        d,
        [line(
            H + 3,
            "unknown role `teacher`; use counselor, head_teacher, leader, nurse or security"
        )]
    );
}

#[test]
fn reviewers_cannot_own_steps() {
    let d = check(&STEP_A.replace("\"counselor\"", "\"reviewer\""));
    assert_eq!(
        d,
        [line(
            H + 3,
            "role `reviewer` cannot act on cases, so it cannot own or receive steps"
        )]
    );
}

#[test]
fn role_used_but_not_listed() {
    let d = check(&STEP_A.replace("\"counselor\"", "\"nurse\""));
    assert_eq!(
        d,
        [
            line(
                3,
                "role `counselor` is listed in `roles` but no step or escalation uses it"
            ),
            line(H + 3, "role `nurse` is used here but not listed in `roles`"),
        ]
    );
}

#[test]
fn escalation_to_unknown_role() {
    let d = check(&format!(
        "{STEP_A}due = \"10m\"\nrequired = true\nescalate_to = \"principal\"\ndue_basis = \"default\"\n"
    ));
    assert_eq!(
        d,
        [line(
            H + 8,
            "unknown role `principal`; use counselor, head_teacher, leader, nurse or security"
        )]
    );
}

#[test]
fn escalation_without_a_due_never_fires() {
    let d = check(&format!("{STEP_A}escalate_to = \"counselor\"\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "`escalate_to` must be paired with `due` (or a contact step's `max_attempts`); alone it never fires"
        )]
    );
}

#[test]
fn required_timed_step_needs_escalation() {
    let d = check(&format!(
        "{STEP_A}due = \"10m\"\nrequired = true\ndue_basis = \"default\"\n"
    ));
    assert_eq!(
        d,
        [line(
            H + 1,
            "required step `a` has a due time but no `escalate_to`; name who hears when it slips"
        )]
    );
}

#[test]
fn duplicate_step_id_names_the_first() {
    let d = check(&format!("{STEP_A}\n{STEP_A}"));
    assert_eq!(
        d,
        [line(
            H + 8,
            &format!("duplicate step id `a` (first defined on line {})", H + 2)
        )]
    );
}

#[test]
fn dangling_ids_in_needs_due_after_and_branches() {
    let steps = format!(
        r#"{STEP_A}needs = ["ghost"]
due = "1h"
due_after = "phantom"
due_basis = "default"

[[steps]]
id = "c"
role = "counselor"
kind = "choice"
title = {{ zh = "选", en = "Choose" }}
instruction = {{ zh = "选一个", en = "Pick one" }}

[[steps.options]]
id = "x"
label = {{ zh = "叉", en = "X" }}
next = ["a", "nowhere"]

[[steps.options]]
id = "y"
label = {{ zh = "歪", en = "Y" }}
"#
    );
    assert_eq!(
        check(&steps),
        [
            line(H + 6, "`needs` names unknown step `ghost`"),
            line(H + 8, "`due_after` names unknown step `phantom`"),
            line(H + 21, "`next` names unknown step `nowhere`"),
        ]
    );
}

fn two_steps(a_extra: &str, b_extra: &str) -> String {
    format!(
        r#"{STEP_A}{a_extra}
[[steps]]
id = "b"
role = "counselor"
title = {{ zh = "乙", en = "B" }}
instruction = {{ zh = "做乙", en = "Do B" }}
{b_extra}"#
    )
}

#[test]
fn dependency_cycle_is_shown_as_a_path() {
    let d = check(&two_steps("needs = [\"b\"]\n", "needs = [\"a\"]\n"));
    assert_eq!(d, [line(H + 1, "dependency cycle: a → b → a")]);
}

#[test]
fn due_after_counts_as_an_edge_for_cycles() {
    let d = check(&two_steps(
        "due = \"1h\"\ndue_after = \"b\"\ndue_basis = \"default\"\n",
        "needs = [\"a\"]\n",
    ));
    assert_eq!(d, [line(H + 1, "dependency cycle: a → b → a")]);
}

#[test]
fn a_step_cannot_need_itself() {
    let d = check(&format!("{STEP_A}needs = [\"a\"]\n"));
    assert_eq!(d, [line(H + 6, "step `a` lists itself in `needs`")]);
}

/// A choice `c` (line H+1) whose options switch on `p` or `q`.
fn branches(extra: &str) -> String {
    format!(
        r#"[[steps]]
id = "c"
role = "counselor"
kind = "choice"
title = {{ zh = "选", en = "Choose" }}
instruction = {{ zh = "选一个", en = "Pick one" }}

[[steps.options]]
id = "x"
label = {{ zh = "叉", en = "X" }}
next = ["p"]

[[steps.options]]
id = "y"
label = {{ zh = "歪", en = "Y" }}
next = ["q"]

[[steps]]
id = "p"
role = "counselor"
title = {{ zh = "批", en = "P" }}
instruction = {{ zh = "做批", en = "Do P" }}

[[steps]]
id = "q"
role = "counselor"
title = {{ zh = "丘", en = "Q" }}
instruction = {{ zh = "做丘", en = "Do Q" }}
{extra}"#
    )
}

#[test]
fn branches_check_clean() {
    assert_eq!(check(&branches("")), Vec::<String>::new());
}

#[test]
fn step_needing_two_exclusive_branches_is_unreachable() {
    let extra = r#"
[[steps]]
id = "r"
role = "counselor"
needs = ["p", "q"]
title = { zh = "日", en = "R" }
instruction = { zh = "做日", en = "Do R" }

[[steps]]
id = "s"
role = "counselor"
needs = ["r"]
title = { zh = "斯", en = "S" }
instruction = { zh = "做斯", en = "Do S" }
"#;
    assert_eq!(
        check(&branches(extra)),
        [
            line(
                H + 30,
                "step `r` can never become active: its branch and its `needs` call for different options of `c`, and only one can be chosen"
            ),
            line(
                H + 37,
                "step `s` can never become active: it needs `r`, which can never become active"
            ),
        ]
    );
}

#[test]
fn due_after_a_step_that_may_not_happen() {
    let extra = r#"
[[steps]]
id = "r"
role = "counselor"
due = "1h"
due_after = "p"
title = { zh = "日", en = "R" }
instruction = { zh = "做日", en = "Do R" }
due_basis = "default"
"#;
    assert_eq!(
        check(&branches(extra)),
        [line(
            H + 30,
            "step `r` is due after `p`, which may never happen when `r` does (`p` only follows `x` of `c`); its deadline would be lost"
        )]
    );
}

#[test]
fn a_step_follows_one_choice_only() {
    let extra = r#"
[[steps]]
id = "d"
role = "counselor"
kind = "choice"
title = { zh = "定", en = "D" }
instruction = { zh = "再选", en = "Pick again" }

[[steps.options]]
id = "u"
label = { zh = "优", en = "U" }
next = ["p"]

[[steps.options]]
id = "v"
label = { zh = "维", en = "V" }
"#;
    assert_eq!(
        check(&branches(extra)),
        [line(
            H + 18,
            "step `p` is a branch of both `c` and `d`; a step may follow one choice only"
        )]
    );
}

#[test]
fn bad_durations_say_what_is_wrong() {
    let d = check(&two_steps(
        "due = \"10\"\ndue_basis = \"default\"\n",
        "due = \"10x\"\nretry_after = \"0m\"\ndue_basis = \"default\"\n",
    ));
    assert_eq!(
        d,
        [
            line(
                H + 6,
                "duration `10` ends in `10` without a unit; write e.g. `10m`"
            ),
            line(
                H + 14,
                "duration `10x` has unknown unit `x`; use s, m, h, d or w (e.g. `10m`), or school days (e.g. `3 school_days`)"
            ),
            line(
                H + 15,
                "`retry_after` only applies to contact steps, and this is a check step"
            ),
        ]
    );
}

#[test]
fn school_day_limits_are_checked_like_other_limits() {
    // Well formed: counted on the school's calendar, never refused.
    for good in ["0 school_days", "1 school_day", "3 school_days"] {
        let d = check(&two_steps(
            &format!("due = \"{good}\"\ndue_basis = \"default\"\n"),
            "",
        ));
        assert_eq!(d, Vec::<String>::new(), "{good}");
    }
    let d = check(&two_steps(
        "due = \"3 schooldays\"\ndue_basis = \"default\"\n",
        "due = \"-1 school_days\"\ndue_basis = \"default\"\n",
    ));
    assert_eq!(
        d,
        [
            line(
                H + 6,
                "duration `3 schooldays` has unknown unit `schooldays`; use s, m, h, d or w (e.g. `10m`), or `3 school_days`"
            ),
            line(
                H + 14,
                "duration `-1 school_days` counts school days with `-1`; write a whole number from 0 (the same school day) up, e.g. `3 school_days`"
            ),
        ]
    );
    let d = check(&two_steps(
        "due = \"200 school_days\"\ndue_basis = \"default\"\n",
        "due = \"1d 2 school_days\"\ndue_basis = \"default\"\n",
    ));
    assert_eq!(
        d,
        [
            line(
                H + 6,
                "duration `200 school_days` is more than 190 school days (a school year); check for a typo"
            ),
            line(
                H + 14,
                "duration `1d 2 school_days` is not a count of school days; write e.g. `3 school_days` (one space, no other words)"
            ),
        ]
    );
    // Contact retries stay wall-clock: a school-day count is refused there.
    let retry = check(&format!(
        "{}kind = \"contact\"\ncontacts = \"other\"\nretry_after = \"1 school_day\"\n",
        STEP_A
    ));
    assert!(
        retry
            .iter()
            .any(|d| d.contains("duration `1 school_day` has unknown unit ` `")),
        "{retry:?}"
    );
}

#[test]
fn missing_or_empty_language() {
    let d = check(
        &STEP_A
            .replace(
                r#"title = { zh = "甲", en = "A" }"#,
                r#"title = { zh = "甲" }"#,
            )
            .replace(
                r#"instruction = { zh = "做甲", en = "Do A" }"#,
                r#"instruction = { zh = "Do A", en = " " }"#,
            ),
    );
    assert_eq!(
        d,
        [
            line(
                H + 4,
                "`a.title` has no en text; every text needs both `zh` and `en`"
            ),
            line(
                H + 5,
                "`a.instruction.zh` has no Chinese characters; is the English text in the wrong place?"
            ),
            line(
                H + 5,
                "`a.instruction` has no en text; every text needs both `zh` and `en`"
            ),
        ]
    );
}

#[test]
fn missing_title_entirely() {
    let d = check(&STEP_A.replace("title = { zh = \"甲\", en = \"A\" }\n", ""));
    assert_eq!(d, [line(H + 1, "missing `a.title`")]);
}

#[test]
fn choice_without_enough_options() {
    let none = STEP_A.replace(
        "role = \"counselor\"",
        "role = \"counselor\"\nkind = \"choice\"",
    );
    assert_eq!(
        check(&none),
        [line(
            H + 1,
            "choice step `a` has no options; add [[steps.options]] tables"
        )]
    );
    let one = format!(
        "{none}\n[[steps.options]]\nid = \"only\"\nlabel = {{ zh = \"唯一\", en = \"Only\" }}\n"
    );
    assert_eq!(
        check(&one),
        [line(
            H + 1,
            "choice step `a` has only one option; a choice needs at least two"
        )]
    );
}

#[test]
fn kind_specific_keys_on_the_wrong_kind() {
    let d = check(&format!("{STEP_A}max_attempts = 3\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "`max_attempts` only applies to contact steps, and this is a check step"
        )]
    );
    let d = check(&STEP_A.replace(
        "role = \"counselor\"",
        "role = \"counselor\"\nkind = \"call\"",
    ));
    assert_eq!(
        d,
        [line(
            H + 4,
            "unknown step kind `call`; use check, note, choice, contact or referral"
        )]
    );
}

#[test]
fn due_after_without_due() {
    let d = check(&two_steps("", "due_after = \"a\"\n"));
    assert_eq!(
        d,
        [line(
            H + 12,
            "`due_after` needs a `due` saying how long after"
        )]
    );
}

#[test]
fn step_sources_must_be_cited_above() {
    let d = check(&format!("{STEP_A}sources = [\"cssrs\", \"dsm\"]\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "unknown source `dsm`; cite an id from this playbook's [[sources]]"
        )]
    );
}

#[test]
fn a_playbook_must_cite_sources() {
    let text = format!("{HEADER}{STEP_A}").replace(
        "[[sources]]\nid = \"cssrs\"\nname = \"C-SSRS screener\"\n",
        "",
    );
    let d: Vec<String> = check_str(Path::new("t.toml"), &text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        d,
        [line(
            1,
            "cites no sources; add [[sources]] naming the protocols this rests on"
        )]
    );
}

#[test]
fn match_values_are_checked() {
    let text = format!("{HEADER}{STEP_A}").replace(
        "categories = [\"other\"]",
        "categories = [\"other\", \"anxiety\"]\nmin_level = \"urgent\"",
    );
    let d: Vec<String> = check_str(Path::new("t.toml"), &text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        d,
        [
            line(
                10,
                "unknown category `anxiety`; use suicide_risk, self_harm, violence_threat, bullying, trauma_bereavement, acute_distress or other"
            ),
            line(11, "unknown level `urgent`; use general, key or high"),
        ]
    );
}

#[test]
fn id_must_match_the_file_name() {
    let d: Vec<String> = check_str(Path::new("other.toml"), &format!("{HEADER}{STEP_A}"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        d,
        ["other.toml:1: playbook id `t` must match the file name `other.toml`"]
    );
}

#[test]
fn diagnostics_carry_a_matchable_problem() {
    let d = check_str(
        Path::new("t.toml"),
        &format!("{HEADER}{}", STEP_A.replace("\"counselor\"", "\"teacher\"")),
    );
    assert_eq!(d[0].line, Some(H + 3));
    assert_eq!(d[0].problem, Problem::UnknownRole("teacher".into()));
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write temp file");
}

#[test]
fn check_dir_reports_every_file_and_skips_other_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "t.toml", &format!("{HEADER}{STEP_A}"));
    write(
        dir,
        "u.toml",
        &format!("{HEADER}{}", STEP_A.replace("\"counselor\"", "\"teacher\""))
            .replace("id = \"t\"", "id = \"u\""),
    );
    write(dir, "README.md", "not a playbook");
    std::fs::create_dir(dir.join("drills")).expect("mkdir");
    write(&dir.join("drills"), "broken.toml", "this is = = not toml");
    let d: Vec<String> = check_dir(dir).iter().map(ToString::to_string).collect();
    assert_eq!(
        d,
        [format!(
            "{}:{}: unknown role `teacher`; use counselor, head_teacher, leader, nurse or security",
            dir.join("u.toml").display(),
            H + 3
        )]
    );
    assert!(load_dir(dir).is_err());
}

#[test]
fn two_playbooks_claiming_the_same_cases_equally_are_ambiguous() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "t.toml", &format!("{HEADER}{STEP_A}"));
    write(
        dir,
        "u.toml",
        &format!("{HEADER}{STEP_A}").replace("id = \"t\"", "id = \"u\""),
    );
    let d: Vec<String> = check_dir(dir).iter().map(ToString::to_string).collect();
    assert_eq!(
        d,
        [format!(
            "{}:9: playbooks `t` and `u` both match other at level general, not imminent with equal rank; set `priority` in one of them",
            dir.join("u.toml").display()
        )]
    );
    // A priority settles it, and selection follows.
    write(
        dir,
        "u.toml",
        &format!("{HEADER}{STEP_A}")
            .replace("id = \"t\"", "id = \"u\"")
            .replace(
                "categories = [\"other\"]",
                "categories = [\"other\"]\npriority = 1",
            ),
    );
    let lib = load_dir(dir).expect("clean now");
    let picked = lib.select(
        crisisdesk::protocol::Category::Other,
        crisisdesk::protocol::Level::High,
        true,
    );
    assert_eq!(picked.map(|pb| pb.id.as_str()), Some("u"));
}

#[test]
fn empty_or_missing_directory_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d: Vec<String> = check_dir(tmp.path())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        d,
        [format!(
            "{}: no playbooks (*.toml) in this directory",
            tmp.path().display()
        )]
    );
    let missing = tmp.path().join("nope");
    let d = check_dir(&missing);
    assert_eq!(d.len(), 1);
    assert!(matches!(d[0].problem, Problem::Io(_)), "{d:?}");
    assert_eq!(d[0].line, None);
}

#[test]
fn duplicate_options_and_self_branches() {
    let steps = r#"[[steps]]
id = "c"
role = "counselor"
kind = "choice"
title = { zh = "选", en = "Choose" }
instruction = { zh = "选一个", en = "Pick one" }

[[steps.options]]
id = "x"
label = { zh = "叉", en = "X" }
next = ["c"]

[[steps.options]]
id = "x"
label = { zh = "叉", en = "X again" }
"#;
    assert_eq!(
        check(steps),
        [
            line(H + 11, "option `x` of `c` branches to itself"),
            line(H + 14, "duplicate option id `x` in step `c`"),
        ]
    );
}

#[test]
fn header_values_are_checked() {
    let text = format!("{HEADER}{STEP_A}")
        .replace("version = 1", "version = 0")
        .replace(
            "roles = [\"counselor\"]",
            "roles = [\"counselor\", \"counselor\"]",
        );
    let d: Vec<String> = check_str(Path::new("t.toml"), &text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        d,
        [
            line(2, "`version` must be a whole number from 1 up"),
            line(3, "role `counselor` is listed twice in `roles`"),
        ]
    );
}

#[test]
fn embedded_texts_get_the_library_checks_too() {
    let t = format!("{HEADER}{STEP_A}");
    let u = t.replace("id = \"t\"", "id = \"u\"");
    let d = crisisdesk::playbook::load_texts(&[("t.toml", &t), ("u.toml", &u)])
        .err()
        .unwrap_or_default();
    assert_eq!(d.len(), 1);
    assert!(
        matches!(d[0].problem, Problem::AmbiguousMatch { .. }),
        "{d:?}"
    );
    assert!(crisisdesk::playbook::load_texts(&[("t.toml", &t)]).is_ok());
}
