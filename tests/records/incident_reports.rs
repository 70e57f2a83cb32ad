//! Incident reports upward (事件信息报告) through a real relay: a recorded
//! 120 call opens a report, the leader submits, the district returns and
//! accepts, deadlines escalate, refusals carry clear codes, and nothing
//! that leaves the relay carries the student's name.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use crisisdesk::protocol::Role;
use crisisdesk::relay;
use crisisdesk::reporting::Rules;
use serde_json::{Value, json};

const NAME: &str = "王小明";

fn imminent(id: &str, student: &str) -> Value {
    let mut a = alert(id, student, "high");
    a["imminent"] = json!(true);
    a
}

fn step(id: &str, case_id: &str, step: &str) -> Value {
    json!({
        "type": "command", "id": id, "op": "step", "case_id": case_id,
        "playbook": "imminent_suicide_risk", "step": step, "action": "complete",
    })
}

async fn open_case(relay: &TestRelay, student: &str) -> String {
    let producer = relay
        .token(&format!("feed-{student}"), Role::Producer)
        .await;
    let reply = post_alert(
        relay,
        &producer,
        &imminent(&format!("a-{student}"), student),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["case_id"].as_str().unwrap().to_string()
}

async fn drain(ws: &mut Ws) {
    while next_json(ws, Duration::from_millis(300)).await.is_some() {}
}

/// Sends a command and returns its result and the events seen meanwhile.
async fn command(ws: &mut Ws, cmd: Value) -> (Value, Vec<Value>) {
    let id = cmd["id"].as_str().unwrap().to_string();
    send_command(ws, cmd).await;
    result_for(ws, &id).await
}

fn due(report: &Value, stage: &str) -> DateTime<Utc> {
    let s = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap();
    s["due"].as_str().unwrap().parse().unwrap()
}

fn stage<'a>(report: &'a Value, stage: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap()
}

