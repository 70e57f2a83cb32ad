//! The drill scenario checker: every problem reported as `file:line:
//! problem` at the exact line, the shipped scenarios clean, and
//! `crisisdesk drill check` exiting as the contract says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crisisdesk::drill::{self, Scenario};
use crisisdesk::playbook::Library;
use crisisdesk::protocol::{Category, Level};

const BIN: &str = env!("CARGO_BIN_EXE_crisisdesk");

fn library() -> Library {
    crisisdesk::playbook::shipped::load(None).expect("shipped playbooks load")
}

/// A valid scenario of 20 lines; tests append from line 21 on.
const BASE: &str = concat!(
    "id = \"t\"\n",                  // 1
    "version = 1\n",                 // 2
    "title.zh = \"演练\"\n",         // 3
    "title.en = \"Drill\"\n",        // 4
    "briefing.zh = \"演练说明\"\n",  // 5
    "briefing.en = \"Briefing\"\n",  // 6
    "\n",                            // 7
    "[[students]]\n",                // 8
    "id = \"DRILL-T1\"\n",           // 9
    "name = \"王小明\"\n",           // 10
    "\n",                            // 11
    "[[injects]]\n",                 // 12
    "name = \"first\"\n",            // 13
    "at = \"0m\"\n",                 // 14
    "source = \"treehole\"\n",       // 15
    "category = \"suicide_risk\"\n", // 16
    "level = \"high\"\n",            // 17
    "imminent = true\n",             // 18
    "student = \"DRILL-T1\"\n",      // 19
    "summary = \"树洞帖\"\n",        // 20
);

