//! The format additions that make playbooks hold up in a real crisis, each
//! rule asserted with the exact `file:line: problem` a counselor sees:
//! honest time limits (`due_basis`), forbidden practices, steps any
//! on-scene role may do (`also`), anytime emergency calls, safeguarding
//! gates with mandatory reports, and contact refusal / unreachable paths.

use std::path::Path;

use crisisdesk::playbook::{Contactee, DueBasis, Lang, StepKind, Trigger, check_str, parse};

/// Fifteen lines, so a snippet's line n is file line `H + n`. `ROLES` is
/// replaced per test so every listed role is used.
const HEADER: &str = r#"id = "t"
version = 1
roles = ROLES
title.zh = "测试"
title.en = "Test"
summary.zh = "测试预案"
summary.en = "A test playbook"

[match]
categories = ["other"]

[[sources]]
id = "law"
name = "未成年人保护法"

"#;
const H: usize = 15;

fn check_roles(roles: &str, steps: &str) -> Vec<String> {
    let text = format!("{}{steps}", HEADER.replace("ROLES", roles));
    check_str(Path::new("t.toml"), &text)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn check(steps: &str) -> Vec<String> {
    check_roles(r#"["counselor"]"#, steps)
}

fn line(n: usize, problem: &str) -> String {
    format!("t.toml:{n}: {problem}")
}

/// Six lines.
const STEP_A: &str = r#"[[steps]]
id = "a"
role = "counselor"
title = { zh = "甲", en = "A" }
instruction = { zh = "做甲", en = "Do A" }
"#;

#[test]
fn a_limit_without_due_basis_is_refused_at_its_due_line() {
    let d = check(&format!("{STEP_A}due = \"10m\"\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "step `a` has a `due` but no `due_basis`; write `due_basis = \"default\"` or the id of the source that states this limit"
        )]
    );
}

#[test]
fn due_basis_must_name_a_listed_source_or_default() {
    let d = check(&format!(
        "{STEP_A}due = \"10m\"\ndue_basis = \"moe_2021\"\n"
    ));
    assert_eq!(
        d,
        [line(
            H + 7,
            "`due_basis` names `moe_2021`, which is not in this playbook's [[sources]]; list that source or write `default`"
        )]
    );
    let d = check(&format!("{STEP_A}due_basis = \"law\"\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "`due_basis` needs a `due`; only a time limit has a basis"
        )]
    );
    let text = format!(
        "{}{STEP_A}due = \"2h\"\ndue_basis = \"law\"\n",
        HEADER.replace("ROLES", r#"["counselor"]"#)
    );
    let pb = parse(Path::new("t.toml"), &text).expect("clean");
    let step = &pb.steps[0];
    assert_eq!(
        step.due.as_ref().map(|d| &d.basis),
        Some(&DueBasis::Source("law".into()))
    );
    assert_eq!(
        pb.due_basis_label(step, Lang::Zh).as_deref(),
        Some("时限依据：未成年人保护法")
    );
    let default = parse(
        Path::new("t.toml"),
        &text.replace("due_basis = \"law\"", "due_basis = \"default\""),
    )
    .expect("clean");
    assert_eq!(
        default
            .due_basis_label(&default.steps[0], Lang::Zh)
            .as_deref(),
        Some("默认时限")
    );
    assert_eq!(
        default
            .due_basis_label(&default.steps[0], Lang::En)
            .as_deref(),
        Some("default limit")
    );
}

#[test]
fn a_step_asking_for_a_forbidden_practice_is_refused() {
    let steps = r#"[[steps]]
id = "a"
role = "counselor"
title = { zh = "甲", en = "A" }
instruction.zh = "请学生签订不自杀承诺书后返回班级。"
instruction.en = "Have the student sign a No-Suicide Contract."
"#;
    assert_eq!(
        check(steps),
        [
            line(
                H + 5,
                "`a.instruction.zh` asks for a forbidden practice (`承诺书`); never write it into a step: `harm_notice = true` shows the shared line that forbids it"
            ),
            line(
                H + 6,
                "`a.instruction.en` asks for a forbidden practice (`no-suicide contract`); never write it into a step: `harm_notice = true` shows the shared line that forbids it"
            ),
        ]
    );
    for (zh, term) in [
        ("建议家长为学生办理强制休学。", "强制休学"),
        ("与家长沟通劝退事宜。", "劝退"),
        ("请家长签署免责声明。", "免责"),
        ("在班会上全班通报此事。", "全班通报"),
    ] {
        let d = check(&STEP_A.replace("做甲", zh));
        assert_eq!(d.len(), 1, "{zh}: {d:?}");
        assert!(d[0].contains(&format!("(`{term}`)")), "{d:?}");
        assert!(d[0].starts_with(&format!("t.toml:{}: ", H + 5)), "{d:?}");
    }
    // Titles and option labels are checked the same way.
    let d = check(&STEP_A.replace("zh = \"甲\"", "zh = \"签保证书\""));
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].contains("`a.title.zh`") && d[0].contains("保证书"),
        "{d:?}"
    );
}