/// A relay running `rules` instead of the shipped reporting rules.
async fn relay_with_rules(rules: Rules) -> TestRelay {
    TestRelay::start_with_store(relay::RelayConfig::default(), |store| {
        store.with_reporting_rules(rules)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_120_call_opens_a_report_the_district_sees_without_the_name() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "S1").await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let nurse = relay.token("zhou-nurse", Role::Nurse).await;
    let district = relay.token("bureau", Role::District).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    drain(&mut lws).await;
    let mut dws = connect(relay.addr, Some(&district), 0).await.unwrap();
    drain(&mut dws).await;

    let before = Utc::now();
    let (result, _) = command(&mut lws, step("c1", &case_id, "call_120")).await;
    assert_eq!(result["ok"], true, "{result}");
    let evs = until_quiet(&mut lws).await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["step_updated", "report_opened"], "{evs:?}");
    let report = &evs[1]["report"];
    assert_eq!(report["id"], format!("IR-{case_id}"));
    assert_eq!(report["rules"], json!(["emergency_services"]));
    assert!(evs[1].get("origin").is_none(), "opened by the relay itself");
    let first = due(report, "first");
    assert!(first >= before + chrono::Duration::hours(24) - chrono::Duration::seconds(5));
    assert!(first <= Utc::now() + chrono::Duration::hours(24));
    assert_eq!(report["form"]["school"], "第一中学");
    assert_eq!(report["form"]["grade"], "初二");
    assert_eq!(report["form"]["emergency_calls"], json!(["120"]));
    assert_eq!(report["form"]["actions"][0]["step"], "call_120");
    let text = evs[1].to_string();
    assert!(!text.contains(NAME) && !text.contains("小明"), "{text}");
    assert!(
        !text.contains("\"S1\""),
        "no student id on a report: {text}"
    );

    // The district follows reports only: no alert, no step, no checklist.
    let seen = until_quiet(&mut dws).await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["report_opened"], "{seen:?}");
    assert!(!seen[0].to_string().contains(NAME));
    // Replay on a fresh connection filters the same way.
    let mut replay = connect(relay.addr, Some(&district), 0).await.unwrap();
    let replayed = until_quiet(&mut replay).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["type"], "report_opened");

    // First aid given (an injury) meets a second rule: added, not reopened.
    let mut nws = connect(relay.addr, Some(&nurse), 0).await.unwrap();
    drain(&mut nws).await;
    let (result, _) = command(&mut nws, step("n1", &case_id, "first_aid")).await;
    assert_eq!(result["ok"], true, "{result}");
    let evs = until_quiet(&mut nws).await;
    let updated = evs.iter().find(|e| e["type"] == "report_updated").unwrap();
    assert_eq!(updated["change"]["change"], "rules_added");
    assert_eq!(updated["change"]["rules"], json!(["attempt_with_injury"]));
    assert_eq!(
        updated["report"]["rules"],
        json!(["emergency_services", "attempt_with_injury"])
    );

    // The same call again changes nothing about the report.
    let (result, _) = command(&mut lws, step("c2", &case_id, "call_110")).await;
    assert_eq!(result["ok"], true, "{result}");
    let evs = until_quiet(&mut lws).await;
    assert!(evs.iter().all(|e| e["type"] != "report_opened"), "{evs:?}");

    // Once the case is closed the checklists stop escalating, but the
    // report's first deadline still wakes the scanner.
    let (result, _) = command(
        &mut lws,
        json!({"type": "command", "id": "close", "op": "close", "case_id": case_id,
               "outcome": "referred_out", "override_reason": "送医后由医院接手"}),
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");
    let next = relay.relay.store().next_deadline().await.unwrap().unwrap();
    // Stored to the microsecond.
    assert!(
        (next - first).num_microseconds().unwrap().abs() <= 1,
        "{next} vs {first}"
    );

    // The district view counts it, with no identity.
    let reply = get(&relay, "/v1/district", &district).await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    let body = reply.1.to_string();
    assert!(!body.contains(NAME) && !body.contains("\"S1\""), "{body}");
    assert_eq!(reply.1["reports"][0]["report_id"], format!("IR-{case_id}"));
    let counselor = relay.token("wang", Role::Counselor).await;
    assert_eq!(get(&relay, "/v1/district", &counselor).await.0, 403);
    let reply = get(&relay, &format!("/v1/reports/IR-{case_id}"), &district).await;
    assert_eq!(reply.0, 200);
    assert_eq!(reply.1["case_id"], case_id.as_str());
    assert_eq!(
        get(&relay, "/v1/reports/IR-C999999", &district).await.0,
        404
    );
    relay.stop().await;
}