fn problems(text: &str) -> Vec<String> {
    drill::check_str(Path::new("t.toml"), text, &library())
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn parse(text: &str) -> Scenario {
    drill::parse(Path::new("t.toml"), text, &library()).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn the_base_scenario_is_valid() {
    let s = parse(BASE);
    assert_eq!(s.id, "t");
    assert_eq!(s.injects.len(), 1);
    assert_eq!(s.injects[0].student.id, "DRILL-T1");
    assert_eq!(s.injects[0].student.name.as_deref(), Some("王小明"));
    assert!(s.injects[0].imminent);
}

#[test]
fn broken_inject_fields_are_reported_on_their_lines() {
    let text = format!(
        "{BASE}{}",
        concat!(
            "\n",                              // 21
            "[[injects]]\n",                   // 22
            "name = \"first\"\n",              // 23
            "at = \"3x\"\n",                   // 24
            "source = \"radio\"\n",            // 25
            "category = \"suicide\"\n",        // 26
            "level = \"urgent\"\n",            // 27
            "student = { name = \"李四\" }\n", // 28
        )
    );
    assert_eq!(
        problems(&text),
        [
            "t.toml:23: duplicate inject name `first` (first defined on line 13)",
            "t.toml:24: duration `3x` has unknown unit `x`; use s, m, h, d or w (e.g. `10m`)",
            "t.toml:25: unknown source `radio`; use screening, behavior, treehole, teacher_report, parent_report, self_referral, peer_tip, hotline or manual",
            "t.toml:26: unknown category `suicide`; use suicide_risk, self_harm, violence_threat, bullying, trauma_bereavement, acute_distress or other",
            "t.toml:27: unknown level `urgent`; use general, key or high",
            "t.toml:28: missing `student.id`",
        ]
    );
}

#[test]
fn missing_inject_fields_point_at_the_inject() {
    let text = format!(
        "{BASE}{}",
        concat!(
            "\n",                  // 21
            "[[injects]]\n",       // 22
            "name = \"second\"\n", // 23
        )
    );
    assert_eq!(
        problems(&text),
        [
            "t.toml:22: missing `at`",
            "t.toml:22: missing `source`",
            "t.toml:22: missing `category`",
            "t.toml:22: missing `level`",
            "t.toml:22: missing `student`",
        ]
    );
}

#[test]
fn expectations_must_name_known_playbook_steps_and_injects() {
    let text = format!(
        "{BASE}{}",
        concat!(
            "\n",                                              // 21
            "[[expect]]\n",                                    // 22
            "step = \"imminent_suicide_risk/no_such_step\"\n", // 23
            "within = \"10\"\n",                               // 24
            "\n",                                              // 25
            "[[expect]]\n",                                    // 26
            "inject = \"nobody\"\n",                           // 27
            "step = \"no_playbook/x\"\n",                      // 28
            "within = \"10m\"\n",                              // 29
            "\n",                                              // 30
            "[[expect]]\n",                                    // 31
            "within = \"10m\"\n",                              // 32
            "\n",                                              // 33
            "[[expect]]\n",                                    // 34
            "step = \"counselor_arrives\"\n",                  // 35
            "within = \"0m\"\n",                               // 36
        )
    );
    assert_eq!(
        problems(&text),
        [
            "t.toml:23: playbook `imminent_suicide_risk` has no step `no_such_step`",
            "t.toml:24: duration `10` ends in `10` without a unit; write e.g. `10m`",
            "t.toml:27: `inject` names unknown inject `nobody`",
            "t.toml:28: unknown playbook `no_playbook` in `step`; use an id from the playbook library",
            "t.toml:31: missing `step`",
            "t.toml:35: `step` `counselor_arrives` must name `playbook_id/step_id`, e.g. `imminent_suicide_risk/counselor_arrives`",
            "t.toml:36: duration `0m` is zero; a zero limit is overdue the moment the case opens",
        ]
    );
}

#[test]
fn a_valid_expectation_defaults_to_the_first_inject() {
    let text = format!(
        "{BASE}{}",
        concat!(
            "\n",
            "[[expect]]\n",
            "step = \"imminent_suicide_risk/counselor_arrives\"\n",
            "within = \"10m\"\n",
        )
    );
    let s = parse(&text);
    assert_eq!(s.expects.len(), 1);
    let e = &s.expects[0];
    assert_eq!(
        (e.inject.as_str(), e.playbook.as_str(), e.step.as_str()),
        ("first", "imminent_suicide_risk", "counselor_arrives")
    );
    assert_eq!(e.within.seconds(), 600);
}

#[test]
fn texts_need_both_languages_and_the_id_must_match_the_file() {
    let text = BASE
        .replace("id = \"t\"", "id = \"other\"")
        .replace("title.zh = \"演练\"", "title.zh = \"Drill\"")
        .replace("briefing.en = \"Briefing\"\n", "");
    assert_eq!(
        problems(&text),
        [
            "t.toml:1: scenario id `other` must match the file name `t.toml`",
            "t.toml:3: `title.zh` has no Chinese characters; is the English text in the wrong place?",
            "t.toml:5: `briefing` has no en text; every text needs both `zh` and `en`",
        ]
    );
    let no_title = BASE
        .replace("title.zh = \"演练\"\n", "")
        .replace("title.en = \"Drill\"\n", "");
    assert_eq!(problems(&no_title), ["t.toml:1: missing `title`"]);
}

#[test]
fn students_must_be_declared_fictional_and_unique() {
    let text = format!(
        "{BASE}{}",
        concat!(
            "\n",                       // 21
            "[[students]]\n",           // 22
            "id = \"S1001\"\n",         // 23
            "\n",                       // 24
            "[[students]]\n",           // 25
            "name = \"无学号\"\n",      // 26
            "\n",                       // 27
            "[[students]]\n",           // 28
            "id = \"DRILL-T1\"\n",      // 29
            "\n",                       // 30
            "[[injects]]\n",            // 31
            "name = \"second\"\n",      // 32
            "at = \"1m\"\n",            // 33
            "source = \"manual\"\n",    // 34
            "category = \"other\"\n",   // 35
            "level = \"key\"\n",        // 36
            "student = \"DRILL-T9\"\n", // 37
            "\n",                       // 38
            "[[injects]]\n",            // 39
            "name = \"third\"\n",       // 40
            "at = \"2m\"\n",            // 41
            "source = \"manual\"\n",    // 42
            "category = \"other\"\n",   // 43
            "level = \"key\"\n",        // 44
            "student = \"S1001\"\n",    // 45: declared but broken, so not also "unknown"
        )
    );
    assert_eq!(
        problems(&text),
        [
            "t.toml:22: student id `S1001` must start with `DRILL-` so a drill can never be mistaken for a real student",
            "t.toml:25: missing `students.id`",
            "t.toml:28: duplicate student `DRILL-T1` (first declared on line 8)",
            "t.toml:37: student `DRILL-T9` is not declared; add it to [[students]] or write the student inline",
        ]
    );
}

#[test]
fn inline_students_work_like_declared_ones() {
    let text = BASE.replace(
        "student = \"DRILL-T1\"",
        "student = { id = \"DRILL-T2\", name = \"李四\", grade = \"初二\", under_14 = true }",
    );
    let s = parse(&text);
    assert_eq!(s.injects[0].student.id, "DRILL-T2");
    assert_eq!(s.injects[0].student.under_14, Some(true));
    let typo = BASE.replace(
        "student = \"DRILL-T1\"",
        "student = { id = \"DRILL-T2\", nmae = \"李四\" }",
    );
    let p = problems(&typo);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("t.toml:19: invalid TOML: in `student`: unknown field `nmae`"),
        "{p:?}"
    );
    let not_drill = BASE.replace("student = \"DRILL-T1\"", "student = { id = \"S2001\" }");
    assert_eq!(
        problems(&not_drill),
        [
            "t.toml:19: student id `S2001` must start with `DRILL-` so a drill can never be mistaken for a real student"
        ]
    );
}

#[test]
fn toml_errors_and_unknown_keys_name_their_line() {
    let typo = BASE.replace("imminent = true", "imminet = true");
    let p = problems(&typo);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("t.toml:18: invalid TOML: unknown field `imminet`"),
        "{p:?}"
    );
    let unterminated = BASE.replace("at = \"0m\"", "at = \"0m");
    let p = problems(&unterminated);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("t.toml:14: invalid TOML:"), "{p:?}");
}