#[test]
fn also_roles_must_be_listed_and_not_the_owner() {
    let d = check_roles(
        r#"["counselor", "security"]"#,
        &format!("{STEP_A}also = [\"counselor\", \"security\", \"security\", \"nurse\"]\n"),
    );
    assert_eq!(
        d,
        [
            line(
                H + 6,
                "role `counselor` owns this step; `also` lists the other roles that may work it"
            ),
            line(H + 6, "role `security` is listed twice in `roles`"),
            line(H + 6, "role `nurse` is used here but not listed in `roles`"),
        ]
    );
    let clean = check_roles(
        r#"["counselor", "security"]"#,
        &format!("{STEP_A}also = [\"security\"]\n"),
    );
    assert_eq!(clean, Vec::<String>::new());
}

/// An anytime 119 call (lines H+1 ..= H+9).
const CALL_119: &str = r#"[[steps]]
id = "call_119"
role = "counselor"
anytime = true
calls = "119"
triggers = ["height", "trapped"]
title = { zh = "拨打 119", en = "Call 119" }
instruction = { zh = "高处险情拨打 119", en = "Call 119 for a height" }
"#;

#[test]
fn an_anytime_call_parses_with_its_triggers() {
    assert_eq!(check(CALL_119), Vec::<String>::new());
    let text = format!("{}{CALL_119}", HEADER.replace("ROLES", r#"["counselor"]"#));
    let pb = parse(Path::new("t.toml"), &text).expect("clean");
    let call = &pb.steps[0];
    assert!(call.anytime);
    assert_eq!(call.calls.as_deref(), Some("119"));
    assert_eq!(call.triggers, [Trigger::Height, Trigger::Trapped]);
    assert_eq!(
        call.trigger_labels(Lang::Zh),
        "在楼顶、窗台等高处、被困或需要破拆救援"
    );
    assert_eq!(pb.anytime_steps().count(), 1);
}

#[test]
fn an_anytime_step_cannot_wait_be_timed_or_required() {
    let d = check(&format!(
        "{STEP_A}\n{}needs = [\"a\"]\ndue = \"5m\"\ndue_basis = \"default\"\nrequired = true\nescalate_to = \"counselor\"\n",
        CALL_119
    ));
    let at = H + 10;
    assert_eq!(
        d,
        [
            line(
                at,
                "anytime step `call_119` cannot wait for other steps (`needs`); it must be possible at any moment"
            ),
            line(
                at,
                "anytime step `call_119` has no time limit (`due`): it is done the moment it is needed"
            ),
            line(
                at,
                "anytime step `call_119` cannot be required: it is done only when a trigger happens"
            ),
        ]
    );
}

#[test]
fn emergency_numbers_and_triggers_are_checked() {
    let d = check(
        &CALL_119
            .replace("\"119\"", "\"911\"")
            .replace("\"trapped\"", "\"flood\""),
    );
    assert_eq!(
        d,
        [
            line(H + 5, "unknown emergency number `911`; use 120, 110 or 119"),
            line(
                H + 6,
                "unknown trigger `flood`; use weapon, height, missing, violence, ingestion, attempt, injury, trapped or agitation"
            ),
        ]
    );
    let d = check(&CALL_119.replace("triggers = [\"height\", \"trapped\"]\n", ""));
    assert_eq!(
        d,
        [line(
            H + 4,
            "emergency call step `call_119` must name its `triggers`, the situations that call for it"
        )]
    );
    let d = check(&CALL_119.replace("anytime = true\n", ""));
    assert_eq!(
        d,
        [
            line(H + 4, "`calls` only applies to `anytime = true` steps"),
            line(H + 5, "`triggers` only applies to `anytime = true` steps"),
        ]
    );
}

/// A safeguarding gate (line H+1) before a guardian call (H+18), with a
/// mandatory report (H+28). Every line counted for the tests below.
const GATE: &str = r#"[[steps]]
id = "gate"
role = "counselor"
kind = "choice"
safeguarding = true
title = { zh = "通知监护人是否安全", en = "Is it safe to notify the guardian?" }
instruction = { zh = "判断", en = "Judge" }

[[steps.options]]
id = "safe"
label = { zh = "安全", en = "Safe" }
next = ["call"]

[[steps.options]]
id = "source_of_harm"
unsafe = true
label = { zh = "监护人可能是伤害来源", en = "The guardian may be the source of harm" }
next = ["report"]

[[steps]]
id = "call"
role = "counselor"
kind = "contact"
contacts = "guardian"
title = { zh = "联系监护人", en = "Call the guardian" }
instruction = { zh = "拨打", en = "Call" }

[[steps]]
id = "report"
role = "leader"
kind = "note"
mandatory_report = true
required = true
due = "1h"
due_basis = "law"
escalate_to = "leader"
title = { zh = "强制报告", en = "Mandatory report" }
instruction = { zh = "向公安机关报告", en = "Report to the police" }
"#;

const GATE_ROLES: &str = r#"["counselor", "leader"]"#;

#[test]
fn a_safeguarding_gate_checks_clean_and_parses() {
    assert_eq!(check_roles(GATE_ROLES, GATE), Vec::<String>::new());
    let text = format!("{}{GATE}", HEADER.replace("ROLES", GATE_ROLES));
    let pb = parse(Path::new("t.toml"), &text).expect("clean");
    let gate = pb.step("gate").unwrap();
    assert!(gate.safeguarding);
    let unsafe_ids: Vec<_> = gate
        .kind
        .options()
        .iter()
        .filter(|o| o.unsafe_answer)
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(unsafe_ids, ["source_of_harm"]);
    assert!(pb.step("report").unwrap().mandatory_report);
    assert!(matches!(
        pb.step("call").unwrap().kind,
        StepKind::Contact {
            contacts: Contactee::Guardian,
            ..
        }
    ));
}

#[test]
fn an_unsafe_answer_must_open_a_mandatory_report() {
    let d = check_roles(
        GATE_ROLES,
        &GATE.replace("mandatory_report = true\n", "# not marked\n"),
    );
    assert_eq!(
        d,
        [line(
            H + 1,
            "unsafe answer `source_of_harm` of gate `gate` must open a `mandatory_report = true` step in its `next`"
        )]
    );
}

#[test]
fn a_gate_needs_a_safe_and_an_unsafe_answer() {
    let d = check_roles(GATE_ROLES, &GATE.replace("unsafe = true\n", "# unsafe?\n"));
    assert!(
        d.contains(&line(
            H + 1,
            "safeguarding gate `gate` needs at least one safe option and one with `unsafe = true`"
        )),
        "{d:?}"
    );
}

#[test]
fn unsafe_only_on_a_gate_and_a_gate_only_on_a_choice() {
    let d = check_roles(
        GATE_ROLES,
        &GATE.replace("safeguarding = true\n", "# no gate\n"),
    );
    assert!(
        d.contains(&line(
            H + 16,
            "`unsafe` only applies to options of a `safeguarding = true` choice"
        )),
        "{d:?}"
    );
    let d = check(&format!("{STEP_A}safeguarding = true\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "`safeguarding` only applies to choice steps, and this is a check step"
        )]
    );
}

#[test]
fn a_mandatory_report_is_the_leaders_required_timed_note() {
    let d = check_roles(
        GATE_ROLES,
        &GATE.replace(
            "role = \"leader\"\nkind = \"note\"",
            "role = \"counselor\"\nkind = \"note\"",
        ),
    );
    assert_eq!(
        d,
        [line(
            H + 32,
            "mandatory report step `report` must be the leader's: the school reports, not one teacher"
        )]
    );
    let d = check_roles(GATE_ROLES, &GATE.replace("kind = \"note\"\n", ""));
    assert_eq!(
        d,
        [line(
            H + 31,
            "mandatory report step `report` must be a note step: write when, to whom and the receipt number"
        )]
    );
}

#[test]
fn a_contact_step_says_whom_it_calls() {
    let d = check_roles(GATE_ROLES, &GATE.replace("contacts = \"guardian\"\n", ""));
    assert_eq!(d, [line(H + 20, "missing `contacts`")]);
    let d = check_roles(
        GATE_ROLES,
        &GATE.replace("contacts = \"guardian\"", "contacts = \"parents\""),
    );
    assert_eq!(
        d,
        [line(
            H + 24,
            "unknown contact `parents`; use guardian, family, emergency_services or other"
        )]
    );
    let d = check(&format!("{STEP_A}contacts = \"family\"\n"));
    assert_eq!(
        d,
        [line(
            H + 6,
            "`contacts` only applies to contact steps, and this is a check step"
        )]
    );
}

#[test]
fn refusal_and_unreachable_paths_are_checked_like_branches() {
    let steps = GATE.replace(
        "contacts = \"guardian\"\n",
        "contacts = \"guardian\"\nif_refused = [\"nowhere\"]\nif_unreached = [\"report\"]\n",
    );
    let d = check_roles(GATE_ROLES, &steps);
    assert_eq!(
        d,
        [
            line(H + 25, "`if_refused` names unknown step `nowhere`"),
            line(
                H + 26,
                "`if_unreached` needs `max_attempts`: it opens once that many calls went unanswered"
            ),
        ]
    );
    // `report` already follows the gate; a second switch is refused.
    let steps = GATE.replace(
        "contacts = \"guardian\"\n",
        "contacts = \"guardian\"\nmax_attempts = 3\nif_unreached = [\"report\"]\n",
    );
    let d = check_roles(GATE_ROLES, &steps);
    assert_eq!(
        d,
        [line(
            H + 30,
            "step `report` is a branch of both `gate` and `call`; a step may follow one choice only"
        )]
    );
}

#[test]
fn a_guardian_call_without_the_gate_is_refused() {
    // The call at H+1, with nothing before it.
    let call = r#"[[steps]]
id = "call"
role = "counselor"
kind = "contact"
contacts = "guardian"
title = { zh = "联系监护人", en = "Call the guardian" }
instruction = { zh = "拨打", en = "Call" }
"#;
    let d = check(call);
    assert_eq!(
        d,
        [line(
            H + 1,
            "contact step `call` calls the guardian with no safeguarding gate before it; list it in the `next` of a safe option of a `safeguarding = true` choice"
        )]
    );
    // A family (adult student) or other contact needs no gate.
    assert_eq!(
        check(&call.replace("\"guardian\"", "\"family\"")),
        Vec::<String>::new()
    );
    // Behind an ordinary choice that is not a safeguarding gate: refused.
    let not_a_gate = GATE
        .replace("safeguarding = true\n", "# no gate\n")
        .replace("unsafe = true\n", "# unsafe\n")
        .replace("mandatory_report = true\n", "# report\n");
    let d = check_roles(GATE_ROLES, &not_a_gate);
    assert_eq!(
        d,
        [line(
            H + 20,
            "contact step `call` calls the guardian with no safeguarding gate before it; list it in the `next` of a safe option of a `safeguarding = true` choice"
        )]
    );
    // Switched on by an unsafe answer as well as a safe one: refused.
    let both = GATE.replace("next = [\"report\"]", "next = [\"report\", \"call\"]");
    let d = check_roles(GATE_ROLES, &both);
    assert_eq!(
        d,
        [line(
            H + 20,
            "contact step `call` calls the guardian with no safeguarding gate before it; list it in the `next` of a safe option of a `safeguarding = true` choice"
        )]
    );
}

#[test]
fn a_guardian_call_reached_through_needs_of_a_gated_step_counts_as_gated() {
    let chained = format!(
        "{}{}",
        GATE.replace("next = [\"call\"]", "next = [\"prepare\"]")
            .replace(
                "[[steps]]\nid = \"call\"",
                "[[steps]]\nid = \"prepare\"\nrole = \"counselor\"\ntitle = { zh = \"准备\", en = \"Prepare\" }\ninstruction = { zh = \"准备\", en = \"Prepare\" }\n\n[[steps]]\nid = \"call\"\nneeds = [\"prepare\"]"
            ),
        ""
    );
    assert_eq!(check_roles(GATE_ROLES, &chained), Vec::<String>::new());
}

#[test]
fn every_shipped_guardian_call_sits_behind_a_gate() {
    let library = crisisdesk::playbook::load_dir(Path::new("playbooks")).expect("shipped library");
    let mut gated_calls = 0;
    for pb in library.playbooks() {
        for step in &pb.steps {
            if let StepKind::Contact {
                contacts: Contactee::Guardian,
                ..
            } = step.kind
            {
                gated_calls += 1;
                let gate = pb
                    .steps
                    .iter()
                    .find(|g| g.safeguarding)
                    .unwrap_or_else(|| panic!("{}: no gate", pb.id));
                assert!(
                    gate.kind.options().iter().any(|o| o.unsafe_answer
                        && o.next
                            .iter()
                            .any(|n| pb.step(n).is_some_and(|s| s.mandatory_report))),
                    "{}",
                    pb.id
                );
            }
        }
    }
    assert!(gated_calls >= 6, "{gated_calls}");
}

#[test]
fn a_playbook_for_imminent_cases_must_offer_120_110_and_119_at_any_moment() {
    let header = HEADER.replace("ROLES", r#"["counselor"]"#).replace(
        "categories = [\"other\"]",
        "categories = [\"other\"]\nimminent = true",
    );
    let text = format!("{header}{CALL_119}");
    let d: Vec<String> = check_str(Path::new("t.toml"), &text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        d,
        [
            line(
                9,
                "a playbook for imminent cases must offer an anytime step with `calls = \"120\"`, so the call can be made at any moment"
            ),
            line(
                9,
                "a playbook for imminent cases must offer an anytime step with `calls = \"110\"`, so the call can be made at any moment"
            ),
        ]
    );
}