async fn get(relay: &TestRelay, path: &str, token: &str) -> (u16, Value) {
    let (status, text) = get_text(relay, path, token).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_submits_district_returns_with_a_reason_and_accepts_every_step_audited() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "S2").await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let counselor = relay.token("wang", Role::Counselor).await;
    let district = relay.token("bureau", Role::District).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    drain(&mut lws).await;
    let mut cws = connect(relay.addr, Some(&counselor), 0).await.unwrap();
    drain(&mut cws).await;
    let mut dws = connect(relay.addr, Some(&district), 0).await.unwrap();
    drain(&mut dws).await;
    let cmd = |id: &str, op: &str, extra: Value| {
        let mut c = json!({"type": "command", "id": id, "op": op, "case_id": case_id});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    // No report yet: submitting says so.
    let (r, _) = command(
        &mut lws,
        cmd("s0", "submit_report", json!({"stage": "first"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "no_report", "{r}");
    // Only the school leader declares a report; a counselor is refused at
    // the door, and an unknown rule names the ones there are.
    let (r, _) = command(
        &mut cws,
        cmd("o0", "open_report", json!({"rule": "missing_student"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let (r, _) = command(&mut lws, cmd("o1", "open_report", json!({"rule": "lost"}))).await;
    assert_eq!(r["error"]["code"], "unknown_rule");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing_student")
    );
    let (r, _) = command(
        &mut dws,
        cmd("o2", "open_report", json!({"rule": "missing_student"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "submit_forbidden", "{r}");

    let (r, _) = command(
        &mut lws,
        cmd("o3", "open_report", json!({"rule": "missing_student"})),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let opened = until_quiet(&mut dws).await;
    assert_eq!(opened[0]["type"], "report_opened");
    assert_eq!(opened[0]["origin"]["by"]["role"], "leader");
    let (r, _) = command(
        &mut lws,
        cmd("o4", "open_report", json!({"rule": "missing_student"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "already_reported");

    // Out of order, a name in the narrative: refused with their own codes.
    let (r, _) = command(
        &mut lws,
        cmd("s1", "submit_report", json!({"stage": "final"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "stage_out_of_order");
    let (r, _) = command(
        &mut lws,
        cmd(
            "s2",
            "submit_report",
            json!({"stage": "first", "narrative": "王小明于 21:00 离校"}),
        ),
    )
    .await;
    assert_eq!(r["error"]["code"], "name_not_allowed", "{r}");
    let (r, _) = command(
        &mut lws,
        cmd(
            "s3",
            "submit_report",
            json!({"stage": "first", "narrative": "该生 21:00 离校，已报警并联系家长。"}),
        ),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let got = until_quiet(&mut dws).await;
    assert_eq!(
        got[0]["change"],
        json!({"change": "submitted", "stage": "first", "late": false})
    );
    assert_eq!(
        stage(&got[0]["report"], "first")["form"]["narrative"],
        "该生 21:00 离校，已报警并联系家长。"
    );
    let (r, _) = command(
        &mut lws,
        cmd("s4", "submit_report", json!({"stage": "first"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "already_submitted");

    // The leader cannot approve their own report.
    let (r, _) = command(
        &mut lws,
        cmd("a0", "accept_report", json!({"stage": "first"})),
    )
    .await;
    assert_eq!(r["error"]["code"], "approval_forbidden", "{r}");
    // A return needs a reason.
    let (r, _) = command(
        &mut dws,
        cmd(
            "r0",
            "return_report",
            json!({"stage": "first", "reason": "  "}),
        ),
    )
    .await;
    assert_eq!(r["error"]["code"], "reason_required");
    assert_eq!(r["error"]["field"], "reason");
    let (r, _) = command(
        &mut dws,
        cmd(
            "r1",
            "return_report",
            json!({"stage": "first", "reason": "请补充报警时间"}),
        ),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let got = until_quiet(&mut lws).await;
    let returned = got.iter().find(|e| e["type"] == "report_updated").unwrap();
    assert_eq!(returned["change"]["change"], "returned");
    assert_eq!(returned["change"]["reason"], "请补充报警时间");
    assert_eq!(stage(&returned["report"], "first")["status"], "returned");

    let (r, _) = command(
        &mut lws,
        cmd(
            "s5",
            "submit_report",
            json!({"stage": "first", "narrative": "21:10 报警（110），21:40 找到。"}),
        ),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let (r, _) = command(
        &mut dws,
        cmd("a1", "accept_report", json!({"stage": "first"})),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let got = until_quiet(&mut lws).await;
    let accepted = got
        .iter()
        .rev()
        .find(|e| e["type"] == "report_updated")
        .unwrap();
    let first = stage(&accepted["report"], "first");
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["submissions"], 2);
    assert_eq!(first["accepted_by"]["role"], "district");
    assert_eq!(first["returns"][0]["reason"], "请补充报警时间");
    // Re-sending the same command id changes nothing.
    let (r, _) = command(
        &mut dws,
        cmd("a1", "accept_report", json!({"stage": "first"})),
    )
    .await;
    assert_eq!(r["duplicate"], true);

    // Every transition and every refusal is in the audit trail, by op.
    let trail = relay.relay.store().audit_for_case(&case_id).await.unwrap();
    let ops: Vec<(String, String)> = trail
        .iter()
        .filter_map(|e| {
            let d: Value = serde_json::from_str(&e.detail).ok()?;
            Some((e.kind.clone(), d["op"].as_str()?.to_string()))
        })
        .filter(|(_, op)| op.ends_with("_report"))
        .collect();
    for (kind, op) in [
        ("command_accepted", "open_report"),
        ("command_accepted", "submit_report"),
        ("command_accepted", "return_report"),
        ("command_accepted", "accept_report"),
        ("command_refused", "submit_report"),
        ("command_refused", "accept_report"),
        ("command_refused", "return_report"),
    ] {
        assert!(
            ops.iter().any(|(k, o)| k == kind && o == op),
            "{kind} {op} missing from {ops:?}"
        );
    }
    let names: Vec<&str> = trail.iter().map(|e| e.detail.as_str()).collect();
    assert!(
        names.iter().all(|d| !d.contains(NAME)),
        "a refused narrative's name must not reach the audit: {names:?}"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_past_its_deadline_escalates_once_and_a_late_submission_is_accepted_marked_late() {
    let text = crisisdesk::reporting::rules::EMBEDDED.1.replacen(
        "id = \"missing_student\"\ntitle.zh = \"学生离校失联\"\ntitle.en = \"Missing student\"\nfirst_report = \"24h\"",
        "id = \"missing_student\"\ntitle.zh = \"学生离校失联\"\ntitle.en = \"Missing student\"\nfirst_report = \"1s\"",
        1,
    );
    assert_ne!(text, crisisdesk::reporting::rules::EMBEDDED.1);
    let relay = relay_with_rules(Rules::parse("test", &text).unwrap()).await;
    let case_id = open_case(&relay, "S3").await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let district = relay.token("bureau", Role::District).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    drain(&mut lws).await;
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "o", "op": "open_report", "case_id": case_id, "rule": "missing_student"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let opened = until_quiet(&mut lws).await;
    let first_due = due(&opened[0]["report"], "first");
    assert_eq!(
        relay
            .relay
            .store()
            .next_deadline()
            .await
            .unwrap()
            .map(|d| d <= first_due),
        Some(true)
    );

    // The relay's scanner does this by itself; driving it with a clock
    // past the deadline keeps the test from waiting on a timer.
    let later = first_due + chrono::Duration::seconds(1);
    relay.relay.escalate_overdue(later).await.unwrap();
    let evs = until_quiet(&mut lws).await;
    let overdue: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "report_overdue")
        .collect();
    assert_eq!(overdue.len(), 1, "{evs:?}");
    assert_eq!(overdue[0]["stage"], "first");
    assert_eq!(overdue[0]["to"], "leader");
    assert_eq!(overdue[0]["report_id"], format!("IR-{case_id}"));
    relay.relay.escalate_overdue(later).await.unwrap();
    let again = until_quiet(&mut lws).await;
    assert!(
        again.iter().all(|e| e["type"] != "report_overdue"),
        "once: {again:?}"
    );

    // Submitted after the deadline (which was one second): accepted, late.
    while Utc::now() <= first_due {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "s", "op": "submit_report", "case_id": case_id, "stage": "first"}),
    )
    .await;
    assert_eq!(r["ok"], true, "never refused for being late: {r}");
    let evs = until_quiet(&mut lws).await;
    assert_eq!(evs[0]["change"]["late"], true);
    let mut dws = connect(relay.addr, Some(&district), 0).await.unwrap();
    drain(&mut dws).await;
    let (r, _) = command(
        &mut dws,
        json!({"type": "command", "id": "a", "op": "accept_report", "case_id": case_id, "stage": "first"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let report = relay
        .relay
        .store()
        .incident_report(&case_id)
        .await
        .unwrap()
        .unwrap();
    let first = report.stage(crisisdesk::reporting::Stage::First).unwrap();
    assert!(first.late);
    assert_eq!(first.status, crisisdesk::reporting::StageStatus::Accepted);
    relay.stop().await;
}

#[test]
fn the_relay_refuses_to_start_with_invalid_reporting_rules_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        crisisdesk::reporting::rules::EMBEDDED.1.replacen(
            "sudden_death_trauma/death_type/suicide",
            "sudden_death_trauma/no_step/x",
            1,
        ),
    )
    .unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let out = std::process::Command::new(BIN)
        .args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--reporting-rules",
        ])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule `death`"), "{err}");
    assert!(err.contains("no step `no_step`"), "{err}");
    assert!(err.contains("will not start"), "{err}");
    let out = std::process::Command::new(BIN)
        .args(["incident", "check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no step `no_step`"));
    let out = std::process::Command::new(BIN)
        .args(["incident", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exported_report_is_a_docx_json_and_html_without_the_name() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "S4").await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    drain(&mut lws).await;
    let (r, _) = command(&mut lws, step("c", &case_id, "call_120")).await;
    assert_eq!(r["ok"], true);
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "s", "op": "submit_report", "case_id": case_id,
               "stage": "first", "narrative": "21:05 拨打 120，21:20 送医。"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let db = relay.db_url.clone();
    let out_dir = relay.dir.path().to_path_buf();

    let docx = out_dir.join("report.docx");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let id = format!("IR-{case_id}");
    run(&[
        "incident",
        "export",
        &id,
        "--db",
        &db,
        "--format",
        "docx",
        "--utc-offset",
        "+08:00",
        "--out",
        docx.to_str().unwrap(),
    ]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&docx).unwrap()).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("word/document.xml").unwrap(), &mut xml)
        .unwrap();
    assert!(
        xml.contains("第一中学") && xml.contains("拨打 120（服药、受伤、正在实施）"),
        "{xml}"
    );
    assert!(xml.contains("21:05 拨打 120，21:20 送医。"));
    assert!(xml.contains("w:pgSz w:w=\"11906\""), "A4 page");
    assert!(!xml.contains("小明"));
    assert!(zip.by_name("[Content_Types].xml").is_ok());

    let json: Value = serde_json::from_str(&run(&[
        "incident", "export", &case_id, "--db", &db, "--format", "json",
    ]))
    .unwrap();
    assert_eq!(json["format"], "crisisdesk.incident_report.v1");
    assert_eq!(json["report"]["stages"][0]["status"], "submitted");
    let html = run(&["incident", "export", &id, "--db", &db, "--format", "html"]);
    assert!(html.contains("@page{size:A4") && html.contains("公安（110）或急救（120）介入"));
    assert!(!html.contains("小明"));
    let list = run(&["incident", "list", "--db", &db]);
    assert!(
        list.contains(&id) && list.contains("first=submitted"),
        "{list}"
    );
    let out = std::process::Command::new(BIN)
        .args(["incident", "export", "IR-C999999", "--db", &db])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no incident report `IR-C999999`"));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_that_requires_the_name_shows_it_to_leader_and_district_only() {
    let text = crisisdesk::reporting::rules::EMBEDDED.1.replacen(
        "title.en = \"Missing student\"\nfirst_report = \"24h\"\nfirst_report_basis = \"default\"\nfollow_up = \"3d\"\nfollow_up_basis = \"default\"\nfinal_report = \"30d\"\nfinal_report_basis = \"default\"\nname_required = false",
        "title.en = \"Missing student\"\nfirst_report = \"24h\"\nfirst_report_basis = \"default\"\nfollow_up = \"3d\"\nfollow_up_basis = \"default\"\nfinal_report = \"30d\"\nfinal_report_basis = \"default\"\nname_required = true",
        1,
    );
    assert_ne!(text, crisisdesk::reporting::rules::EMBEDDED.1);
    let relay = relay_with_rules(Rules::parse("test", &text).unwrap()).await;
    let case_id = open_case(&relay, "S5").await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let district = relay.token("bureau", Role::District).await;
    let teacher = relay.token("chen-teacher", Role::HeadTeacher).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    drain(&mut lws).await;
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "o", "op": "open_report", "case_id": case_id, "rule": "missing_student"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    // With the rule requiring the name, a narrative may carry it.
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "s", "op": "submit_report", "case_id": case_id,
               "stage": "first", "narrative": "王小明 21:00 离校"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let seen = until_quiet(&mut lws).await;
    assert_eq!(seen[0]["report"]["form"]["student_name"], NAME, "{seen:?}");
    for (token, shows) in [(&district, true), (&teacher, false)] {
        let mut ws = connect(relay.addr, Some(token), 0).await.unwrap();
        let events: Vec<Value> = until_quiet(&mut ws)
            .await
            .into_iter()
            .filter(|e| e["type"].as_str().unwrap().starts_with("report_"))
            .collect();
        assert_eq!(events.len(), 2);
        let has_name = events[1]["report"]["form"]["student_name"] == NAME;
        assert_eq!(has_name, shows, "{events:?}");
        if !shows {
            assert_eq!(
                events[1]["withheld"]["fields"][0],
                "report.form.student_name"
            );
            assert!(
                !events.iter().any(|e| e.to_string().contains("小明")),
                "neither the name nor a narrative that may carry it: {events:?}"
            );
        }
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_on_the_stream_answer_with_the_district_view_and_the_period_charts() {
    let relay = TestRelay::start().await;
    let case_id = open_case(&relay, "S7").await;
    let district = relay.token("bureau", Role::District).await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let nurse = relay.token("zhou", Role::Nurse).await;
    let mut dws = connect(relay.addr, Some(&district), 0).await.unwrap();
    drain(&mut dws).await;

    // The district view on the stream is the HTTP endpoint's, figure for
    // figure (one builder), and carries no student.
    let (r, _) = command(
        &mut dws,
        json!({"type": "command", "id": "q1", "op": "district_view"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let (status, http) = get(&relay, "/v1/district", &district).await;
    assert_eq!(status, 200);
    assert_eq!(r["data"]["schools"], http["schools"], "{r} vs {http}");
    assert_eq!(r["data"]["total"]["open_high"], 1);
    assert!(
        !r.to_string().contains(NAME) && !r.to_string().contains("\"S7\""),
        "{r}"
    );
    // A question is never stored: asking again with the same id answers
    // again (not a repeat), and the audit holds no command for it.
    let (again, _) = command(
        &mut dws,
        json!({"type": "command", "id": "q1", "op": "district_view"}),
    )
    .await;
    assert_eq!(again["ok"], true);
    assert!(again.get("duplicate").is_none(), "{again}");

    // The period charts: the period report's figures for the leader.
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();
    drain(&mut lws).await;
    let from = (Utc::now() - chrono::Duration::days(30)).to_rfc3339();
    let to = (Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "p1", "op": "period_charts", "from": from, "to": to,
               "utc_offset": "+08:00"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["data"]["cases"], 1, "{r}");
    assert_eq!(r["data"]["school_levels"][0]["school"], "第一中学");
    assert_eq!(r["data"]["school_levels"][0]["high"], 1);
    assert_eq!(r["data"]["monthly"].as_array().unwrap().len(), 1, "{r}");
    assert!(!r.to_string().contains(NAME), "{r}");
    // Bad periods are refused naming the field.
    for (id, extra, field) in [
        ("p2", json!({"from": to, "to": from}), "from"),
        (
            "p3",
            json!({"from": "2020-01-01T00:00:00Z", "to": to}),
            "to",
        ),
        (
            "p4",
            json!({"from": from, "to": to, "utc_offset": "Beijing"}),
            "utc_offset",
        ),
    ] {
        let mut c = json!({"type": "command", "id": id, "op": "period_charts"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (r, _) = command(&mut lws, c).await;
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["field"], field, "{r}");
    }
    // Roles: the leader may not read the district view, a nurse neither.
    let (r, _) = command(
        &mut lws,
        json!({"type": "command", "id": "q2", "op": "district_view"}),
    )
    .await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let mut nws = connect(relay.addr, Some(&nurse), 0).await.unwrap();
    drain(&mut nws).await;
    let (r, _) = command(
        &mut nws,
        json!({"type": "command", "id": "p5", "op": "period_charts", "from": from, "to": to}),
    )
    .await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    // None of this asking is a command in the record.
    let trail = relay.relay.store().audit_after(0, 10_000).await.unwrap();
    assert!(
        trail
            .iter()
            .all(|e| !e.detail.contains("district_view") && !e.detail.contains("period_charts")),
        "{:?}",
        trail.iter().map(|e| &e.detail).collect::<Vec<_>>()
    );
    assert!(
        !relay
            .relay
            .store()
            .audit_for_case(&case_id)
            .await
            .unwrap()
            .is_empty()
    );
    relay.stop().await;
}