#[test]
fn a_scenario_without_injects_is_refused() {
    let text = BASE.split("[[injects]]").next().unwrap();
    assert_eq!(
        problems(text),
        ["t.toml:1: no injects; add at least one [[injects]] table"]
    );
}

#[test]
fn summaries_signals_and_observation_times_are_checked() {
    let text = format!(
        "{BASE}{}",
        concat!(
            "signals = [{ instrument = \"PHQ-9\" }, { kind = \"scale\", on = 2026-11-20 }, { kind = \"drill\" }]\n", // 21
            "\n",                           // 22
            "[[injects]]\n",                // 23
            "name = \"second\"\n",          // 24
            "at = \"1m\"\n",                // 25
            "observed_before = \"400d\"\n", // 26
            "source = \"manual\"\n",        // 27
            "category = \"other\"\n",       // 28
            "level = \"key\"\n",            // 29
            "student = \"DRILL-T1\"\n",     // 30
            "summary = \"  \"\n",           // 31
        )
    );
    assert_eq!(
        problems(&text),
        [
            "t.toml:21: signal 1 needs a `kind`, e.g. kind = \"scale\"",
            "t.toml:21: `signals.on` cannot hold a bare TOML date (quote it as a string) in an alert",
            "t.toml:21: signal 3: kind `drill` is reserved for the mark `drill run` adds itself",
            "t.toml:26: duration `400d` is longer than 366 days; check for a typo",
            "t.toml:31: `summary` must be 1 to 2000 characters, got 2",
        ]
    );
    let long = BASE.replace(
        "summary = \"树洞帖\"",
        &format!("summary = \"{}\"", "字".repeat(2001)),
    );
    assert_eq!(
        problems(&long),
        ["t.toml:20: `summary` must be 1 to 2000 characters, got 2001"]
    );
}

#[test]
fn offsets_out_of_order_are_fine_and_define_the_timeline() {
    let text = format!(
        "{}{}",
        BASE.replace("at = \"0m\"", "at = \"5m\""),
        concat!(
            "\n",
            "[[injects]]\n",
            "name = \"opening\"\n",
            "at = \"0m\"\n",
            "observed_before = \"1d\"\n",
            "source = \"screening\"\n",
            "category = \"suicide_risk\"\n",
            "level = \"key\"\n",
            "student = \"DRILL-T1\"\n",
            "signals = [{ kind = \"scale\", instrument = \"PHQ-9\", score = 17, items = { \"9\" = 2 } }]\n",
            "\n",
            "[[injects]]\n",
            "name = \"also_at_five\"\n",
            "at = \"5m\"\n",
            "observed_before = \"0m\"\n",
            "source = \"manual\"\n",
            "category = \"suicide_risk\"\n",
            "level = \"high\"\n",
            "student = \"DRILL-T1\"\n",
        )
    );
    let s = parse(&text);
    let order: Vec<&str> = s.injects.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(order, ["opening", "first", "also_at_five"]);
    assert_eq!(s.duration().to_string(), "5m");
    assert_eq!(s.injects[0].observed_before.unwrap().seconds(), 86_400);
    assert_eq!(s.injects[2].observed_before, None, "`0m` means as posted");
    assert_eq!(
        s.injects[0].signals[0],
        serde_json::json!({"kind": "scale", "instrument": "PHQ-9", "score": 17, "items": {"9": 2}})
    );
}

#[test]
fn every_shipped_scenario_checks_clean() {
    let lib = library();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(drill::DEFAULT_DIR);
    let problems = drill::check_dir(&dir, &lib);
    assert!(problems.is_empty(), "{problems:#?}");
    let shipped = drill::shipped(&lib).expect("embedded scenarios are valid");
    let on_disk = drill::load_dir(&dir, &lib).unwrap();
    assert_eq!(shipped, on_disk, "the binary embeds what is on disk");
    assert!(shipped.len() >= 3);
    for s in &shipped {
        assert_eq!(drill::find(&s.id, None, &lib).as_ref(), Ok(s));
        assert!(
            !s.expects.is_empty(),
            "{} states what the team should achieve",
            s.id
        );
        for i in &s.injects {
            assert!(
                i.student.id.starts_with(drill::DRILL_STUDENT_PREFIX),
                "{}: {} is obviously fictional",
                s.id,
                i.student.id
            );
        }
    }
    assert!(drill::find("no_such_drill", None, &lib).is_err());
}

fn shipped(id: &str) -> Scenario {
    drill::find(id, None, &library()).unwrap()
}

fn scale_item(inject: &drill::Inject, instrument: &str, item: &str) -> Option<i64> {
    inject.signals.iter().find_map(|s| {
        (s["kind"] == "scale" && s["instrument"] == instrument)
            .then(|| s["items"][item].as_i64())
            .flatten()
    })
}

#[test]
fn the_required_scenarios_are_shipped() {
    // Imminent risk at night: a tree-hole post, the guardian unreachable,
    // a second alert for the same student.
    let night = shipped("night_treehole_imminent");
    let first = &night.injects[0];
    assert_eq!(first.source.as_str(), "treehole");
    assert!(first.imminent && first.level == Level::High);
    assert!(first.summary.as_deref().unwrap().contains("23:40"));
    let (_, unreachable) = night.inject("guardian_unreachable").unwrap();
    assert_eq!(unreachable.at.seconds(), 180);
    assert_eq!(unreachable.source.as_str(), "manual");
    let (_, second) = night.inject("second_alert").unwrap();
    assert_eq!(second.at.seconds(), 360);
    assert!(
        night
            .injects
            .iter()
            .all(|i| i.student.id == first.student.id)
    );

    // A screening batch: several key-level students on UPI item 25 or
    // PHQ-9 item 9, one of them high.
    let batch = shipped("screening_batch_key_level");
    let screened: Vec<_> = batch
        .injects
        .iter()
        .filter(|i| i.source.as_str() == "screening")
        .collect();
    assert!(screened.iter().filter(|i| i.level == Level::Key).count() >= 3);
    assert_eq!(
        screened.iter().filter(|i| i.level == Level::High).count(),
        1
    );
    for i in &screened {
        let item9 = scale_item(i, "PHQ-9", "9").unwrap_or(0);
        let item25 = scale_item(i, "UPI", "25").unwrap_or(0);
        assert!(item9 > 0 || item25 > 0, "{} triggers on an item", i.name);
    }
    let students: BTreeSet<_> = screened.iter().map(|i| &i.student.id).collect();
    assert_eq!(
        students.len(),
        screened.len(),
        "one screening alert per student"
    );

    // A violence threat, worked with CSTAG.
    let threat = shipped("violence_threat_cstag");
    assert_eq!(threat.injects[0].category, Category::ViolenceThreat);
    assert!(
        threat
            .expects
            .iter()
            .any(|e| e.playbook == "bullying_violence_threat" && e.step == "threat_class")
    );
}

/// Every `[[expect]]` names a playbook the relay attaches by itself to the
/// case its inject joins, so a scorer finds the step without anyone having
/// added a playbook by hand.
#[test]
fn shipped_expectations_name_playbooks_the_cases_get() {
    let lib = library();
    for s in drill::shipped(&lib).unwrap() {
        // The case each student's injects form, as the relay joins them.
        let mut cases: BTreeMap<&str, (Category, Level, bool, BTreeSet<String>)> = BTreeMap::new();
        for i in &s.injects {
            let case = cases.entry(i.student.id.as_str()).or_insert((
                i.category,
                i.level,
                false,
                BTreeSet::new(),
            ));
            if i.level > case.1 {
                case.0 = i.category;
                case.1 = i.level;
            }
            case.2 |= i.imminent;
            if let Some(pb) = lib.select(case.0, case.1, case.2) {
                case.3.insert(pb.id.clone());
            }
        }
        for e in &s.expects {
            let (_, inject) = s.inject(&e.inject).unwrap();
            let attached = &cases[inject.student.id.as_str()].3;
            assert!(
                attached.contains(&e.playbook),
                "{}: expect on line {} names `{}`, but the case gets {attached:?}",
                s.id,
                e.line,
                e.playbook
            );
        }
    }
}

#[test]
fn drill_check_exits_0_on_the_shipped_scenarios() {
    let out = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["drill", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("all drill scenarios are valid"));
}

#[test]
fn drill_check_exits_1_with_file_line_problems() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), BASE).unwrap();
    let broken = BASE
        .replace("id = \"t\"", "id = \"broken\"")
        .replace("level = \"high\"", "level = \"severe\"");
    std::fs::write(dir.path().join("broken.toml"), broken).unwrap();
    let out = Command::new(BIN)
        .args(["drill", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "{}:17: unknown level `severe`; use general, key or high\n",
        dir.path().join("broken.toml").display()
    );
    assert_eq!(stdout, expected);

    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["drill", "check"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no drill scenarios (*.toml)"));
}

#[test]
fn drill_list_names_the_built_in_scenarios() {
    let out = Command::new(BIN).args(["drill", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shipped = [
        "missing_student_evening",
        "night_treehole_imminent",
        "screening_batch_key_level",
        "university_dorm_night",
        "violence_threat_cstag",
    ];
    for id in shipped {
        assert!(stdout.contains(id), "{stdout}");
    }
    // Every file in playbooks/drills is listed, and nothing else.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/drills"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml"))
        })
        .count();
    assert_eq!(files, shipped.len(), "a new drill belongs in this list");
}
